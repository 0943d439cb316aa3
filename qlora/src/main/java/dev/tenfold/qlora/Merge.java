package dev.tenfold.qlora;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Transfers;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.io.SafeTensorsModel;
import dev.tenfold.llama.DenseLinear;
import dev.tenfold.llama.HfSchema;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Linear;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Folds a LoRA adapter into its base: W' = W + s B A for every adapted projection (computed in
 * F32), the trained embedding in place of the original, written as a plain Hugging Face
 * checkpoint whose config.json carries the RoPE base the adapter was trained with and says what
 * the file holds. By default every tensor keeps the base's dtype (an F32 base stays F32, a BF16
 * one BF16); a chosen dtype converts every float tensor to it.
 */
public final class Merge {
    private Merge() {}

    /**
     * What to write.
     *
     * @param ropeTheta  the rope_theta for the merged config.json (null: keep the base's)
     * @param dtype      F32, BF16 or F16 for every float tensor (null: each keeps the base's dtype)
     * @param force      replace the model files of a non-empty output folder (others are kept)
     * @param adapterDir the adapter's folder, which the output must not be (null: not checked)
     */
    public record Options(Double ropeTheta, DType dtype, boolean force, Path adapterDir) {
        public Options {
            if (dtype != null && dtype != DType.F32 && dtype != DType.BF16 && dtype != DType.F16) {
                throw new IllegalArgumentException("merged dtype must be F32, BF16 or F16, got " + dtype);
            }
        }
    }

    /** {@link #write(Path, LlamaModel, Path, Options)} keeping the base's dtype, into a new or empty folder. */
    public static void write(Path baseDir, LlamaModel model, Double ropeTheta, Path outDir) throws IOException {
        write(baseDir, model, outDir, new Options(ropeTheta, null, false, null));
    }

    /**
     * @param baseDir the base model folder (dense BF16/F16/F32 weights)
     * @param model   that model with the adapter loaded (PeftAdapter.load)
     * @param outDir  a new or empty folder (or, with force, one whose model files may be replaced);
     *                never the base's or the adapter's folder
     */
    public static void write(Path baseDir, LlamaModel model, Path outDir, Options options) throws IOException {
        ModelFolder.prepareOutput(outDir, options.force(), inputs(baseDir, options));
        Backend b = model.backend();
        List<Tensor> temporaries = new ArrayList<>();
        Map<DType, Long> bytesByDtype = new HashMap<>();
        try (SafeTensorsModel base = SafeTensorsModel.open(baseDir)) {
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (String name : base.names()) out.put(name, base.tensor(name));
            if (model.embeddingParameter() != null) {
                String name = HfSchema.EMBEDDING;
                out.put(name, ModelFolder.hostCopy(b, model.embeddingParameter().value(), outDtype(out.get(name), options), temporaries));
            }
            for (int i = 0; i < model.numLayers(); i++) {
                LlamaModel.Layer l = model.layer(i);
                for (HfSchema.Projection p : HfSchema.Projection.values()) merge(b, p.module(i), l.get(p), out, options, temporaries);
            }
            for (Map.Entry<String, Tensor> e : out.entrySet()) {
                Tensor t = e.getValue();
                DType want = outDtype(t, options);
                if (t.dtype() != want) e.setValue(t = convertOnHost(t, want, temporaries)); // the tensors no adapter touched
                if (isFloat(t.dtype())) bytesByDtype.merge(t.dtype(), t.byteSize(), Long::sum);
            }
            ModelFolder.Config config = ModelFolder.Config.read(baseDir.resolve("config.json")).quantizationConfig(null);
            if (options.ropeTheta() != null) config.ropeTheta(options.ropeTheta());
            // what the file holds: the dtype of (nearly) all of its bytes
            config.dtype(bytesByDtype.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey).orElse(DType.BF16));
            ModelFolder.write(outDir, ModelFolder.singleFile(out), ModelFolder.sideFilesOf(baseDir), config);
        } finally {
            temporaries.forEach(Tensor::close);
        }
    }

    /** Checks, changing nothing, that {@link #write} may write into outDir (callers do it before loading the model). */
    public static void checkOutput(Path baseDir, Path outDir, Options options) throws IOException {
        ModelFolder.checkOutput(outDir, options.force(), inputs(baseDir, options));
    }

    private static Map<String, Path> inputs(Path baseDir, Options options) {
        Map<String, Path> inputs = new LinkedHashMap<>();
        inputs.put("model", baseDir);
        inputs.put("adapter", options.adapterDir());
        return inputs;
    }

    private static boolean isFloat(DType t) { return t == DType.F32 || t == DType.BF16 || t == DType.F16; }

    /** The dtype a base tensor is written in: the chosen one for float tensors, else its own. */
    private static DType outDtype(Tensor base, Options options) {
        return options.dtype() != null && isFloat(base.dtype()) ? options.dtype() : base.dtype();
    }

    private static void merge(Backend b, String module, Linear linear, Map<String, Tensor> out, Options options, List<Tensor> temporaries) {
        Tensor merged = mergedWeight(b, module, linear, outDtype(out.get(module + ".weight"), options), temporaries);
        if (merged != null) out.put(module + ".weight", merged);
    }

    /**
     * The merged weight W + s B A of one projection [out, in], computed in F32 and returned as a
     * host tensor in {@code dtype} (kept in temporaries), or null when the projection has no adapter.
     * The GGUF export takes one weight at a time from here, so a large model never holds more than one.
     */
    public static Tensor mergedWeight(Backend b, String module, Linear linear, DType dtype, List<Tensor> temporaries) {
        if (!(linear instanceof LoraLinear lora)) return null;
        if (!(lora.base() instanceof DenseLinear dense)) {
            throw new IllegalArgumentException(module + ": merging needs the dense base weights (load the base model unquantized)");
        }
        Tensor w = dense.weight();
        try (Tensor delta = b.allocate(DType.F32, w.shape()); Tensor sb = b.allocate(DType.F32, lora.b().value().shape())) {
            b.scale(lora.b().value(), lora.scale(), sb);
            b.matmul(sb, false, lora.a().value(), false, delta, false); // s B A  [out, in]
            try (Tensor wf = b.allocate(DType.F32, w.shape())) {
                b.cast(w, wf);
                b.add(wf, delta, wf);
                return ModelFolder.hostCopy(b, wf, dtype, temporaries);
            }
        }
    }

    /** A host tensor converted to {@code want} (F32, BF16, F16), kept in temporaries. */
    private static Tensor convertOnHost(Tensor t, DType want, List<Tensor> temporaries) {
        Tensor c = Tensor.allocate(want, t.shape());
        temporaries.add(c);
        CpuBackend.fast().cast(t, c);
        return c;
    }
}
