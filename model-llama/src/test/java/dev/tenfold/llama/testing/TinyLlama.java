package dev.tenfold.llama.testing;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.io.SafeTensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/** Writes small random Llama models as Hugging Face folders (config.json + model.safetensors) for tests. */
public final class TinyLlama {
    private TinyLlama() {}

    public static final int HIDDEN = 32, INTER = 48, LAYERS = 2, HEADS = 4, KV_HEADS = 2, HEAD_DIM = 8, VOCAB = 61;

    public static String config(boolean tied, String extra) { return config(tied, extra, VOCAB); }

    public static String config(boolean tied, String extra, int vocab) {
        return "{\"model_type\": \"llama\", \"hidden_size\": " + HIDDEN + ", \"intermediate_size\": " + INTER
                + ", \"num_hidden_layers\": " + LAYERS + ", \"num_attention_heads\": " + HEADS
                + ", \"num_key_value_heads\": " + KV_HEADS + ", \"vocab_size\": " + vocab
                + ", \"rms_norm_eps\": 1e-5, \"rope_theta\": 10000.0, \"max_position_embeddings\": 64"
                + ", \"tie_word_embeddings\": " + tied + ", \"bos_token_id\": 1, \"eos_token_id\": [2, 3]"
                + (extra == null ? "" : ", " + extra) + "}";
    }

    /** The tensors of a random model, by Hugging Face name. */
    public static Map<String, Tensor> weights(long seed, DType dtype, boolean tied) { return weights(seed, dtype, tied, VOCAB); }

    public static Map<String, Tensor> weights(long seed, DType dtype, boolean tied, int vocab) {
        SplittableRandom rng = new SplittableRandom(seed);
        Map<String, Tensor> w = new LinkedHashMap<>();
        w.put("model.embed_tokens.weight", random(rng, dtype, 1.0f, vocab, HIDDEN));
        for (int i = 0; i < LAYERS; i++) {
            String p = "model.layers." + i + ".";
            w.put(p + "input_layernorm.weight", norm(rng, dtype));
            w.put(p + "self_attn.q_proj.weight", random(rng, dtype, 0.3f, HEADS * HEAD_DIM, HIDDEN));
            w.put(p + "self_attn.k_proj.weight", random(rng, dtype, 0.3f, KV_HEADS * HEAD_DIM, HIDDEN));
            w.put(p + "self_attn.v_proj.weight", random(rng, dtype, 0.3f, KV_HEADS * HEAD_DIM, HIDDEN));
            w.put(p + "self_attn.o_proj.weight", random(rng, dtype, 0.3f, HIDDEN, HEADS * HEAD_DIM));
            w.put(p + "post_attention_layernorm.weight", norm(rng, dtype));
            w.put(p + "mlp.gate_proj.weight", random(rng, dtype, 0.3f, INTER, HIDDEN));
            w.put(p + "mlp.up_proj.weight", random(rng, dtype, 0.3f, INTER, HIDDEN));
            w.put(p + "mlp.down_proj.weight", random(rng, dtype, 0.3f, HIDDEN, INTER));
        }
        w.put("model.norm.weight", norm(rng, dtype));
        if (!tied) w.put("lm_head.weight", random(rng, dtype, 0.5f, vocab, HIDDEN));
        return w;
    }

    /** Writes a random model folder and returns it. */
    public static Path write(Path dir, long seed, DType dtype, boolean tied) throws IOException {
        return write(dir, seed, dtype, tied, VOCAB);
    }

    /** A random model with the tiny Llama-3-like tokenizer.json beside it (vocabulary sized to match). */
    public static Path writeWithTokenizer(Path dir, long seed) throws IOException {
        Files.createDirectories(dir);
        int vocab = dev.tenfold.llama.tokenizer.TinyTokenizerJson.writeLlamaLike(dir);
        return write(dir, seed, DType.BF16, false, vocab);
    }

    public static Path write(Path dir, long seed, DType dtype, boolean tied, int vocab) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), config(tied, null, vocab));
        Map<String, Tensor> w = weights(seed, dtype, tied, vocab);
        try {
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), w, Map.of("format", "pt"));
        } finally {
            w.values().forEach(Tensor::close);
        }
        return dir;
    }

    private static Tensor random(SplittableRandom rng, DType dtype, float amp, long... shape) {
        Tensor t = Tensor.allocate(dtype, shape);
        for (long i = 0; i < t.numel(); i++) t.setFloat(i, (float) ((rng.nextDouble() * 2 - 1) * amp));
        return t;
    }

    private static Tensor norm(SplittableRandom rng, DType dtype) {
        Tensor t = Tensor.allocate(dtype, HIDDEN);
        for (long i = 0; i < HIDDEN; i++) t.setFloat(i, (float) (0.8 + 0.4 * rng.nextDouble()));
        return t;
    }

    /** Writes the tiny Llama-3-like tokenizer.json into {@code dir}; returns its vocabulary size. */
    public static int writeTokenizer(Path dir) throws IOException {
        return dev.tenfold.llama.tokenizer.TinyTokenizerJson.writeLlamaLike(dir);
    }
}
