package dev.tenfold.tools;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.io.AtomicFiles;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.longcontext.GreedyAnswer;
import dev.tenfold.llama.longcontext.NeedleInHaystack;
import dev.tenfold.llama.longcontext.Passkey;
import dev.tenfold.llama.longcontext.RulerNiah;
import dev.tenfold.llama.longcontext.Topics;
import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.tools.charts.AccuracyCurve;
import dev.tenfold.tools.charts.ChartSupport;
import dev.tenfold.tools.charts.Heatmap;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code tenfold eval passkey}, {@code niah}, {@code ruler-niah} and {@code topics}: long-context retrieval over a range of prompt lengths. */
final class LongContextEvals {
    private static final ObjectMapper JSON = new ObjectMapper();

    private LongContextEvals() {}

    /** The most trials per length (or count) an evaluation runs. */
    static final int MAX_TRIALS = 1_000_000;

    /** What both commands share: the model, the lengths, chat or raw prompts, where the report goes. */
    static class Common {
        @Mixin ModelOptions model;

        @Option(names = "--chat", description = "Use the Llama-3 chat template (instruct models); otherwise raw text after BOS.")
        boolean chat;

        @Option(names = "--output", paramLabel = "DIR",
                description = "Folder for report.json and the PNG (default: eval-output/passkey or eval-output/niah, "
                        + "so that one evaluation's report does not replace the other's).")
        Path output;

        /**
         * The --output folder, or eval-output/NAME under the current folder; checked before anything
         * is loaded: a folder that can be written and holds nothing but an earlier report.json and
         * {@code png} of this evaluation (which are replaced).
         */
        Path outputFor(String name, String png) {
            if (output == null) output = Path.of("eval-output", name);
            Outputs.checkOwnFolder("--output", output, n -> n.equals("report.json") || n.equals(png));
            return output;
        }

        @Option(names = "--json", description = "Print the report as one JSON object on standard output instead of the table.")
        boolean json;

        /**
         * Each length (with room for the answer) within what RoPE tells apart, and what the longest
         * prompt needs in memory within what this machine has; before the model loads.
         */
        void checkLengths(int[] lengths, int maxNewTokens) throws IOException {
            if (lengths.length == 0) throw new Flags.BadFlag("--lengths: give at least one length");
            int longest = 0;
            for (int l : lengths) longest = Math.max(longest, l);
            if ((long) longest + maxNewTokens > Flags.MAX_TOKENS) {
                throw new Flags.BadFlag("--lengths " + longest + " with --max-new-tokens " + maxNewTokens + " passes " + Flags.MAX_TOKENS
                        + " positions, the most RoPE tells apart in F32");
            }
            var c = model.config();
            new MemoryCheck("--lengths " + longest, model.onHost())
                    .tensors("weights", model.weightBytes(c, false))
                    .tensors("KV cache", MemoryCheck.kvCache(c, (long) longest + maxNewTokens))
                    .tensors("activations", MemoryCheck.inferenceScratch(c, longest))
                    .heap("prompt", MemoryCheck.sat(MemoryCheck.HEAP_PER_PROMPT_TOKEN, longest))
                    .check();
        }

        void writeReport(ObjectNode report) throws IOException {
            Files.createDirectories(output);
            AtomicFiles.write(output.resolve("report.json"), new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(report));
        }

        void note(String s) { System.err.println("tenfold: " + s); }

        /** The --haystack file's text, or the built-in filler where none is given. */
        static String haystackText(Path haystack) throws IOException {
            if (haystack == null) return NeedleInHaystack.BUILTIN_HAYSTACK;
            String text = Flags.readText("--haystack", haystack);
            if (text.isBlank()) throw new IllegalArgumentException("--haystack " + haystack + ": the file is empty");
            return text;
        }

