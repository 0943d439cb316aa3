package dev.tenfold.tools.demo;

import dev.tenfold.engine.io.AtomicFiles;
import dev.tenfold.tools.Flags;
import dev.tenfold.tools.Range;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "The ten-fold context extension on a small model the repository ships, on the CPU, in minutes: "
                + "pass-key retrieval is measured from 1x to 10x the model's 256-token context, the RoPE base is raised "
                + "and LoRA adapters are trained on an NF4 copy of the weights (QLoRA) with synthetic pass-key "
                + "documents, then retrieval is measured again. Writes report.json, heatmaps and the adapter.",
        subcommands = {DemoModelCommand.class})
public final class DemoCommand implements Callable<Integer> {
    /** Where the shipped model's files live on the classpath. */
    static final String MODEL_RESOURCE = "/dev/tenfold/tools/demo/model/";
    static final List<String> MODEL_FILES = List.of("config.json", "model.safetensors", "tokenizer.json");

    @Option(names = "--output", paramLabel = "DIR", defaultValue = "demo-output", description = "Where results go (default: ${DEFAULT-VALUE}).")
    Path output;
    @Option(names = "--model", paramLabel = "DIR", description = "Another small Llama folder to extend (default: the shipped model).")
    Path model;
    @Option(names = "--steps", paramLabel = "N", description = "Training steps (default 540).")
    @Range(min = 1, max = 10_000_000) Integer steps;
    @Option(names = "--batch-size", paramLabel = "N", description = "Documents per step (default 4).")
    @Range(min = 1, max = 100_000) Integer batchSize;
    @Option(names = "--lr", paramLabel = "LR", description = "Peak learning rate (default 2e-3).")
    @Range(min = 0, minExclusive = true) Double lr;
    @Option(names = "--lora-r", paramLabel = "R", description = "LoRA rank (default 32; alpha is 2r).")
    @Range(min = 1, max = 65536) Integer loraR;
    @Option(names = "--rope-theta-multiplier", paramLabel = "X", description = "RoPE base multiplier (default 400, as 500K -> 200M).")
    @Range(min = 0, minExclusive = true) Double thetaMultiplier;
    @Option(names = "--train-length", paramLabel = "N", description = "Longest training document (default 12x the context).")
    @Range(min = 2, max = Flags.MAX_TOKENS) Integer trainLength;
    @Option(names = "--keys", paramLabel = "N", description = "Keys per (length, depth) cell (default 2).")
    @Range(min = 1, max = 1000) Integer keys;
    @Option(names = "--short-share", paramLabel = "P", description = "Share of training documents within the original context (default 0.6).")
    @Range(min = 0, max = 1) Double shortShare;
    @Option(names = "--quick", description = "A short run of the whole pipeline (3 lengths, 2 steps): checks that it works, not that it extends.")
    boolean quick;

    @Override
    public Integer call() throws Exception {
        Demo.Settings d = quick ? Demo.Settings.quick() : Demo.Settings.standard();
        Demo.Settings s = new Demo.Settings(d.factor(), d.lengthCount(), d.depths(), keys != null ? keys : d.keysPerCell(),
                thetaMultiplier != null ? thetaMultiplier : d.ropeThetaMultiplier(), loraR != null ? loraR : d.loraRank(),
                loraR != null ? 2f * loraR : d.loraAlpha(), lr != null ? lr : d.lr(), steps != null ? steps : d.steps(),
                batchSize != null ? batchSize : d.batchSize(), trainLength != null ? trainLength : d.trainLength(),
                shortShare != null ? shortShare : d.shortShare(), d.shortDocs(), d.seed());
        checkOutput(output);
        Path base = model != null ? model : extractShippedModel(output.resolve("base-model"));
        System.err.println("tenfold demo: " + describe(base));
        System.err.println(INTRO);
        Demo.Report r = Demo.run(base, output, s, System.err);
        System.err.println();
        System.err.print(table(r));
        System.err.printf("%nWritten to %s: report.json, passkey-before.png, passkey-after.png, adapter/ (a PEFT adapter).%n", output);
        System.err.printf("Try it: ./tenfold eval passkey --model %s --adapter %s --lengths %d%n", base, output.resolve("adapter"),
                r.extendedContext());
        return 0;
    }

