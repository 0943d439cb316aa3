package dev.tenfold.llama;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tenfold.engine.Backend;
import dev.tenfold.engine.cpu.CpuBackend;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Configs saved by transformers 5 (rope_parameters, dtype) give the loss transformers computes
 * for the same weights and tokens. The fixtures and the expected losses come from
 * model-llama/scripts/transformers5_fixtures.py: a tiny random Llama saved with rope_theta 200e6,
 * with llama3 and yarn scaling, with head_dim 16 != hidden/heads, and the llama3 one rewritten in
 * transformers 4's layout.
 */
class Transformers5ConfigTest {
    private static final String FIXTURES = "/dev/tenfold/llama/transformers5/";
    /** f32 here against f32 in torch over 47 tokens: they agree to 5e-7 (1e-7 relative). */
    private static final double TOLERANCE = 5e-6;

    private static JsonNode expected() throws IOException {
        try (InputStream in = Transformers5ConfigTest.class.getResourceAsStream(FIXTURES + "expected.json")) {
            return new ObjectMapper().readTree(in);
        }
    }

    private static Path folder(Path dir, String name, String weights) throws IOException {
        for (String[] f : new String[][] {{name + "/config.json", "config.json"}, {weights, "model.safetensors"}}) {
            try (InputStream in = Transformers5ConfigTest.class.getResourceAsStream(FIXTURES + f[0])) {
                assertNotNull(in, "missing fixture " + f[0]);
                Files.copy(in, dir.resolve(f[1]));
            }
        }
        return dir;
    }

    @ParameterizedTest
    @ValueSource(strings = {"theta200m", "llama3", "yarn", "head16", "legacy"})
    void lossEqualsTransformers(String name, @TempDir Path dir) throws Exception {
        JsonNode all = expected(), e = all.get("cases").get(name);
        int[] ids = new ObjectMapper().treeToValue(all.get("input_ids"), int[].class);
        Path model = folder(dir, name, e.get("weights").asText());
        double expected = e.get("loss").asDouble(), ignoringRope = e.get("loss_rope_theta_10000").asDouble();
        // the fixtures are sensitive: reading RoPE base 10,000 (what ignoring rope_parameters did) is far off
        assertTrue(Math.abs(expected - ignoringRope) > 100 * TOLERANCE, name + ": fixture does not depend on rope_theta");
        try (LlamaModel m = LlamaLoader.load(model, CpuBackend.fast())) {
            Backend.LossSum loss = Perplexity.evaluate(m, List.of(ids), ids.length, ids.length);
            assertEquals(ids.length - 1, loss.count());
            assertEquals(expected, loss.sum() / loss.count(), TOLERANCE, name);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"theta200m", "llama3", "yarn", "head16"})
    void readsTheTransformers5Layout(String name) throws Exception {
        LlamaConfig c;
        try (InputStream in = Transformers5ConfigTest.class.getResourceAsStream(FIXTURES + name + "/config.json")) {
            c = LlamaConfig.parse(new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8));
        }
        assertEquals("bfloat16", c.torchDtype()); // from "dtype"
        switch (name) {
            case "theta200m" -> {
                assertEquals(200e6, c.ropeTheta());
                assertTrue(c.ropeScaling().isDefault());
            }
            case "llama3" -> {
                assertEquals(500000.0, c.ropeTheta());
                assertEquals("llama3", c.ropeScaling().type());
                assertEquals(8.0, c.ropeScaling().factor());
                assertEquals(16, ((RopeScaling.Llama3) c.ropeScaling()).originalMaxPositions());
            }
            case "yarn" -> {
                assertEquals(1e6, c.ropeTheta());
                assertEquals("yarn", c.ropeScaling().type());
                assertEquals(16.0, ((RopeScaling.Yarn) c.ropeScaling()).betaFast());
            }
            case "head16" -> {
                assertEquals(16, c.headDim());
                assertEquals(32, c.hiddenSize());
                assertEquals(4, c.numHeads());
            }
            default -> fail(name);
        }
    }
}