        /** What was evaluated: the folders and the RoPE base in effect (after --rope-theta or the adapter's). */
        void describe(ObjectNode report, LlamaModel m) {
            report.put("model", model.model.toString());
            if (model.adapter != null) report.put("adapter", model.adapter.toString());
            report.put("rope_theta", m.config().ropeTheta());
            if (m.config().ropeScaling() != null) report.put("rope_scaling", String.valueOf(m.config().ropeScaling()));
        }
    }

    @Command(name = "passkey", mixinStandardHelpOptions = true, description = "Pass-key retrieval: a random 5-digit key hidden at a random depth in filler; "
            + "exact match of the number in the greedy answer, several trials per length.")
    static final class PasskeyCommand extends Common implements Callable<Integer> {
        @Option(names = "--lengths", split = ",", defaultValue = "256,512,1024,2048", paramLabel = "N,N,...",
                description = "Prompt lengths in tokens (default: ${DEFAULT-VALUE}).")
        @Range(min = 1, max = Flags.MAX_TOKENS) int[] lengths;

        @Option(names = "--trials", defaultValue = "5", paramLabel = "N", description = "Trials per length (default: ${DEFAULT-VALUE}).")
        @Range(min = 1, max = MAX_TRIALS) int trials;

        @Option(names = "--seed", defaultValue = "0", description = "Seed of the keys and depths (default: ${DEFAULT-VALUE}).")
        long seed;

        @Option(names = "--max-new-tokens", defaultValue = "24", paramLabel = "N",
                description = "Tokens generated per answer (default ${DEFAULT-VALUE}: room for \"The pass key is N.\" even with a byte-level tokenizer).")
        @Range(min = 1, max = Flags.MAX_TOKENS) int maxNewTokens;

        @Override
        public Integer call() throws IOException {
            outputFor("passkey", "passkey.png");
            checkLengths(lengths, maxNewTokens);
            Tokenizer tok = model.tokenizer();
            long t0 = System.nanoTime();
            Passkey.Result r;
            ObjectNode report;
            try (LlamaModel m = model.load()) {
                r = Passkey.run(tok, chat, lengths, trials, seed, GreedyAnswer.of(m, tok, maxNewTokens), this::note);
                report = (ObjectNode) JSON.readTree(r.toJson());
                describe(report, m);
            }
            writeReport(report);
            double[] acc = r.lengths().stream().mapToDouble(Passkey.LengthResult::accuracy).toArray();
            if (ChartSupport.available()) {
                AccuracyCurve.write(output.resolve("passkey.png"), "pass-key retrieval: " + model.model.getFileName(), lengths, acc);
            } else {
                note("passkey.png skipped: this Java runtime has no java.desktop (report.json has the numbers)");
            }
            if (json) {
                System.out.println(report);
            } else {
                System.out.printf("%8s  %8s  %s%n", "length", "accuracy", "correct");
                for (Passkey.LengthResult l : r.lengths()) {
                    long ok = l.trials().stream().filter(Passkey.Trial::correct).count();
                    System.out.printf("%8d  %7.1f%%  %d/%d%n", l.length(), 100 * l.accuracy(), ok, l.trials().size());
                }
            }
            note(String.format("passkey in %.1f s; report.json and passkey.png in %s", (System.nanoTime() - t0) / 1e9, output));
            return 0;
        }
    }

    @Command(name = "niah", mixinStandardHelpOptions = true, description = "Needle in a haystack over context lengths x depths (the ten-fold recipe's protocol; "
            + "its grid is --lengths 8192,16384,...,81920 --depth-count 10). Greedy answers scored by ROUGE-L and by containing the fact.")
    static final class NiahCommand extends Common implements Callable<Integer> {
        @Option(names = "--lengths", split = ",", defaultValue = "1024,2048,4096,8192", paramLabel = "N,N,...",
                description = "Context lengths in tokens (default: ${DEFAULT-VALUE}).")
        @Range(min = 1, max = Flags.MAX_TOKENS) int[] lengths;

