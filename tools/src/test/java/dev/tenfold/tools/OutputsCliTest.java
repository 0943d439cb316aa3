package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Where commands write: nothing the user keeps is replaced, an input is never the output, and a
 * bad output path is refused in one line before the model loads (the "models" here have a config
 * and a tokenizer but no weights: a command that got as far as loading them would fail otherwise).
 */
class OutputsCliTest {
    @TempDir static Path dir;
    static Path model, noWeights, data;

    @BeforeAll
    static void setUp() throws Exception {
        model = TinyLlama.writeWithTokenizer(dir.resolve("tiny"), 5);
        noWeights = Files.createDirectories(dir.resolve("no-weights"));
        Files.copy(model.resolve("config.json"), noWeights.resolve("config.json"));
        Files.copy(model.resolve("tokenizer.json"), noWeights.resolve("tokenizer.json"));
        data = dir.resolve("train.jsonl");
        Files.writeString(data, "{\"text\": \"hello world, hello cat\"}\n{\"text\": \"the cat is here\"}\n");
    }

    static CliTest.Result train(Path m, String... extra) {
        String[] base = {"train", "--model", m.toString(), "--data", data.toString(), "--max-steps", "1", "--batch-size", "2",
                "--lora-r", "2", "--max-length", "32"};
        String[] args = new String[base.length + extra.length];
        System.arraycopy(base, 0, args, 0, base.length);
        System.arraycopy(extra, 0, args, base.length, extra.length);
        return CliTest.run("", args);
    }

