package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.llama.testing.TinyLlama;
import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.qlora.data.JsonlDataset;
import dev.tenfold.qlora.data.TrainingRecord;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** tenfold data synth end to end on the tiny model's tokenizer. */
class SynthCliTest {
    @TempDir static Path dir;
    static Path model;
    static Path corpus;

    @BeforeAll
    static void setUp() throws Exception {
        model = TinyLlama.writeWithTokenizer(dir.resolve("tiny"), 41);
        corpus = Files.writeString(dir.resolve("corpus.txt"), """
                The lighthouse keeper climbed the stairs each evening. He counted them aloud, as his father had.
                The lamp was heavy and the glass was always salted by the wind.

                Ships passed in the night without a word. Some blinked their lights in thanks; most did not.
                In winter the island was silent for weeks at a time.
                """);
    }

    private static CliTest.Result synth(String... args) {
        String[] all = new String[args.length + 4];
        all[0] = "data";
        all[1] = "synth";
        all[2] = "--model";
        all[3] = model.toString();
        System.arraycopy(args, 0, all, 4, args.length);
        return CliTest.run("", all);
    }

    @Test
    void writesRecordsThatTrainingLoads() throws Exception {
        Path out = dir.resolve("md.jsonl");
        CliTest.Result r = synth("--task", "multi-detail", "--lengths", "1024,2048", "--count", "3",
                "--corpus", corpus.toString(), "--seed", "5", "--output", out.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("target 1,024: 3 records, mean"), r.err());
        assertTrue(r.err().contains("target 2,048: 3 records, mean"), r.err());
        List<String> lines = Files.readAllLines(out);
        assertEquals(6, lines.size());
        assertTrue(lines.get(0).startsWith("{\"conversations\":[{\"role\":\"user\",\"content\":"), lines.get(0));

        Tokenizer tok = Tokenizer.load(model.resolve("tokenizer.json"));
        JsonlDataset data = JsonlDataset.load(tok, new JsonlDataset.Options().threads(1), out);
        assertEquals(6, data.size());
        for (int i = 0; i < 6; i++) {
            TrainingRecord t = data.get(i);
            int target = i < 3 ? 1024 : 2048;
            assertTrue(t.length() <= target && t.length() >= 0.98 * target, t.length() + " for " + target);
        }
        // The same seed gives the same file; the temporary file is gone.
        Path again = dir.resolve("md-again.jsonl");
        assertEquals(0, synth("--task", "multi-detail", "--lengths", "1024,2048", "--count", "3",
                "--corpus", corpus.toString(), "--seed", "5", "--output", again.toString()).code());
        assertEquals(Files.readString(out), Files.readString(again));
        try (var files = Files.list(dir)) {
            assertTrue(files.noneMatch(p -> p.getFileName().toString().endsWith(".tmp")));
        }
    }

    @Test
    void everyTaskRuns() throws Exception {
        for (String task : new String[] {"passkey", "niah", "kv"}) {
            Path out = dir.resolve(task + ".jsonl");
            CliTest.Result r = synth("--task", task, "--lengths", "1k", "--count", "2", "--output", out.toString());
            assertEquals(0, r.code(), r.err());
            assertEquals(2, Files.readAllLines(out).size());
        }
    }

    @Test
    void refusesToOverwriteWithoutForce() throws Exception {
        Path out = Files.writeString(dir.resolve("existing.jsonl"), "precious\n");
        CliTest.Result r = synth("--task", "passkey", "--lengths", "1024", "--count", "1", "--output", out.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("exists; use --force"), r.err());
        assertEquals("precious\n", Files.readString(out));

        r = synth("--task", "passkey", "--lengths", "1024", "--count", "1", "--output", out.toString(), "--force");
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.readString(out).startsWith("{\"conversations\""));
    }

    @Test
    void clearErrors() {
        Path out = dir.resolve("never.jsonl");
        CliTest.Result r = synth("--task", "multi-detail", "--lengths", "1024", "--count", "1", "--output", out.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--corpus FILE"), r.err());

        r = synth("--task", "passkey", "--lengths", "30", "--count", "1", "--output", out.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("shorter than the fixed parts"), r.err());

        r = synth("--task", "summary", "--lengths", "1024", "--count", "1", "--output", out.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("unknown task"), r.err());

        r = synth("--task", "kv", "--lengths", "1024,abc", "--count", "1", "--output", out.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("--lengths: \"abc\" is not a length in tokens in [1, 16777216]"), r.err());
        assertFalse(Files.exists(out), "a failed run leaves no output");
    }
}
