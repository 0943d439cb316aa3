package dev.tenfold.llama;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LlamaConfigTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The fields of Llama-3-8B-Instruct's config.json (REFERENCE.md). */
    static final String LLAMA3_8B = """
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
             "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
             "num_key_value_heads": 8, "vocab_size": 128256, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
             "max_position_embeddings": 8192, "hidden_act": "silu", "tie_word_embeddings": false,
             "torch_dtype": "bfloat16", "rope_scaling": null, "bos_token_id": 128000, "eos_token_id": [128001, 128009],
             "attention_bias": false, "initializer_range": 0.02, "pretraining_tp": 1, "use_cache": true}""";

    private static JsonNode json(String s) throws Exception { return JSON.readTree(s); }

    private static LlamaConfig with(String extraField) throws Exception {
        String s = LLAMA3_8B.substring(0, LLAMA3_8B.length() - 1) + ", " + extraField + "}";
        return LlamaConfig.parse(json(s));
    }

    @Test
    void readsLlama3Config(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("config.json"), LLAMA3_8B);
        LlamaConfig c = LlamaConfig.load(dir);
        assertEquals(4096, c.hiddenSize());
        assertEquals(128, c.headDim()); // absent: hidden / heads
        assertEquals(4, c.kvGroupSize());
        assertEquals(List.of(128001, 128009), c.eosTokenIds());
        assertEquals(128000, c.bosTokenId());
        assertTrue(c.ropeScaling().isDefault());
        assertEquals(500000.0, c.ropeTheta());
        assertEquals(200e6, c.withRopeTheta(200e6).ropeTheta());
    }

    @Test
    void explicitHeadDimAndSingleEos() throws Exception {
        LlamaConfig c = LlamaConfig.parse(json("""
                {"hidden_size": 96, "intermediate_size": 200, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 300, "eos_token_id": 7, "tie_word_embeddings": true}"""));
        assertEquals(32, c.headDim());
        assertEquals(List.of(7), c.eosTokenIds());
        assertTrue(c.tieWordEmbeddings());
    }

    @Test
    void refusesWhatItCannotHonour(@TempDir Path dir) throws Exception {
        assertMessage("model_type", () -> LlamaConfig.parse(json("{\"model_type\": \"mistral\", \"hidden_size\": 8}")));
        assertMessage("hidden_act", () -> with("\"hidden_act\": \"gelu\"").hashCode());
        assertMessage("attention_bias", () -> LlamaConfig.parse(json(LLAMA3_8B.replace("\"attention_bias\": false", "\"attention_bias\": true"))));
        assertMessage("rope_scaling type 'su'", () -> LlamaConfig.parse(json(LLAMA3_8B.replace("\"rope_scaling\": null",
                "\"rope_scaling\": {\"type\": \"su\", \"factor\": 2}"))));
        assertMessage("num_key_value_heads", () -> LlamaConfig.parse(json(LLAMA3_8B.replace("\"num_key_value_heads\": 8", "\"num_key_value_heads\": 5"))));
        assertMessage("missing field intermediate_size", () -> LlamaConfig.parse(json(LLAMA3_8B.replace("\"intermediate_size\": 14336,", ""))));
        assertMessage("no config.json", () -> LlamaConfig.load(dir));
        Files.writeString(dir.resolve("config.json"), "{not json");
        assertMessage("config.json: not valid JSON", () -> LlamaConfig.load(dir));
    }

    private static void assertMessage(String fragment, org.junit.jupiter.api.function.Executable e) {
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, e);
        assertTrue(ex.getMessage().contains(fragment), "message '" + ex.getMessage() + "' lacks '" + fragment + "'");
    }

    // ---------------------------------------------------------------- RoPE variants against closed forms
    // head_dim 8 and theta 10000 give the default table [1, 0.1, 0.01, 0.001].

    private static float[] inv(String scaling, int seqLen) throws Exception {
        return RopeScaling.parse(json(scaling), 16, null).inverseFrequencies(8, 10000, seqLen);
    }

    private static void assertTable(double[] expected, float[] actual) {
        assertEquals(expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], Math.abs(expected[i]) * 1e-6, "entry " + i);
        }
    }

    @Test
    void defaultTable() throws Exception {
        assertTable(new double[] {1, 0.1, 0.01, 0.001}, inv("null", 100));
        float[] llama = LlamaConfig.parse(json(LLAMA3_8B)).ropeInverseFrequencies(8192);
        assertEquals(64, llama.length);
        assertEquals(Math.pow(500000, -2.0 * 10 / 128), llama[10], 1e-7);
    }

    @Test
    void linear() throws Exception {
        assertTable(new double[] {0.25, 0.025, 0.0025, 0.00025}, inv("{\"rope_type\": \"linear\", \"factor\": 4}", 10));
    }

    @Test
    void dynamicChangesOnlyBeyondTheOriginalContext() throws Exception {
        String cfg = "{\"type\": \"dynamic\", \"factor\": 2}";
        assertTable(new double[] {1, 0.1, 0.01, 0.001}, inv(cfg, 16));
        double base = 10000 * Math.pow(2.0 * 32 / 16 - 1, 8.0 / 6); // base * (f*L/L0 - (f-1))^(d/(d-2))
        assertTable(new double[] {1, Math.pow(base, -0.25), Math.pow(base, -0.5), Math.pow(base, -0.75)}, inv(cfg, 32));
    }

    @Test
    void llama3() throws Exception {
        // L0 = 1000, low 1, high 4: wavelengths 2pi/inv = 6.3, 62.8 (kept, < 250), 628 (blended), 6283 (> 1000: /8)
        float[] t = inv("{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 1, \"high_freq_factor\": 4,"
                + " \"original_max_position_embeddings\": 1000}", 10);
        double s = (1000 / (2 * Math.PI / 0.01) - 1) / 3;
        assertTable(new double[] {1, 0.1, (1 - s) * 0.01 / 8 + s * 0.01, 0.001 / 8}, t);
    }

    @Test
    void yarn() throws Exception {
        // L0 = 64, factor 4: correction range [floor(-0.497), ceil(1.008)] = [0, 2]; ramp i/2
        RopeScaling y = RopeScaling.parse(json("{\"rope_type\": \"yarn\", \"factor\": 4, \"original_max_position_embeddings\": 64}"), 256, null);
        assertTable(new double[] {1, 0.5 * 0.1 / 4 + 0.5 * 0.1, 0.01 / 4, 0.001 / 4}, y.inverseFrequencies(8, 10000, 10));
        assertEquals(0.1 * Math.log(4) + 1, y.attentionScale(), 1e-6);
        RopeScaling explicit = RopeScaling.parse(json("{\"rope_type\": \"yarn\", \"factor\": 4, \"attention_factor\": 1.5}"), 64, null);
        assertEquals(1.5f, explicit.attentionScale());
    }

    @Test
    void longrope() throws Exception {
        RopeScaling r = RopeScaling.parse(json("{\"rope_type\": \"longrope\", \"long_factor\": [1, 2, 4, 8],"
                + " \"short_factor\": [1, 1, 2, 2]}"), 64, 16); // factor = 64 / 16
        assertTable(new double[] {1, 0.1, 0.005, 0.0005}, r.inverseFrequencies(8, 10000, 16));
        assertTable(new double[] {1, 0.05, 0.0025, 0.000125}, r.inverseFrequencies(8, 10000, 17));
        assertEquals(Math.sqrt(1 + Math.log(4) / Math.log(16)), r.attentionScale(), 1e-6);
        assertMessage("long_factor", () -> RopeScaling.parse(json("{\"rope_type\": \"longrope\", \"short_factor\": [1]}"), 64, 16));
    }
}
