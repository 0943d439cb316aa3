package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.llama.testing.TinyLlama;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The commands as a user runs them, on a tiny random model with a tiny Llama-3-like tokenizer. */
class CliTest {
    @TempDir static Path dir;
    static Path model;

    record Result(int code, String out, String err) {}

    @BeforeAll
    static void writeModel() throws Exception {
        model = TinyLlama.writeWithTokenizer(dir.resolve("tiny"), 21);
    }

    static synchronized Result run(String stdin, String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        InputStream oldIn = System.in;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            System.setIn(new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)));
            int code = Main.run(args);
            return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
            System.setIn(oldIn);
        }
    }

    @Test
    void helpListsTheCommands() {
        Result r = run("", "--help");
        assertEquals(0, r.code());
        for (String c : new String[] {"tokenize", "generate", "eval", "doctor", "test", "build", "bench"}) {
            assertTrue(r.out().contains(c), "help lacks " + c + ":\n" + r.out());
        }
    }

    @Test
    void tokenizePrintsIdsAndHonoursSpecial() {
        Result plain = run("Hello world!<|eot_id|>", "tokenize", "--model", model.toString());
        assertEquals(0, plain.code(), plain.err());
        assertTrue(plain.out().trim().startsWith("[") && plain.out().trim().endsWith("]"), plain.out());
        Result special = run("Hello world!<|eot_id|>", "tokenize", "--model", model.toString(), "--special");
        int[] a = parse(plain.out()), b = parse(special.out());
        assertTrue(b.length < a.length, "special token text becomes one id");
        assertEquals(284, b[b.length - 1]); // <|eot_id|> in the tiny tokenizer: 275 + 9
    }

    private static int[] parse(String json) {
        try {
            JsonNode n = new ObjectMapper().readTree(json);
            int[] ids = new int[n.size()];
            for (int i = 0; i < ids.length; i++) ids[i] = n.get(i).intValue();
            return ids;
        } catch (Exception e) {
            throw new AssertionError(json, e);
        }
    }

    @Test
    void generateIsDeterministic() {
        Result a = run("", "generate", "--model", model.toString(), "--prompt", "hello cat", "--max-new-tokens", "6");
        Result b = run("", "generate", "--model", model.toString(), "--prompt", "hello cat", "--max-new-tokens", "6");
        assertEquals(0, a.code(), a.err());
        assertEquals(a.out(), b.out());
        assertTrue(a.err().contains("generated"), a.err());
        Result chat = run("", "generate", "--model", model.toString(), "--prompt", "hi", "--chat", "--max-new-tokens", "3",
                "--temperature", "0.8", "--seed", "3");
        assertEquals(0, chat.code(), chat.err());
    }

    @Test
    void evalPplJson() throws Exception {
        Path data = dir.resolve("ppl.jsonl");
        Files.writeString(data, "{\"text\": \"hello world, hello cat\"}\n\n{\"input_ids\": [1, 2, 3, 4, 5, 6, 7]}\n");
        Result r = run("", "eval", "ppl", "--model", model.toString(), "--data", data.toString(), "--max-length", "8",
                "--stride", "4", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertTrue(j.get("tokens").asLong() > 6);
        assertEquals(Math.exp(j.get("loss").asDouble()), j.get("perplexity").asDouble(), 1e-6);
        // a random model over ~285 tokens: loss near ln(285) = 5.65, certainly between 3 and 9
        assertTrue(j.get("loss").asDouble() > 3 && j.get("loss").asDouble() < 9, r.out());
    }

    @Test
    void badInputIsOneClearLine() throws Exception {
        Path data = dir.resolve("bad.jsonl");
        Files.writeString(data, "{\"text\": \"ok\"}\n{\"text\": \"unterminated\n");
        Result r = run("", "eval", "ppl", "--model", model.toString(), "--data", data.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("bad.jsonl:2"), r.err());

        Path noTok = dir.resolve("no-tokenizer");
        TinyLlama.write(noTok, 1, dev.tenfold.engine.DType.F32, false);
        r = run("x", "tokenize", "--model", noTok.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("no tokenizer.json"), r.err());

        r = run("", "generate", "--model", dir.resolve("nowhere").toString(), "--prompt", "x");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("not a folder"), r.err());

        r = run("", "generate", "--model", model.toString(), "--prompt", "x", "--device", "cuda");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("CUDA"), r.err());

        // --device: a bad spelling, or a device this build or machine cannot use, is one line naming the flag
        for (String[] c : new String[][] {{"tpu", "--device: unknown device 'tpu': expected cpu, cuda or cuda:N"},
                {"cuda:x", "--device: unknown device 'cuda:x'"}, {"cuda:1", "--device cuda:1"}}) {
            r = run("", "generate", "--model", model.toString(), "--prompt", "x", "--device", c[0]);
            assertEquals(1, r.code(), c[0]);
            assertTrue(r.err().startsWith("tenfold generate: " + c[1]), r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
        }
        r = run("", "train", "--model", model.toString(), "--data", dir.resolve("none.jsonl").toString(), "--output",
                dir.resolve("never").toString(), "--device", "cuda");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("tenfold train: --device cuda:0: "), r.err());
        assertTrue(r.err().contains("(--device cpu runs everything on the CPU"), r.err()); // the flag's way out, added by the command line
        assertFalse(Files.exists(dir.resolve("never")), "nothing written");
        Path ids = dir.resolve("ids.jsonl");
        Files.writeString(ids, "{\"input_ids\": [1, 2, 3, 4]}\n");
        r = run("", "eval", "ppl", "--model", model.toString(), "--data", ids.toString(), "--device", "gpu");
        assertEquals(1, r.code());
        assertTrue(r.err().startsWith("tenfold eval ppl: --device: unknown device 'gpu'"), r.err());

        r = run("", "generate", "--model", model.toString(), "--prompt", "x", "--rope-scaling", "{bad");
        assertEquals(2, r.code()); // a bad flag value is a usage error
        assertTrue(r.err().contains("--rope-scaling"), r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
    }
}
