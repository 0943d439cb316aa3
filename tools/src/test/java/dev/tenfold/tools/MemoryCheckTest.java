package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.testing.TinyLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Commands estimate what they will allocate before they allocate it, and refuse in one line what
 * this machine cannot hold, instead of growing until the out-of-memory killer ends them.
 */
class MemoryCheckTest {
    @TempDir static Path dir;
    static Path tiny, huge;

    /** Llama-3-8B's shape: 32 layers, hidden 4096, 32 query and 8 key/value heads of 128, MLP 14336, vocabulary 128256. */
    static final String LLAMA3_8B = "{\"hidden_size\": 4096, \"intermediate_size\": 14336, \"num_hidden_layers\": 32,"
            + " \"num_attention_heads\": 32, \"num_key_value_heads\": 8, \"vocab_size\": 128256, \"rope_theta\": 500000.0}";

    @BeforeAll
    static void setUp() throws Exception {
        tiny = TinyLlama.writeWithTokenizer(dir.resolve("tiny"), 3);
        // Llama-3-8B's layers, 1,024 of them (the most config.json may give), and the tiny vocabulary;
        // config and tokenizer only: a command that got as far as loading weights would fail on their absence instead
        huge = Files.createDirectories(dir.resolve("huge"));
        ObjectNode c = (ObjectNode) new ObjectMapper().readTree(LLAMA3_8B);
        c.put("num_hidden_layers", 1024).put("vocab_size", 285);
        Files.writeString(huge.resolve("config.json"), c.toString());
        Files.copy(tiny.resolve("tokenizer.json"), huge.resolve("tokenizer.json"));
    }

    static LlamaConfig config(String json) throws Exception {
        return LlamaConfig.parse(json);
    }

    @Test
    void estimatesFollowTheModelsShape() throws Exception {
        LlamaConfig c = config(LLAMA3_8B);
        assertEquals(8_030_261_248L, MemoryCheck.parameters(c)); // Meta's count for Llama-3-8B
        // F32 keys and values: 32 layers x 2 x 8 heads x 128 x 4 bytes = 256 KiB per token
        assertEquals(256L * 1024 * 8192, MemoryCheck.kvCache(c, 8192));
        // the recipe's LoRA: r 32 on q, k, v, o of 32 layers
        assertEquals(32L * 32 * ((4096 + 4096) + 2 * (4096 + 1024) + (4096 + 4096)), MemoryCheck.loraParameters(c, 32, Set.of("q", "k", "v", "o")));
        // training keeps each layer's input: at least 33 x 4096 F32 per token
        assertTrue(MemoryCheck.trainingActivations(c, 81920) > 33L * 4096 * 4 * 81920);
        // the largest shapes config.json may give do not overflow into small or negative sizes
        LlamaConfig largest = config("{\"hidden_size\": 65536, \"intermediate_size\": 1048576, \"num_hidden_layers\": 1024,"
                + " \"num_attention_heads\": 64, \"num_key_value_heads\": 64, \"vocab_size\": 16777216}");
        assertEquals(1024L * 2 * 65536 * 4 * Flags.MAX_TOKENS, MemoryCheck.kvCache(largest, Flags.MAX_TOKENS));
        assertTrue(MemoryCheck.parameters(largest) > 1024L * 3 * 65536 * 1048576);
    }

