package dev.tenfold.qlora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tenfold.engine.Backend;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Transfers;
import dev.tenfold.engine.io.AtomicFiles;
import dev.tenfold.engine.io.SafeTensorsFile;
import dev.tenfold.engine.io.SafeTensorsWriter;
import dev.tenfold.llama.DenseLinear;
import dev.tenfold.llama.Linear;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.TrainingStep;
import dev.tenfold.qlora.nf4.Nf4Linear;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
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

    /**
     * Settings of a run. Each is checked here, where it enters: one outside its range throws an
     * {@link InvalidSettingException} naming it and the range. {@code maxSteps} (null: whole epochs)
     * overrides {@code epochs}; {@code maxGradNorm} 0 turns clipping off; {@code saveEvery} 0 writes
     * no checkpoints; {@code keepCheckpoints} is how many of the newest stay on disk.
     */
    public record Settings(double lr, LrSchedule.Kind schedule, int warmupSteps, int epochs, Integer maxSteps,
                           float beta1, float beta2, float eps, float weightDecay, double maxGradNorm,
                           int saveEvery, int keepCheckpoints, long seed) {
        public Settings {
            // AdamW takes the rate as a float: beyond Float.MAX_VALUE it would become infinite
            require(lr > 0 && lr <= Float.MAX_VALUE, "lr", "must be a finite number > 0 (at most " + Float.MAX_VALUE + ")", lr);
            if (schedule == null) throw new InvalidSettingException("schedule", "schedule must be given (constant, linear or cosine)");
            require(warmupSteps >= 0, "warmupSteps", "must be >= 0", warmupSteps);
            require(epochs >= 1, "epochs", "must be >= 1", epochs);
            require(maxSteps == null || maxSteps >= 1, "maxSteps", "must be >= 1 (or none: whole epochs)", maxSteps);
            require(beta1 >= 0 && beta1 < 1, "beta1", "must be in [0, 1)", beta1);
            require(beta2 >= 0 && beta2 < 1, "beta2", "must be in [0, 1)", beta2);
            require(eps > 0 && Float.isFinite(eps), "eps", "must be a finite number > 0", eps);
            require(weightDecay >= 0 && Float.isFinite(weightDecay), "weightDecay", "must be a finite number >= 0", weightDecay);
            require(maxGradNorm >= 0 && Double.isFinite(maxGradNorm), "maxGradNorm", "must be a finite number >= 0 (0: no clipping)", maxGradNorm);
            require(saveEvery >= 0, "saveEvery", "must be >= 0 (0: no checkpoints)", saveEvery);
            require(keepCheckpoints >= 1, "keepCheckpoints", "must be >= 1", keepCheckpoints);
        }

        public Settings(double lr, LrSchedule.Kind schedule, int warmupSteps, int epochs, Integer maxSteps, float beta1, float beta2,
                        float eps, float weightDecay, double maxGradNorm, int saveEvery, int keepCheckpoints) {
            this(lr, schedule, warmupSteps, epochs, maxSteps, beta1, beta2, eps, weightDecay, maxGradNorm, saveEvery, keepCheckpoints, 0);
        }

        public static Settings recipe() {
            return new Settings(5e-5, LrSchedule.Kind.LINEAR, 0, 1, null, 0.9f, 0.999f, 1e-8f, 0f, 1.0, 0, 2, 0);
        }

        private static void require(boolean ok, String setting, String range, Object value) {
            if (!ok) throw new InvalidSettingException(setting, setting + " " + range + ", got " + value);
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
    private TrainerState runState; // what this run is, for trainer_state.json (hashes computed on first need)

    /** A LoRA run whose output (and every checkpoint) is a PEFT adapter. */
    public Trainer(LlamaModel model, List<Example> examples, BatchPlan plan, Settings settings, Path output) {
        this(model, examples, plan, settings, output, PeftAdapter::save);
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
        if (settings.maxSteps() != null) {
            totalSteps = settings.maxSteps();
        } else {
            long total = (long) settings.epochs() * stepsPerEpoch;
            if (total > Integer.MAX_VALUE) {
                throw new InvalidSettingException("epochs", "epochs " + settings.epochs() + " x " + stepsPerEpoch + " steps per epoch = " + total
                        + " steps, more than a run can have (" + Integer.MAX_VALUE + ")");
            }
            totalSteps = (int) total;
        }
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
     * Runs the remaining steps, then writes the final output, the loss curve and trainer_state.json
     * (which marks the run complete). Returns the number of the step it started from.
     *
     * <p>Without {@code resume} it starts at step 0 and refuses a folder holding checkpoints of an
     * earlier run. With {@code resume} it continues from the newest checkpoint in the output folder,
     * after checking that this run is the one that wrote it (settings, model, data, batch plan,
     * trainable parameters); a missing folder, one without a checkpoint and one whose run is complete
     * are errors. Either way, temporaries left in the folder by an interrupted write are removed first.
     *
     * @throws TrainingDivergedException when a step's loss or gradient norm is not finite (the run
     *         stops there, before that step's update; nothing more is written)
     */
    public int train(boolean resume, Listener listener) throws IOException {
        if (Files.isDirectory(output)) removeOrphanedTemporaries();
        checkOutput(output, resume);
        Files.createDirectories(output);
        int start = 0;
        if (resume) start = restoreNewestCheckpoint();
        else Files.deleteIfExists(output.resolve(TrainerState.FILE)); // an earlier finished run's, whose output this run replaces
        Backend b = model.backend();
        LrSchedule schedule = new LrSchedule(settings.schedule(), settings.lr(), settings.warmupSteps(), totalSteps);
        truncateMetrics(start);
        long t0 = System.nanoTime();
        List<int[]> epochPlan = null;
        int planEpoch = -1;
        double lastLoss = Double.NaN, lastNorm = Double.NaN;
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
                // a non-finite loss or gradient would make every parameter NaN: stop before the update
                boolean diverged = !Double.isFinite(lossSum) || !Double.isFinite(norm);
                double lr = schedule.at(step);
                if (!diverged) {
                    if (settings.maxGradNorm() > 0 && norm > settings.maxGradNorm()) {
                        float coef = (float) (settings.maxGradNorm() / (norm + 1e-6)); // as torch.nn.utils.clip_grad_norm_
                        for (Tensor g : grads) b.scale(g, coef, g);
                    }
                    Backend.AdamW hp = new Backend.AdamW((float) lr, settings.beta1(), settings.beta2(), settings.eps(), settings.weightDecay());
                    for (int i = 0; i < params.size(); i++) b.adamw(params.get(i).value(), params.get(i).grad(), m[i], v[i], hp, step + 1);
                }
                double loss = scored == 0 ? Double.NaN : lossSum / scored;
                StepMetrics sm = new StepMetrics(step + 1, totalSteps, epoch, loss, scored, tokens, lr, norm,
                        (System.nanoTime() - s0) / 1e9, (System.nanoTime() - t0) / 1e9);
                ObjectNode line = JSON.createObjectNode().put("step", sm.step()).put("epoch", epoch).put("loss", loss)
                        .put("lr", lr).put("grad_norm", norm).put("tokens", tokens).put("scored_tokens", scored)
                        .put("seconds", sm.seconds());
                if (diverged) line.put("diverged", true); // the step's values, its update not applied
                metrics.write(line.toString());
                metrics.newLine();
                metrics.flush();
                if (listener != null) listener.onStep(sm);
                if (diverged) throw new TrainingDivergedException(step + 1, totalSteps, loss, norm, null, newestCheckpoint());
                lastLoss = loss;
                lastNorm = norm;
                if (settings.saveEvery() > 0 && (step + 1) % settings.saveEvery() == 0 && step + 1 < totalSteps) {
                    requireFiniteParameters(step + 1, loss, norm);
                    saveCheckpoint(step + 1);
                }
            }
        }
        requireFiniteParameters(totalSteps, lastLoss, lastNorm);
        writer.write(output, model);
        writeLossCurve();
        AtomicFiles.write(output.resolve(TrainerState.FILE), state().atStep(totalSteps).toJson()); // last: the run is complete
        return start;
    }

    /**
     * The checks of {@link #train} that need only the output folder, for a caller to make before it
     * loads a model: to resume, the folder must exist and hold a checkpoint of a run that is not
     * complete; to start afresh, it must not hold an earlier run's checkpoints (which the new run's
     * would mix with). Throws IllegalArgumentException naming the folder and what is wrong.
     */
    public static void checkOutput(Path output, boolean resume) throws IOException {
        if (Files.exists(output) && !Files.isDirectory(output)) {
            throw new IllegalArgumentException(output + " is not a folder" + (resume ? ": nothing to resume" : ""));
        }
        List<Path> checkpoints = checkpoints(output);
        if (resume) {
            if (!Files.exists(output)) throw new IllegalArgumentException(output + " does not exist: nothing to resume");
            Path finished = output.resolve(TrainerState.FILE);
            if (Files.exists(finished)) {
                TrainerState done = TrainerState.read(finished);
                throw new IllegalArgumentException(output + ": the run there is complete (step " + done.step() + " of " + done.totalSteps()
                        + ", its output written): nothing to resume");
            }
            if (checkpoints.isEmpty()) {
                throw new IllegalArgumentException(output + " holds no checkpoint (checkpoint-N folder) to resume from: nothing to resume");
            }
        } else if (!checkpoints.isEmpty()) {
            throw new IllegalArgumentException(output + " holds checkpoints of an earlier run (" + checkpoints.get(checkpoints.size() - 1).getFileName()
                    + "): resume that run, or train into another folder");
        }
    }

    /** Refuses to write parameters that an update made non-finite (possible with a huge rate even from finite gradients). */
    private void requireFiniteParameters(int step, double loss, double norm) throws IOException {
        for (Parameter p : params) {
            if (!Double.isFinite(model.backend().sumOfSquares(p.value()))) {
                throw new TrainingDivergedException(step, totalSteps, loss, norm, p.name(), newestCheckpoint());
            }
        }
    }

    /** What this run is, as trainer_state.json records it (at step 0). */
    private TrainerState state() {
        if (runState == null) {
            Map<String, long[]> shapes = new LinkedHashMap<>();
            for (Parameter p : params) shapes.put(p.name(), p.value().shape());
            TreeSet<String> frozen = new TreeSet<>();
            TreeSet<Float> scales = new TreeSet<>(), dropouts = new TreeSet<>();
            model.mapLinears((module, linear) -> {
                Linear base = linear;
                if (linear instanceof LoraLinear lora) {
                    scales.add(lora.scale());
                    dropouts.add(lora.dropout());
                    base = lora.base();
                }
                if (base instanceof Nf4Linear) frozen.add("nf4");
                else if (base instanceof DenseLinear d) frozen.add(d.weight().dtype().name().toLowerCase(Locale.ROOT));
                else if (!(base instanceof TrainableLinear)) frozen.add(base.getClass().getSimpleName());
                return linear;
            });
            runState = new TrainerState(0, totalSteps, stepsPerEpoch, settings, model.config().ropeTheta(), List.copyOf(frozen),
                    List.copyOf(scales), List.copyOf(dropouts), examples.size(), TrainerState.dataSha256(examples),
                    TrainerState.batchPlanSha256(plan, stepsPerEpoch, totalSteps), shapes);
        }
        return runState;
    }

    // ------------------------------------------------------------------ checkpoints

    /**
     * Writes checkpoint-STEP atomically: the output form (usable as it is), the exact F32 parameters
     * and optimizer state, and trainer_state.json; keeps the newest few. A failure removes the
     * unfinished folder.
     */
    void saveCheckpoint(int step) throws IOException {
        Path dir = output.resolve("checkpoint-" + step);
        Path tmp = output.resolve(".checkpoint-" + step + ".tmp");
        deleteTree(tmp);
        try {
            Files.createDirectories(tmp);
            writeCheckpoint(tmp, step);
            deleteTree(dir);
            Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
        } catch (Throwable t) {
            try {
                deleteTree(tmp);
            } catch (IOException e) {
                t.addSuppressed(e);
            }
            throw t;
        }
        List<Path> all = checkpoints();
        for (int i = 0; i + settings.keepCheckpoints() < all.size(); i++) deleteTree(all.get(i));
    }

    private void writeCheckpoint(Path tmp, int step) throws IOException {
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
        Files.write(tmp.resolve(TrainerState.FILE), state().atStep(step).toJson());
    }

    /** Checkpoint folders in the output, oldest first. */
    List<Path> checkpoints() throws IOException {
        return checkpoints(output);
    }

    private static List<Path> checkpoints(Path output) throws IOException {
        if (!Files.isDirectory(output)) return List.of();
        try (Stream<Path> s = Files.list(output)) {
            return s.filter(p -> p.getFileName().toString().matches("checkpoint-\\d{1,9}") && Files.isDirectory(p))
                    .sorted(Comparator.comparingInt(Trainer::checkpointStep))
                    .toList();
        }
    }

    private static int checkpointStep(Path dir) {
        return Integer.parseInt(dir.getFileName().toString().substring("checkpoint-".length()));
    }

    private Path newestCheckpoint() throws IOException {
        List<Path> all = checkpoints();
        return all.isEmpty() ? null : all.get(all.size() - 1);
    }

    /**
     * Restores parameters and optimizer state from the newest checkpoint (there is one:
     * {@link #checkOutput}) and returns its step, after checking that its trainer_state.json is
     * sound and that this run is the one that wrote it.
     */
    private int restoreNewestCheckpoint() throws IOException {
        List<Path> all = checkpoints();
        Path dir = all.get(all.size() - 1);
        TrainerState saved = TrainerState.read(dir.resolve(TrainerState.FILE));
        if (saved.step() != checkpointStep(dir)) {
            throw new IllegalArgumentException(dir.resolve(TrainerState.FILE) + ": corrupt trainer state: step is " + saved.step() + " in folder "
                    + dir.getFileName());
        }
        List<String> differences = saved.differencesFrom(state());
        if (!differences.isEmpty()) {
            throw new IllegalArgumentException(dir + " was written by a different run: " + String.join("; ", differences)
                    + ". Resume with the data and settings it was started with");
        }
        for (String f : List.of("parameters.safetensors", "optimizer.safetensors")) {
            if (!Files.isRegularFile(dir.resolve(f))) throw new IllegalArgumentException(dir + ": checkpoint lacks " + f);
        }
        try (SafeTensorsFile values = SafeTensorsFile.open(dir.resolve("parameters.safetensors"));
             SafeTensorsFile opt = SafeTensorsFile.open(dir.resolve("optimizer.safetensors"))) {
            Backend b = model.backend();
            for (int i = 0; i < params.size(); i++) {
                Parameter p = params.get(i);
                restore(b, values, p.name(), p.value(), dir);
                restore(b, opt, p.name() + ".exp_avg", m[i], dir);
                restore(b, opt, p.name() + ".exp_avg_sq", v[i], dir);
            }
        }
        return saved.step();
    }

    private static void restore(Backend b, SafeTensorsFile f, String name, Tensor dst, Path dir) {
        if (!f.has(name)) throw new IllegalArgumentException(dir + ": checkpoint lacks " + name + " (different training settings?)");
        Tensor src = f.tensor(name);
        if (src.dtype() != dst.dtype() || !Arrays.equals(src.shape(), dst.shape())) {
            throw new IllegalArgumentException(dir + ": " + name + " is " + src.describe() + ", this run needs " + dst.describe());
        }
        b.copy(src, dst); // uploads to a device
    }

    // ------------------------------------------------------------------ temporaries

    /**
     * Removes what interrupted writes left in the output folder, and only that: unfinished
     * checkpoint folders (.checkpoint-N.tmp) and {@link AtomicFiles}' temporaries of the kinds of
     * file a run writes (".NAME.HEX.tmp" for a .safetensors, .json, .jsonl or .png NAME), which a
     * kill leaves behind (gigabytes with a trained embedding).
     */
    private void removeOrphanedTemporaries() throws IOException {
        List<Path> removed = new ArrayList<>();
        long bytes = 0;
        List<Path> entries;
        try (Stream<Path> s = Files.list(output)) {
            entries = s.toList();
        }
        for (Path p : entries) {
            String name = p.getFileName().toString();
            if (name.matches("\\.checkpoint-\\d+\\.tmp") && Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
                bytes += treeSize(p);
                deleteTree(p);
                removed.add(p);
            } else if (isTemporaryOfOutput(name) && Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
                bytes += Files.size(p);
                Files.delete(p);
                removed.add(p);
            }
        }
        if (!removed.isEmpty()) {
            System.err.printf("tenfold: removed %d unfinished temporar%s (%,d bytes) left in %s by an interrupted run%n", removed.size(),
                    removed.size() == 1 ? "y" : "ies", bytes, output);
        }
    }

    static boolean isTemporaryOfOutput(String fileName) {
        if (fileName.equals(".loss.png.tmp")) return true; // LossCurve's own temporary before it wrote through AtomicFiles
        String target = AtomicFiles.targetOfTemporary(fileName);
        return target != null && target.matches("[^/\\\\]+\\.(safetensors|json|jsonl|png)");
    }

    private static long treeSize(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            long n = 0;
            for (Path p : s.toList()) if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) n += Files.size(p);
            return n;
        }
    }

    // ------------------------------------------------------------------ metrics

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
        AtomicFiles.write(file, (keep.isEmpty() ? "" : String.join("\n", keep) + "\n").getBytes(StandardCharsets.UTF_8));
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
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) return;
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted(Comparator.reverseOrder()).toList()) Files.delete(q);
        }
    }
}
