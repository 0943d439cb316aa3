package dev.tenfold.tools;

import dev.tenfold.llama.longcontext.Corpus;
import dev.tenfold.llama.longcontext.SynthRecord;
import dev.tenfold.llama.longcontext.SynthTask;
import dev.tenfold.llama.longcontext.Synthesizer;
import dev.tenfold.llama.tokenizer.Tokenizer;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine;

/** Training-data tools; for now {@code synth}, synthetic long-context records. */
@Command(name = "data", mixinStandardHelpOptions = true, description = "Training-data tools.", subcommands = {DataCommand.Synth.class})
final class DataCommand implements Callable<Integer> {
    @Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        return Main.chooseACommand(spec);
    }

    @Command(name = "synth", mixinStandardHelpOptions = true, description = {
            "Write synthetic long-context records (the recipe's conversation format) at target token lengths.",
            "passkey: the chat prompt of eval passkey and its answer; niah: a needle fact in --corpus text (or eval niah's",
            "built-in haystack);",
            "kv: UUID key-value retrieval from a JSON object; multi-detail: 3-5 facts planted in --corpus text,",
            "one question per fact as a multi-turn conversation. Lengths are measured with the model's tokenizer."})
    static final class Synth implements Callable<Integer> {
        @Option(names = "--task", required = true, paramLabel = "passkey|niah|kv|multi-detail") String task;
        @Option(names = "--model", required = true, paramLabel = "DIR", description = "A Hugging Face model folder (its tokenizer.json measures lengths).")
        Path model;
        @Option(names = "--lengths", required = true, split = ",", paramLabel = "N",
                description = "Target lengths in tokens (a k suffix means x1024, e.g. 80k = 81920).") List<String> lengths;
        @Option(names = "--count", required = true, paramLabel = "N", description = "Records per length.")
        @Range(min = 1, max = 10_000_000) int count;
        @Option(names = "--corpus", paramLabel = "FILE", description = "UTF-8 text to build contexts from (required for multi-detail).") Path corpus;
        @Option(names = "--seed", defaultValue = "0", paramLabel = "S") long seed;
        @Option(names = "--tolerance", defaultValue = "0.02", paramLabel = "F",
                description = "Records end between target*(1-F) and target tokens (default: ${DEFAULT-VALUE}).")
        @Range(min = 0, minExclusive = true, max = 0.5, maxExclusive = true) double tolerance;
        @Option(names = "--output", required = true, paramLabel = "FILE.jsonl", description = "Where the records go (never one of the inputs).")
        Path output;
        @Option(names = "--force", description = "Replace the output file if it exists.") boolean force;

        @Override
        public Integer call() throws IOException {
            SynthTask t;
            try {
                t = SynthTask.parse(task);
            } catch (IllegalArgumentException e) {
                throw new Flags.BadFlag("--task: " + e.getMessage());
            }
            int[] targets = Flags.parseLengths("--lengths", lengths);
            if (t.needsCorpus() && corpus == null) {
                throw new Flags.BadFlag("--task " + t + " builds its contexts from a text corpus: give --corpus FILE");
            }
            // Refuse before any work, so an existing file is never touched by accident, and an input
            // (the corpus, the tokenizer) is never the output, --force or not.
            Map<String, Path> inputs = new LinkedHashMap<>();
            inputs.put("--corpus", corpus);
            inputs.put("tokenizer", model.resolve("tokenizer.json"));
            Outputs.checkNotAnInput("--output", output, inputs);
            Outputs.checkWritableFile("--output", output);
            if (Files.exists(output) && !force) {
                throw new IllegalArgumentException(output + " exists; use --force to replace it");
            }
            int longest = 0;
            for (int n : targets) longest = Math.max(longest, n);
            new MemoryCheck("data synth --lengths " + longest, true)
                    .heap("one record's text and ids", MemoryCheck.sat(MemoryCheck.HEAP_PER_PROMPT_TOKEN, longest))
                    .check();
            Tokenizer tokenizer = ModelOptions.tokenizerOf(model);
            if (corpus != null && (t == SynthTask.PASSKEY || t == SynthTask.KV)) {
                System.err.println("tenfold data synth: note: --task " + t + " does not use --corpus");
                corpus = null;
            }
            Corpus c = null;
            if (corpus != null) {
                if (!Files.isRegularFile(corpus)) throw new IllegalArgumentException("--corpus " + corpus + ": no such file");
                try {
                    c = Corpus.load(corpus);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("--corpus " + e.getMessage(), e);
                }
            }
            if (c != null) System.err.println("tenfold data synth: corpus " + corpus + ": " + c.size() + " sentences");
            Synthesizer synth = new Synthesizer(tokenizer, c, tolerance);

            Path parent = output.toAbsolutePath().getParent();
            Files.createDirectories(parent);
            // Written under a temporary name beside the output and renamed into place at the end,
            // so a failed or interrupted run leaves no half-written file under the real name.
            Path tmp = Files.createTempFile(parent, "." + output.getFileName() + ".", ".tmp");
            long[] tokens = new long[targets.length];
            int[] min = new int[targets.length], max = new int[targets.length];
            try {
                try (BufferedWriter w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
                    for (int l = 0; l < targets.length; l++) {
                        min[l] = Integer.MAX_VALUE;
                        for (int i = 0; i < count; i++) {
                            SynthRecord r = synth.generate(t, targets[l], Synthesizer.recordSeed(seed, targets[l], i));
                            w.write(r.toJsonLine());
                            w.write('\n');
                            tokens[l] += r.tokens();
                            min[l] = Math.min(min[l], r.tokens());
                            max[l] = Math.max(max[l], r.tokens());
                            if (i + 1 == count || (i + 1) % Math.max(1, count / 10) == 0) {
                                System.err.printf(Locale.ROOT, "tenfold data synth: %s %,d tokens: %d/%d records%n",
                                        t, targets[l], i + 1, count);
                            }
                        }
                    }
                }
                if (force) Files.move(tmp, output, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                else moveNoReplace(tmp, output);
            } finally {
                Files.deleteIfExists(tmp);
            }
            System.err.printf(Locale.ROOT, "tenfold data synth: wrote %,d %s records to %s%n", (long) count * targets.length, t, output);
            for (int l = 0; l < targets.length; l++) {
                System.err.printf(Locale.ROOT, "  target %,d: %d records, mean %.1f tokens (min %,d, max %,d)%n",
                        targets[l], count, (double) tokens[l] / count, min[l], max[l]);
            }
            return 0;
        }

        // Without --force, a file that appeared meanwhile is not replaced either. (ATOMIC_MOVE would
        // replace it silently on Linux; a plain move checks first, then renames within the folder.)
        private static void moveNoReplace(Path tmp, Path output) throws IOException {
            try {
                Files.move(tmp, output);
            } catch (FileAlreadyExistsException e) {
                throw new IllegalArgumentException(output + " exists; use --force to replace it");
            }
        }
    }
}