    @Test
    void aRefusalSaysWhatIsNeededAndWhatTheMachineHas() {
        MemoryCheck m = new MemoryCheck("--lengths 99999", true).tensors("KV cache", 30L << 30).tensors("weights", 1L << 20)
                .heap("prompt", 6L << 20);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.check(8L << 30, 16L << 30, 4L << 30));
        assertEquals("--lengths 99999 needs about 30.0 GiB of memory (KV cache 30.0 GiB, prompt 6.0 MiB, weights 1.0 MiB),"
                + " and this machine has 8.0 GiB available (16.0 GiB in all)", e.getMessage());
        m.check(64L << 30, 64L << 30, 4L << 30); // fits
        e = assertThrows(IllegalArgumentException.class, () -> m.check(64L << 30, 64L << 30, 1L << 20));
        assertTrue(e.getMessage().startsWith("--lengths 99999 needs about 6.0 MiB of Java heap (prompt 6.0 MiB), and the heap may grow to 1.0 MiB"),
                e.getMessage());
        // on a GPU the tensors are the device allocator's to refuse
        new MemoryCheck("x", false).tensors("KV cache", 30L << 30).check(8L << 30, 16L << 30, 4L << 30);
    }

    static void assertRefusedBeforeLoading(CliTest.Result r, String command, String what) {
        assertEquals(1, r.code(), r.err());
        List<String> lines = r.err().strip().lines().toList();
        String line = lines.getLast(); // train says what data it read first
        assertTrue(lines.size() == 1 || command.equals("tenfold train"), r.err());
        assertTrue(line.startsWith(command + ": " + what), line);
        assertTrue(line.contains(" needs about "), line);
        assertTrue(line.contains(" of memory (KV cache") || line.contains("of memory (activations") || line.contains("of memory (weights"), line);
        assertTrue(line.contains("and this machine has "), line);
    }

    @Test
    void evaluationsAndGenerationRefuseWhatTheMachineCannotHold() {
        Path out = dir.resolve("eval-out");
        assertRefusedBeforeLoading(CliTest.run("", "eval", "passkey", "--model", huge.toString(), "--lengths", "256,10000",
                "--output", out.toString()), "tenfold eval passkey", "--lengths 10000");
        assertRefusedBeforeLoading(CliTest.run("", "eval", "niah", "--model", huge.toString(), "--lengths", "10000",
                "--output", out.toString()), "tenfold eval niah", "--lengths 10000");
        assertRefusedBeforeLoading(CliTest.run("", "eval", "ruler-niah", "--model", huge.toString(), "--variant", "multikey",
                "--lengths", "10000", "--output", out.toString()), "tenfold eval ruler-niah", "--lengths 10000");
        assertRefusedBeforeLoading(CliTest.run("", "generate", "--model", huge.toString(), "--prompt", "hi", "--max-new-tokens", "10000"),
                "tenfold generate", "generate with --max-new-tokens 10000 after");
        assertFalse(Files.exists(out), "nothing written");
    }

    @Test
    void pplAndTrainRefuseToo() throws Exception {
        Path ids = dir.resolve("long.jsonl");
        StringBuilder sb = new StringBuilder("{\"input_ids\": [1");
        for (int i = 1; i < 3000; i++) sb.append(", ").append(i % 280);
        Files.writeString(ids, sb.append("]}\n").toString());
        assertRefusedBeforeLoading(CliTest.run("", "eval", "ppl", "--model", huge.toString(), "--data", ids.toString(), "--max-length", "3000"),
                "tenfold eval ppl", "eval ppl with --max-length 3000");
        CliTest.Result r = CliTest.run("", "train", "--model", huge.toString(), "--data", ids.toString(), "--output",
                dir.resolve("never").toString());
        assertRefusedBeforeLoading(r, "tenfold train", "train on records of up to 3000 tokens (--max-length 8192)");
        assertFalse(Files.exists(dir.resolve("never")));
    }

    @Test
    void initRefusesAModelTooBigToMake() throws Exception {
        Path cfg = dir.resolve("largest.json");
        Files.writeString(cfg, TinyLlama.config(true, null, 285).replace("\"num_hidden_layers\": " + TinyLlama.LAYERS,
                "\"num_hidden_layers\": 1024").replace("\"hidden_size\": " + TinyLlama.HIDDEN, "\"hidden_size\": 4096"));
        Path out = dir.resolve("init-out");
        CliTest.Result r = CliTest.run("", "init", "--config", cfg.toString(), "--output", out.toString());
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().startsWith("tenfold init: init of " + cfg + " (1024 layers, hidden 4096, "), r.err());
        assertTrue(r.err().contains(" needs about ") && r.err().contains("this machine has"), r.err());
        assertFalse(Files.exists(out));

        Path wide = dir.resolve("wide.json");
        Files.writeString(wide, TinyLlama.config(true, null, 285).replace("\"vocab_size\": 285", "\"vocab_size\": 16000000")
                .replace("\"hidden_size\": " + TinyLlama.HIDDEN, "\"hidden_size\": 256"));
        r = CliTest.run("", "init", "--config", wide.toString(), "--output", out.toString());
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("a weight of 4096000000 values"), r.err());
    }

    @Test
    void aLongGenerationShowsProgressOnStderr() throws Exception {
        // the tiny model without end-of-text ids: it generates every token asked for
        Path m = Files.createDirectories(dir.resolve("no-eos"));
        for (String f : new String[] {"model.safetensors", "tokenizer.json"}) Files.copy(tiny.resolve(f), m.resolve(f));
        Files.writeString(m.resolve("config.json"), Files.readString(tiny.resolve("config.json")).replace(", \"eos_token_id\": [2, 3]", ""));
        CliTest.Result r = CliTest.run("", "generate", "--model", m.toString(), "--prompt", "hello", "--max-new-tokens", "1000");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("tenfold: generated 100 of at most 1,000 tokens"), r.err());
        assertTrue(r.err().contains("tenfold: generated 1,000 of at most 1,000 tokens"), r.err());
        CliTest.Result shorter = CliTest.run("", "generate", "--model", m.toString(), "--prompt", "hello", "--max-new-tokens", "999");
        assertFalse(shorter.err().contains("generated 99 of"), shorter.err());
    }
}
