package dev.tenfold.tools;

import dev.tenfold.llama.LlamaModel;
import dev.tenfold.qlora.Merge;
import dev.tenfold.qlora.PeftAdapter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Base model + adapter -> a merged BF16 Hugging Face checkpoint. */
@Command(name = "merge", mixinStandardHelpOptions = true, description = "Fold a LoRA adapter into its base model and write a BF16 Hugging Face checkpoint.")
final class MergeCommand implements Callable<Integer> {
    @Mixin ModelOptions model;

    @Option(names = "--output", required = true, paramLabel = "DIR", description = "Where to write the merged model (must not hold one).")
    Path output;

    @Override
    public Integer call() throws Exception {
        if (model.adapter == null) throw new IllegalArgumentException("merge needs --adapter DIR");
        long t0 = System.nanoTime();
        Double theta = model.ropeTheta != null ? model.ropeTheta : PeftAdapter.readConfig(model.adapter).ropeTheta();
        try (LlamaModel m = model.load()) {
            Merge.write(model.model, m, theta, output);
        }
        System.err.printf("tenfold: merged model written to %s%s in %.1f s%n", output,
                theta != null ? " (rope_theta " + theta + ")" : "", (System.nanoTime() - t0) / 1e9);
        return 0;
    }
}
