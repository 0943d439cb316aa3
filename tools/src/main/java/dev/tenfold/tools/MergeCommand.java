package dev.tenfold.tools;

import dev.tenfold.engine.DType;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.qlora.Merge;
import dev.tenfold.qlora.ModelFolder;
import dev.tenfold.qlora.PeftAdapter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Base model + adapter -> a merged Hugging Face checkpoint in the base's precision (or --dtype). */
@Command(name = "merge", mixinStandardHelpOptions = true,
        description = "Fold a LoRA adapter into its base model and write a Hugging Face checkpoint, in the base's dtype unless --dtype says otherwise.")
final class MergeCommand implements Callable<Integer> {
    @Mixin ModelOptions model;

    @Option(names = "--output", required = true, paramLabel = "DIR",
            description = "Where to write the merged model: a new or empty folder, never the model's or the adapter's.")
    Path output;

    @Option(names = "--dtype", paramLabel = "bf16|f16|f32",
            description = "The dtype of the merged weights (default: each tensor keeps the base's dtype).")
    String dtype;

    @Option(names = "--force", description = "Replace the model files (config.json, model*.safetensors) of a non-empty output folder.")
    boolean force;

    @Override
    public Integer call() throws Exception {
        if (model.adapter == null) throw new IllegalArgumentException("merge needs --adapter DIR");
        DType d = dtype == null ? null : switch (dtype.toLowerCase(Locale.ROOT)) {
            case "bf16", "bfloat16" -> DType.BF16;
            case "f16", "float16" -> DType.F16;
            case "f32", "float32" -> DType.F32;
            default -> throw new IllegalArgumentException("--dtype " + dtype + ": choose bf16, f16 or f32");
        };
        long t0 = System.nanoTime();
        Double theta = model.ropeTheta != null ? model.ropeTheta : PeftAdapter.readConfig(model.adapter).ropeTheta();
        Merge.Options options = new Merge.Options(theta, d, force, model.adapter);
        try {
            Merge.checkOutput(model.model, output, options); // before minutes of loading
        } catch (ModelFolder.NotEmptyException e) {
            throw new IllegalArgumentException("--output: output folder " + e.folder() + " exists and is not empty (use --force to replace its"
                    + " contents)", e);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--output: " + e.getMessage(), e);
        }
        try (LlamaModel m = model.load()) {
            Merge.write(model.model, m, output, options);
        }
        System.err.printf("tenfold: merged model written to %s%s in %.1f s%n", output,
                theta != null ? " (rope_theta " + theta + ")" : "", (System.nanoTime() - t0) / 1e9);
        return 0;
    }
}
