package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.FiniteScan;
import dev.tenfold.engine.io.SafeTensorsModel;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.Set;

/**
 * Loads a Hugging Face Llama folder (config.json + model.safetensors or shards). Weights stay
 * memory-mapped (BF16 or F32 are used in place; F16 and the small norm vectors are converted to
 * F32), so an 8B checkpoint loads without passing through the Java heap. Every expected tensor is
 * checked for presence, dtype, shape and finite values (a NaN or an infinity is refused with the
 * tensor's name and index); tensors the model does not use are reported.
 */
public final class LlamaLoader {
    private LlamaLoader() {}

    /** A loaded model and the checkpoint tensors it did not use (e.g. rotary_emb.inv_freq). */
    public record Loaded(LlamaModel model, List<String> unexpected) {}

    /**
     * Makes the Linear of one projection from the checkpoint: dense by default; the qlora module
     * supplies one that quantizes to NF4 on load or reads a bitsandbytes NF4 checkpoint.
     */
    public interface LinearFactory {
        /**
         * @param module   the Hugging Face module name, e.g. {@code model.layers.0.self_attn.q_proj}
         * @param out      expected output features (rows of the [out, in] weight)
         * @param in       expected input features
         * @param weights  the checkpoint
         * @param used     names of the checkpoint tensors consumed (add every one read)
         * @param owned    resources to close with the model (add any allocated here)
         */
        Linear create(String module, long out, long in, SafeTensorsModel weights, Set<String> used, List<AutoCloseable> owned);
    }

    /** Dense F32/BF16 weights used in place (F16 converted to F32). */
    public static final LinearFactory DENSE = (module, out, in, weights, used, owned) ->
            new DenseLinear(new WeightReader(weights, used, owned).matrix(module + ".weight", out, in));

    /** The model in {@code dir} as config.json describes it, on the CPU. */
    public static LlamaModel load(Path dir) throws IOException {
        return load(dir, LoadSpec.defaults());
    }

    /** The model in {@code dir} as config.json describes it, computing with {@code backend}. */
    public static LlamaModel load(Path dir, Backend backend) throws IOException {
        return load(dir, LoadSpec.defaults().backend(backend));
    }

    /** The model in {@code dir} as {@code spec} says: RoPE changes, quantization, backend. */
    public static LlamaModel load(Path dir, LoadSpec spec) throws IOException {
        return loadReporting(dir, spec).model();
    }

    /**
     * As {@link #load(Path, LoadSpec)}, also reporting the checkpoint tensors the model did not use. A
     * checkpoint whose config.json has a quantization_config is read in its format (NF4 through
     * tenfold-qlora), whatever the spec's quantization.
     */
    public static Loaded loadReporting(Path dir, LoadSpec spec) throws IOException {
        LlamaConfig config = LlamaConfig.load(dir);
        Map<String, Object> qc = config.quantizationConfig();
        LinearFactory linears = qc == null && spec.quantization() == Quantization.NONE ? DENSE
                : quantized(qc == null ? spec.quantization() : Quantization.NF4, dir).linears(qc);
        return loadReporting(dir, spec, linears);
    }

    /** The provider of a quantized format (found with ServiceLoader), or an error that says which module provides it. */
    private static QuantizedLinears quantized(Quantization q, Path dir) {
        for (QuantizedLinears p : ServiceLoader.load(QuantizedLinears.class, LlamaLoader.class.getClassLoader())) {
            if (p.quantization() == q) return p;
        }
        throw new IllegalArgumentException(dir.resolve("config.json") + ": " + q + " projections need tenfold-qlora (not on the "
                + "class or module path)");
    }

    /**
     * As {@link #loadReporting(Path, LoadSpec)} with the projections made by {@code linears} (the
     * spec's quantization is not used).
     */
    public static Loaded loadReporting(Path dir, LoadSpec spec, LinearFactory linears) throws IOException {
        LlamaConfig config = spec.apply(LlamaConfig.load(dir));
        Backend backend = spec.backend();
        SafeTensorsModel weights = SafeTensorsModel.open(dir);
        List<AutoCloseable> owned = new ArrayList<>();
        owned.add(weights);
        try {
            Set<String> used = new LinkedHashSet<>();
            WeightReader r = new WeightReader(weights, used, owned);
            LlamaConfig c = config;
            long h = c.hiddenSize(), vocab = c.vocabSize();
            Tensor embedding = r.matrix(HfSchema.EMBEDDING, vocab, h);
            LlamaModel.Layer[] layers = new LlamaModel.Layer[c.numLayers()];
            HfSchema.Projection[] projections = HfSchema.Projection.values();
            for (int i = 0; i < layers.length; i++) {
                Tensor attnNorm = r.vector(HfSchema.attnNorm(i), h);
                Linear[] linear = new Linear[projections.length];
                for (HfSchema.Projection p : projections) linear[p.ordinal()] = linears.create(p.module(i), p.out(c), p.in(c), weights, used, owned);
                layers[i] = new LlamaModel.Layer(attnNorm, r.vector(HfSchema.mlpNorm(i), h), linear);
            }
            Tensor finalNorm = r.vector(HfSchema.FINAL_NORM, h);
            Tensor output = c.tieWordEmbeddings() && !weights.has(HfSchema.LM_HEAD)
                    ? embedding : r.matrix(HfSchema.LM_HEAD, vocab, h);
            List<String> unexpected = new ArrayList<>();
            for (String name : weights.names()) if (!used.contains(name)) unexpected.add(name);
            LlamaModel model = new LlamaModel(config, backend, embedding, layers, finalNorm, output, owned);
            model.setSource(dir);
            return new Loaded(model, unexpected);
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
    public record WeightReader(SafeTensorsModel weights, Set<String> used, List<AutoCloseable> owned) {

        public Tensor matrix(String name, long rows, long cols) {
            Tensor t = fetch(name, rows, cols);
            if (t.dtype() == DType.F32 || t.dtype() == DType.BF16) return t;
            return toF32(t);
        }

        public Tensor vector(String name, long n) {
            Tensor t = fetch(name, n);
            return toF32(t); // norms are tiny: keep an F32 copy
        }

        /** The tensor, checked for presence, shape, a float dtype and finite values (not converted). */
        public Tensor fetch(String name, long... shape) {
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
            FiniteScan.requireFinite("tensor " + name, t);
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
