package dev.tenfold.qlora;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Transfers;
import dev.tenfold.engine.io.AtomicFiles;
import dev.tenfold.engine.io.SafeTensorsModel;
import dev.tenfold.engine.io.SafeTensorsWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writing Hugging Face model folders, in one place for every command that writes one (init,
 * merge, quantize, full training): the weights, the tokenizer and generation files, and
 * config.json last, so that a folder without it is visibly incomplete; each file atomically. Also
 * the checks of an output folder made before anything loads.
 */
public final class ModelFolder {
    private ModelFolder() {}

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Writes the weights of a folder: one model.safetensors, or the shards and their index. */
    @FunctionalInterface
    public interface Weights {
        void write(Path dir) throws IOException;
    }

    /** One model.safetensors of {@code tensors} (host tensors, written in this order), with transformers' metadata. */
    public static Weights singleFile(Map<String, Tensor> tensors) {
        return dir -> SafeTensorsWriter.write(dir.resolve(SafeTensorsModel.SINGLE_FILE), tensors, Map.of("format", "pt"));
    }

    /**
     * Writes a model folder into {@code dir} (created when missing): the weights, then the side
     * files ({@code sideFiles}: the name in the folder to the file copied there; missing ones are
     * skipped), then config.json.
     */
    public static void write(Path dir, Weights weights, Map<String, Path> sideFiles, Config config) throws IOException {
        Files.createDirectories(dir);
        weights.write(dir);
        for (Map.Entry<String, Path> f : sideFiles.entrySet()) {
            if (Files.isRegularFile(f.getValue())) AtomicFiles.write(dir.resolve(f.getKey()), Files.readAllBytes(f.getValue()));
        }
        AtomicFiles.write(dir.resolve("config.json"), (JSON.writerWithDefaultPrettyPrinter().writeValueAsString(config.json) + "\n")
                .getBytes(StandardCharsets.UTF_8));
    }

    /** The side files of the model folder {@code from}: its tokenizer and generation files, under their names. */
    public static Map<String, Path> sideFilesOf(Path from) {
        Map<String, Path> out = new LinkedHashMap<>();
        for (String f : SIDE_FILES) out.put(f, from.resolve(f));
        return out;
    }

    /**
     * The config.json a written folder gets: read from a file (the base model's), then changed
     * where the written weights differ (RoPE base, dtype, quantization), everything else kept.
     */
    public static final class Config {
        private final ObjectNode json;

        private Config(ObjectNode json) { this.json = json; }

        /** The JSON object in {@code file}; not JSON or not an object is an error naming the file. */
        public static Config read(Path file) throws IOException {
            JsonNode n;
            try {
                n = JSON.readTree(Files.readAllBytes(file));
            } catch (JacksonException e) {
                throw new IllegalArgumentException(file + ": not valid JSON: " + e.getOriginalMessage(), e);
            }
            if (!(n instanceof ObjectNode o)) throw new IllegalArgumentException(file + ": not a JSON object");
            return new Config(o);
        }

        /** The text as it will be written (for checking it as a LlamaConfig first). */
        public String text() { return json.toString(); }

        /** The JSON text of one field (null when absent). */
        public String text(String field) { return json.has(field) ? json.get(field).toString() : null; }

        /** The RoPE base, where the layout keeps it: rope_parameters (transformers 5), rope_theta (4), or both when both are there. */
        public Config ropeTheta(double theta) {
            setRopeTheta(json, theta);
            return this;
        }

        /** What the weights hold: "dtype" (transformers 5) and "torch_dtype" (4), whichever the config has, else its layout's. */
        public Config dtype(DType dtype) {
            setDtype(json, dtype);
            return this;
        }

        /** The quantization_config (plain values: maps, strings, numbers, booleans), or none when null. */
        public Config quantizationConfig(Map<String, Object> qc) {
            if (qc == null) json.remove("quantization_config");
            else json.set("quantization_config", JSON.valueToTree(qc));
            return this;
        }

        /** Whether the config has a non-null {@code field}. */
        public boolean has(String field) { return json.hasNonNull(field); }

        /** A text field set. */
        public Config set(String field, String value) {
            json.put(field, value);
            return this;
        }
    }