        @Option(names = "--depths", split = ",", paramLabel = "P,P,...", description = "Needle depths in percent, e.g. 0,25,50,75,100.")
        @Range(min = 0, max = 100) double[] depths;

        @Option(names = "--depth-count", defaultValue = "5", paramLabel = "N",
                description = "N depths evenly from 0%% to 100%% when --depths is not given (default: ${DEFAULT-VALUE}).")
        @Range(min = 1, max = 1000) int depthCount;

        @Option(names = "--haystack", paramLabel = "FILE", description = "A text file for the haystack (e.g. essays); default: a built-in filler.")
        Path haystack;

        @Option(names = "--max-new-tokens", defaultValue = "50", paramLabel = "N", description = "Tokens generated per answer (default: ${DEFAULT-VALUE}).")
        @Range(min = 1, max = Flags.MAX_TOKENS) int maxNewTokens;

        @Override
        public Integer call() throws IOException {
            outputFor("niah", "niah.png");
            checkLengths(lengths, maxNewTokens);
            double[] fractions = fractions();
            String text = haystackText(haystack), name = haystack == null ? "built-in" : haystack.toString();
            Tokenizer tok = model.tokenizer();
            long t0 = System.nanoTime();
            NeedleInHaystack.Result r;
            ObjectNode report;
            try (LlamaModel m = model.load()) {
                r = NeedleInHaystack.run(tok, chat, text, name, lengths, fractions, GreedyAnswer.of(m, tok, maxNewTokens), this::note);
                report = (ObjectNode) JSON.readTree(r.toJson());
                describe(report, m);
            }
            writeReport(report);
            double[] percent = new double[fractions.length];
            for (int j = 0; j < percent.length; j++) percent[j] = fractions[j] * 100;
            if (ChartSupport.available()) {
                Heatmap.write(output.resolve("niah.png"), "needle in a haystack (ROUGE-L): " + model.model.getFileName(), lengths, percent,
                        r.rougeGrid());
            } else {
                note("niah.png skipped: this Java runtime has no java.desktop (report.json has the numbers)");
            }
            if (json) {
                System.out.println(report);
            } else {
                printTable(r, percent);
            }
            note(String.format("niah in %.1f s; report.json and niah.png in %s", (System.nanoTime() - t0) / 1e9, output));
            return 0;
        }

        private double[] fractions() {
            if (depths != null) {
                if (depths.length == 0) throw new Flags.BadFlag("--depths: give at least one depth");
                double[] f = new double[depths.length];
                for (int j = 0; j < f.length; j++) f[j] = depths[j] / 100; // each in [0, 100]: @Range
                return f;
            }
            double[] f = new double[depthCount];
            for (int j = 0; j < depthCount; j++) f[j] = depthCount == 1 ? 0.5 : (double) j / (depthCount - 1);
            return f;
        }

        /** Depths down, lengths across (as the recipe's figure), ROUGE-L in the cells. */
        private static void printTable(NeedleInHaystack.Result r, double[] percent) {
            StringBuilder sb = new StringBuilder(String.format("%-8s", "depth"));
            for (int l : r.lengths()) sb.append(String.format("%9d", l));
            System.out.println(sb);
            double[][] g = r.rougeGrid();
            for (int j = 0; j < percent.length; j++) {
                sb = new StringBuilder(String.format("%-8s", String.format("%.0f%%", percent[j])));
                for (int i = 0; i < r.lengths().length; i++) sb.append(String.format("%9.2f", g[i][j]));
                System.out.println(sb);
            }
            System.out.printf("mean ROUGE-L %.3f  contains \"%s\" %.1f%%%n", r.meanRouge(), NeedleInHaystack.KEY_FACT, 100 * r.containsRate());
        }
    }

