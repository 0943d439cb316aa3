package dev.tenfold.llama;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * A Llama-architecture model's configuration, read from a Hugging Face config.json in either
 * layout transformers writes: version 5's {@code rope_parameters} (holding rope_theta and the
 * scaling) and {@code dtype}, or version 4's {@code rope_theta}, {@code rope_scaling} and
 * {@code torch_dtype}; a config that gives both and where they disagree is refused. Every number
 * is checked for its kind and range where it is read (see {@link JsonFields}), and every field
 * that would change the computation in a way we cannot honour (another model type, biases,
 * another activation, partial rotary, sliding windows, attention dropout) is an error that names
 * it, never silently ignored.
 */
public final class LlamaConfig {
    /** The values, checked where they are made: reached only through {@link #parse} and the withers. */
    private record Fields(
            int hiddenSize, int intermediateSize, int numLayers, int numHeads, int numKvHeads, int headDim,
            int vocabSize, double rmsNormEps, double ropeTheta, int maxPositionEmbeddings,
            boolean tieWordEmbeddings, String torchDtype, RopeScaling ropeScaling,
            Integer bosTokenId, List<Integer> eosTokenIds, Map<String, Object> quantizationConfig) {
        Fields {
            eosTokenIds = List.copyOf(eosTokenIds);
            if (quantizationConfig != null) quantizationConfig = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(quantizationConfig));
            positive("hidden_size", hiddenSize, MAX_HIDDEN);
            positive("intermediate_size", intermediateSize, MAX_INTERMEDIATE);
            positive("num_hidden_layers", numLayers, MAX_LAYERS);
            positive("num_attention_heads", numHeads, MAX_HEADS);
            check(numKvHeads > 0 && numHeads % numKvHeads == 0,
                    "num_key_value_heads (" + numKvHeads + ") must divide num_attention_heads (" + numHeads + ")");
            check(headDim > 0 && headDim % 2 == 0 && headDim <= MAX_HEAD_DIM,
                    "head_dim must be even and in [2, " + MAX_HEAD_DIM + "], got " + headDim);
            positive("vocab_size", vocabSize, MAX_VOCAB);
            positive("max_position_embeddings", maxPositionEmbeddings, RopeParsing.MAX_POSITIONS);
            RMS_NORM_EPS.check("rms_norm_eps", rmsNormEps);
            ROPE_THETA.check("rope_theta", ropeTheta);
            if (ropeScaling == null) ropeScaling = RopeScaling.none();
            RopeParsing.checkHeadDim(ropeScaling, headDim);
        }
    }

    private final Fields f;

    private LlamaConfig(Fields f) { this.f = f; }

    // Sane bounds: far above any released Llama (405B: hidden 16384, MLP 53248, 126 layers, 128 heads
    // of 128, vocabulary 128256), low enough that no size computed from them overflows.
    static final long MAX_HIDDEN = 1 << 16, MAX_INTERMEDIATE = 1 << 20, MAX_LAYERS = 1 << 10, MAX_HEADS = 1 << 10,
            MAX_HEAD_DIM = 1 << 10, MAX_VOCAB = 1 << 24, MAX_TOKEN_ID = Integer.MAX_VALUE;
    /** RoPE base: above 1, or the frequencies stop decreasing (and yarn divides by log(base)). */
    public static final Range ROPE_THETA = Range.greaterThan(1);
    public static final Range RMS_NORM_EPS = Range.closed(1e-30, 1);
    /** transformers' defaults for fields a config may leave out. */
    static final double DEFAULT_ROPE_THETA = 10000.0, DEFAULT_RMS_NORM_EPS = 1e-6;
    static final int DEFAULT_MAX_POSITIONS = 2048;


    /** Reads {@code dir/config.json}; errors name the file. */
    public static LlamaConfig load(Path modelDir) throws IOException {
        Path file = modelDir.resolve("config.json");
        if (!Files.exists(file)) throw new IllegalArgumentException("no config.json in " + modelDir + " (is it a Hugging Face model folder?)");
        return loadFile(file);
    }

    /** Reads a config.json given by its own path; errors name the file. */
    public static LlamaConfig loadFile(Path file) throws IOException {
        JsonFields fields;
        try {
            fields = JsonFields.read(file);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(file + ": no such file");
        }
        try {
            return parse(fields);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /** Reads config.json's text; errors name the field (the caller adds the file). */
    public static LlamaConfig parse(String json) {
        return parse(JsonFields.parse(json));
    }

    static LlamaConfig parse(JsonFields c) {
        String modelType = c.text("model_type", "llama");
        check(modelType.equals("llama"), "model_type '" + modelType + "' is not supported (only llama)");
        String act = c.text("hidden_act", "silu");
        check(act.equals("silu") || act.equals("swish"), "hidden_act '" + act + "' is not supported (Llama uses silu)");
        refuseWhatChangesTheMath(c);
        int hidden = (int) c.integer("hidden_size", 1, MAX_HIDDEN);
        int heads = (int) c.integer("num_attention_heads", 1, MAX_HEADS);
        // transformers refuses this even when head_dim is given
        check(hidden % heads == 0, "hidden_size " + hidden + " is not a multiple of num_attention_heads " + heads);
        int kvHeads = (int) c.integer("num_key_value_heads", 1, heads, heads);
        // head_dim may differ from hidden/heads: the projections are [heads * head_dim, hidden]
        int headDim = (int) c.integer("head_dim", 2, MAX_HEAD_DIM, hidden / heads);
        int maxPos = (int) c.integer("max_position_embeddings", 1, RopeParsing.MAX_POSITIONS, DEFAULT_MAX_POSITIONS);
        Integer origMax = c.has("original_max_position_embeddings")
                ? (int) c.integer("original_max_position_embeddings", 1, RopeParsing.MAX_POSITIONS) : null;
        Rope rope = rope(c, maxPos, origMax);
        Long bos = c.integerOrNull("bos_token_id", 0, MAX_TOKEN_ID);
        List<Integer> eos = new ArrayList<>();
        for (long id : c.integers("eos_token_id", 0, MAX_TOKEN_ID)) eos.add((int) id);
        return new LlamaConfig(new Fields(hidden, (int) c.integer("intermediate_size", 1, MAX_INTERMEDIATE),
                (int) c.integer("num_hidden_layers", 1, MAX_LAYERS), heads, kvHeads, headDim,
                (int) c.integer("vocab_size", 1, MAX_VOCAB), c.number("rms_norm_eps", RMS_NORM_EPS, DEFAULT_RMS_NORM_EPS),
                rope.theta(), maxPos, c.bool("tie_word_embeddings", false), dtype(c), rope.scaling(),
                bos == null ? null : (int) (long) bos, eos, c.objectOrNull("quantization_config")));
    }

    /**
     * Fields that transformers' Llama (or a user reading the config) would compute with and that
     * tenfold cannot honour. pretraining_tp is not among them: transformers 4 only split the same
     * matmuls into slices when it was above 1, and transformers 5 ignores it.
     */
    private static void refuseWhatChangesTheMath(JsonFields c) {
        check(!c.bool("attention_bias", false), "attention_bias true is not supported (Llama has no biases)");
        check(!c.bool("mlp_bias", false), "mlp_bias true is not supported (Llama has no biases)");
        double dropout = c.number("attention_dropout", Range.closedOpen(0, 1), 0);
        check(dropout == 0, "attention_dropout " + dropout + " is not supported (tenfold has no attention dropout; use 0)");
        double partial = c.number("partial_rotary_factor", Range.openClosed(0, 1), 1.0);
        check(partial == 1.0, "partial_rotary_factor " + partial + " is not supported (only 1)");
        check(!c.has("sliding_window"), "sliding_window " + c.show("sliding_window")
                + " is not supported (tenfold attends to the whole context; use null)");
        check(!c.bool("use_sliding_window", false), "use_sliding_window true is not supported (tenfold attends to the whole context)");
        List<String> layerTypes = c.texts("layer_types");
        for (int i = 0; i < layerTypes.size(); i++) {
            check(layerTypes.get(i).equals("full_attention"), "layer_types[" + i + "] '" + layerTypes.get(i)
                    + "' is not supported (only full_attention)");
        }
        c.integer("pretraining_tp", 1, MAX_HEADS, 1);
    }

    private record Rope(double theta, RopeScaling scaling) {}

    /**
     * rope_theta and the scaling, from rope_parameters (transformers 5) or rope_theta and
     * rope_scaling (transformers 4). When both are given they must agree: a config edited in one
     * place and not the other would otherwise run with whichever value we happened to read.
     */
    private static Rope rope(JsonFields c, int maxPos, Integer origMax) {
        JsonFields params = c.object("rope_parameters"), legacy = c.object("rope_scaling");
        // the RoPE base may sit in three places; transformers 5 prefers the rope object's
        Map<String, Double> thetas = new LinkedHashMap<>();
        for (JsonFields o : new JsonFields[] {params, legacy}) {
            if (o != null && o.has("rope_theta")) thetas.put(o.name("rope_theta"), o.number("rope_theta", ROPE_THETA));
        }
        if (c.has("rope_theta")) thetas.put("rope_theta", c.number("rope_theta", ROPE_THETA));
        if (new HashSet<>(thetas.values()).size() > 1) {
            throw new IllegalArgumentException(thetas.entrySet().stream().map(e -> e.getKey() + " (" + e.getValue() + ")")
                    .collect(Collectors.joining(" and ")) + " disagree; keep one (transformers 5 writes rope_parameters)");
        }
        double theta = thetas.isEmpty() ? DEFAULT_ROPE_THETA : thetas.values().iterator().next();
        if (params != null) {
            for (String key : params.names()) {
                check(!params.isObject(key), "rope_parameters per layer type ('" + key + "') is not supported");
            }
        }
        RopeScaling fromParams = params == null ? null : RopeParsing.parse(params, maxPos, origMax);
        RopeScaling fromLegacy = legacy == null ? null : RopeParsing.parse(legacy, maxPos, origMax);
        if (fromParams != null && fromLegacy != null && !fromParams.equals(fromLegacy)) {
            throw new IllegalArgumentException("rope_parameters (" + fromParams + ") and rope_scaling (" + fromLegacy
                    + ") disagree; keep one (transformers 5 writes rope_parameters)");
        }
        return new Rope(theta, fromParams != null ? fromParams : fromLegacy != null ? fromLegacy : RopeScaling.none());
    }

    /** dtype (transformers 5) or torch_dtype (4); both given must agree. */
    private static String dtype(JsonFields c) {
        String dtype = c.text("dtype", null), torchDtype = c.text("torch_dtype", null);
        if (dtype != null && torchDtype != null && !dtype.equals(torchDtype)) {
            throw new IllegalArgumentException("dtype '" + dtype + "' and torch_dtype '" + torchDtype + "' disagree; keep one");
        }
        return dtype != null ? dtype : torchDtype != null ? torchDtype : "bfloat16";
    }

    /** This config with another RoPE base (the recipe's 500K -> 200M). */
    public LlamaConfig withRopeTheta(double theta) {
        return new LlamaConfig(new Fields(f.hiddenSize, f.intermediateSize, f.numLayers, f.numHeads, f.numKvHeads, f.headDim, f.vocabSize,
                f.rmsNormEps, theta, f.maxPositionEmbeddings, f.tieWordEmbeddings, f.torchDtype, f.ropeScaling, f.bosTokenId,
                f.eosTokenIds, f.quantizationConfig));
    }

    /** This config with another rope_scaling (parsed from the JSON the CLI or API gives; null = default). */
    public LlamaConfig withRopeScaling(RopeScaling scaling) {
        return new LlamaConfig(new Fields(f.hiddenSize, f.intermediateSize, f.numLayers, f.numHeads, f.numKvHeads, f.headDim, f.vocabSize,
                f.rmsNormEps, f.ropeTheta, f.maxPositionEmbeddings, f.tieWordEmbeddings, f.torchDtype,
                scaling == null ? RopeScaling.none() : scaling, f.bosTokenId, f.eosTokenIds, f.quantizationConfig));
    }

    /** The RoPE inverse-frequency table for sequences of {@code seqLen} tokens. */
    public float[] ropeInverseFrequencies(int seqLen) { return f.ropeScaling.inverseFrequencies(f.headDim, f.ropeTheta, seqLen); }

    public int kvGroupSize() { return f.numHeads / f.numKvHeads; }

    public int hiddenSize() { return f.hiddenSize; }

    public int intermediateSize() { return f.intermediateSize; }

    /** num_hidden_layers. */
    public int numLayers() { return f.numLayers; }

    /** num_attention_heads. */
    public int numHeads() { return f.numHeads; }

    /** num_key_value_heads. */
    public int numKvHeads() { return f.numKvHeads; }

    public int headDim() { return f.headDim; }

    public int vocabSize() { return f.vocabSize; }

    public double rmsNormEps() { return f.rmsNormEps; }

    public double ropeTheta() { return f.ropeTheta; }

    public int maxPositionEmbeddings() { return f.maxPositionEmbeddings; }

    public boolean tieWordEmbeddings() { return f.tieWordEmbeddings; }

    /** dtype (transformers 5) or torch_dtype: what the checkpoint's weights hold. */
    public String torchDtype() { return f.torchDtype; }

    public RopeScaling ropeScaling() { return f.ropeScaling; }

    /** bos_token_id, or null. */
    public Integer bosTokenId() { return f.bosTokenId; }

    /** eos_token_id: the ids generation stops at by default. */
    public List<Integer> eosTokenIds() { return f.eosTokenIds; }

    /** quantization_config as plain values (maps, strings, numbers, booleans), or null for a dense checkpoint. */
    public Map<String, Object> quantizationConfig() { return f.quantizationConfig; }

    @Override
    public boolean equals(Object o) { return o instanceof LlamaConfig c && f.equals(c.f); }

    @Override
    public int hashCode() { return f.hashCode(); }

    @Override
    public String toString() { return "LlamaConfig" + f.toString().substring("Fields".length()); }

    private static void positive(String name, long v, long max) {
        check(v >= 1 && v <= max, name + " must be in [1, " + max + "], got " + v);
    }

    private static void check(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException(message);
    }
}
