package dev.tenfold.llama.longcontext;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.llama.tokenizer.TinyTokenizerJson;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Prompt building, scoring and the evaluators' pipelines with a fake model that knows the answers. */
class LongContextEvalTest {
    private static final com.fasterxml.jackson.databind.ObjectMapper JSON = new com.fasterxml.jackson.databind.ObjectMapper();

    @TempDir static Path dir;
    static Tokenizer tok;

    @BeforeAll
    static void tokenizer() throws Exception {
        TinyTokenizerJson.writeLlamaLike(dir);
        tok = Tokenizer.load(dir.resolve("tokenizer.json"));
    }

    @Test
    void promptsHitTheTargetLengthAndPlaceTheNeedle() {
        for (boolean chat : new boolean[] {false, true}) {
            Haystack b = new Haystack(tok, chat, NeedleInHaystack.BUILTIN_HAYSTACK);
            for (int target : new int[] {600, 1500, 4000}) {
                for (double depth : new double[] {0, 0.1, 0.25, 0.5, 0.77, 1}) {
                    Haystack.Built p = NeedleInHaystack.prompt(b, depth, target);
                    String where = "chat " + chat + " target " + target + " depth " + depth;
                    assertTrue(p.length() <= target && p.length() >= target - 12, where + ": length " + p.length());
                    assertEquals(" " + NeedleInHaystack.NEEDLE, tok.decode(Arrays.copyOfRange(p.ids(), p.needleStart(), p.needleEnd())), where);
                    // at a sentence boundary: after a full stop (or at the very start of the haystack)
                    String before = tok.decode(Arrays.copyOfRange(p.ids(), 0, p.needleStart()));
                    assertTrue(before.endsWith(".") || before.endsWith("\n\n"), where + ": " + before.substring(before.length() - 20));
                    // the longest filler sentence is ~120 tokens in the byte-level tiny vocab: the nearest boundary is within
                    // half of one inside the haystack, within one at its cut end (which is no boundary)
                    assertEquals(depth, p.depth(), (depth == 1 ? 125.0 : 65.0) / p.haystackTokens() + 0.01, where);
                }
            }
        }
    }

    @Test
    void aLongHaystackIsUsedFromItsStart() {
        // a "book" far longer than the prompt: the prompt is its opening, cut to length
        StringBuilder book = new StringBuilder();
        for (int i = 0; i < 20000; i++) book.append("Chapter line ").append(i).append(" ends here. ");
        Haystack b = new Haystack(tok, false, book.toString());
        Haystack.Built p = NeedleInHaystack.prompt(b, 0.5, 1200);
        assertTrue(p.length() <= 1200 && p.length() >= 1188, "length " + p.length());
        String text = tok.decode(p.ids(), true);
        assertTrue(text.contains("Chapter line 0 ends here. Chapter line 1 ends here."), text);
        assertFalse(text.contains("Chapter line 900 "), "only the opening is used");
    }

    @Test
    void depthZeroAndHundredAreTheEnds() {
        Haystack b = new Haystack(tok, false, Passkey.FILLER);
        Haystack.Built first = Passkey.prompt(b, 12345, 0, 500);
        Haystack.Built last = Passkey.prompt(b, 12345, 1, 500);
        assertEquals(0, first.depth());
        // the haystack ends on a word, maybe mid-sentence: 100% is after its last full sentence
        assertTrue(last.depth() > 0.9 && last.depth() <= 1, "depth " + last.depth());
        String text = tok.decode(last.ids(), true);
        assertTrue(text.startsWith(Passkey.INSTRUCTION + "\n\nThe grass is green."), text);
        assertTrue(text.endsWith("\n\n" + Passkey.QUESTION + " " + Passkey.ANSWER_PREFIX), text);
        String after = text.substring(text.indexOf(Passkey.needle(12345)) + Passkey.needle(12345).length(), text.lastIndexOf("\n\n"));
        assertTrue(after.length() < 90 && (after.isEmpty() || !after.substring(0, after.length() - 1).contains(".")), "at most a part of one sentence after: " + after);
        assertEquals(tok.bosId(), first.ids()[0]);
    }

