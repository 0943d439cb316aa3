package dev.tenfold.tools.demo;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.tools.Main;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The demo's whole pipeline, shortened (--quick: 3 lengths, 2 training steps): the shipped model
 * loads, is evaluated, extended and evaluated again, and the report has the promised form. The
 * full run's accuracy is a figure of the README, measured by running ./tenfold demo.
 */
class DemoTest {
    @TempDir Path dir;

    @Test
    void quickDemoWritesTheReportTheHeatmapsAndTheAdapter() throws Exception {
        Path out = dir.resolve("demo-output");
        PrintStream oldErr = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code;
        try {
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            code = Main.run("demo", "--quick", "--output", out.toString());
        } finally {
            System.setErr(oldErr);
        }
        String log = err.toString(StandardCharsets.UTF_8);
        assertEquals(0, code, log);
        JsonNode r = new ObjectMapper().readTree(out.resolve("report.json").toFile());
        assertEquals(256, r.get("original_context").asInt());
        assertEquals(2560, r.get("extended_context").asInt());
        for (String phase : new String[] {"before", "after"}) {
            JsonNode p = r.get(phase);
            assertEquals(3, p.get("passkey").size(), p.toString());
            assertTrue(p.get("passkey").has("256") && p.get("passkey").has("1408") && p.get("passkey").has("2560"), p.toString());
            p.get("passkey").forEach(a -> assertTrue(a.asDouble() >= 0 && a.asDouble() <= 1));
            assertTrue(p.get("loss_short").asDouble() > 0 && Double.isFinite(p.get("loss_short").asDouble()));
        }
        assertTrue(r.get("seconds").asDouble() > 0);
        // the shipped model retrieves within its own context before any extension
        assertEquals(1.0, r.get("before").get("passkey").get("256").asDouble(), log);
        assertTrue(Files.exists(out.resolve("adapter").resolve("adapter_config.json")));
        assertTrue(Files.exists(out.resolve("base-model").resolve("model.safetensors")));
        if (dev.tenfold.tools.charts.ChartSupport.available()) {
            assertTrue(Files.size(out.resolve("passkey-before.png")) > 0);
            assertTrue(Files.size(out.resolve("passkey-after.png")) > 0);
        }
        assertTrue(log.contains("before") && log.contains("after") && log.contains("Short-context loss"), log);

        // a second run reuses the folder; a folder holding anything else is refused and left alone
        Path other = dir.resolve("mine");
        Files.createDirectories(other);
        Files.writeString(other.resolve("notes.txt"), "keep me");
        int refused = Main.run("demo", "--quick", "--output", other.toString());
        assertEquals(1, refused);
        assertEquals("keep me", Files.readString(other.resolve("notes.txt")));
    }

    @Test
    void theModelRecipeRunsAndWritesALoadableModel() throws Exception {
        Path out = dir.resolve("model");
        PrintStream oldErr = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code;
        try {
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            code = Main.run("demo", "model", "--output", out.toString(), "--steps-scale", "0.004", "--batch-size", "2");
        } finally {
            System.setErr(oldErr);
        }
        assertEquals(0, code, err.toString(StandardCharsets.UTF_8));
        for (String f : DemoCommand.MODEL_FILES) assertTrue(Files.exists(out.resolve(f)), f);
        var config = dev.tenfold.llama.LlamaConfig.load(out);
        assertEquals(256, config.maxPositionEmbeddings());
        assertEquals(DemoTokenizer.vocabSize(), config.vocabSize());
        try (var m = dev.tenfold.llama.LlamaLoader.load(out, dev.tenfold.engine.cpu.CpuBackend.fast())) {
            assertEquals(4, m.config().numLayers());
        }
        // the shipped model is this recipe's output: same config and tokenizer
        try (var shipped = DemoCommand.class.getResourceAsStream(DemoCommand.MODEL_RESOURCE + "tokenizer.json")) {
            assertEquals(new ObjectMapper().readTree(shipped), new ObjectMapper().readTree(out.resolve("tokenizer.json").toFile()));
        }
        // a second run into the same folder is refused, and the model there is kept
        long size = Files.size(out.resolve("model.safetensors"));
        assertEquals(1, Main.run("demo", "model", "--output", out.toString(), "--steps-scale", "0.004"));
        assertEquals(size, Files.size(out.resolve("model.safetensors")));
    }
}
