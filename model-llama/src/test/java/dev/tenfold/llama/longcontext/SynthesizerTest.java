package dev.tenfold.llama.longcontext;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.llama.testing.SynthTestData;
import dev.tenfold.llama.tokenizer.ChatTemplate.Message;
import dev.tenfold.llama.tokenizer.ChatTemplate;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Synthetic records on the tiny tokenizer: format, labels, lengths, answers, determinism, errors. */
class SynthesizerTest {
    @TempDir static Path dir;
    static Tokenizer tokenizer;
    static Synthesizer synth;

    @BeforeAll
    static void setUp() {
        tokenizer = SynthTestData.tokenizer(dir);
        synth = new Synthesizer(tokenizer, SynthTestData.corpus());
    }

    @ParameterizedTest
    @EnumSource(SynthTask.class)
    void answersAreInTheContextAndTurnsAlternate(SynthTask task) {
        for (int seed = 0; seed < 10; seed++) {
            SynthRecord r = synth.generate(task, 1500, seed);
            List<Message> c = r.conversation();
            assertEquals(2 * r.answers().size(), c.size());
            for (int j = 0; j < c.size(); j++) {
                assertEquals(j % 2 == 0 ? "user" : "assistant", c.get(j).role());
                if (j % 2 == 1) assertEquals(r.answers().get(j / 2), c.get(j).content());
            }
            String context = r.context();
            for (String a : r.answers()) {
                assertTrue(context.contains(a), task + " seed " + seed + ": answer not in the context: " + a);
                // Only the planted text holds the answer (it is not also somewhere in the filler).
                assertEquals(context.indexOf(a), context.lastIndexOf(a), a);
            }
            switch (task) {
                case PASSKEY -> {
                    assertEquals(List.of("What is the pass key?"), questions(r));
                    String key = r.answers().get(0).replaceAll("\\D", "");
                    assertEquals(5, key.length());
                    assertTrue(context.contains("The pass key is " + key + ". Remember it. " + key + " is the pass key."));
                    assertTrue(context.contains("The grass is green. The sky is blue."));
                    // the pass-key evaluation's own texts: a record is its chat prompt and the answer
                    assertTrue(context.startsWith(Passkey.INSTRUCTION + "\n\n"), context.substring(0, 120));
                    assertEquals(Passkey.answer(Integer.parseInt(key)), r.answers().get(0));
                }
                case NIAH -> assertEquals(1, r.answers().size());
                case KV -> {
                    assertTrue(r.answers().size() >= 1 && r.answers().size() <= 3);
                    assertTrue(context.contains("JSON data:\n{"));
                    for (int j = 0; j < r.answers().size(); j++) {
                        String q = questions(r).get(j);
                        String key = q.substring(q.indexOf('"') + 1, q.lastIndexOf('"'));
                        assertTrue(context.contains("\"" + key + "\": \"" + r.answers().get(j) + "\""), q);
                    }
                }
                case MULTI_DETAIL -> {
                    assertTrue(r.answers().size() >= 3 && r.answers().size() <= 5, r.answers().toString());
                    assertTrue(context.contains("The river town woke slowly.") || context.contains("Nobody in the town"));
                }
            }
        }
    }

    private static List<String> questions(SynthRecord r) {
        List<String> out = new ArrayList<>();
        for (int j = 0; j < r.conversation().size(); j += 2) {
            String content = r.conversation().get(j).content();
            out.add(j == 0 ? content.substring(content.lastIndexOf("\n\n") + 2) : content);
        }
        return out;
    }

    @ParameterizedTest
    @EnumSource(SynthTask.class)
    void sameSeedSameRecord(SynthTask task) {
        Synthesizer other = new Synthesizer(tokenizer, SynthTestData.corpus());
        assertEquals(synth.generate(task, 1200, 99).toJsonLine(), other.generate(task, 1200, 99).toJsonLine());
        assertNotEquals(synth.generate(task, 1200, 99).toJsonLine(), synth.generate(task, 1200, 100).toJsonLine());
    }

    @Test
    void theNiahEvaluationsHaystackWithoutCorpus() {
        SynthRecord r = new Synthesizer(tokenizer, null).generate(SynthTask.NIAH, 1024, 3);
        assertTrue(r.context().contains("A gardener spends a season on soil before anything grows."));
        assertTrue(r.context().contains(r.answers().get(0)));
    }

    @Test
    void multiDetailWithoutCorpusIsAClearError() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new Synthesizer(tokenizer, null).generate(SynthTask.MULTI_DETAIL, 2048, 1));
        assertTrue(e.getMessage().contains("corpus"), e.getMessage());
    }

    @ParameterizedTest
    @EnumSource(SynthTask.class)
    void targetShorterThanTheFixedPartsIsAClearError(SynthTask task) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> synth.generate(task, 40, 1));
        assertTrue(e.getMessage().contains("target length 40 tokens is shorter than the fixed parts"), e.getMessage());
    }

    @Test
    void recordSeedsDiffer() {
        assertNotEquals(Synthesizer.recordSeed(1, 1024, 0), Synthesizer.recordSeed(1, 1024, 1));
        assertNotEquals(Synthesizer.recordSeed(1, 1024, 0), Synthesizer.recordSeed(1, 2048, 0));
        assertNotEquals(Synthesizer.recordSeed(1, 1024, 0), Synthesizer.recordSeed(2, 1024, 0));
    }
}
