package dev.tenfold.qlora;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Transfers;
import dev.tenfold.engine.io.SafeTensorsWriter;
import dev.tenfold.llama.DenseLinear;
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
                throw new IllegalArgumentException(module + ": full training needs dense weights (use --quantize none)");
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
        Files.createDirectories(dir);
        Map<String, Tensor> out = new LinkedHashMap<>();
        List<Tensor> temporaries = new ArrayList<>();
        Backend b = model.backend();
        try {
            for (Parameter p : model.parameters()) {
                Tensor t = p.value();
                if (dtype != DType.F32) {
                    t = b.allocate(dtype, p.value().shape());
                    b.cast(p.value(), t);
                    temporaries.add(t);
                }
                out.put(p.name(), Transfers.onHost(b, t, temporaries)); // a device tensor is written from a host copy
            }
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), out, Map.of("format", "pt"));
        } finally {
            temporaries.forEach(Tensor::close);
        }
        ModelFolder.copySideFiles(baseDir, dir);
        ObjectMapper json = new ObjectMapper();
        ObjectNode cfg = (ObjectNode) json.readTree(Files.readAllBytes(baseDir.resolve("config.json")));
        ModelFolder.setRopeTheta(cfg, model.config().ropeTheta());
        ModelFolder.setDtype(cfg, dtype);
        dev.tenfold.engine.io.AtomicFiles.write(dir.resolve("config.json"), json.writerWithDefaultPrettyPrinter().writeValueAsBytes(cfg));
    }

    /** transformers' allowed initializer_range (the standard deviation of the random weights). */
    static final Range INITIALIZER_RANGE = Range.closed(0, 1);

    /**
     * Writes a randomly initialised Llama folder for {@code configJson} (validated as LlamaConfig):
     * weights normal(0, initializer_range) as transformers initialises them, norms 1, BF16 or F32.
     */
    public static void init(Path configJson, Path outDir, long seed, DType dtype, Path tokenizerJson) throws IOException {
        if (Files.exists(outDir.resolve("config.json"))) {
            throw new IllegalArgumentException(outDir + " already holds a model (config.json); choose another --output");
        }
        ObjectMapper json = new ObjectMapper();
        ObjectNode cfgNode;
        try {
            cfgNode = (ObjectNode) json.readTree(Files.readAllBytes(configJson));
        } catch (com.fasterxml.jackson.core.JacksonException | ClassCastException e) {
            throw new IllegalArgumentException(configJson + ": not a JSON object");
        }
        LlamaConfig c;
        try {
            c = LlamaConfig.parse(cfgNode.toString());
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
        long h = c.hiddenSize(), q = (long) c.numHeads() * c.headDim(), kv = (long) c.numKvHeads() * c.headDim(), m = c.intermediateSize();
        Map<String, Tensor> w = new LinkedHashMap<>();
        try {
            w.put("model.embed_tokens.weight", normal(rng, std, dtype, c.vocabSize(), h));
            for (int i = 0; i < c.numLayers(); i++) {
                String p = "model.layers." + i + ".";
                w.put(p + "input_layernorm.weight", ones(dtype, h));
                w.put(p + "self_attn.q_proj.weight", normal(rng, std, dtype, q, h));
                w.put(p + "self_attn.k_proj.weight", normal(rng, std, dtype, kv, h));
                w.put(p + "self_attn.v_proj.weight", normal(rng, std, dtype, kv, h));
                w.put(p + "self_attn.o_proj.weight", normal(rng, std, dtype, h, q));
                w.put(p + "post_attention_layernorm.weight", ones(dtype, h));
                w.put(p + "mlp.gate_proj.weight", normal(rng, std, dtype, m, h));
                w.put(p + "mlp.up_proj.weight", normal(rng, std, dtype, m, h));
                w.put(p + "mlp.down_proj.weight", normal(rng, std, dtype, h, m));
            }
            w.put("model.norm.weight", ones(dtype, h));
            if (!c.tieWordEmbeddings()) w.put("lm_head.weight", normal(rng, std, dtype, c.vocabSize(), h));
            Files.createDirectories(outDir);
            SafeTensorsWriter.write(outDir.resolve("model.safetensors"), w, Map.of("format", "pt"));
        } finally {
            w.values().forEach(Tensor::close);
        }
        if (tokenizerJson != null) dev.tenfold.engine.io.AtomicFiles.write(outDir.resolve("tokenizer.json"), Files.readAllBytes(tokenizerJson));
        cfgNode.put("model_type", "llama");
        ModelFolder.setDtype(cfgNode, dtype);
        dev.tenfold.engine.io.AtomicFiles.write(outDir.resolve("config.json"), json.writerWithDefaultPrettyPrinter().writeValueAsBytes(cfgNode));
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
