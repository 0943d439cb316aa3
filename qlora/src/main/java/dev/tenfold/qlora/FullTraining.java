package dev.tenfold.qlora;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.llama.DenseLinear;
import dev.tenfold.llama.HfSchema;
import dev.tenfold.llama.JsonFields;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.Range;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Full-parameter training of small models: every weight becomes an F32 master copy with a
 * gradient, and the result is written as a plain Hugging Face checkpoint. Also creates randomly
 * initialised Llama folders, so that a small model can be pre-trained from scratch.
 */
public final class FullTraining {
    private FullTraining() {}

    /** Makes every weight of the model trainable (the base must be dense, not NF4). */
    public static void makeTrainable(LlamaModel model) {
        model.trainEmbedding();
        model.trainNorms();
        model.trainOutput();
        model.mapLinears((module, linear) -> {
            if (!(linear instanceof DenseLinear dense)) {
                throw new IllegalArgumentException(module + ": full training needs dense weights (load the model without quantization)");
            }
            Tensor f32 = model.backend().allocate(DType.F32, dense.weight().shape());
            model.backend().cast(dense.weight(), f32);
            Parameter p = Parameter.of(model.backend(), module + ".weight", f32);
            model.own(p);
            return new TrainableLinear(p);
        });
    }

    /**
     * Writes the trained model as a Hugging Face folder: model.safetensors (BF16 or F32) with every
     * weight under its name, config.json from {@code baseDir} (with the trained rope_theta) and the
     * tokenizer files; config.json is written last.
     */
    public static void save(Path dir, LlamaModel model, Path baseDir, DType dtype) throws IOException {
        Map<String, Tensor> out = new LinkedHashMap<>();
        List<Tensor> temporaries = new ArrayList<>();
        try {
            for (Parameter p : model.parameters()) out.put(p.name(), ModelFolder.hostCopy(model.backend(), p.value(), dtype, temporaries));
            ModelFolder.write(dir, ModelFolder.singleFile(out), ModelFolder.sideFilesOf(baseDir),
                    ModelFolder.Config.read(baseDir.resolve("config.json")).ropeTheta(model.config().ropeTheta()).dtype(dtype));
        } finally {
            temporaries.forEach(Tensor::close);
        }
    }

    /** transformers' allowed initializer_range (the standard deviation of the random weights). */
    static final Range INITIALIZER_RANGE = Range.closed(0, 1);

    /**
     * Writes a randomly initialised Llama folder for {@code configJson} (validated as LlamaConfig):
     * weights normal(0, initializer_range) as transformers initialises them, norms 1, BF16 or F32.
     */
    public static void init(Path configJson, Path outDir, long seed, DType dtype, Path tokenizerJson) throws IOException {
        if (Files.exists(outDir.resolve("config.json"))) {
            throw new IllegalArgumentException(outDir + " already holds a model (config.json); choose another folder");
        }
        ModelFolder.Config config = ModelFolder.Config.read(configJson);
        LlamaConfig c;
        try {
            c = LlamaConfig.parse(config.text());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(configJson + ": " + e.getMessage(), e);
        }
        double std;
        try {
            std = JsonFields.read(configJson).number("initializer_range", INITIALIZER_RANGE, 0.02);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(configJson + ": " + e.getMessage(), e);
        }
        SplittableRandom rng = new SplittableRandom(seed);
        Map<String, Tensor> w = new LinkedHashMap<>();
        try {
            // every weight in checkpoint order, each drawn in turn from the one seeded stream; norms (vectors) are 1
            for (Map.Entry<String, long[]> t : HfSchema.tensors(c).entrySet()) {
                long[] shape = t.getValue();
                w.put(t.getKey(), shape.length == 1 ? ones(dtype, shape[0]) : normal(rng, std, dtype, shape[0], shape[1]));
            }
            ModelFolder.write(outDir, ModelFolder.singleFile(w), tokenizerJson == null ? Map.of() : Map.of("tokenizer.json", tokenizerJson),
                    config.set("model_type", "llama").dtype(dtype));
        } finally {
            w.values().forEach(Tensor::close);
        }
    }

    private static Tensor normal(SplittableRandom rng, double std, DType dtype, long rows, long cols) {
        Tensor t = Tensor.allocate(dtype, rows, cols);
        float[] v = new float[Math.toIntExact(rows * cols)];
        for (int i = 0; i < v.length; i++) v[i] = (float) (rng.nextGaussian() * std);
        t.copyFrom(v);
        return t;
    }

    private static Tensor ones(DType dtype, long n) {
        Tensor t = Tensor.allocate(dtype, n);
        t.fill(1f);
        return t;
    }
}
