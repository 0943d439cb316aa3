package dev.tenfold.qlora.data;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.llama.longcontext.SynthRecord;
import dev.tenfold.llama.longcontext.SynthTask;
import dev.tenfold.llama.longcontext.Synthesizer;
import dev.tenfold.llama.testing.SynthTestData;
import dev.tenfold.llama.tokenizer.ChatTemplate.Message;
import dev.tenfold.llama.tokenizer.ChatTemplate;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Synthetic records load as training data: the loader renders each as the synthesizer measured it. */
class SynthRecordsLoadTest {
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
    void recordsLoadWithAssistantOnlyLabelsAtTheTargetLength(SynthTask task) throws Exception {
        List<SynthRecord> made = new ArrayList<>();
        List<String> lines = new ArrayList<>();
        for (int target : new int[] {1024, 3000}) {
            for (int i = 0; i < 3; i++) {
                SynthRecord r = synth.generate(task, target, Synthesizer.recordSeed(7, target, i));
                assertTrue(r.tokens() <= target && r.tokens() >= synth.minTokens(target),
                        task + " " + target + ": " + r.tokens() + " tokens");
                assertTrue(r.tokens() >= 0.98 * target, r.tokens() + " < 98% of " + target);
                made.add(r);
                lines.add(r.toJsonLine());
            }
        }
        Path file = Files.write(dir.resolve(task + ".jsonl"), lines);
        JsonlDataset data = JsonlDataset.load(tokenizer, new JsonlDataset.Options().threads(1), file);
        assertEquals(made.size(), data.size(), data.report().summary());
        ChatTemplate template = new ChatTemplate(tokenizer);
        for (int k = 0; k < made.size(); k++) {
            SynthRecord r = made.get(k);
            TrainingRecord t = data.get(k);
            assertEquals(r.tokens(), t.length(), "the loader renders the record as the synthesizer measured it");
            // Exactly the assistant answers and their <|eot_id|> carry labels, each its own id.
            int expected = 0;
            for (Message m : r.conversation()) {
                if (m.role().equals("assistant")) expected += tokenizer.encode(m.content(), false).length + 1;
            }
            int labelled = 0;
            for (int i = 0; i < t.length(); i++) {
                if (t.labels()[i] == TrainingRecord.IGNORE) continue;
                labelled++;
                assertEquals(t.inputIds()[i], t.labels()[i]);
            }
            assertEquals(expected, labelled);
            assertArrayEquals(template.render(r.conversation(), false).labels(), t.labels());
        }
    }
}
