package dev.tenfold.tools;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.io.TextFiles;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.qlora.FullTraining;
import java.io.IOException;
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
    @Option(names = "--output", required = true, paramLabel = "DIR", description = "A new or empty folder for the model.") Path output;
    @Option(names = "--tokenizer", paramLabel = "FILE", description = "A tokenizer.json to copy beside the weights.") Path tokenizer;
    @Option(names = "--seed", defaultValue = "0") long seed;
    @Option(names = "--dtype", defaultValue = "f32", paramLabel = "f32|bf16") String dtype;

    @Override
    public Integer call() throws Exception {
        DType t = switch (dtype.toLowerCase(Locale.ROOT)) {
            case "f32", "float32" -> DType.F32;
            case "bf16", "bfloat16" -> DType.BF16;
            default -> throw new Flags.BadFlag("--dtype " + dtype + ": choose f32 or bf16");
        };
        if (!Files.isRegularFile(config)) throw new IllegalArgumentException("--config " + config + ": no such file");
        if (tokenizer != null && !Files.isRegularFile(tokenizer)) throw new IllegalArgumentException("--tokenizer " + tokenizer + ": no such file");
        Outputs.checkNewFolder("--output", output);
        checkSize(readConfig(), t);
        FullTraining.init(config, output, seed, t, tokenizer);
        System.err.println("tenfold: random model written to " + output);
        return 0;
    }

    private LlamaConfig readConfig() throws IOException {
        try {
            return LlamaConfig.parse(TextFiles.readUtf8(config));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(config + ": " + e.getMessage(), e);
        }
    }

    /** The weights are all made in memory, then written: both memory and the disk must hold them. */
    private void checkSize(LlamaConfig c, DType t) throws IOException {
        long largest = Math.max((long) c.vocabSize() * c.hiddenSize(), (long) c.intermediateSize() * c.hiddenSize());
        largest = Math.max(largest, (long) c.numHeads() * c.headDim() * c.hiddenSize());
        if (largest > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(config + ": a weight of " + largest + " values (vocab_size, intermediate_size or heads x head_dim"
                    + " times hidden_size); init makes weights of at most " + Integer.MAX_VALUE);
        }
        long bytes = MemoryCheck.sat(MemoryCheck.parameters(c), t == DType.F32 ? 4 : 2);
        String what = "init of " + config + " (" + c.numLayers() + " layers, hidden " + c.hiddenSize() + ", "
                + String.format(Locale.ROOT, "%,d", MemoryCheck.parameters(c)) + " parameters)";
        new MemoryCheck(what, true)
                .tensors("weights", bytes)
                .heap("the largest weight while it is drawn", 4 * largest)
                .check();
        Path existing = output.toAbsolutePath();
        while (!Files.exists(existing)) existing = existing.getParent();
        long free = Files.getFileStore(existing).getUsableSpace();
        if (bytes > free) {
            throw new IllegalArgumentException(what + " writes about " + MemoryCheck.bytes(bytes) + ", and " + existing + " has "
                    + MemoryCheck.bytes(free) + " free");
        }
    }
}
