package dev.tenfold.qlora;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Transfers;
import dev.tenfold.engine.io.SafeTensorsModel;
import dev.tenfold.engine.io.SafeTensorsWriter;
import dev.tenfold.llama.DenseLinear;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Linear;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Folds a LoRA adapter into its base: W' = W + s B A for every adapted projection, the trained
 * embedding in place of the original, written as a plain BF16 Hugging Face checkpoint whose
 * config.json carries the RoPE base the adapter was trained with.
 */
public final class Merge {
    private Merge() {}


    /**
     * @param baseDir   the base model folder (dense BF16/F32 weights)
     * @param model     that model with the adapter loaded (PeftAdapter.load)
     * @param ropeTheta the rope_theta for the merged config.json (null: keep the base's)
     */
    public static void write(Path baseDir, LlamaModel model, Double ropeTheta, Path outDir) throws IOException {
        if (Files.exists(outDir.resolve("config.json"))) {
            throw new IllegalArgumentException(outDir + " already holds a model (config.json); choose another --output");
        }
        Files.createDirectories(outDir);
        Backend b = model.backend();
        List<Tensor> temporaries = new ArrayList<>();
        try (SafeTensorsModel base = SafeTensorsModel.open(baseDir)) {
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (String name : base.names()) out.put(name, base.tensor(name));
            if (model.embeddingParameter() != null) {
                out.put("model.embed_tokens.weight", bf16(b, model.embeddingParameter().value(), temporaries));
            }
            for (int i = 0; i < model.numLayers(); i++) {
                LlamaModel.Layer l = model.layer(i);
                String p = "model.layers." + i + ".";
                merge(b, p + "self_attn.q_proj", l.q, out, temporaries);
                merge(b, p + "self_attn.k_proj", l.k, out, temporaries);
                merge(b, p + "self_attn.v_proj", l.v, out, temporaries);
                merge(b, p + "self_attn.o_proj", l.o, out, temporaries);
                merge(b, p + "mlp.gate_proj", l.gate, out, temporaries);
                merge(b, p + "mlp.up_proj", l.up, out, temporaries);
                merge(b, p + "mlp.down_proj", l.down, out, temporaries);
            }
            SafeTensorsWriter.write(outDir.resolve("model.safetensors"), out, Map.of("format", "pt"));
        } finally {
            temporaries.forEach(Tensor::close);
        }
        ModelFolder.copySideFiles(baseDir, outDir);
        // config.json last: a folder without it is visibly incomplete
        ObjectMapper json = new ObjectMapper();
        ObjectNode cfg = (ObjectNode) json.readTree(Files.readAllBytes(baseDir.resolve("config.json")));
        if (ropeTheta != null) cfg.put("rope_theta", ropeTheta);
        cfg.put("torch_dtype", "bfloat16");
        cfg.remove("quantization_config");
        dev.tenfold.engine.io.AtomicFiles.write(outDir.resolve("config.json"), json.writerWithDefaultPrettyPrinter().writeValueAsBytes(cfg));
    }

    private static void merge(Backend b, String module, Linear linear, Map<String, Tensor> out, List<Tensor> temporaries) {
        if (!(linear instanceof LoraLinear lora)) return;
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
                out.put(module + ".weight", bf16(b, wf, temporaries));
            }
        }
    }

    /** f32 rounded to BF16 by the backend, as a host tensor (downloaded from a device) kept in temporaries. */
    private static Tensor bf16(Backend b, Tensor f32, List<Tensor> temporaries) {
        Tensor t = b.allocate(DType.BF16, f32.shape());
        b.cast(f32, t);
        if (t.device().isCpu()) {
            temporaries.add(t);
            return t;
        }
        try (t) {
            return Transfers.onHost(b, t, temporaries);
        }
    }
}