    @Command(name = "ruler-niah", mixinStandardHelpOptions = true, description = "RULER's multi-needle retrieval: needles \"One of the special magic "
            + "numbers for KEY is: NUMBER.\" at random depths; multikey asks one key among distractors, multivalue all numbers of one key, "
            + "multiquery the numbers of several keys. Score: the fraction of the asked numbers in the greedy answer.")
    static final class RulerNiahCommand extends Common implements Callable<Integer> {
        @Option(names = "--variant", required = true, paramLabel = "multikey|multivalue|multiquery", description = "Which RULER NIAH task.")
        String variant;

        @Option(names = "--lengths", split = ",", defaultValue = "512,1024,2048,4096", paramLabel = "N,N,...",
                description = "Prompt lengths in tokens (default: ${DEFAULT-VALUE}).")
        @Range(min = 1, max = Flags.MAX_TOKENS) int[] lengths;

        @Option(names = "--trials", defaultValue = "5", paramLabel = "N", description = "Trials per length (default: ${DEFAULT-VALUE}).")
        @Range(min = 1, max = MAX_TRIALS) int trials;

        @Option(names = "--seed", defaultValue = "0", description = "Seed of the keys, numbers and depths (default: ${DEFAULT-VALUE}).")
        long seed;

        @Option(names = "--needles", defaultValue = "4", paramLabel = "N",
                description = "Needles per prompt (default: ${DEFAULT-VALUE}, as RULER's niah_multi* tasks).")
        @Range(min = 1, max = 1000) int needles;

        @Option(names = "--queries", paramLabel = "N", description = "multiquery: keys asked at once, at most --needles (default: all the needles, as RULER).")
        @Range(min = 1, max = 1000) Integer queries;

        @Option(names = "--haystack", paramLabel = "FILE", description = "A text file for the haystack (e.g. essays); default: a built-in filler.")
        Path haystack;

        @Option(names = "--max-new-tokens", defaultValue = "64", paramLabel = "N", description = "Tokens generated per answer (default: ${DEFAULT-VALUE}).")
        @Range(min = 1, max = Flags.MAX_TOKENS) int maxNewTokens;

        @Override
        public Integer call() throws IOException {
            RulerNiah.Variant v;
            try {
                v = RulerNiah.Variant.parse(variant);
            } catch (IllegalArgumentException e) {
                throw new Flags.BadFlag("--variant: " + e.getMessage());
            }
            int q = queries == null ? needles : queries;
            if (v == RulerNiah.Variant.MULTIQUERY && q > needles) {
                throw new Flags.BadFlag("--queries must be between 1 and --needles (" + needles + "), got " + q);
            }
            // one folder per variant, so that running all three keeps three reports
            outputFor("ruler-niah-" + v.id(), "ruler-niah-" + v.id() + ".png");
            checkLengths(lengths, maxNewTokens);
            String text = haystackText(haystack), name = haystack == null ? "built-in" : haystack.toString();
            Tokenizer tok = model.tokenizer();
            long t0 = System.nanoTime();
            RulerNiah.Result r;
            ObjectNode report;
            try (LlamaModel m = model.load()) {
                r = RulerNiah.run(tok, chat, text, name, v, needles, q, lengths, trials, seed, GreedyAnswer.of(m, tok, maxNewTokens), this::note);
                report = (ObjectNode) JSON.readTree(r.toJson());
                describe(report, m);
            }
            writeReport(report);
            String png = "ruler-niah-" + v.id() + ".png";
            double[] score = r.lengths().stream().mapToDouble(RulerNiah.LengthResult::score).toArray();
            if (ChartSupport.available()) {
                AccuracyCurve.write(output.resolve(png), "RULER NIAH " + v.id() + ": " + model.model.getFileName(), lengths, score);
            } else {
                note(png + " skipped: this Java runtime has no java.desktop (report.json has the numbers)");
            }
            if (json) {
                System.out.println(report);
            } else {
                System.out.printf("%8s  %8s  %s%n", "length", "score", "samples");
                for (RulerNiah.LengthResult l : r.lengths()) {
                    System.out.printf("%8d  %7.1f%%  %d%n", l.length(), 100 * l.score(), l.trials().size());
                }
            }
            note(String.format("ruler-niah %s in %.1f s; report.json and %s in %s", v.id(), (System.nanoTime() - t0) / 1e9, png, output));
            return 0;
        }
    }