    @Test
    void trainNeverWritesIntoAFolderWithTheUsersFiles() throws Exception {
        Path mine = Files.createDirectories(dir.resolve("mine"));
        Files.writeString(mine.resolve("metrics.jsonl"), "my own metrics\n");
        Files.writeString(mine.resolve("notes.txt"), "my notes\n");
        CliTest.Result r = train(model, "--output", mine.toString());
        assertEquals(1, r.code(), r.err());
        assertEquals("tenfold train: --output " + mine + " is not empty (it holds metrics.jsonl, notes.txt); choose a new or empty folder",
                r.err().strip());
        assertEquals("my own metrics\n", Files.readString(mine.resolve("metrics.jsonl")));
        assertEquals(2, Outputs.names(mine).size(), "nothing added");

        // --full would write config.json, model.safetensors and tokenizer.json: a model folder is refused too
        Path other = TinyLlama.writeWithTokenizer(dir.resolve("other-model"), 6);
        byte[] tokenizer = Files.readAllBytes(other.resolve("tokenizer.json"));
        r = train(model, "--output", other.toString(), "--full");
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("already holds a model (config.json)"), r.err());
        assertArrayEquals(tokenizer, Files.readAllBytes(other.resolve("tokenizer.json")));
    }

    @Test
    void trainSaysWhenAFolderHoldsARunThatStoppedBeforeItsFirstCheckpoint() throws Exception {
        Path left = Files.createDirectories(dir.resolve("left"));
        Files.writeString(left.resolve("metrics.jsonl"), "{\"step\": 1}\n");
        Files.writeString(left.resolve(".adapter_model.safetensors.1f2e.tmp"), "half");
        CliTest.Result r = train(noWeights, "--output", left.toString());
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("holds a run that stopped before its first checkpoint"), r.err());
        assertEquals("{\"step\": 1}\n", Files.readString(left.resolve("metrics.jsonl")));
    }

    @Test
    void resumeNeedsACheckpoint() throws Exception {
        Path empty = Files.createDirectories(dir.resolve("empty-run"));
        CliTest.Result r = train(model, "--resume", empty.toString());
        assertEquals(1, r.code(), r.err());
        assertEquals("tenfold train: --resume " + empty + " holds no checkpoint (checkpoint-N folder) to resume from: nothing to resume",
                r.err().strip());
        assertEquals(0, Outputs.names(empty).size(), "nothing written");

        Path typo = dir.resolve("no-such-run");
        r = train(model, "--resume", typo.toString());
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("--resume " + typo + " does not exist: nothing to resume"), r.err());
        assertFalse(Files.exists(typo));

        // said before the weights load: the model here has none
        r = train(noWeights, "--resume", empty.toString());
        assertTrue(r.err().contains("holds no checkpoint"), r.err());
    }

    @Test
    void outputPathsAreCheckedBeforeTheModelLoads() throws Exception {
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        CliTest.Result r = train(noWeights, "--output", file.toString());
        assertEquals(1, r.code(), r.err());
        assertEquals("tenfold train: --output " + file + " is a file, not a folder", r.err().strip());

        r = train(noWeights, "--output", file.resolve("sub").toString());
        assertEquals("tenfold train: --output " + file.resolve("sub") + ": " + file + " is a file, not a folder", r.err().strip());

        r = CliTest.run("", "eval", "passkey", "--model", noWeights.toString(), "--output", file.toString());
        assertEquals(1, r.code(), r.err());
        assertEquals("tenfold eval passkey: --output " + file + " is a file, not a folder", r.err().strip());

        Path readOnly = Files.createDirectories(dir.resolve("read-only"));
        assertTrue(readOnly.toFile().setWritable(false));
        try {
            if (!Files.isWritable(readOnly)) { // root may write anywhere
                r = CliTest.run("", "eval", "niah", "--model", noWeights.toString(), "--output", readOnly.resolve("out").toString());
                assertEquals(1, r.code(), r.err());
                assertTrue(r.err().contains("cannot create it, " + readOnly + " is not writable"), r.err());
            }
        } finally {
            readOnly.toFile().setWritable(true);
        }
    }

    @Test
    void anEvaluationReplacesOnlyItsOwnReport() throws Exception {
        Path mine = Files.createDirectories(dir.resolve("my-eval"));
        Files.writeString(mine.resolve("report.json"), "{}");
        Files.writeString(mine.resolve("thesis.tex"), "x");
        CliTest.Result r = CliTest.run("", "eval", "passkey", "--model", noWeights.toString(), "--output", mine.toString());
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("holds files tenfold did not write (thesis.tex)"), r.err());
        assertEquals("{}", Files.readString(mine.resolve("report.json")));

        Path earlier = Files.createDirectories(dir.resolve("earlier-eval"));
        Files.writeString(earlier.resolve("report.json"), "{}");
        r = CliTest.run("", "eval", "passkey", "--model", model.toString(), "--output", earlier.toString(), "--lengths", "300",
                "--trials", "1", "--max-new-tokens", "2");
        assertEquals(0, r.code(), r.err());
        assertNotEquals("{}", Files.readString(earlier.resolve("report.json")));
    }

    @Test
    void synthNeverWritesOverItsInputs() throws Exception {
        Path corpus = Files.writeString(dir.resolve("corpus.txt"), "The cat sat on the mat. The dog ran far away. ".repeat(40));
        String before = Files.readString(corpus);
        for (String[] extra : new String[][] {{}, {"--force"}}) {
            String[] args = {"data", "synth", "--task", "niah", "--model", model.toString(), "--lengths", "400", "--count", "1",
                    "--corpus", corpus.toString(), "--output", corpus.toString()};
            String[] all = java.util.Arrays.copyOf(args, args.length + extra.length);
            System.arraycopy(extra, 0, all, args.length, extra.length);
            CliTest.Result r = CliTest.run("", all);
            assertEquals(1, r.code(), r.err());
            assertTrue(r.err().contains("--output " + corpus + " is the --corpus file"), r.err());
            assertEquals(before, Files.readString(corpus));
        }
        // the same file under another name too
        Path link = dir.resolve("corpus-link.txt");
        Files.createSymbolicLink(link, corpus);
        CliTest.Result r = CliTest.run("", "data", "synth", "--task", "niah", "--model", model.toString(), "--lengths", "400",
                "--count", "1", "--corpus", corpus.toString(), "--output", link.toString(), "--force");
        assertEquals(1, r.code(), r.err());
        assertEquals(before, Files.readString(corpus));

        byte[] tok = Files.readAllBytes(model.resolve("tokenizer.json"));
        r = CliTest.run("", "data", "synth", "--task", "passkey", "--model", model.toString(), "--lengths", "400", "--count", "1",
                "--output", model.resolve("tokenizer.json").toString(), "--force");
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("is the tokenizer file"), r.err());
        assertArrayEquals(tok, Files.readAllBytes(model.resolve("tokenizer.json")));

        r = CliTest.run("", "data", "synth", "--task", "passkey", "--model", model.toString(), "--lengths", "400", "--count", "1",
                "--output", dir.toString());
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("--output " + dir + " is a folder; give a file name"), r.err());
    }

    @Test
    void initAndQuantizeWantANewOrEmptyFolder() throws Exception {
        Path cfg = Files.writeString(dir.resolve("cfg.json"), TinyLlama.config(true, null, 285));
        Path busy = Files.createDirectories(dir.resolve("busy"));
        Files.writeString(busy.resolve("keep.txt"), "x");
        CliTest.Result r = CliTest.run("", "init", "--config", cfg.toString(), "--output", busy.toString());
        assertEquals(1, r.code(), r.err());
        assertEquals("tenfold init: --output " + busy + " is not empty (it holds keep.txt); choose a new or empty folder", r.err().strip());
        assertEquals(1, Outputs.names(busy).size());

        r = CliTest.run("", "quantize", "--model", model.toString(), "--output", model.toString());
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("is the --model folder"), r.err());
    }
}
