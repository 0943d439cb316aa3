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
import dev.tenfold.llama.JsonFields;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.Range;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
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

    /** Largest LoRA rank accepted (peft's own adapters stay far below; r beyond the layer width is pointless). */
    public static final int MAX_RANK = 1 << 16;
    public static final Range LORA_ALPHA = Range.openClosed(0, 1 << 20), LORA_DROPOUT = Range.closedOpen(0, 1);
    /** peft settings that change which weights are adapted or how, which tenfold does not honour: refused when set. */
    private static final List<String> UNSUPPORTED = List.of("rank_pattern", "alpha_pattern", "layers_to_transform",
            "exclude_modules", "layer_replication", "trainable_token_indices", "target_parameters", "alora_invocation_tokens",
            "use_bdlora", "arrow_config", "kasa_config", "monteclora_config");
    private static final List<String> UNSUPPORTED_FLAGS = List.of("use_dora", "lora_bias", "use_qalora", "fan_in_fan_out");

    /** What adapter_config.json records; the constructor checks every value's range. */
    public record Config(String baseModel, int rank, float alpha, float dropout, Set<String> targetModules,
                         boolean trainEmbeddings, boolean rsLora, Double ropeTheta) {

        public Config {
            if (rank < 1 || rank > MAX_RANK) throw new IllegalArgumentException("r must be in [1, " + MAX_RANK + "], got " + rank);
            LORA_ALPHA.check("lora_alpha", alpha);
            LORA_DROPOUT.check("lora_dropout", dropout);
            targetModules = java.util.Collections.unmodifiableSet(new java.util.LinkedHashSet<>(targetModules));
            if (targetModules.isEmpty()) throw new IllegalArgumentException("target_modules is empty");
            if (ropeTheta != null) LlamaConfig.ROPE_THETA.check("tenfold_rope_theta", ropeTheta);
        }

        ObjectNode toJson() {
            ObjectNode o = JSON.createObjectNode();
            o.put("peft_type", "LORA");
            o.put("task_type", "CAUSAL_LM");
            o.put("base_model_name_or_path", baseModel);
            o.put("r", rank);
            o.put("lora_alpha", alpha);
            o.put("lora_dropout", dropout);
            ArrayNode t = o.putArray("target_modules");
            targetModules.forEach(t::add);
            o.put("bias", "none");
            o.put("fan_in_fan_out", false);
            if (trainEmbeddings) o.putArray("modules_to_save").add("embed_tokens");
            else o.putNull("modules_to_save");
            o.put("use_rslora", rsLora);
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
                if (!leaf.endsWith("_proj") || !Lora.TARGETS.contains(leaf.substring(0, leaf.length() - 5))) {
                    throw new IllegalArgumentException("target_modules entry '" + t + "' is not supported (tenfold adapts "
                            + String.join(", ", Lora.TARGETS.stream().map(x -> x + "_proj").toList()) + ")");
                }
                targets.add(t);
            }
            boolean emb = false;
            for (String m : o.texts("modules_to_save")) {
                if (m.equals("embed_tokens")) emb = true;
                else throw new IllegalArgumentException("modules_to_save '" + m + "' is not supported (only embed_tokens)");
            }
            return new Config(o.text("base_model_name_or_path", ""), (int) o.integer("r", 1, MAX_RANK),
                    (float) o.number("lora_alpha", LORA_ALPHA), (float) o.number("lora_dropout", LORA_DROPOUT, 0),
                    targets, emb, o.bool("use_rslora", false), o.numberOrNull("tenfold_rope_theta", LlamaConfig.ROPE_THETA));
        }
    }

    /** Writes the model's trainable parameters as a PEFT adapter folder (each file atomically). */
    public static void save(Path dir, LlamaModel model, Config config) throws IOException {
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
        Set<String> leaves = new java.util.LinkedHashSet<>();
        for (String t : cfg.targetModules()) leaves.add(t.substring(t.lastIndexOf('.') + 1));
        Lora.attach(model, leaves, cfg.rank(), cfg.alpha(), cfg.rsLora(), 0);
        Lora.setDropout(model, cfg.dropout()); // used only if training continues from this adapter
        if (cfg.trainEmbeddings()) model.trainEmbedding();
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
