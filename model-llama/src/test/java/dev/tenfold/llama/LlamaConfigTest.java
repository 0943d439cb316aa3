package dev.tenfold.llama;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
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
        return LlamaConfig.parse((s));
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
        LlamaConfig c = LlamaConfig.parse(("""
                {"hidden_size": 96, "intermediate_size": 200, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 300, "eos_token_id": 7, "tie_word_embeddings": true}"""));
        assertEquals(32, c.headDim());
        assertEquals(List.of(7), c.eosTokenIds());
        assertTrue(c.tieWordEmbeddings());
    }

    @Test
    void refusesWhatItCannotHonour(@TempDir Path dir) throws Exception {
        assertMessage("model_type", () -> LlamaConfig.parse(("{\"model_type\": \"mistral\", \"hidden_size\": 8}")));
        assertMessage("hidden_act", () -> with("\"hidden_act\": \"gelu\"").hashCode());
        assertMessage("attention_bias", () -> LlamaConfig.parse((LLAMA3_8B.replace("\"attention_bias\": false", "\"attention_bias\": true"))));
        assertMessage("rope_scaling.rope_type 'su'", () -> LlamaConfig.parse((LLAMA3_8B.replace("\"rope_scaling\": null",
                "\"rope_scaling\": {\"type\": \"su\", \"factor\": 2}"))));
        assertMessage("num_key_value_heads", () -> LlamaConfig.parse((LLAMA3_8B.replace("\"num_key_value_heads\": 8", "\"num_key_value_heads\": 5"))));
        assertMessage("missing field intermediate_size", () -> LlamaConfig.parse((LLAMA3_8B.replace("\"intermediate_size\": 14336,", ""))));
        assertMessage("no config.json", () -> LlamaConfig.load(dir));
        Files.writeString(dir.resolve("config.json"), "{not json");
        assertMessage("config.json: not valid JSON", () -> LlamaConfig.load(dir));
    }

    // ---------------------------------------------------------------- numbers checked where they enter

    /** A small valid config; the rope_scaling object under test is put in by {@link #withValue}. */
    private static final String SMALL = """
            {"model_type": "llama", "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 61, "rms_norm_eps": 1e-5,
             "rope_theta": 10000.0, "max_position_embeddings": 64, "bos_token_id": 1, "eos_token_id": [2, 3]}""";

    private static final String LLAMA3_ROPE = "{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 1,"
            + " \"high_freq_factor\": 4, \"original_max_position_embeddings\": 16}";
    private static final String YARN_ROPE = "{\"rope_type\": \"yarn\", \"factor\": 4, \"original_max_position_embeddings\": 16}";
    private static final String LONGROPE = "{\"rope_type\": \"longrope\", \"long_factor\": [1, 2, 4, 8],"
            + " \"short_factor\": [1, 1, 2, 2], \"original_max_position_embeddings\": 16}";

    /** The rope object each nested field is tested in (a type that reads the field). */
    private static final Map<String, String> ROPE_FOR = Map.ofEntries(
            Map.entry("factor", "{\"rope_type\": \"linear\", \"factor\": 2}"),
            Map.entry("low_freq_factor", LLAMA3_ROPE), Map.entry("high_freq_factor", LLAMA3_ROPE),
            Map.entry("original_max_position_embeddings", LLAMA3_ROPE), Map.entry("beta_fast", YARN_ROPE),
            Map.entry("beta_slow", YARN_ROPE), Map.entry("mscale", YARN_ROPE), Map.entry("mscale_all_dim", YARN_ROPE),
            Map.entry("attention_factor", YARN_ROPE), Map.entry("long_factor", LONGROPE), Map.entry("short_factor", LONGROPE));
    /** SMALL with {@code field} (top level, or rope_scaling.x / rope_parameters.x) set to the raw JSON {@code value}. */
    private static final String MARK = "@value@";

    private static LlamaConfig withValue(String field, String value) throws Exception {
        com.fasterxml.jackson.databind.node.ObjectNode c = (com.fasterxml.jackson.databind.node.ObjectNode) json(SMALL);
        int dot = field.indexOf('.');
        if (dot < 0) {
            c.put(field, MARK);
        } else {
            String object = field.substring(0, dot), leaf = field.substring(dot + 1);
            com.fasterxml.jackson.databind.node.ObjectNode rope = (com.fasterxml.jackson.databind.node.ObjectNode)
                    json(ROPE_FOR.getOrDefault(leaf, "{\"rope_type\": \"default\"}"));
            rope.put(leaf, MARK);
            if (object.equals("rope_parameters")) c.remove("rope_theta");
            c.set(object, rope);
        }
        return LlamaConfig.parse(c.toString().replace("\"" + MARK + "\"", value)); // the raw text: 1e400 stays 1e400
    }

    @Test
    void everyNumberIsCheckedForKindAndRange() throws Exception {
        String[] notANumber = {"\"abc\"", "true", "[1]", "{}", "1e400", "-1e400"};
        Map<String, List<String>> bad = new LinkedHashMap<>();
        bad.put("rms_norm_eps", List.of("0", "-1e-5", "2"));
        bad.put("rope_theta", List.of("0", "-500000", "1", "0.5"));
        bad.put("rope_parameters.rope_theta", List.of("0", "-500000", "1"));
        for (String size : List.of("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
                "max_position_embeddings")) {
            bad.put(size, List.of("0", "-4", "4.5", "100000000000000000000", "2147483648"));
        }
        bad.put("num_key_value_heads", List.of("0", "-2", "3", "8", "2.0"));
        bad.put("head_dim", List.of("0", "-8", "7", "4096", "8.5"));
        bad.put("bos_token_id", List.of("-1", "1.5", "2147483648"));
        bad.put("eos_token_id", List.of("-1", "[2, -3]", "[2, \"x\"]", "[2, 1.5]"));
        bad.put("pretraining_tp", List.of("0", "-1", "1.5"));
        bad.put("attention_dropout", List.of("-0.1", "1"));
        for (String rope : List.of("rope_scaling", "rope_parameters")) {
            bad.put(rope + ".factor", List.of("0", "-2", "0.5"));
            bad.put(rope + ".low_freq_factor", List.of("0", "-1", "4", "5"));   // high_freq_factor is 4: low must stay below
            bad.put(rope + ".high_freq_factor", List.of("0", "-1", "1", "0.5")); // low_freq_factor is 1: high must exceed it
            bad.put(rope + ".original_max_position_embeddings", List.of("0", "-16", "16.5", "2147483648"));
            bad.put(rope + ".beta_fast", List.of("0", "-32"));
            bad.put(rope + ".beta_slow", List.of("0", "-1"));
            bad.put(rope + ".mscale", List.of("-1"));
            bad.put(rope + ".mscale_all_dim", List.of("-1"));
            bad.put(rope + ".attention_factor", List.of("0", "-1"));
            bad.put(rope + ".long_factor", List.of("[1, 0, 1, 1]", "[1, -2, 1, 1]", "[1, \"x\", 1, 1]", "[1, 1e400, 1, 1]", "3", "[1, 2]"));
            bad.put(rope + ".short_factor", List.of("[0, 1, 1, 1]", "[1, 1, 1, -1]", "[1, 2, 2, 2, 2]"));
        }
        int cases = 0;
        for (Map.Entry<String, List<String>> e : bad.entrySet()) {
            String field = e.getKey(), leaf = field.substring(field.indexOf('.') + 1);
            List<String> values = new ArrayList<>(e.getValue());
            values.addAll(List.of(notANumber));
            for (String v : values) {
                if (field.equals("eos_token_id") && v.equals("[1]")) continue; // a one-id list is fine
                IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, () -> withValue(field, v),
                        field + " = " + v + " was accepted");
                // the full path, or for a check made once the object is read (longrope's lengths) the leaf
                assertTrue(ex.getMessage().contains(field) || ex.getMessage().contains(leaf),
                        field + " = " + v + ": message '" + ex.getMessage() + "' does not name the field");
                cases++;
            }
        }
        assertTrue(cases > 250, "only " + cases + " cases");
        // the good values of the same fields are accepted
        assertEquals(1e-6, withValue("rms_norm_eps", "1e-6").rmsNormEps());
        assertEquals(200e6, withValue("rope_parameters.rope_theta", "200000000.0").ropeTheta());
        assertEquals(2.5, withValue("rope_scaling.factor", "2.5").ropeScaling().factor());
        assertEquals(List.of(7), withValue("eos_token_id", "7").eosTokenIds());
        assertEquals(2, withValue("pretraining_tp", "2").numLayers()); // same math, split differently: accepted
    }

    @Test
    void rangeMessagesGiveTheRange() throws Exception {
        assertMessage("rms_norm_eps must be a finite number in [1.0E-30, 1], got \"abc\"", () -> withValue("rms_norm_eps", "\"abc\""));
        assertMessage("rope_theta must be a finite number > 1, got Infinity (beyond the range of a double)", () -> withValue("rope_theta", "1e400"));
        assertMessage("num_attention_heads must be an integer in [1, 1024], got 0", () -> withValue("num_attention_heads", "0"));
        assertMessage("rope_scaling.factor must be a finite number >= 1, got 0", () -> withValue("rope_scaling.factor", "0"));
        assertMessage("rope_parameters.long_factor[1] must be a finite number > 0, got 0",
                () -> withValue("rope_parameters.long_factor", "[1, 0, 1, 1]"));
    }

    @Test
    void aNonStandardNumberIsNotJson(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("config.json"), SMALL.replace("1e-5", "NaN"));
        assertMessage("config.json: not valid JSON", () -> LlamaConfig.load(dir));
        Files.writeString(dir.resolve("config.json"), SMALL.replace("1e-5", "\"abc\""));
        assertMessage("config.json: rms_norm_eps must be a finite number", () -> LlamaConfig.load(dir));
    }

    // ---------------------------------------------------------------- both layouts, and what we cannot honour

    @Test
    void bothLayoutsMustAgree() throws Exception {
        assertEquals(200e6, LlamaConfig.parse((SMALL.replace("\"rope_theta\": 10000.0",
                "\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 200000000.0}"))).ropeTheta());
        assertMessage("rope_scaling.rope_theta (5.0E7) and rope_theta (10000.0) disagree", () -> with2(
                "\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 2, \"rope_theta\": 5e7}"));
        assertEquals(5e7, LlamaConfig.parse((SMALL.replace("\"rope_theta\": 10000.0,", "")
                .replace("{", "{\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 2, \"rope_theta\": 5e7}, "))).ropeTheta());
        assertMessage("rope_parameters.rope_theta (2.0E8) and rope_theta (10000.0) disagree", () -> with2(
                "\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 2e8}"));
        assertEquals(10000.0, with2("\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 10000}").ropeTheta());
        // rope_parameters without rope_theta takes the top-level one, as transformers 5 does
        assertEquals(10000.0, with2("\"rope_parameters\": {\"rope_type\": \"default\"}").ropeTheta());
        assertMessage("rope_parameters (llama3(factor 8.0, original 16)) and rope_scaling (yarn", () -> with2(
                "\"rope_parameters\": " + LLAMA3_ROPE + ", \"rope_scaling\": " + YARN_ROPE));
        assertEquals("llama3", with2("\"rope_parameters\": " + LLAMA3_ROPE + ", \"rope_scaling\": " + LLAMA3_ROPE)
                .ropeScaling().type());
        assertMessage("rope_parameters.rope_type is missing", () -> with2("\"rope_parameters\": {\"factor\": 8}"));
        assertMessage("rope_parameters per layer type", () -> with2("\"rope_parameters\": {\"full_attention\": {\"rope_type\": \"default\"}}"));
        assertMessage("rope_parameters.rope_type 'su' is not supported", () -> with2("\"rope_parameters\": {\"rope_type\": \"su\"}"));
        assertEquals("float32", with2("\"dtype\": \"float32\"").torchDtype());
        assertEquals("float16", with2("\"dtype\": \"float16\", \"torch_dtype\": \"float16\"").torchDtype());
        assertMessage("dtype 'float32' and torch_dtype 'bfloat16' disagree", () -> with2("\"dtype\": \"float32\", \"torch_dtype\": \"bfloat16\""));
    }

    private static LlamaConfig with2(String extraFields) throws Exception {
        return LlamaConfig.parse((SMALL.substring(0, SMALL.length() - 1) + ", " + extraFields + "}"));
    }

    @Test
    void refusesWhatChangesTheMath() throws Exception {
        assertMessage("mlp_bias true is not supported", () -> with2("\"mlp_bias\": true"));
        assertMessage("attention_bias must be true or false, got \"yes\"", () -> with2("\"attention_bias\": \"yes\""));
        assertMessage("sliding_window 4096 is not supported", () -> with2("\"sliding_window\": 4096"));
        assertMessage("use_sliding_window true is not supported", () -> with2("\"use_sliding_window\": true"));
        assertMessage("layer_types[1] 'sliding_attention' is not supported",
                () -> with2("\"layer_types\": [\"full_attention\", \"sliding_attention\"]"));
        assertMessage("attention_dropout 0.1 is not supported", () -> with2("\"attention_dropout\": 0.1"));
        assertMessage("partial_rotary_factor 0.5 is not supported", () -> with2("\"partial_rotary_factor\": 0.5"));
        assertMessage("rope_parameters.partial_rotary_factor 0.5 is not supported",
                () -> with2("\"rope_parameters\": {\"rope_type\": \"default\", \"partial_rotary_factor\": 0.5}"));
        assertMessage("hidden_size 32 is not a multiple of num_attention_heads 3", () -> with2("\"num_attention_heads\": 3, \"num_key_value_heads\": 1, \"head_dim\": 8"));
        assertMessage("longrope long_factor has 4 entries; head_dim/2 = 8", () -> with2("\"head_dim\": 16, \"rope_scaling\": " + LONGROPE));
        // what does not change the math is accepted
        LlamaConfig ok = with2("\"sliding_window\": null, \"use_sliding_window\": false, \"layer_types\": [\"full_attention\", \"full_attention\"],"
                + " \"attention_dropout\": 0.0, \"mlp_bias\": false, \"hidden_act\": \"swish\", \"initializer_range\": 0.02");
        assertEquals(8, ok.headDim());
    }

    private static void assertMessage(String fragment, org.junit.jupiter.api.function.Executable e) {
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, e);
        assertTrue(ex.getMessage().contains(fragment), "message '" + ex.getMessage() + "' lacks '" + fragment + "'");
    }

    // ---------------------------------------------------------------- RoPE variants against closed forms
    // head_dim 8 and theta 10000 give the default table [1, 0.1, 0.01, 0.001].

    private static float[] inv(String scaling, int seqLen) throws Exception {
        return RopeScaling.parse(scaling, 16, null).inverseFrequencies(8, 10000, seqLen);
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
        float[] llama = LlamaConfig.parse((LLAMA3_8B)).ropeInverseFrequencies(8192);
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
        RopeScaling y = RopeScaling.parse("{\"rope_type\": \"yarn\", \"factor\": 4, \"original_max_position_embeddings\": 64}", 256, null);
        assertTable(new double[] {1, 0.5 * 0.1 / 4 + 0.5 * 0.1, 0.01 / 4, 0.001 / 4}, y.inverseFrequencies(8, 10000, 10));
        assertEquals(0.1 * Math.log(4) + 1, y.attentionScale(), 1e-6);
        RopeScaling explicit = RopeScaling.parse("{\"rope_type\": \"yarn\", \"factor\": 4, \"attention_factor\": 1.5}", 64, null);
        assertEquals(1.5f, explicit.attentionScale());
    }

    @Test
    void longrope() throws Exception {
        RopeScaling r = RopeScaling.parse("{\"rope_type\": \"longrope\", \"long_factor\": [1, 2, 4, 8],"
                + " \"short_factor\": [1, 1, 2, 2]}", 64, 16); // factor = 64 / 16
        assertTable(new double[] {1, 0.1, 0.005, 0.0005}, r.inverseFrequencies(8, 10000, 16));
        assertTable(new double[] {1, 0.05, 0.0025, 0.000125}, r.inverseFrequencies(8, 10000, 17));
        assertEquals(Math.sqrt(1 + Math.log(4) / Math.log(16)), r.attentionScale(), 1e-6);
        assertMessage("long_factor", () -> RopeScaling.parse("{\"rope_type\": \"longrope\", \"short_factor\": [1]}", 64, 16));
    }

    @Test
    void factoriesMakeWhatConfigJsonSays() {
        assertEquals(RopeScaling.linear(4), RopeScaling.parse("{\"rope_type\": \"linear\", \"factor\": 4}", 16, null));
        assertEquals(RopeScaling.yarn(4, 64), RopeScaling.parse("{\"rope_type\": \"yarn\", \"factor\": 4, \"original_max_position_embeddings\": 64}", 256, null));
        assertEquals(RopeScaling.yarn(4, 64).withBetas(16, 2), RopeScaling.parse("{\"rope_type\": \"yarn\", \"factor\": 4, \"beta_fast\": 16,"
                + " \"beta_slow\": 2, \"original_max_position_embeddings\": 64}", 256, null));
        assertEquals(RopeScaling.llama3(8, 16, 1, 4), RopeScaling.parse(LLAMA3_ROPE, 16, null));
        assertEquals(RopeScaling.dynamic(2, 16), RopeScaling.parse("{\"type\": \"dynamic\", \"factor\": 2}", 16, null));
        assertSame(RopeScaling.none(), RopeScaling.parse("null", 16, null));
        assertNotEquals(RopeScaling.yarn(4, 64), RopeScaling.yarn(4, 64).withTruncate(false));
        // each checks its values where it is made
        assertMessage("rope factor must be a finite number >= 1, got 0.5", () -> RopeScaling.linear(0.5));
        assertMessage("beta_fast must be a finite number > 0", () -> RopeScaling.yarn(4, 64).withBetas(0, 1));
        assertMessage("high_freq_factor (above low_freq_factor)", () -> RopeScaling.llama3(8, 16, 4, 1));
        assertMessage("original_max_position_embeddings must be positive", () -> RopeScaling.dynamic(2, 0));
    }
}