    @Test
    void chatPromptEndsWithTheAssistantHeader() {
        Haystack.Built p = Passkey.prompt(new Haystack(tok, true, Passkey.FILLER), 54321, 0.5, 400);
        String text = tok.decode(p.ids());
        assertTrue(text.startsWith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n" + Passkey.INSTRUCTION + "\n\nThe "), text);
        assertTrue(text.endsWith(Passkey.QUESTION + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"), text);
    }

    @Test
    void tooShortIsAClearError() {
        Haystack b = new Haystack(tok, false, Passkey.FILLER);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Passkey.prompt(b, 12345, 0.5, 40));
        assertTrue(e.getMessage().contains("shorter than"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Passkey.run(tok, false, new int[] {500, 40}, 1, 0, ids -> {
            throw new AssertionError("no generation before the lengths are checked");
        }, null));
    }

    @Test
    void passkeyExactMatch() {
        assertTrue(Passkey.matches("12345.", 12345));
        assertTrue(Passkey.matches(" 12345 is the key", 12345));
        assertTrue(Passkey.matches("\n12345", 12345));
        assertFalse(Passkey.matches("1234", 12345));
        assertFalse(Passkey.matches("123456", 12345));
        assertFalse(Passkey.matches("the key", 12345));
        assertFalse(Passkey.matches("54321 or 12345", 12345)); // the first number is the answer
    }

    /** A fake model that reads the key back out of the prompt. */
    static final Pattern KEY = Pattern.compile("The pass key is (\\d+)\\.");

    @Test
    void passkeyWithAModelThatKnowsIsPerfect() throws Exception {
        Function<int[], String> oracle = ids -> {
            Matcher m = KEY.matcher(tok.decode(ids));
            assertTrue(m.find());
            return " " + m.group(1) + ". Remember it.";
        };
        Passkey.Result r = Passkey.run(tok, false, new int[] {256, 512}, 3, 7, oracle, null);
        assertEquals(2, r.lengths().size());
        for (Passkey.LengthResult l : r.lengths()) {
            assertEquals(3, l.trials().size());
            assertEquals(1.0, l.accuracy());
            for (Passkey.Trial t : l.trials()) assertTrue(t.key() >= 10000 && t.key() <= 99999);
        }
        Passkey.Result wrong = Passkey.run(tok, false, new int[] {256}, 4, 7, ids -> " 11111", null);
        assertEquals(0.0, wrong.lengths().get(0).accuracy());
        // seeded: the same keys and depths again
        assertEquals(r.toJson().toString(), Passkey.run(tok, false, new int[] {256, 512}, 3, 7, oracle, null).toJson().toString());
        assertEquals(1.0, JSON.readTree(r.toJson()).get("lengths").get(1).get("accuracy").asDouble());
    }

    @Test
    void niahWithAModelThatKnowsIsPerfect() throws Exception {
        int[] lengths = {600, 1200}; // the tiny vocab is nearly byte-level: the fixed text alone is ~330 tokens
        double[] depths = {0, 0.5, 1};
        // raw mode: the prompt ends "... San Francisco is", the model continues
        NeedleInHaystack.Result raw = NeedleInHaystack.run(tok, false, NeedleInHaystack.BUILTIN_HAYSTACK, "built-in", lengths, depths,
                ids -> tok.decode(ids).contains(NeedleInHaystack.NEEDLE) ? " sitting in Dolores Park and eating a hamburg on a sunny day." : "no", null);
        assertEquals(1.0, raw.meanRouge(), 1e-12);
        assertEquals(1.0, raw.containsRate());
        NeedleInHaystack.Result chat = NeedleInHaystack.run(tok, true, NeedleInHaystack.BUILTIN_HAYSTACK, "built-in", lengths, depths,
                ids -> "Sitting in Dolores Park.", null);
        assertEquals(8.0 / 25, chat.meanRouge(), 1e-12);
        assertEquals(1.0, chat.containsRate());
        assertEquals(2, chat.rougeGrid().length);
        assertEquals(3, chat.rougeGrid()[0].length);
        assertEquals(6, JSON.readTree(chat.toJson()).get("samples").size());
    }
}
