package dev.tenfold.tools.demo;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.Backend;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.io.AtomicFiles;
import dev.tenfold.llama.LlamaConfig;
import dev.tenfold.llama.LlamaLoader;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.LoadSpec;
import dev.tenfold.llama.Perplexity;
import dev.tenfold.llama.Quantization;
import dev.tenfold.llama.longcontext.GreedyAnswer;
import dev.tenfold.llama.longcontext.Haystack;
import dev.tenfold.llama.longcontext.Passkey;
import dev.tenfold.llama.longcontext.PasskeyDocs;
import dev.tenfold.llama.tokenizer.Tokenizer;
import dev.tenfold.qlora.Lora;
import dev.tenfold.qlora.LoraConfig;
import dev.tenfold.qlora.LrSchedule;
import dev.tenfold.qlora.Recipe;
import dev.tenfold.qlora.RunFolder;
import dev.tenfold.qlora.Trainer;
import dev.tenfold.qlora.TrainingSettings;
import dev.tenfold.qlora.data.LengthGroupedBatches;
import dev.tenfold.tools.charts.ChartSupport;
import dev.tenfold.tools.charts.Heatmap;
import dev.tenfold.tools.charts.LossCurve;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;

/**
 * The ten-fold context extension, end to end, on a small model: measure pass-key retrieval at 1x to
 * 10x the model's trained context, raise the RoPE base and fine-tune LoRA adapters on an NF4 copy
 * of the weights (QLoRA) with synthetic pass-key documents up to 10x long, then measure again. The
 * recipe of "Extending Llama-3's Context Ten-Fold Overnight", scaled down so that two CPU cores
 * finish it in minutes.
 */
public final class Demo {
    private Demo() {}

    /** What to run. {@link #standard()} is {@code tenfold demo}; {@link #quick()} is the test suite's short run. */
    public record Settings(int factor, int lengthCount, double[] depths, int keysPerCell, double ropeThetaMultiplier,
                           int loraRank, float loraAlpha, double lr, int steps, int batchSize, int trainLength,
                           double shortShare, int shortDocs, long seed) {
        public static Settings standard() {
            return new Settings(10, 10, new double[] {0, 0.25, 0.5, 0.75, 1}, 2, 400, 32, 64, 2e-3, 540, 4, 0, 0.6, 24, 1);
        }

        public static Settings quick() {
            return new Settings(10, 3, new double[] {0.5}, 1, 400, 4, 8, 2e-3, 2, 1, 600, 0.4, 2, 1);
        }

        /** The evaluated lengths: lengthCount points from 1x to factor x the original context. */
        int[] lengths(int original) {
            int[] out = new int[lengthCount];
            for (int i = 0; i < lengthCount; i++) {
                double x = lengthCount == 1 ? factor : 1 + (factor - 1) * i / (double) (lengthCount - 1);
                out[i] = (int) Math.round(original * x);
            }
            return out;
        }
    }

    /** Accuracy per length and per (length, depth), and the short-context loss, of one model. */
    public record Phase(int[] lengths, double[] depths, double[][] scores, double lossShort, List<String> samples) {
        public double accuracy(int i) {
            double s = 0;
            for (double v : scores[i]) s += v;
            return s / scores[i].length;
        }

        ObjectNode toJson(ObjectMapper json) {
            ObjectNode o = json.createObjectNode();
            ObjectNode pk = o.putObject("passkey");
            for (int i = 0; i < lengths.length; i++) pk.put(Integer.toString(lengths[i]), accuracy(i));
            o.put("loss_short", lossShort);
            return o;
        }
    }

    /** The outcome; {@link #toJson} is demo-output/report.json. */
    public record Report(int originalContext, int extendedContext, double ropeThetaBefore, double ropeThetaAfter, Phase before,
                         Phase after, double trainSeconds, double seconds) {
        public ObjectNode toJson() {
            ObjectMapper json = new ObjectMapper();
            ObjectNode o = json.createObjectNode();
            o.put("original_context", originalContext).put("extended_context", extendedContext);
            o.set("before", before.toJson(json));
            o.set("after", after.toJson(json));
            o.put("seconds", seconds);
            o.put("train_seconds", trainSeconds).put("rope_theta_before", ropeThetaBefore).put("rope_theta_after", ropeThetaAfter);
            return o;
        }
    }