    static final String INTRO = """

            A language model only handles prompts about as long as the documents it was trained on. This demo
            takes a small model trained on 256-token documents and extends it ten-fold, to 2,560 tokens, the way
            "Extending Llama-3's Context Ten-Fold Overnight" did for Llama-3 (8K to 80K): it raises the base of
            the rotary position embedding (RoPE), so that positions ten times further apart look like the ones
            the model knows, then fine-tunes small LoRA adapters over a 4-bit (NF4) copy of the frozen weights
            (QLoRA) on synthetic long documents. The test, before and after, is the pass key: a 5-digit number
            hidden somewhere in a long filler text, which the model must repeat when asked at the end.""";

    /** The before/after table, one row per length. */
    static String table(Demo.Report r) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format("Pass-key accuracy (original context %d tokens, extended %d):%n", r.originalContext(), r.extendedContext()));
        sb.append(String.format("  %8s  %6s  %8s  %6s%n", "tokens", "x", "before", "after"));
        int[] lengths = r.before().lengths();
        for (int i = 0; i < lengths.length; i++) {
            sb.append(String.format("  %8d  %5.1fx  %7.0f%%  %5.0f%%%n", lengths[i], lengths[i] / (double) r.originalContext(),
                    100 * r.before().accuracy(i), 100 * r.after().accuracy(i)));
        }
        double change = 100 * (r.after().lossShort() / r.before().lossShort() - 1);
        sb.append(String.format("Short-context loss: %.4f before, %.4f after (%+.1f%%).%n", r.before().lossShort(), r.after().lossShort(), change));
        sb.append(String.format("Total %.0f s, of which training %.0f s.%n", r.seconds(), r.trainSeconds()));
        return sb.toString();
    }

    static String describe(Path base) throws IOException {
        var c = dev.tenfold.llama.LlamaConfig.load(base);
        long params = (long) c.vocabSize() * c.hiddenSize() * 2 + (long) c.numLayers() * (
                (long) c.hiddenSize() * c.headDim() * (2L * c.numHeads() + 2L * c.numKvHeads()) + 3L * c.hiddenSize() * c.intermediateSize());
        return String.format("a %.1fM-parameter Llama (%d layers, hidden %d, %d query / %d kv heads) trained on %d-token documents (%s)",
                params / 1e6, c.numLayers(), c.hiddenSize(), c.numHeads(), c.numKvHeads(), c.maxPositionEmbeddings(), base);
    }

    /** Refuses to write into a folder that holds something other than an earlier demo's output. */
    static void checkOutput(Path output) throws IOException {
        if (!Files.exists(output)) return;
        if (!Files.isDirectory(output)) throw new IllegalArgumentException("--output " + output + " is a file, not a folder");
        boolean empty;
        try (Stream<Path> s = Files.list(output)) {
            empty = s.findAny().isEmpty();
        }
        if (!empty && !Files.exists(output.resolve("report.json")) && !Files.exists(output.resolve("base-model"))) {
            throw new IllegalArgumentException("--output " + output + " holds other files; choose an empty or new folder");
        }
    }

    /** Copies the shipped model out of the jar into {@code dir} (once) and returns it. */
    static Path extractShippedModel(Path dir) throws IOException {
        Files.createDirectories(dir);
        for (String f : MODEL_FILES) {
            try (InputStream in = DemoCommand.class.getResourceAsStream(MODEL_RESOURCE + f)) {
                if (in == null) throw new IllegalStateException("this build lacks the demo model (" + MODEL_RESOURCE + f + ")");
                byte[] bytes = in.readAllBytes();
                Path p = dir.resolve(f);
                if (!Files.exists(p) || Files.size(p) != bytes.length || !java.util.Arrays.equals(Files.readAllBytes(p), bytes)) {
                    AtomicFiles.write(p, bytes);
                }
            }
        }
        return dir;
    }
}
