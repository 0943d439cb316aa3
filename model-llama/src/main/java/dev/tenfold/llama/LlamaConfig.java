package dev.tenfold.llama;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A Llama-architecture model's configuration, read from a Hugging Face config.json. Fields we
 * cannot honour (another model type, biases, another activation, partial rotary) are errors
 * that name the field, never silently ignored.
 */
public record LlamaConfig(
        int hiddenSize, int intermediateSize, int numLayers, int numHeads, int numKvHeads, int headDim,
        int vocabSize, double rmsNormEps, double ropeTheta, int maxPositionEmbeddings,
        boolean tieWordEmbeddings, String torchDtype, RopeScaling ropeScaling,
        Integer bosTokenId, List<Integer> eosTokenIds, JsonNode quantizationConfig) {

    private static final ObjectMapper JSON = new ObjectMapper();

    public LlamaConfig {
        eosTokenIds = List.copyOf(eosTokenIds);
        check(hiddenSize > 0, "hidden_size must be positive, got " + hiddenSize);
        check(intermediateSize > 0, "intermediate_size must be positive, got " + intermediateSize);
        check(numLayers > 0, "num_hidden_layers must be positive, got " + numLayers);
        check(numHeads > 0, "num_attention_heads must be positive, got " + numHeads);
        check(numKvHeads > 0 && numHeads % numKvHeads == 0,
                "num_key_value_heads (" + numKvHeads + ") must divide num_attention_heads (" + numHeads + ")");
        check(headDim > 0 && headDim % 2 == 0, "head_dim must be even and positive, got " + headDim);
        check(vocabSize > 0, "vocab_size must be positive, got " + vocabSize);
        check(rmsNormEps > 0, "rms_norm_eps must be positive, got " + rmsNormEps);
        check(ropeTheta > 0, "rope_theta must be positive, got " + ropeTheta);
    }

    /** Reads {@code dir/config.json}. */
    public static LlamaConfig load(Path modelDir) throws IOException {
        Path file = modelDir.resolve("config.json");
        JsonNode root;
        try {
            root = JSON.readTree(Files.readAllBytes(file));
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException("no config.json in " + modelDir + " (is it a Hugging Face model folder?)");
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new IllegalArgumentException(file + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        try {
            return parse(root);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    public static LlamaConfig parse(JsonNode c) {
        if (c == null || !c.isObject()) throw new IllegalArgumentException("config must be a JSON object");
        String modelType = c.path("model_type").asText("llama");
        check(modelType.equals("llama"), "model_type '" + modelType + "' is not supported (only llama)");
        String act = c.path("hidden_act").asText("silu");
        check(act.equals("silu"), "hidden_act '" + act + "' is not supported (Llama uses silu)");
        check(!c.path("attention_bias").asBoolean(false), "attention_bias true is not supported (Llama has none)");
        check(!c.path("mlp_bias").asBoolean(false), "mlp_bias true is not supported (Llama has none)");
        check(c.path("partial_rotary_factor").asDouble(1.0) == 1.0, "partial_rotary_factor other than 1 is not supported");
        int hidden = intField(c, "hidden_size");
        int heads = intField(c, "num_attention_heads");
        int kvHeads = c.has("num_key_value_heads") && !c.get("num_key_value_heads").isNull()
                ? intField(c, "num_key_value_heads") : heads;
        int headDim = c.has("head_dim") && !c.get("head_dim").isNull() ? intField(c, "head_dim") : hidden / heads;
        check(c.has("head_dim") || hidden % heads == 0, "hidden_size " + hidden + " is not a multiple of num_attention_heads " + heads);
        int maxPos = c.has("max_position_embeddings") ? intField(c, "max_position_embeddings") : 8192;
        Integer origMax = c.hasNonNull("original_max_position_embeddings") ? intField(c, "original_max_position_embeddings") : null;
        return new LlamaConfig(hidden, intField(c, "intermediate_size"), intField(c, "num_hidden_layers"), heads, kvHeads,
                headDim, intField(c, "vocab_size"), c.path("rms_norm_eps").asDouble(1e-5),
                c.path("rope_theta").asDouble(10000.0), maxPos, c.path("tie_word_embeddings").asBoolean(false),
                c.path("torch_dtype").asText(c.path("dtype").asText("bfloat16")),
                RopeScaling.parse(c.get("rope_scaling"), maxPos, origMax),
                c.hasNonNull("bos_token_id") ? intField(c, "bos_token_id") : null, eosIds(c.get("eos_token_id")),
                c.get("quantization_config"));
    }

    /** This config with another RoPE base (the recipe's 500K -> 200M). */
    public LlamaConfig withRopeTheta(double theta) {
        return new LlamaConfig(hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, vocabSize, rmsNormEps,
                theta, maxPositionEmbeddings, tieWordEmbeddings, torchDtype, ropeScaling, bosTokenId, eosTokenIds,
                quantizationConfig);
    }

    /** This config with another rope_scaling (parsed from the JSON the CLI or API gives; null = default). */
    public LlamaConfig withRopeScaling(RopeScaling scaling) {
        return new LlamaConfig(hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, vocabSize, rmsNormEps,
                ropeTheta, maxPositionEmbeddings, tieWordEmbeddings, torchDtype, scaling == null ? RopeScaling.none() : scaling,
                bosTokenId, eosTokenIds, quantizationConfig);
    }

    /** The RoPE inverse-frequency table for sequences of {@code seqLen} tokens. */
    public float[] ropeInverseFrequencies(int seqLen) { return ropeScaling.inverseFrequencies(headDim, ropeTheta, seqLen); }

    public int kvGroupSize() { return numHeads / numKvHeads; }

    private static int intField(JsonNode c, String name) {
        JsonNode v = c.get(name);
        if (v == null || v.isNull()) throw new IllegalArgumentException("missing field " + name);
        if (!v.canConvertToInt() || !v.isIntegralNumber()) throw new IllegalArgumentException(name + " must be an integer, got " + v);
        return v.intValue();
    }

    private static List<Integer> eosIds(JsonNode v) {
        List<Integer> ids = new ArrayList<>();
        if (v == null || v.isNull()) return ids;
        if (v.isIntegralNumber()) {
            ids.add(v.intValue());
        } else if (v.isArray()) {
            for (JsonNode e : v) {
                if (!e.isIntegralNumber()) throw new IllegalArgumentException("eos_token_id entries must be integers, got " + e);
                ids.add(e.intValue());
            }
        } else {
            throw new IllegalArgumentException("eos_token_id must be an integer or a list, got " + v);
        }
        return ids;
    }

    private static void check(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException(message);
    }
}