    /**
     * Runs the demo on the model folder {@code base} (its max_position_embeddings is the original
     * context) and writes the adapter, report.json and the heatmaps into {@code output}.
     */
    public static Report run(Path base, Path output, Settings s, PrintStream out) throws IOException {
        long t0 = System.nanoTime();
        Files.createDirectories(output);
        Backend cpu = CpuBackend.fast();
        Tokenizer tok = Tokenizer.load(base.resolve("tokenizer.json"));
        LlamaConfig config = LlamaConfig.load(base);
        int original = config.maxPositionEmbeddings();
        int extended = original * s.factor();
        int[] lengths = s.lengths(original);
        PasskeyDocs docs = new PasskeyDocs(tok);
        List<int[]> shortDocs = new ArrayList<>();
        SplittableRandom shortRng = new SplittableRandom(s.seed() + 17);
        for (int i = 0; i < s.shortDocs(); i++) {
            shortDocs.add(docs.passkey(shortRng, docs.minLength() + shortRng.nextInt(original - docs.minLength() + 1)).tokens());
        }

        out.printf("%n1/3  Before: pass-key retrieval at %d lengths, %d to %d tokens (%d trials each), RoPE base %s%n",
                lengths.length, lengths[0], lengths[lengths.length - 1], s.depths().length * s.keysPerCell(), plain(config.ropeTheta()));
        Phase before;
        try (LlamaModel m = LlamaLoader.load(base, cpu)) {
            before = evaluate(m, tok, lengths, s, shortDocs, out);
        }

        double theta = config.ropeTheta() * s.ropeThetaMultiplier();
        out.printf("%n2/3  Extending: RoPE base %s -> %s, NF4 base weights, LoRA r=%d on q,k,v,o, %d steps of %d pass-key documents up to %d tokens%n",
                plain(config.ropeTheta()), plain(theta), s.loraRank(), s.steps(), s.batchSize(), trainLength(s, extended));
        Phase after;
        double trainSeconds;
        Recipe recipe = recipe(s, theta, extended);
        try (LlamaModel m = LlamaLoader.load(base, recipe.load().backend(cpu))) {
            Lora.attach(m, recipe.lora());
            SplittableRandom rng = new SplittableRandom(s.seed());
            int maxTrain = recipe.maxLength();
            List<Trainer.Example> examples = new ArrayList<>();
            int[] exLengths = new int[s.steps() * s.batchSize()];
            for (int i = 0; i < exLengths.length; i++) {
                // a share of documents within the original context keeps short-range retrieval and loss where they were
                int longest = rng.nextDouble() < s.shortShare() ? original : maxTrain;
                int len = docs.minLength() + rng.nextInt(longest - docs.minLength() + 1);
                examples.add(Trainer.Example.nextTokens(docs.passkey(rng, len).tokens(), null));
                exLengths[i] = examples.get(i).ids().length;
            }
            LengthGroupedBatches batches = LengthGroupedBatches.shuffled(exLengths, recipe.batchSize(), s.seed());
            Path adapterDir = output.resolve("adapter");
            Trainer trainer = new Trainer(m, recipe.training(), examples, batches::plan);
            trainer.addListener(RunFolder.create(adapterDir)).addListener(LossCurve.listener(adapterDir))
                    .addListener(new dev.tenfold.tools.ProgressBar(out));
            long t1 = System.nanoTime();
            trainer.fit();
            trainSeconds = (System.nanoTime() - t1) / 1e9;
            out.printf("%n3/3  After: the same prompts, with the adapter and the raised RoPE base%n");
            after = evaluate(m, tok, lengths, s, shortDocs, out);
        }

        Report r = new Report(original, extended, config.ropeTheta(), theta, before, after, trainSeconds, (System.nanoTime() - t0) / 1e9);
        AtomicFiles.write(output.resolve("report.json"), new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsBytes(r.toJson()));
        if (ChartSupport.available()) {
            double[] pct = new double[s.depths().length];
            for (int j = 0; j < pct.length; j++) pct[j] = 100 * s.depths()[j];
            Heatmap.write(output.resolve("passkey-before.png"), "pass key before: RoPE base " + plain(r.ropeThetaBefore()), lengths, pct,
                    before.scores());
            Heatmap.write(output.resolve("passkey-after.png"), "pass key after: RoPE base " + plain(theta) + " + LoRA", lengths, pct,
                    after.scores());
        }
        return r;
    }

