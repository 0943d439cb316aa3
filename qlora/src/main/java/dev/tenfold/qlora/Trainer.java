package dev.tenfold.qlora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Transfers;
import dev.tenfold.engine.io.SafeTensorsFile;
import dev.tenfold.engine.io.SafeTensorsWriter;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.TrainingStep;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The training loop: for each optimizer step, one batch of sequences is run through
 * {@link TrainingStep} (gradients accumulated over the batch, each token weighted equally: the
 * loss is the mean over the batch's scored tokens), the global gradient norm is clipped, and AdamW
 * updates the trainable parameters at the scheduled learning rate. Metrics go to metrics.jsonl;
 * checkpoints (a usable PEFT adapter plus the optimizer state) are written atomically, and
 * {@link #train} resumes from the newest one so that a killed run finishes bit-identical to an
 * uninterrupted one on the CPU.
 *
 * <p>It runs on the model's backend: gradients, AdamW moments and every op stay on its device; per
 * step only the loss and the gradient norm come back (as doubles), and a checkpoint downloads the
 * parameters and moments it writes.
 */
public final class Trainer {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One training sequence: input ids and, per position, the id to predict (-100 = no loss). */
    public record Example(int[] ids, int[] targets, int[] positions) {
        public Example {
            if (ids.length == 0 || targets.length != ids.length || (positions != null && positions.length != ids.length)) {
                throw new IllegalArgumentException("example: ids, targets and positions must have one non-zero length");
            }
        }

        /** A loaded record: its ids but the last, each predicting the next token's label. */
        public static Example of(dev.tenfold.qlora.data.TrainingRecord r) {
            return new Example(java.util.Arrays.copyOf(r.inputIds(), r.length() - 1), r.targets(), null);
        }

        public int scoredTokens() {
            int n = 0;
            for (int t : targets) if (t != -100) n++;
            return n;
        }
    }

    /** Every record of a data set as an example, in order (indexes match the data set's). */
    public static List<Example> examples(dev.tenfold.qlora.data.JsonlDataset data) {
        List<Example> out = new ArrayList<>(data.size());
        for (dev.tenfold.qlora.data.TrainingRecord r : data.records()) out.add(Example.of(r));
        return out;
    }

    /** The batches of one epoch, as indexes into the examples (deterministic for a given epoch). */
    @FunctionalInterface
    public interface BatchPlan {
        List<int[]> plan(int epoch);
    }

    /** Settings of a run. */
    public record Settings(double lr, LrSchedule.Kind schedule, int warmupSteps, int epochs, Integer maxSteps,
                           float beta1, float beta2, float eps, float weightDecay, double maxGradNorm,
                           int saveEvery, int keepCheckpoints, long seed) {
        public Settings(double lr, LrSchedule.Kind schedule, int warmupSteps, int epochs, Integer maxSteps, float beta1, float beta2,
                        float eps, float weightDecay, double maxGradNorm, int saveEvery, int keepCheckpoints) {
            this(lr, schedule, warmupSteps, epochs, maxSteps, beta1, beta2, eps, weightDecay, maxGradNorm, saveEvery, keepCheckpoints, 0);
        }

        public static Settings recipe() {
            return new Settings(5e-5, LrSchedule.Kind.LINEAR, 0, 1, null, 0.9f, 0.999f, 1e-8f, 0f, 1.0, 0, 2, 0);
        }
    }

    /** What a step did. */
    public record StepMetrics(int step, int totalSteps, int epoch, double loss, long scoredTokens, long tokens, double lr,
                              double gradNorm, double seconds, double elapsedSeconds) {}

    /** Writes the trained model in its user-facing form (a PEFT adapter, or a whole checkpoint for full training). */
    @FunctionalInterface
    public interface OutputWriter {
        void write(Path dir, LlamaModel model) throws IOException;
    }

    /** Receives each step's metrics (progress bars, tests). */
    @FunctionalInterface
    public interface Listener {
        void onStep(StepMetrics m);
    }

    private final LlamaModel model;
    private final List<Example> examples;
    private final BatchPlan plan;
    private final Settings settings;
    private final Path output;
    private final OutputWriter writer;
    private final List<Parameter> params;
    private final Tensor[] m;
    private final Tensor[] v;
    private final int stepsPerEpoch;
    private final int totalSteps;

    /** A LoRA run whose output (and every checkpoint) is a PEFT adapter. */
    public Trainer(LlamaModel model, List<Example> examples, BatchPlan plan, Settings settings, Path output,
                   PeftAdapter.Config adapterConfig) {
        this(model, examples, plan, settings, output, (dir, m) -> PeftAdapter.save(dir, m, adapterConfig));
    }

    public Trainer(LlamaModel model, List<Example> examples, BatchPlan plan, Settings settings, Path output, OutputWriter writer) {
        this.model = model;
        this.examples = examples;
        this.plan = plan;
        this.settings = settings;
        this.output = output;
        this.writer = writer;
        this.params = model.parameters();
        if (params.isEmpty()) throw new IllegalArgumentException("nothing to train: attach LoRA or train the embedding first");
        this.stepsPerEpoch = plan.plan(0).size();
        if (stepsPerEpoch == 0) throw new IllegalArgumentException("no training batches (is the data empty?)");
        this.totalSteps = settings.maxSteps() != null ? settings.maxSteps() : settings.epochs() * stepsPerEpoch;
        if (totalSteps <= 0) throw new IllegalArgumentException("no steps to run (epochs " + settings.epochs() + ")");
        m = new Tensor[params.size()];
        v = new Tensor[params.size()];
        Backend b = model.backend();
        for (int i = 0; i < params.size(); i++) {
            m[i] = b.allocate(dev.tenfold.engine.DType.F32, params.get(i).value().shape());
            v[i] = b.allocate(dev.tenfold.engine.DType.F32, params.get(i).value().shape());
            model.own(m[i]);
            model.own(v[i]);
        }
    }

    public int totalSteps() { return totalSteps; }

    public int stepsPerEpoch() { return stepsPerEpoch; }

    /**
     * Runs the remaining steps (all of them, or those after the newest checkpoint in the output
     * folder when {@code resume}), then writes the final adapter, metrics and the loss curve.
     * Returns the number of the step it started from.
     */
    public int train(boolean resume, Listener listener) throws IOException {
        Files.createDirectories(output);
        Backend b = model.backend();
        LrSchedule schedule = new LrSchedule(settings.schedule(), settings.lr(), settings.warmupSteps(), totalSteps);
        int start = 0;
        if (resume) start = restoreNewestCheckpoint();
        truncateMetrics(start);
        long t0 = System.nanoTime();
        List<int[]> epochPlan = null;
        int planEpoch = -1;
        try (BufferedWriter metrics = Files.newBufferedWriter(output.resolve("metrics.jsonl"), StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
            for (int step = start; step < totalSteps; step++) {
                long s0 = System.nanoTime();
                int epoch = step / stepsPerEpoch;
                if (epoch != planEpoch) {
                    epochPlan = plan.plan(epoch);
                    planEpoch = epoch;
                }
                int[] batch = epochPlan.get(step % stepsPerEpoch);
                long scored = 0, tokens = 0;
                for (int i : batch) {
                    scored += examples.get(i).scoredTokens();
                    tokens += examples.get(i).ids().length;
                }
                for (Parameter p : params) b.fill(p.grad(), 0f);
                double lossSum = 0;
                float gradScale = scored == 0 ? 0f : 1f / scored;
                for (int j = 0; j < batch.length; j++) {
                    Example e = examples.get(batch[j]);
                    int[] pos = e.positions() != null ? e.positions() : TrainingStep.consecutive(e.ids().length);
                    // dropout masks depend only on (seed, step, sequence): a resumed run draws the same ones
                    Lora.setDropoutSeed(model, settings.seed() * 1_000_003L + (long) step * 4099L + j);
                    lossSum += TrainingStep.run(model, e.ids(), e.targets(), pos, gradScale).sum();
                }
                Lora.setDropoutSeed(model, null);
                List<Tensor> grads = new ArrayList<>();
                for (Parameter p : params) grads.add(p.grad());
                double norm = b.globalNorm(grads);
                if (settings.maxGradNorm() > 0 && norm > settings.maxGradNorm()) {
                    float coef = (float) (settings.maxGradNorm() / (norm + 1e-6)); // as torch.nn.utils.clip_grad_norm_
                    for (Tensor g : grads) b.scale(g, coef, g);
                }
                double lr = schedule.at(step);
                Backend.AdamW hp = new Backend.AdamW((float) lr, settings.beta1(), settings.beta2(), settings.eps(), settings.weightDecay());
                for (int i = 0; i < params.size(); i++) b.adamw(params.get(i).value(), params.get(i).grad(), m[i], v[i], hp, step + 1);
                double loss = scored == 0 ? Double.NaN : lossSum / scored;
                StepMetrics sm = new StepMetrics(step + 1, totalSteps, epoch, loss, scored, tokens, lr, norm,
                        (System.nanoTime() - s0) / 1e9, (System.nanoTime() - t0) / 1e9);
                ObjectNode line = JSON.createObjectNode().put("step", sm.step()).put("epoch", epoch).put("loss", loss)
                        .put("lr", lr).put("grad_norm", norm).put("tokens", tokens).put("scored_tokens", scored)
                        .put("seconds", sm.seconds());
                metrics.write(line.toString());
                metrics.newLine();
                metrics.flush();
                if (listener != null) listener.onStep(sm);
                if (settings.saveEvery() > 0 && (step + 1) % settings.saveEvery() == 0 && step + 1 < totalSteps) {
                    saveCheckpoint(step + 1);
                }
            }
        }
        writer.write(output, model);
        writeLossCurve();
        return start;
    }

    // ------------------------------------------------------------------ checkpoints

    /**
     * Writes checkpoint-STEP atomically: the output form (usable as it is), the exact F32 parameters
     * and optimizer state, and trainer_state.json; keeps the newest few.
     */
    void saveCheckpoint(int step) throws IOException {
        Path dir = output.resolve("checkpoint-" + step);
        Path tmp = output.resolve(".checkpoint-" + step + ".tmp");
        deleteTree(tmp);
        Files.createDirectories(tmp);
        writer.write(tmp, model);
        Backend b = model.backend();
        List<Tensor> downloads = new ArrayList<>(); // host copies of device tensors (none on the host)
        try {
            Map<String, Tensor> values = new LinkedHashMap<>();
            for (Parameter p : params) values.put(p.name(), Transfers.onHost(b, p.value(), downloads));
            SafeTensorsWriter.write(tmp.resolve("parameters.safetensors"), values, Map.of());
        } finally {
            downloads.forEach(Tensor::close);
            downloads.clear();
        }
        try {
            Map<String, Tensor> state = new LinkedHashMap<>();
            for (int i = 0; i < params.size(); i++) {
                state.put(params.get(i).name() + ".exp_avg", Transfers.onHost(b, m[i], downloads));
                state.put(params.get(i).name() + ".exp_avg_sq", Transfers.onHost(b, v[i], downloads));
            }
            SafeTensorsWriter.write(tmp.resolve("optimizer.safetensors"), state, Map.of());
        } finally {
            downloads.forEach(Tensor::close);
        }
        ObjectNode ts = JSON.createObjectNode().put("step", step).put("total_steps", totalSteps).put("steps_per_epoch", stepsPerEpoch);
        Files.writeString(tmp.resolve("trainer_state.json"), ts.toPrettyString());
        deleteTree(dir);
        Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
        List<Path> all = checkpoints();
        for (int i = 0; i + settings.keepCheckpoints() < all.size(); i++) deleteTree(all.get(i));
    }

    /** Checkpoint folders in the output, oldest first. */
    List<Path> checkpoints() throws IOException {
        if (!Files.isDirectory(output)) return List.of();
        try (Stream<Path> s = Files.list(output)) {
            return s.filter(p -> p.getFileName().toString().matches("checkpoint-\\d+") && Files.isDirectory(p))
                    .sorted(Comparator.comparingInt(p -> Integer.parseInt(p.getFileName().toString().substring(11))))
                    .toList();
        }
    }

    private int restoreNewestCheckpoint() throws IOException {
        List<Path> all = checkpoints();
        if (all.isEmpty()) return 0;
        Path dir = all.get(all.size() - 1);
        JsonNode ts = JSON.readTree(Files.readAllBytes(dir.resolve("trainer_state.json")));
        if (ts.path("total_steps").asInt() != totalSteps || ts.path("steps_per_epoch").asInt() != stepsPerEpoch) {
            throw new IllegalArgumentException(dir + ": it was written by a run of " + ts.path("total_steps").asInt() + " steps ("
                    + ts.path("steps_per_epoch").asInt() + " per epoch); this run has " + totalSteps + " (" + stepsPerEpoch
                    + "): resume with the same data and settings");
        }
        try (SafeTensorsFile saved = SafeTensorsFile.open(dir.resolve("parameters.safetensors"));
             SafeTensorsFile opt = SafeTensorsFile.open(dir.resolve("optimizer.safetensors"))) {
            Backend b = model.backend();
            for (int i = 0; i < params.size(); i++) {
                Parameter p = params.get(i);
                restore(b, saved, p.name(), p.value(), dir);
                restore(b, opt, p.name() + ".exp_avg", m[i], dir);
                restore(b, opt, p.name() + ".exp_avg_sq", v[i], dir);
            }
        }
        return ts.path("step").asInt();
    }

    private static void restore(Backend b, SafeTensorsFile f, String name, Tensor dst, Path dir) {
        if (!f.has(name)) throw new IllegalArgumentException(dir + ": checkpoint lacks " + name + " (different training settings?)");
        Tensor src = f.tensor(name);
        if (src.dtype() != dst.dtype() || !Arrays.equals(src.shape(), dst.shape())) {
            throw new IllegalArgumentException(dir + ": " + name + " is " + src.describe() + ", this run needs " + dst.describe());
        }
        b.copy(src, dst); // uploads to a device
    }

    /** Drops metric lines of steps after {@code step} (left by a killed run) so the file matches the resumed run. */
    private void truncateMetrics(int step) throws IOException {
        Path file = output.resolve("metrics.jsonl");
        if (!Files.exists(file)) return;
        List<String> keep = new ArrayList<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            try {
                if (!line.isBlank() && JSON.readTree(line).path("step").asInt(Integer.MAX_VALUE) <= step) keep.add(line);
            } catch (com.fasterxml.jackson.core.JacksonException e) {
                // a line cut by a kill: drop it
            }
        }
        dev.tenfold.engine.io.AtomicFiles.write(file, (keep.isEmpty() ? "" : String.join("\n", keep) + "\n").getBytes(StandardCharsets.UTF_8));
    }

    private void writeLossCurve() throws IOException {
        List<double[]> pts = new ArrayList<>();
        for (String line : Files.readAllLines(output.resolve("metrics.jsonl"), StandardCharsets.UTF_8)) {
            if (line.isBlank()) continue;
            JsonNode n = JSON.readTree(line);
            pts.add(new double[] {n.path("step").asDouble(), n.path("loss").asDouble(Double.NaN)});
        }
        if (ChartSupport.available()) {
            LossCurve.write(output.resolve("loss.png"), "training loss", pts);
        } else {
            System.err.println("tenfold: loss.png skipped: this Java runtime has no java.desktop (metrics.jsonl has the numbers)");
        }
    }

    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) return;
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted(Comparator.reverseOrder()).toList()) Files.delete(q);
        }
    }
}