    /** A new host copy of {@code t} (where {@code b} computes) in {@code dtype}, rounded once, kept in {@code temporaries}. */
    static Tensor hostCopy(Backend b, Tensor t, DType dtype, List<Tensor> temporaries) {
        if (t.dtype() == dtype) {
            Tensor host = Transfers.download(b, t);
            temporaries.add(host);
            return host;
        }
        try (Tensor cast = b.allocate(dtype, t.shape())) {
            b.cast(t, cast);
            Tensor host = Transfers.download(b, cast);
            temporaries.add(host);
            return host;
        }
    }

    /** The tokenizer and generation files copied into every model folder tenfold writes. */
    public static final List<String> SIDE_FILES = List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "generation_config.json");

    /** An output folder that holds files: written into only with force (which replaces its model files). */
    public static final class NotEmptyException extends IllegalArgumentException {
        private final transient Path folder;

        NotEmptyException(Path folder) {
            super("output folder " + folder + " exists and is not empty (force replaces its model files; other files are kept)");
            this.folder = folder;
        }

        public Path folder() { return folder; }
    }

    /**
     * Checks, changing nothing, that {@code outDir} may receive a model: not a file; never one of
     * the {@code inputs} (what each is, e.g. "model" or "adapter", to its folder; null folders are
     * skipped); empty or missing, unless {@code force}. Commands call it before loading anything.
     */
    public static void checkOutput(Path outDir, boolean force, Map<String, Path> inputs) throws IOException {
        if (Files.exists(outDir) && !Files.isDirectory(outDir)) throw new IllegalArgumentException("output " + outDir + " exists and is not a folder");
        if (!Files.isDirectory(outDir)) return;
        for (Map.Entry<String, Path> in : inputs.entrySet()) {
            if (in.getValue() != null && Files.exists(in.getValue()) && Files.isSameFile(outDir, in.getValue())) {
                throw new IllegalArgumentException("output folder " + outDir + " is the " + in.getKey() + " folder; choose another");
            }
        }
        if (!force && !isEmpty(outDir)) throw new NotEmptyException(outDir);
    }

    /**
     * {@link #checkOutput}, then makes the folder ready: created if missing; with force, the files
     * that make it look like a model (config.json first) and old weights are removed, so a failed
     * run cannot leave stale ones looking valid. The user's other files are never touched.
     */
    public static void prepareOutput(Path outDir, boolean force, Map<String, Path> inputs) throws IOException {
        checkOutput(outDir, force, inputs);
        if (Files.isDirectory(outDir) && !isEmpty(outDir)) {
            Files.deleteIfExists(outDir.resolve("config.json"));
            Files.deleteIfExists(outDir.resolve(SafeTensorsModel.INDEX_FILE));
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(outDir, "model*.safetensors")) {
                for (Path f : ds) Files.deleteIfExists(f);
            }
        }
        Files.createDirectories(outDir);
    }

    private static boolean isEmpty(Path dir) throws IOException {
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            return !ds.iterator().hasNext();
        }
    }

    /** The name config.json gives a dtype (torch's): float32, bfloat16, float16. */
    public static String torchName(DType dtype) {
        return switch (dtype) {
            case F32 -> "float32";
            case BF16 -> "bfloat16";
            case F16 -> "float16";
            default -> throw new IllegalArgumentException("no config.json dtype for " + dtype);
        };
    }

    /**
     * Sets what the weights hold in a config.json: "dtype" (transformers 5) and "torch_dtype" (4),
     * whichever the config has, else the one of its layout, so that the two never disagree.
     */
    static void setDtype(ObjectNode cfg, DType dtype) {
        String name = torchName(dtype);
        boolean v5 = cfg.has("dtype") || cfg.has("rope_parameters");
        if (cfg.has("dtype") || v5) cfg.put("dtype", name);
        if (cfg.has("torch_dtype") || !v5) cfg.put("torch_dtype", name);
    }

    /** Sets the RoPE base where the config keeps it: rope_parameters (transformers 5), rope_theta (4), or both when both are there. */
    static void setRopeTheta(ObjectNode cfg, double theta) {
        boolean v5 = cfg.path("rope_parameters").isObject();
        if (v5) ((ObjectNode) cfg.get("rope_parameters")).put("rope_theta", theta);
        if (cfg.has("rope_theta") || !v5) cfg.put("rope_theta", theta);
    }
}
