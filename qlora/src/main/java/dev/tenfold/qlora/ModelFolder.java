package dev.tenfold.qlora;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.io.AtomicFiles;
import dev.tenfold.engine.io.SafeTensorsModel;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** What a Hugging Face model folder carries beside its weights, for the commands that write one. */
public final class ModelFolder {
    private ModelFolder() {}

    /** The tokenizer and generation files copied into every model folder tenfold writes. */
    public static final List<String> SIDE_FILES = List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "generation_config.json");

    /** Copies the side files that {@code from} has into {@code to}, each atomically; returns how many. */
    public static int copySideFiles(Path from, Path to) throws IOException {
        int n = 0;
        for (String f : SIDE_FILES) {
            Path src = from.resolve(f);
            if (Files.isRegularFile(src)) {
                AtomicFiles.write(to.resolve(f), Files.readAllBytes(src));
                n++;
            }
        }
        return n;
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
        if (!force && !isEmpty(outDir)) {
            throw new IllegalArgumentException("output folder " + outDir + " exists and is not empty (use --force to replace its contents)");
        }
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
