package dev.tenfold.qlora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Transfers;
import dev.tenfold.engine.io.AtomicFiles;
import dev.tenfold.engine.io.SafeTensorsFile;
import dev.tenfold.engine.io.SafeTensorsWriter;
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

    /** What adapter_config.json records. */
    public record Config(String baseModel, int rank, float alpha, float dropout, Set<String> targetModules,
                         boolean trainEmbeddings, boolean rsLora, Double ropeTheta) {

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

        static Config fromJson(JsonNode o, Path file) {
            if (!"LORA".equals(o.path("peft_type").asText())) {
                throw new IllegalArgumentException(file + ": peft_type must be LORA, got " + o.path("peft_type"));
            }
            for (String field : new String[] {"r", "lora_alpha", "target_modules"}) {
                if (!o.has(field)) throw new IllegalArgumentException(file + ": missing " + field);
            }
            if (o.path("use_dora").asBoolean(false)) throw new IllegalArgumentException(file + ": DoRA adapters are not supported");
            if (!"none".equals(o.path("bias").asText("none"))) throw new IllegalArgumentException(file + ": bias must be none");
            if (o.path("fan_in_fan_out").asBoolean(false)) throw new IllegalArgumentException(file + ": fan_in_fan_out is not supported");
            java.util.LinkedHashSet<String> targets = new java.util.LinkedHashSet<>();
            JsonNode t = o.get("target_modules");
            if (t.isTextual()) {
                throw new IllegalArgumentException(file + ": target_modules as a regular expression is not supported; give a list");
            }
            for (JsonNode n : t) targets.add(n.asText());
            boolean emb = false;
            for (JsonNode n : o.path("modules_to_save")) {
                if (n.asText().equals("embed_tokens")) emb = true;
                else throw new IllegalArgumentException(file + ": modules_to_save '" + n.asText() + "' is not supported (only embed_tokens)");
            }
            return new Config(o.path("base_model_name_or_path").asText(""), o.get("r").asInt(), (float) o.get("lora_alpha").asDouble(),
                    (float) o.path("lora_dropout").asDouble(0), targets, emb, o.path("use_rslora").asBoolean(false),
                    o.hasNonNull("tenfold_rope_theta") ? o.get("tenfold_rope_theta").asDouble() : null);
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

    /** Reads adapter_config.json. */
    public static Config readConfig(Path dir) throws IOException {
        Path file = dir.resolve(CONFIG);
        try {
            return Config.fromJson(JSON.readTree(Files.readAllBytes(file)), file);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException("no " + CONFIG + " in " + dir + " (is it a PEFT adapter folder?)");
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new IllegalArgumentException(file + ": not valid JSON: " + e.getOriginalMessage());
        }
    }

    /**
     * Attaches the adapter in {@code dir} to the model (LoRA on its target modules, the embedding when
     * saved) and loads its weights; every tensor is checked for presence and shape.
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
