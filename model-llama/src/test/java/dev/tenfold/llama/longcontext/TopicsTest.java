package dev.tenfold.llama.longcontext;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.llama.tokenizer.TinyTokenizerJson;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** LongChat topic retrieval: the topics file, the record, scoring and the pipeline with fake models. */
class TopicsTest {
    @TempDir static Path dir;
    static Tokenizer tok;
    static final List<String> TOPICS = List.of("the history of jazz", "volcanoes", "Chess Openings", "baking bread", "deep sea fish",
            "the Roman empire", "solar power", "origami", "mountain biking", "tea ceremonies");

    @BeforeAll
    static void tokenizer() throws Exception {
        TinyTokenizerJson.writeLlamaLike(dir);
        tok = Tokenizer.load(dir.resolve("tokenizer.json"));
    }

    @Test
    void parseTrimsSkipsBlanksDropsRepeatsAndChecksCount() {
        assertEquals(List.of("a b", "c"), Topics.parse("  a b \n\n c\r\na b\n", "t.txt", 2));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Topics.parse(" \n\n", "t.txt", 1));
        assertTrue(e.getMessage().contains("t.txt: no topics"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Topics.parse("a\nb\na\n", "t.txt", 3));
        assertTrue(e.getMessage().contains("2 distinct topics") && e.getMessage().contains("3"), e.getMessage());
    }

    @Test
    void recordHasEveryTopicOnceInOrder() {
        List<String> filler = Topics.sentences(NeedleInHaystack.BUILTIN_HAYSTACK);
        String text = Topics.text(TOPICS.subList(0, 4), filler, 2);
        int last = -1;
        for (String t : TOPICS.subList(0, 4)) {
            String opener = "USER: I would like to discuss the topic of " + t + ".";
            int at = text.indexOf(opener);
            assertTrue(at > last, t);
            assertEquals(at, text.lastIndexOf(opener), "once: " + t);
            last = at;
        }
        assertTrue(text.startsWith("Below is a record of our previous conversation on 4 different topics."), text);
        assertTrue(text.endsWith(Topics.QUESTION), text);
        assertTrue(text.contains(".\nASSISTANT: " + filler.get(0) + " " + filler.get(1) + "\n\nUSER:"), text);
        assertTrue(text.contains(filler.get(2) + " " + filler.get(3)), "the talk continues through the filler");

        String raw = tok.decode(Topics.prompt(tok, false, text));
        assertTrue(raw.startsWith("<|begin_of_text|>Below is") && raw.endsWith(Topics.QUESTION + "\n" + Topics.ANSWER_PREFIX), raw);
        String chat = tok.decode(Topics.prompt(tok, true, text));
        assertTrue(chat.endsWith(Topics.QUESTION + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"), chat);
        // more topics, more tokens
        assertTrue(Topics.prompt(tok, false, Topics.text(TOPICS, filler, 2)).length > Topics.prompt(tok, false, text).length);
    }

    @Test
    void matchIgnoresCaseAndSpacing() {
        assertTrue(Topics.matches(" The first topic was chess  openings.", "Chess Openings"));
        assertTrue(Topics.matches("VOLCANOES", "volcanoes"));
        assertFalse(Topics.matches("chess", "Chess Openings"));
        assertFalse(Topics.matches("origami", "volcanoes"));
    }

    static final Pattern FIRST = Pattern.compile("USER: I would like to discuss the topic of (.+?)\\.\n");

    @Test
    void runScoresAndRepeatsForASeed() throws Exception {
        Function<int[], String> knows = ids -> {
            Matcher m = FIRST.matcher(tok.decode(ids));
            assertTrue(m.find());
            return " " + m.group(1).toUpperCase() + ".";
        };
        Function<int[], String> lastOne = ids -> {
            Matcher m = FIRST.matcher(tok.decode(ids));
            String t = "";
            while (m.find()) t = m.group(1);
            return " " + t;
        };
        Topics.Result r = Topics.run(tok, false, TOPICS, "t.txt", new int[] {3, 6}, 1, 3, 9, knows, null);
        assertEquals(2, r.counts().size());
        for (Topics.CountResult c : r.counts()) {
            assertEquals(1.0, c.accuracy());
            for (Topics.Trial t : c.trials()) {
                assertEquals(c.count(), t.topics().size());
                assertEquals(c.count(), new HashSet<>(t.topics()).size(), "distinct topics");
                assertTrue(TOPICS.containsAll(t.topics()));
            }
        }
        assertTrue(r.counts().get(1).meanPromptTokens() > r.counts().get(0).meanPromptTokens());
        assertEquals(0.0, Topics.run(tok, true, TOPICS, "t.txt", new int[] {3}, 1, 3, 9, lastOne, null).counts().get(0).accuracy());
        assertEquals(r.toJson().toString(), Topics.run(tok, false, TOPICS, "t.txt", new int[] {3, 6}, 1, 3, 9, knows, null).toJson().toString());
        assertNotEquals(r.toJson().toString(), Topics.run(tok, false, TOPICS, "t.txt", new int[] {3, 6}, 1, 3, 10, knows, null).toJson().toString());
        assertEquals("topics", new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.toJson()).get("eval").asText());
        assertThrows(IllegalArgumentException.class, () -> Topics.run(tok, false, TOPICS, "t.txt", new int[] {11}, 1, 1, 0, knows, null));
    }
}
