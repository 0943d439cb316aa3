package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.io.SafeTensorsModel;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Loads a Hugging Face Llama folder (config.json + model.safetensors or shards). Weights stay
 * memory-mapped (BF16 or F32 are used in place; F16 and the small norm vectors are converted to
 * F32), so an 8B checkpoint loads without passing through the Java heap. Every expected tensor is
 * checked for presence, dtype and shape; tensors the model does not use are reported.
 */
public final class LlamaLoader {
    private LlamaLoader() {}

    /** What to change from config.json (the recipe's rope_theta 200e6, a rope_scaling override). */
    public record Options(Double ropeTheta, RopeScaling ropeScaling) {
        public static Options none() { return new Options(null, null); }
    }

    /** A loaded model and the checkpoint tensors it did not use (e.g. rotary_emb.inv_freq). */
    public record Loaded(LlamaModel model, List<String> unexpected) {}

    public static LlamaModel load(Path dir, Backend backend) throws IOException {
        return loadReporting(dir, backend, Options.none()).model();
    }

    public static Loaded loadReporting(Path dir, Backend backend, Options options) throws IOException {
        LlamaConfig config = LlamaConfig.load(dir);
        if (options.ropeTheta() != null) config = config.withRopeTheta(options.ropeTheta());
        if (options.ropeScaling() != null) config = config.withRopeScaling(options.ropeScaling());
        if (config.quantizationConfig() != null && !config.quantizationConfig().isNull()) {
            throw new IllegalArgumentException(dir.resolve("config.json") + ": quantized checkpoints ("
                    + config.quantizationConfig().path("quant_method").asText("?") + ") are loaded by the qlora module");
        }
        SafeTensorsModel weights = SafeTensorsModel.open(dir);
        List<AutoCloseable> owned = new ArrayList<>();
        owned.add(weights);
        try {
            Set<String> used = new LinkedHashSet<>();
            WeightReader r = new WeightReader(weights, used, owned);
            LlamaConfig c = config;
            long h = c.hiddenSize(), qOut = (long) c.numHeads() * c.headDim(), kvOut = (long) c.numKvHeads() * c.headDim();
            long inter = c.intermediateSize(), vocab = c.vocabSize();
            Tensor embedding = r.matrix("model.embed_tokens.weight", vocab, h);
            LlamaModel.Layer[] layers = new LlamaModel.Layer[c.numLayers()];
            for (int i = 0; i < layers.length; i++) {
                String p = "model.layers." + i + ".";
                layers[i] = new LlamaModel.Layer(
                        r.vector(p + "input_layernorm.weight", h),
                        new DenseLinear(r.matrix(p + "self_attn.q_proj.weight", qOut, h)),
                        new DenseLinear(r.matrix(p + "self_attn.k_proj.weight", kvOut, h)),
                        new DenseLinear(r.matrix(p + "self_attn.v_proj.weight", kvOut, h)),
                        new DenseLinear(r.matrix(p + "self_attn.o_proj.weight", h, qOut)),
                        r.vector(p + "post_attention_layernorm.weight", h),
                        new DenseLinear(r.matrix(p + "mlp.gate_proj.weight", inter, h)),
                        new DenseLinear(r.matrix(p + "mlp.up_proj.weight", inter, h)),
                        new DenseLinear(r.matrix(p + "mlp.down_proj.weight", h, inter)));
            }
            Tensor finalNorm = r.vector("model.norm.weight", h);
            Tensor output = c.tieWordEmbeddings() && !weights.has("lm_head.weight")
                    ? embedding : r.matrix("lm_head.weight", vocab, h);
            List<String> unexpected = new ArrayList<>();
            for (String name : weights.names()) if (!used.contains(name)) unexpected.add(name);
            return new Loaded(new LlamaModel(config, backend, embedding, layers, finalNorm, output, owned), unexpected);
        } catch (RuntimeException | Error e) {
            closeAll(owned);
            throw e;
        }
    }

    private static void closeAll(List<AutoCloseable> owned) {
        for (AutoCloseable a : owned) {
            try {
                a.close();
            } catch (Exception ignored) {
                // already failing
            }
        }
    }

    /** Fetches tensors by name with the checks and conversions above. */
    private record WeightReader(SafeTensorsModel weights, Set<String> used, List<AutoCloseable> owned) {

        Tensor matrix(String name, long rows, long cols) {
            Tensor t = fetch(name, rows, cols);
            if (t.dtype() == DType.F32 || t.dtype() == DType.BF16) return t;
            return toF32(t);
        }

        Tensor vector(String name, long n) {
            Tensor t = fetch(name, n);
            return toF32(t); // norms are tiny: keep an F32 copy
        }

        private Tensor fetch(String name, long... shape) {
            if (!weights.has(name)) throw new IllegalArgumentException("checkpoint is missing tensor " + name
                    + " (expected shape " + Arrays.toString(shape) + ")");
            Tensor t = weights.tensor(name);
            if (!Arrays.equals(t.shape(), shape)) {
                throw new IllegalArgumentException("tensor " + name + " has shape " + Arrays.toString(t.shape())
                        + ", expected " + Arrays.toString(shape) + " from config.json");
            }
            if (t.dtype() != DType.F32 && t.dtype() != DType.BF16 && t.dtype() != DType.F16) {
                throw new IllegalArgumentException("tensor " + name + " has dtype " + t.dtype() + "; expected BF16, F16 or F32");
            }
            used.add(name);
            return t;
        }

        private Tensor toF32(Tensor t) {
            if (t.dtype() == DType.F32) return t;
            Tensor f = Tensor.allocate(DType.F32, t.shape());
            owned.add(f);
            for (long i = 0; i < t.numel(); i++) f.setFloat(i, t.getFloat(i));
            return f;
        }
    }
}
