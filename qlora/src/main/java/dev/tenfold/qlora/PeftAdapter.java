package dev.tenfold.qlora;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Transfers;
import dev.tenfold.engine.cpu.FiniteScan;
import dev.tenfold.engine.io.AtomicFiles;
import dev.tenfold.engine.io.SafeTensorsFile;
import dev.tenfold.engine.io.SafeTensorsWriter;
import dev.tenfold.llama.HfSchema;
import dev.tenfold.llama.JsonFields;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * PEFT LoRA adapters on disk, as Hugging Face peft saves and loads them: adapter_config.json and
 * adapter_model.safetensors with names {@code base_model.model.<module>.lora_A.weight} [r, in],
 * {@code ...lora_B.weight} [out, r], and a trained embedding under
 * {@code base_model.model.model.embed_tokens.weight} (modules_to_save).
 */
public final class PeftAdapter {
    private PeftAdapter() {}

    static final String PREFIX = "base_model.model.";
    public static final String CONFIG = "adapter_config.json";
    public static final String WEIGHTS = "adapter_model.safetensors";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** peft settings that change which weights are adapted or how, which tenfold does not honour: refused when set. */
    private static final List<String> UNSUPPORTED = List.of("rank_pattern", "alpha_pattern", "layers_to_transform",
            "exclude_modules", "layer_replication", "trainable_token_indices", "target_parameters", "alora_invocation_tokens",
            "use_bdlora", "arrow_config", "kasa_config", "monteclora_config");
    private static final List<String> UNSUPPORTED_FLAGS = List.of("use_dora", "lora_bias", "use_qalora", "fan_in_fan_out");

    /**
     * What adapter_config.json records: the LoRA configuration, the base model's folder and the RoPE
     * base the adapter was trained with (null: the base's own). Written by {@link #save}, derived
     * from the model; read back by {@link #readConfig} and {@link #load}.
     */
    public record Config(LoraConfig lora, String baseModel, Double ropeTheta) {
        public Config {
            Objects.requireNonNull(lora, "lora");
            if (ropeTheta != null) LlamaConfig.ROPE_THETA.check("tenfold_rope_theta", ropeTheta);
        }

        ObjectNode toJson() {
            ObjectNode o = JSON.createObjectNode();
            o.put("peft_type", "LORA");
            o.put("task_type", "CAUSAL_LM");
            o.put("base_model_name_or_path", baseModel);
            o.put("r", lora.rank());
            o.put("lora_alpha", lora.alpha());
            o.put("lora_dropout", lora.dropout());
            ArrayNode t = o.putArray("target_modules");
            lora.targetModules().forEach(t::add);
            o.put("bias", "none");
            o.put("fan_in_fan_out", false);
            if (lora.trainEmbeddings()) o.putArray("modules_to_save").add(HfSchema.EMBEDDING_MODULE);
            else o.putNull("modules_to_save");
            o.put("use_rslora", lora.rsLora());
            o.put("use_dora", false);
            o.put("inference_mode", true);
            o.put("init_lora_weights", true);
            // not a PEFT field (PEFT ignores unknown keys): the RoPE base the adapter was trained with
            if (ropeTheta != null) o.put("tenfold_rope_theta", ropeTheta);
            return o;
        }

        /** Reads adapter_config.json's fields; errors name the field and its range (the caller adds the file). */
        static Config from(JsonFields o) {
            String peftType = o.text("peft_type", null);
            if (!"LORA".equals(peftType)) throw new IllegalArgumentException("peft_type must be LORA, got " + o.show("peft_type"));
            for (String field : UNSUPPORTED) {
                if (o.isSet(field)) {
                    throw new IllegalArgumentException(field + " " + o.show(field) + " is not supported (tenfold reads plain LoRA on"
                            + " the same modules of every layer)");
                }
            }
            for (String flag : UNSUPPORTED_FLAGS) {
                if (o.bool(flag, false)) throw new IllegalArgumentException(flag + " true is not supported");
            }
            String bias = o.text("bias", "none");
            if (!bias.equals("none")) throw new IllegalArgumentException("bias '" + bias + "' is not supported (only none)");
            if (o.isText("target_modules")) {
                throw new IllegalArgumentException("target_modules as a regular expression is not supported; give a list");
            }
            if (!o.has("target_modules")) throw new IllegalArgumentException("missing field target_modules");
            java.util.LinkedHashSet<String> targets = new java.util.LinkedHashSet<>();
            for (String t : o.texts("target_modules")) {
                String leaf = t.substring(t.lastIndexOf('.') + 1);
                if (!leaf.endsWith("_proj") || HfSchema.Projection.named(leaf) == null) {
                    throw new IllegalArgumentException("target_modules entry '" + t + "' is not supported (tenfold adapts "
                            + String.join(", ", Lora.TARGETS.stream().map(x -> x + "_proj").toList()) + ")");
                }
                targets.add(t);
            }
            boolean emb = false;
            for (String m : o.texts("modules_to_save")) {
                if (m.equals(HfSchema.EMBEDDING_MODULE)) emb = true;
                else throw new IllegalArgumentException("modules_to_save '" + m + "' is not supported (only " + HfSchema.EMBEDDING_MODULE + ")");
            }
            LoraConfig lora = LoraConfig.of((int) o.integer("r", 1, LoraConfig.MAX_RANK), (float) o.number("lora_alpha", LoraConfig.LORA_ALPHA))
                    .dropout((float) o.number("lora_dropout", LoraConfig.LORA_DROPOUT, 0)).targetModules(targets).trainEmbeddings(emb)
                    .rsLora(o.bool("use_rslora", false));
            return new Config(lora, o.text("base_model_name_or_path", ""), o.numberOrNull("tenfold_rope_theta", LlamaConfig.ROPE_THETA));
        }
    }