    @Command(name = "topics", mixinStandardHelpOptions = true, description = "LongChat's topic retrieval: a conversation record over N topics "
            + "(\"USER: I would like to discuss the topic of ...\" and some talk each); the model names the first topic. "
            + "Correct when the answer contains it (case ignored).")
    static final class TopicsCommand extends Common implements Callable<Integer> {
        @Option(names = "--topics", required = true, paramLabel = "FILE", description = "The topics, one per line.")
        Path topics;

        @Option(names = "--counts", split = ",", defaultValue = "5,10,20", paramLabel = "N,N,...",
                description = "Topics per conversation (default: ${DEFAULT-VALUE}).")
        @Range(min = 1, max = 100_000) int[] counts;

        @Option(names = "--trials", defaultValue = "5", paramLabel = "N", description = "Conversations per count (default: ${DEFAULT-VALUE}).")
        @Range(min = 1, max = MAX_TRIALS) int trials;

        @Option(names = "--seed", defaultValue = "0", description = "Seed of the topic choice and order (default: ${DEFAULT-VALUE}).")
        long seed;

        @Option(names = "--sentences", defaultValue = "3", paramLabel = "N",
                description = "Filler sentences of talk after each topic (default: ${DEFAULT-VALUE}).")
        @Range(min = 0, max = 1000) int sentences;

        @Option(names = "--max-new-tokens", defaultValue = "20", paramLabel = "N", description = "Tokens generated per answer (default: ${DEFAULT-VALUE}).")
        @Range(min = 1, max = Flags.MAX_TOKENS) int maxNewTokens;

        @Override
        public Integer call() throws IOException {
            if (counts.length == 0) throw new Flags.BadFlag("--counts: give at least one count");
            int most = 0;
            for (int c : counts) most = Math.max(most, c);
            String text = Flags.readText("--topics", topics);
            // read and checked before the model loads: a short list fails at once
            java.util.List<String> list = Topics.parse(text, "--topics " + topics, most);
            outputFor("topics", "topics.png");
            Tokenizer tok = model.tokenizer();
            long t0 = System.nanoTime();
            Topics.Result r;
            ObjectNode report;
            try (LlamaModel m = model.load()) {
                r = Topics.run(tok, chat, list, topics.toString(), counts, sentences, trials, seed, GreedyAnswer.of(m, tok, maxNewTokens), this::note);
                report = (ObjectNode) JSON.readTree(r.toJson());
                describe(report, m);
            }
            writeReport(report);
            double[] acc = r.counts().stream().mapToDouble(Topics.CountResult::accuracy).toArray();
            String[] labels = r.counts().stream().map(c -> Integer.toString(c.count())).toArray(String[]::new);
            if (ChartSupport.available()) {
                AccuracyCurve.write(output.resolve("topics.png"), "topic retrieval: " + model.model.getFileName(), labels, "topics in the conversation", acc);
            } else {
                note("topics.png skipped: this Java runtime has no java.desktop (report.json has the numbers)");
            }
            if (json) {
                System.out.println(report);
            } else {
                System.out.printf("%8s  %8s  %8s  %s%n", "topics", "tokens", "accuracy", "correct");
                for (Topics.CountResult c : r.counts()) {
                    long ok = c.trials().stream().filter(Topics.Trial::correct).count();
                    System.out.printf("%8d  %8.0f  %7.1f%%  %d/%d%n", c.count(), c.meanPromptTokens(), 100 * c.accuracy(), ok, c.trials().size());
                }
            }
            note(String.format("topics in %.1f s; report.json and topics.png in %s", (System.nanoTime() - t0) / 1e9, output));
            return 0;
        }
    }
}
