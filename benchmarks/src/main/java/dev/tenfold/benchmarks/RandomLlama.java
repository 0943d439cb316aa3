package dev.tenfold.benchmarks;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.llama.DenseLinear;
import dev.tenfold.llama.HfSchema;
import dev.tenfold.llama.Linear;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaModel;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/** The benchmarks' model: a small Llama configuration with random BF16 weights, built in memory. */
final class RandomLlama {
    private RandomLlama() {}

    /** hidden 512, 8 layers, 8 query / 2 kv heads of 64, MLP 1536, vocabulary 32,000: 56M parameters. */
    static final String SMALL = """
            {"hidden_size": 512, "intermediate_size": 1536, "num_hidden_layers": 8, "num_attention_heads": 8,
             "num_key_value_heads": 2, "vocab_size": 32000, "rope_theta": 500000.0, "max_position_embeddings": 8192}""";

    static final String SMALL_DESCRIPTION = "hidden 512, 8 layers, 8/2 heads of 64, MLP 1536, vocab 32000, BF16 weights";

    /**
     * hidden 2048, 12 layers, 16 query / 4 kv heads of 128, MLP 5632, vocabulary 32,000: 608M parameters, 1.2 GB of
     * BF16 weights, more than a large server L3 holds (decoding then reads its weights from DRAM).
     */
    static final String MEDIUM = """
            {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 12, "num_attention_heads": 16,
             "num_key_value_heads": 4, "vocab_size": 32000, "rope_theta": 500000.0, "max_position_embeddings": 8192}""";

    static LlamaModel small(long seed) throws IOException { return random(SMALL, seed); }

    static LlamaModel medium(long seed) throws IOException { return random(MEDIUM, seed); }

    private static LlamaModel random(String config, long seed) throws IOException {
        LlamaConfig c = LlamaConfig.parse(config);
        SplittableRandom rng = new SplittableRandom(seed);
        List<Tensor> owned = new ArrayList<>();
        int h = c.hiddenSize();
        LlamaModel.Layer[] layers = new LlamaModel.Layer[c.numLayers()];
        for (int i = 0; i < layers.length; i++) {
            Linear[] projections = new Linear[HfSchema.Projection.values().length];
            for (HfSchema.Projection p : HfSchema.Projection.values()) projections[p.ordinal()] = dense(rng, p.out(c), p.in(c), owned);
            layers[i] = new LlamaModel.Layer(ones(h, owned), ones(h, owned), projections);
        }
        Tensor embedding = bf16(rng, c.vocabSize(), h, owned);
        Tensor output = bf16(rng, c.vocabSize(), h, owned);
        return new LlamaModel(c, CpuBackend.fast(), embedding, layers, ones(h, owned), output, owned);
    }

    private static DenseLinear dense(SplittableRandom rng, long out, long in, List<Tensor> owned) {
        return new DenseLinear(bf16(rng, out, in, owned));
    }

    /** Uniform in [-1/sqrt(cols), 1/sqrt(cols)): activations keep a sensible scale through the layers. */
    private static Tensor bf16(SplittableRandom rng, long rows, long cols, List<Tensor> owned) {
        Tensor t = Tensor.allocate(DType.BF16, rows, cols);
        float scale = (float) (1 / Math.sqrt(cols));
        float[] v = new float[Math.toIntExact(rows * cols)];
        for (int i = 0; i < v.length; i++) v[i] = (float) (rng.nextDouble() * 2 - 1) * scale;
        t.copyFrom(v);
        owned.add(t);
        return t;
    }

    private static Tensor ones(int n, List<Tensor> owned) {
        Tensor t = Tensor.allocate(DType.F32, n);
        t.fill(1f);
        owned.add(t);
        return t;
    }
}