    /**
     * What adapter_config.json says for the adapters on {@code model}, derived from them: their
     * LoRA configuration (one for all of them), whether the embedding is trained, the folder the
     * model was loaded from and its RoPE base.
     */
    public static Config configOf(LlamaModel model) {
        Set<LoraConfig> configs = new java.util.LinkedHashSet<>();
        model.mapLinears((module, linear) -> {
            if (linear instanceof LoraLinear lora) configs.add(lora.config().dropout(lora.dropout()));
            return linear;
        });
        if (configs.isEmpty()) throw new IllegalArgumentException("the model has no LoRA adapters to save (attach them with Lora.attach)");
        if (configs.size() > 1) throw new IllegalArgumentException("the model's adapters differ (" + configs + "): one PEFT adapter has one configuration");
        LoraConfig lora = configs.iterator().next().trainEmbeddings(model.embeddingParameter() != null);
        Path source = model.source();
        return new Config(lora, source == null ? "" : source.toAbsolutePath().toString(), model.config().ropeTheta());
    }

    /**
     * Writes the model's trainable parameters as a PEFT adapter folder (each file atomically), with
     * the adapter_config.json of {@link #configOf}.
     */
    public static void save(Path dir, LlamaModel model) throws IOException {
        Config config = configOf(model);
        Files.createDirectories(dir);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        List<Tensor> downloads = new java.util.ArrayList<>(); // host copies of device parameters
        try {
            for (Parameter p : model.parameters()) tensors.put(PREFIX + p.name(), Transfers.onHost(model.backend(), p.value(), downloads));
            SafeTensorsWriter.write(dir.resolve(WEIGHTS), tensors, Map.of("format", "pt"));
        } finally {
            downloads.forEach(Tensor::close);
        }
        AtomicFiles.write(dir.resolve(CONFIG), JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(config.toJson()));
    }

    /** Reads adapter_config.json; a missing file, bad JSON or a bad field is one line naming the file. */
    public static Config readConfig(Path dir) throws IOException {
        Path file = dir.resolve(CONFIG);
        JsonFields fields;
        try {
            fields = JsonFields.read(file);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException("no " + CONFIG + " in " + dir + " (is it a PEFT adapter folder?)");
        }
        try {
            return Config.from(fields);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Attaches the adapter in {@code dir} to the model (LoRA on its target modules, the embedding when
     * saved) and loads its weights; every tensor is checked for presence, shape and finite values
     * (an adapter from a run that diverged holds NaN: refused, naming the tensor).
     */
    public static Config load(Path dir, LlamaModel model) throws IOException {
        Config cfg = readConfig(dir);
        Lora.attach(model, cfg.lora()); // its dropout is used only if training continues from this adapter
        Path weights = dir.resolve(WEIGHTS);
        if (!Files.isRegularFile(weights)) throw new IllegalArgumentException("no " + WEIGHTS + " in " + dir);
        try (SafeTensorsFile f = SafeTensorsFile.open(weights)) {
            Map<String, Boolean> seen = new HashMap<>();
            for (String n : f.names()) seen.put(n, false);
            for (Parameter p : model.parameters()) {
                String name = PREFIX + p.name();
                if (!f.has(name)) throw new IllegalArgumentException(weights + ": missing tensor " + name);
                Tensor t = f.tensor(name);
                if (!Arrays.equals(t.shape(), p.value().shape())) {
                    throw new IllegalArgumentException(weights + ": tensor " + name + " has shape " + Arrays.toString(t.shape())
                            + ", the model needs " + Arrays.toString(p.value().shape()));
                }
                if (t.dtype() != DType.F32 && t.dtype() != DType.BF16 && t.dtype() != DType.F16) {
                    throw new IllegalArgumentException(weights + ": tensor " + name + " has dtype " + t.dtype() + "; expected BF16, F16 or F32");
                }
                FiniteScan.requireFinite(weights + ": tensor " + name, t);
                copyInto(model.backend(), t, p.value());
                seen.put(name, true);
            }
            List<String> unused = seen.entrySet().stream().filter(e -> !e.getValue()).map(Map.Entry::getKey).sorted().toList();
            if (!unused.isEmpty()) {
                throw new IllegalArgumentException(weights + ": " + unused.size() + " tensor(s) match nothing in the model, e.g. " + unused.get(0));
            }
        }
        return cfg;
    }

    /** dst (where the model computes) = the file's src, converted on the host when the dtypes differ. */
    private static void copyInto(Backend b, Tensor src, Tensor dst) {
        if (src.dtype() == dst.dtype()) {
            b.copy(src, dst);
            return;
        }
        try (Tensor converted = Tensor.allocate(dst.dtype(), dst.shape())) {
            for (long i = 0; i < dst.numel(); i++) converted.setFloat(i, src.getFloat(i));
            b.copy(converted, dst);
        }
    }
}
