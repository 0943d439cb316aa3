package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.llama.testing.TinyLlama;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Text files and data as commands read them: bad UTF-8 names the file and the byte; a tokenizer only where the data needs one. */
class InputsCliTest {
    @TempDir static Path dir;
    static Path model, latin1;

    @BeforeAll
    static void setUp() throws Exception {
        model = TinyLlama.writeWithTokenizer(dir.resolve("tiny"), 9);
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.writeBytes("The cat sat on the mat.\nThe caf".getBytes(StandardCharsets.UTF_8));
        b.write(0xE9); // Latin-1
        b.writeBytes(" is open.\n".getBytes(StandardCharsets.UTF_8));
        latin1 = Files.write(dir.resolve("latin1.txt"), b.toByteArray());
    }

    static void assertNamesFileAndByte(CliTest.Result r, String command, String flag) {
        assertEquals(1, r.code(), r.err());
        assertEquals(command + ": " + flag + " " + latin1 + ": not valid UTF-8 at byte 31 (line 2, byte 0xe9); save the file as UTF-8",
                r.err().strip());
    }

    @Test
    void invalidUtf8NamesTheFileAndTheByte() throws Exception {
        assertNamesFileAndByte(CliTest.run("", "eval", "niah", "--model", model.toString(), "--haystack", latin1.toString(),
                "--output", dir.resolve("n").toString()), "tenfold eval niah", "--haystack");
        assertNamesFileAndByte(CliTest.run("", "eval", "ruler-niah", "--model", model.toString(), "--variant", "multikey",
                "--haystack", latin1.toString(), "--output", dir.resolve("r").toString()), "tenfold eval ruler-niah", "--haystack");
        assertNamesFileAndByte(CliTest.run("", "eval", "topics", "--model", model.toString(), "--topics", latin1.toString(),
                "--output", dir.resolve("t").toString()), "tenfold eval topics", "--topics");
        assertNamesFileAndByte(CliTest.run("", "eval", "ppl", "--model", model.toString(), "--data", latin1.toString()),
                "tenfold eval ppl", "--data");
        assertNamesFileAndByte(CliTest.run("", "data", "synth", "--task", "niah", "--model", model.toString(), "--lengths", "300",
                "--count", "1", "--corpus", latin1.toString(), "--output", dir.resolve("s.jsonl").toString()), "tenfold data synth", "--corpus");
        assertFalse(Files.exists(dir.resolve("s.jsonl")));
    }

    @Test
    void tokenizeRefusesInvalidUtf8OnStandardInput() throws Exception {
        var oldIn = System.in;
        var oldErr = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try {
            System.setIn(new java.io.ByteArrayInputStream(Files.readAllBytes(latin1)));
            System.setErr(new java.io.PrintStream(err, true, StandardCharsets.UTF_8));
            assertEquals(1, Main.run("tokenize", "--model", model.toString()));
        } finally {
            System.setIn(oldIn);
            System.setErr(oldErr);
        }
        assertEquals("tenfold tokenize: standard input: not valid UTF-8 at byte 31 (line 2, byte 0xe9); save the file as UTF-8",
                err.toString(StandardCharsets.UTF_8).strip());
    }

    @Test
    void trainOnPreTokenizedDataNeedsNoTokenizer() throws Exception {
        Path bare = Files.createDirectories(dir.resolve("bare"));
        Files.copy(model.resolve("config.json"), bare.resolve("config.json"));
        Files.copy(model.resolve("model.safetensors"), bare.resolve("model.safetensors"));
        Path ids = dir.resolve("ids.jsonl");
        Files.writeString(ids, "{\"input_ids\": [1, 5, 9, 13, 17, 21], \"labels\": [-100, -100, 9, 13, 17, 21]}\n"
                + "{\"input_ids\": [2, 4, 6, 8, 10]}\n");
        CliTest.Result r = CliTest.run("", "train", "--model", bare.toString(), "--data", ids.toString(), "--output",
                dir.resolve("ids-run").toString(), "--max-steps", "2", "--batch-size", "2", "--lora-r", "2");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("no tokenizer.json in " + bare + ": only pre-tokenized"), r.err());
        assertTrue(Files.exists(dir.resolve("ids-run").resolve("adapter_model.safetensors")));

        // a text record does need one, and says so before the weights load
        Path text = dir.resolve("text.jsonl");
        Files.writeString(text, "{\"input_ids\": [1, 2, 3]}\n{\"text\": \"hello\"}\n");
        r = CliTest.run("", "train", "--model", bare.toString(), "--data", text.toString(), "--output", dir.resolve("text-run").toString(),
                "--max-steps", "1");
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains(text + ":2: a \"text\" record is tokenized"), r.err());
        assertFalse(Files.exists(dir.resolve("text-run")));
    }

    @Test
    void ropeOverridesAreCheckedAsFlags() {
        CliTest.Result r = CliTest.run("", "generate", "--model", model.toString(), "--prompt", "hi", "--rope-scaling",
                "{\"rope_type\": \"linear\", \"factor\": 0}");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().strip().startsWith("tenfold generate: --rope-scaling: rope_scaling.factor must be"), r.err());
        r = CliTest.run("", "generate", "--model", model.toString(), "--prompt", "hi", "--rope-scaling",
                "{\"rope_type\": \"linear\", \"factor\": 2, \"rope_theta\": 200e6}");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("--rope-scaling: give the RoPE base with --rope-theta"), r.err());
        r = CliTest.run("", "generate", "--model", model.toString(), "--prompt", "hi", "--rope-theta", "0.5");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("--rope-theta"), r.err());
    }
}