    /** Pass-key accuracy on the grid (greedy answers; a key is right when the first number of the answer is it) and the short loss. */
    static Phase evaluate(LlamaModel m, Tokenizer tok, int[] lengths, Settings s, List<int[]> shortDocs, PrintStream out) {
        Haystack prompts = new Haystack(tok, false, Passkey.FILLER);
        Function<int[], String> answer = GreedyAnswer.of(m, tok, 8);
        double[][] scores = new double[lengths.length][s.depths().length];
        List<String> samples = new ArrayList<>();
        SplittableRandom keys = new SplittableRandom(s.seed() + 99); // the same keys before and after
        for (int i = 0; i < lengths.length; i++) {
            int right = 0, total = 0;
            for (int j = 0; j < s.depths().length; j++) {
                int hits = 0;
                for (int k = 0; k < s.keysPerCell(); k++) {
                    int key = 10000 + keys.nextInt(90000);
                    String a = answer.apply(Passkey.prompt(prompts, key, s.depths()[j], lengths[i]).ids());
                    boolean ok = Passkey.matches(a, key);
                    if (ok) hits++;
                    if (j == s.depths().length / 2 && k == 0) samples.add(lengths[i] + ": key " + key + ", answer \"" + a.strip().replace("\n", "\\n") + "\"");
                }
                scores[i][j] = hits / (double) s.keysPerCell();
                right += hits;
                total += s.keysPerCell();
            }
            out.printf("     %5d tokens: %3.0f%%  (%s)%n", lengths[i], 100.0 * right / total, samples.get(samples.size() - 1));
        }
        Backend.LossSum loss = Perplexity.evaluate(m, shortDocs, Integer.MAX_VALUE, Integer.MAX_VALUE);
        out.printf("     short-context loss (%d documents within the original context): %.4f%n", shortDocs.size(), loss.mean());
        return new Phase(lengths, s.depths(), scores, loss.mean(), samples);
    }

    /**
     * The paper's recipe at the demo's scale: the RoPE base raised to {@code theta}, NF4, LoRA on
     * q, k, v, o, a cosine schedule, documents up to {@link #trainLength}.
     */
    static Recipe recipe(Settings s, double theta, int extended) {
        return new Recipe(LoadSpec.defaults().ropeTheta(theta).quantization(Quantization.NF4),
                LoraConfig.of(s.loraRank(), s.loraAlpha()).targets("q,k,v,o").seed(s.seed()),
                TrainingSettings.defaults().lr(s.lr()).schedule(LrSchedule.Kind.COSINE).warmupSteps(Math.min(10, s.steps() / 10))
                        .maxSteps(s.steps()).keepCheckpoints(1).seed(s.seed()),
                trainLength(s, extended), s.batchSize());
    }

    /**
     * The longest training document: as set, or 20% beyond the extended context, so that the
     * longest evaluated prompts are not at the very edge of what training saw.
     */
    static int trainLength(Settings s, int extended) { return s.trainLength() > 0 ? s.trainLength() : extended * 6 / 5; }

    static String plain(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e15 ? String.format("%,d", (long) v) : Double.toString(v);
    }
}
