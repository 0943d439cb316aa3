package dev.tenfold.tools;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.llama.KvCache;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.LoadSpec;
import dev.tenfold.llama.Quantization;
import dev.tenfold.llama.testing.TinyLlama;
import dev.tenfold.qlora.nf4.Nf4Checkpoint;
import dev.tenfold.qlora.nf4.Nf4Linear;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code tenfold quantize} as a user runs it, on a tiny random model with a tokenizer. */
class QuantizeCommandTest {
    @TempDir static Path dir;
    static Path model;

    @BeforeAll
    static void writeModel() throws Exception {
        model = TinyLlama.writeWithTokenizer(dir.resolve("tiny"), 23);
    }

    @Test
    void quantizesAndTheResultLoads() throws Exception {
        Path out = dir.resolve("tiny-nf4");
        CliTest.Result r = CliTest.run("", "quantize", "--model", model.toString(), "--output", out.toString(), "--json");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("model.layers.0.self_attn.q_proj.weight") && r.err().contains("-> NF4"), "progress on stderr: " + r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals(7 * TinyLlama.LAYERS, j.get("quantized").asInt());
        assertEquals("nf4", new ObjectMapper().readTree(out.resolve("config.json").toFile())
                .get("quantization_config").get("bnb_4bit_quant_type").asText());
        assertEquals(Files.readString(model.resolve("tokenizer.json")), Files.readString(out.resolve("tokenizer.json")));
        try (LlamaModel m = LlamaLoader.load(out, LoadSpec.defaults().quantization(Quantization.NF4));
             KvCache cache = new KvCache(m.config(), 4)) {
            assertInstanceOf(Nf4Linear.class, m.layer(0).q);
            float[] logits = m.forward(new int[] {1, 2, 3, 4}, cache, null);
            for (float v : logits) assertTrue(Float.isFinite(v));
        }
    }

    @Test
    void refusesANonEmptyOutputUnlessForced() throws Exception {
        Path out = dir.resolve("busy");
        Files.createDirectories(out);
        Files.writeString(out.resolve("keep.txt"), "x");
        CliTest.Result r = CliTest.run("", "quantize", "--model", model.toString(), "--output", out.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("not empty") && r.err().contains("--force"), r.err());
        assertFalse(r.err().contains("\tat "), "one clear line, no stack trace: " + r.err());
        assertFalse(Files.exists(out.resolve("config.json")));

        r = CliTest.run("", "quantize", "--model", model.toString(), "--output", out.toString(), "--force");
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.exists(out.resolve("config.json")));
        assertTrue(Files.exists(out.resolve("keep.txt")));

        r = CliTest.run("", "quantize", "--model", dir.resolve("nowhere").toString(), "--output", dir.resolve("o2").toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("not a folder"), r.err());
    }

    @Test
    void helpListsQuantize() {
        CliTest.Result r = CliTest.run("", "--help");
        assertTrue(r.out().contains("quantize"), r.out());
    }
}
