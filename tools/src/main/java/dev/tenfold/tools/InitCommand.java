package dev.tenfold.tools;

import dev.tenfold.engine.DType;
import dev.tenfold.qlora.FullTraining;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** A randomly initialised Llama folder from a config.json, to pre-train small models with `train --full`. */
@Command(name = "init", mixinStandardHelpOptions = true, description = "Create a randomly initialised Llama model folder from a config.json (pre-train it with train --full).")
final class InitCommand implements Callable<Integer> {
    @Option(names = "--config", required = true, paramLabel = "FILE", description = "A Llama config.json.") Path config;
    @Option(names = "--output", required = true, paramLabel = "DIR") Path output;
    @Option(names = "--tokenizer", paramLabel = "FILE", description = "A tokenizer.json to copy beside the weights.") Path tokenizer;
    @Option(names = "--seed", defaultValue = "0") long seed;
    @Option(names = "--dtype", defaultValue = "f32", paramLabel = "f32|bf16") String dtype;

    @Override
    public Integer call() throws Exception {
        if (!Files.isRegularFile(config)) throw new IllegalArgumentException("--config " + config + ": no such file");
        if (tokenizer != null && !Files.isRegularFile(tokenizer)) throw new IllegalArgumentException("--tokenizer " + tokenizer + ": no such file");
        DType t = switch (dtype.toLowerCase(Locale.ROOT)) {
            case "f32", "float32" -> DType.F32;
            case "bf16", "bfloat16" -> DType.BF16;
            default -> throw new IllegalArgumentException("--dtype " + dtype + ": choose f32 or bf16");
        };
        FullTraining.init(config, output, seed, t, tokenizer);
        System.err.println("tenfold: random model written to " + output);
        return 0;
    }
}
