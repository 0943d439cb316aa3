package dev.tenfold.qlora;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.collective.Communicator;
import dev.tenfold.llama.ContextParallelScheme;
import dev.tenfold.llama.DenseLinear;
import dev.tenfold.llama.Linear;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.Parameter;
import dev.tenfold.llama.TrainingStep;
import dev.tenfold.qlora.data.JsonlDataset;
import dev.tenfold.qlora.data.TrainingRecord;
import dev.tenfold.qlora.nf4.Nf4Linear;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;

/**
 * Trains a model's parameters (LoRA adapters, a trained embedding, or every weight).
 *
 * <p>{@link #step} is one optimizer step on a batch of sequences: each sequence's loss and
 * gradients through {@link TrainingStep} (accumulated over the batch, each token weighted equally:
 * the loss is the mean over the batch's scored tokens), the global gradient norm clipped, and
 * AdamW at the scheduled learning rate. A step whose loss or gradient norm is not finite applies
 * no update and says so ({@link StepMetrics#diverged}).
 *
 * <p>{@link #fit} runs the steps of a whole run over the batches a {@link BatchPlan} makes of the
 * examples, telling its {@link Listener}s about each; it stops at a diverged step with a
 * {@link TrainingDivergedException}. What a run writes (metrics.jsonl, checkpoints from which it
 * resumes bit-identically, the adapter) is a listener's duty: {@link RunFolder}.
 *
 * <p>It runs on the model's backend: gradients, AdamW moments and every op stay on its device; per
 * step only the loss and the gradient norm come back (as doubles).
 *
 * <p>Data parallelism ({@link #dataParallel}): one trainer per rank, each with the whole model; each
 * rank runs its share of every batch's sequences ({@link DataParallel#owners}), one all-reduce sums
 * the gradients and the losses, and every rank applies the same update. On the CPU the gradients
 * are summed sequence by sequence in F64 ({@link DataParallel.HostGradients}) with one rank as with
 * many, so N ranks train the bits one rank trains; on a GPU they add in f32 on the device and NCCL
 * sums the ranks' in its own order (equal to f32 rounding, not bit-identical).
 */
public final class Trainer {

    /**
     * One training sequence: input ids and, per position, the id to predict (-100 = no loss); the RoPE
     * positions (null: 0, 1, 2, ...); and, for several records packed into one sequence (see
     * {@link Packing}), the index of each record's first token (null: one record).
     */
    public record Example(int[] ids, int[] targets, int[] positions, int[] recordStarts) {
        public Example {
            if (ids.length == 0 || targets.length != ids.length || (positions != null && positions.length != ids.length)) {
                throw new IllegalArgumentException("example: ids, targets and positions must have one non-zero length");
            }
        }

        public Example(int[] ids, int[] targets, int[] positions) {
            this(ids, targets, positions, null);
        }

        /**
         * A document trained on every token: its tokens but the last, each predicting the next;
         * {@code positions} (one per input, or null for 0, 1, 2, ...) as PoSE skips them.
         */
        public static Example nextTokens(int[] tokens, int[] positions) {
            return new Example(Arrays.copyOf(tokens, tokens.length - 1), Arrays.copyOfRange(tokens, 1, tokens.length), positions);
        }

        /** A loaded record: its ids but the last, each predicting the next token's label. */
        public static Example of(TrainingRecord r) {
            return new Example(Arrays.copyOf(r.inputIds(), r.length() - 1), r.targets(), null);
        }

        public int scoredTokens() {
            int n = 0;
            for (int t : targets) if (t != -100) n++;
            return n;
        }
    }

    /** Every record of a data set as an example, in order (indexes match the data set's). */
    public static List<Example> examples(JsonlDataset data) {
        List<Example> out = new ArrayList<>(data.size());
        for (TrainingRecord r : data.records()) out.add(Example.of(r));
        return out;
    }

    /** The batches of one epoch, as indexes into the examples (deterministic for a given epoch). */
    @FunctionalInterface
    public interface BatchPlan {
        List<int[]> plan(int epoch);
    }

    /** Writes the trained model in its user-facing form (a PEFT adapter, or a whole checkpoint for full training). */
    @FunctionalInterface
    public interface OutputWriter {
        void write(Path dir, LlamaModel model) throws IOException;
    }

    /**
     * Hears what {@link #fit} does: {@link #onStart} before the first step (in the order the
     * listeners were added: a {@link RunFolder} that resumes sets the step to start from there),
     * {@link #onStep} after every step (each listener hears it, even when an earlier one throws;
     * the first exception ends the run once all have heard), {@link #onEnd} after the last step, in
     * the reverse order (so that the first listener added finishes last).
     */
    @FunctionalInterface
    public interface Listener {
        default void onStart(Trainer trainer) throws IOException {}

        void onStep(StepMetrics step) throws IOException;

        default void onEnd(Trainer trainer) throws IOException {}
    }

    /** What a step did. */
    public static final class StepMetrics {
        private final int step, totalSteps, epoch;
        private final double loss, gradNorm, lr, seconds, elapsedSeconds;
        private final long tokens, scoredTokens;
        private final boolean diverged;
        private double communicationSeconds;
        private double warmUpSeconds;
        private double[] rankSeconds = new double[0];

        StepMetrics(int step, int totalSteps, int epoch, double loss, double gradNorm, double lr, long tokens, long scoredTokens,
                    double seconds, double elapsedSeconds, boolean diverged) {
            this.step = step;
            this.totalSteps = totalSteps;
            this.epoch = epoch;
            this.loss = loss;
            this.gradNorm = gradNorm;
            this.lr = lr;
            this.tokens = tokens;
            this.scoredTokens = scoredTokens;
            this.seconds = seconds;
            this.elapsedSeconds = elapsedSeconds;
            this.diverged = diverged;
        }

        /** The step's number, from 1 (as metrics.jsonl counts). */
        public int step() { return step; }

        /**
         * Seconds the backend spent before this step bringing its kernels to speed ({@link Backend#warmUp}):
         * only a run's first step on the CPU has any; not part of {@link #seconds}.
         */
        public double warmUpSeconds() { return warmUpSeconds; }

        public int totalSteps() { return totalSteps; }

        /** The epoch (from 0) the step's batch belongs to. */
        public int epoch() { return epoch; }

        /** Mean loss over the batch's scored tokens (NaN when it had none). */
        public double loss() { return loss; }

        /** The global gradient norm before clipping. */
        public double gradNorm() { return gradNorm; }

        /** The learning rate of the step. */
        public double lr() { return lr; }

        /** Tokens in the batch. */
        public long tokens() { return tokens; }

        /** Tokens in the batch that have a target. */
        public long scoredTokens() { return scoredTokens; }

        /** Wall-clock seconds of the step. */
        public double seconds() { return seconds; }

        /** Seconds since the run (or the first step) began. */
        public double elapsedSeconds() { return elapsedSeconds; }

        /** Whether the loss or the gradient norm was not finite: the step's update was not applied. */
        public boolean diverged() { return diverged; }

        /** The number of data-parallel ranks that ran the step (1 without data parallelism). */
        public int ranks() { return Math.max(1, rankSeconds.length); }

        /** Seconds this rank spent in the step's all-reduce (waiting for the slowest rank included); 0 for one rank. */
        public double communicationSeconds() { return communicationSeconds; }

        /** Each rank's seconds of computing (its share of the sequences) before the all-reduce; one value for one rank. */
        public double[] rankSeconds() { return rankSeconds.length == 0 ? new double[] {seconds} : rankSeconds.clone(); }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "step %d/%d: loss %.4f, lr %.3g, grad norm %.3f%s", step, totalSteps, loss, lr, gradNorm,
                    diverged ? " (diverged)" : "");
        }
    }

    private final LlamaModel model;
    private final TrainingSettings settings;
    private final List<Example> examples; // null: a trainer for step() only
    private final BatchPlan plan;
    private final List<Parameter> params;
    final Tensor[] m;
    final Tensor[] v;
    private final int stepsPerEpoch;
    private final int totalSteps;
    private final LrSchedule schedule;
    private final List<Listener> listeners = new ArrayList<>();
    private int completedSteps;
    private long startNanos;
    private boolean warmUpTried; // this trainer's first step in this process has decided on the backend's warm-up
    private TrainerState runState; // what this run is, for trainer_state.json (hashes computed on first need)
    private Communicator comm = Communicator.solo();
    private ContextParallel cp; // null: each sequence on one rank
    private DataParallel.HostGradients hostGradients; // CPU: the F64 sums of the gradients, made on first need
    private boolean f32Sums; // a test's CPU reference for a device's trainer: the gradients added in f32 as a device adds them

    /**
     * A run over {@code examples} in the batches of {@code plan}: {@code settings.epochs()} passes,
     * or {@code settings.maxSteps()} steps.
     */
    public Trainer(LlamaModel model, TrainingSettings settings, List<Example> examples, BatchPlan plan) {
        this(model, settings, examples, plan, plan.plan(0).size());
    }

    /**
     * A trainer whose caller makes the batches and calls {@link #step}: the run is
     * {@code settings.maxSteps()} steps long (which the learning-rate schedule needs).
     */
    public Trainer(LlamaModel model, TrainingSettings settings) {
        this(model, settings, null, null, requireMaxSteps(settings));
    }

    private static int requireMaxSteps(TrainingSettings settings) {
        if (settings.maxSteps() == null) {
            throw new InvalidSettingException("maxSteps", "maxSteps must be given for a trainer without a batch plan (the schedule needs the run's length)");
        }
        return settings.maxSteps();
    }

    private Trainer(LlamaModel model, TrainingSettings settings, List<Example> examples, BatchPlan plan, int stepsPerEpoch) {
        this.model = model;
        this.settings = settings;
        this.examples = examples == null ? null : List.copyOf(examples);
        this.plan = plan;
        this.params = model.parameters();
        if (params.isEmpty()) throw new IllegalArgumentException("nothing to train: attach LoRA or train the embedding first");
        this.stepsPerEpoch = stepsPerEpoch;
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
        this.schedule = new LrSchedule(settings.schedule(), settings.lr(), settings.warmupSteps(), totalSteps);
        m = new Tensor[params.size()];
        v = new Tensor[params.size()];
        Backend b = model.backend();
        for (int i = 0; i < params.size(); i++) {
            m[i] = b.allocate(DType.F32, params.get(i).value().shape());
            v[i] = b.allocate(DType.F32, params.get(i).value().shape());
            model.own(m[i]);
            model.own(v[i]);
        }
    }

    /**
     * Makes this trainer one rank of a data-parallel run over {@code communicator}'s ranks (before
     * the first step): every rank makes its trainer on the same model, settings and data, and calls
     * {@link #step} with the same batches (or {@link #fit}); only one rank (rank 0) should have the
     * listeners that write ({@link RunFolder}), as {@link #fit} gives every rank rank 0's state
     * after the listeners' {@link Listener#onStart} (a resumed checkpoint, whatever the number of
     * ranks that wrote it).
     */
    public Trainer dataParallel(Communicator communicator) {
        if (completedSteps > 0 || startNanos != 0) throw new IllegalStateException("data parallelism is set before the first step");
        this.comm = java.util.Objects.requireNonNull(communicator, "communicator");
        return this;
    }

    /**
     * Shares each sequence among the ranks of {@code group} (context parallelism, {@link ContextParallel}), after
     * {@link #dataParallel} with the run's world: world = DP groups x CP ranks, the group being this rank and its
     * neighbours (world ranks g N .. g N + N - 1 form group g). The scheme is chosen as {@link ContextParallelScheme#AUTO}
     * does: Ulysses when N divides the key/value heads, else the zigzag all-gather.
     */
    public Trainer contextParallel(Communicator group) {
        return contextParallel(group, ContextParallelScheme.AUTO);
    }

    /** As {@link #contextParallel(Communicator)} with the scheme given (Ulysses where N does not divide the key/value heads is refused). */
    public Trainer contextParallel(Communicator group, ContextParallelScheme scheme) {
        if (completedSteps > 0 || startNanos != 0) throw new IllegalStateException("context parallelism is set before the first step");
        this.cp = ContextParallel.of(model, comm, group, java.util.Objects.requireNonNull(scheme, "scheme"));
        return this;
    }

    /** The context-parallel scheme this trainer runs, or null without context parallelism. */
    public ContextParallelScheme contextParallelScheme() { return cp == null ? null : cp.scheme(); }

    /**
     * For the tests that hold a device's trainer to the CPU's bits: the CPU adds the sequences'
     * gradients in f32 as a device does, not in F64 (one rank only).
     */
    Trainer sumGradientsInF32() {
        if (comm.size() > 1) throw new IllegalStateException("f32 sums are for one rank");
        f32Sums = true;
        return this;
    }

    /** The ranks this trainer trains with ({@link Communicator#solo()} without data parallelism). */
    public Communicator communicator() { return comm; }

    /** Adds a listener of {@link #fit} (see {@link Listener} for the order they hear in). */
    public Trainer addListener(Listener listener) {
        listeners.add(listener);
        return this;
    }

    public LlamaModel model() { return model; }

    public TrainingSettings settings() { return settings; }

    public int totalSteps() { return totalSteps; }

    public int stepsPerEpoch() { return stepsPerEpoch; }

    /** Optimizer steps applied so far (the next {@link #step} is this one + 1). */
    public int completedSteps() { return completedSteps; }

    /** The trainable parameters, in checkpoint order. */
    public List<Parameter> parameters() { return params; }

    // ------------------------------------------------------------------ one step

    /**
     * One optimizer step on {@code batch}: the step after {@link #completedSteps}, at its scheduled
     * rate. Each sequence's loss and gradients, the gradient norm, clipping and AdamW; when the loss
     * or the norm is not finite no update is applied and the result says {@code diverged} (the step
     * can then not be continued from: the caller stops, as {@link #fit} does).
     */
    /**
     * The backend's kernels are warmed up ({@link Backend#warmUp}) before a run's first step when that step has
     * at least this many tokens, or the run at least {@link #WARM_UP_MIN_RUN_TOKENS} (its steps times the first
     * step's tokens): not for the few tiny steps of a test, where the warm-up would cost more than it saves.
     */
    static final int WARM_UP_MIN_TOKENS = 1024;
    static final long WARM_UP_MIN_RUN_TOKENS = 32_768;

    public StepMetrics step(List<Example> batch) {
        if (batch.isEmpty()) throw new IllegalArgumentException("a step needs at least one sequence");
        if (completedSteps >= totalSteps) throw new IllegalStateException("the run's " + totalSteps + " steps are done");
        long scored = 0, tokens = 0;
        for (Example e : batch) {
            scored += e.scoredTokens();
            tokens += e.ids().length;
        }
        Backend b = model.backend();
        // Kernels at speed before the first step is timed: on the CPU its first steps would otherwise run
        // 5 to 15 times slower than the rest while the JIT compiles. Tiny steps (tests) are not worth it.
        boolean bigRun = tokens >= WARM_UP_MIN_TOKENS || tokens * (long) totalSteps >= WARM_UP_MIN_RUN_TOKENS;
        double warmUp = !warmUpTried && bigRun ? b.warmUp() : 0;
        warmUpTried = true;
        long s0 = System.nanoTime();
        if (startNanos == 0) startNanos = s0;
        int step = completedSteps;
        // packed, the sequences are the packs: shared among ranks, each its own dropout seed (its index)
        if (settings.packTokens() > 0) batch = Packing.pack(batch, settings.packTokens());
        int groups = cp == null ? comm.size() : cp.groups();
        int[] owners = DataParallel.owners(batch, groups, DataParallel.linearTokens(model.config()));
        // per sequence (its loss) and per rank (its seconds of computing): each rank fills its own, the sum gathers them
        double[] sums = new double[batch.size() + comm.size()];
        boolean hostSums = b.device().isCpu() && !f32Sums && (batch.size() > 1 || comm.size() > 1);
        if (hostSums && hostGradients == null) {
            hostGradients = new DataParallel.HostGradients(params);
            model.own(hostGradients.sums);
        }
        DataParallel.HostGradients host = hostSums ? hostGradients : null;
        if (host != null) host.zero();
        for (Parameter p : params) b.fill(p.grad(), 0f);
        forwardBackward(batch, owners, step, scored == 0 ? 0f : 1f / scored, host, sums);
        List<Tensor> grads = new ArrayList<>();
        for (Parameter p : params) grads.add(p.grad());
        if (comm.size() > 1) b.synchronize();
        long c0 = System.nanoTime();
        sums[batch.size() + comm.rank()] = (c0 - s0) / 1e9;
        reduce(grads, host, sums);
        long c1 = System.nanoTime();
        if (host != null) host.roundIntoGradients();
        double lossSum = 0;
        for (int j = 0; j < batch.size(); j++) lossSum += sums[j]; // in the batch's order, whatever rank ran each
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
            completedSteps++;
        }
        long now = System.nanoTime();
        StepMetrics sm = new StepMetrics(step + 1, totalSteps, step / stepsPerEpoch, scored == 0 ? Double.NaN : lossSum / scored, norm, lr,
                tokens, scored, (now - s0) / 1e9, (now - startNanos) / 1e9, diverged);
        sm.warmUpSeconds = warmUp;
        if (comm.size() > 1) {
            sm.communicationSeconds = (c1 - c0) / 1e9;
            sm.rankSeconds = Arrays.copyOfRange(sums, batch.size(), sums.length);
        }
        return sm;
    }

    /**
     * This rank's sequences of the batch: each one's loss into {@code losses[j]}, its gradients
     * (scaled by {@code gradScale}) added into the parameters' (or, summing on the host, into the
     * F64 sums, one sequence at a time). Dropout masks depend only on (seed, step, index in the
     * batch), never on the rank, so a resumed run and any number of ranks draw the same ones.
     */
    private void forwardBackward(List<Example> batch, int[] owners, int step, float gradScale, DataParallel.HostGradients host,
                                 double[] losses) {
        Backend b = model.backend();
        try {
            for (int j = 0; j < batch.size(); j++) {
                if (owners[j] != (cp == null ? comm.rank() : cp.groupIndex())) continue;
                Example e = batch.get(j);
                int[] pos = e.positions() != null ? e.positions() : TrainingStep.consecutive(e.ids().length);
                Lora.setDropoutSeed(model, settings.seed() * 1_000_003L + (long) step * 4099L + j);
                if (host != null) for (Parameter p : params) b.fill(p.grad(), 0f);
                losses[j] = cp != null ? cp.step(e, pos, gradScale).sum() // this rank's shard: the all-reduce sums the group's
                        : TrainingStep.run(model, e.ids(), e.targets(), pos, e.recordStarts(), gradScale).sum();
                if (host != null) host.add();
            }
        } finally {
            Lora.setDropoutSeed(model, null);
        }
    }

    /**
     * The ranks' gradients and {@code sums} (losses, seconds: each rank's own slots, zero elsewhere)
     * summed over the ranks, in one all-reduce: the F64 sums on the CPU, the f32 gradients on a
     * GPU. One rank has them all already.
     */
    private void reduce(List<Tensor> grads, DataParallel.HostGradients host, double[] sums) {
        if (comm.size() == 1) return;
        if (host != null) {
            try (Tensor s = Tensor.allocate(DType.F64, sums.length)) {
                java.lang.foreign.MemorySegment.copy(sums, 0, s.data(), Tensor.F64, 0, sums.length);
                comm.allReduceSum(List.of(host.sums, s));
                java.lang.foreign.MemorySegment.copy(s.data(), Tensor.F64, 0, sums, 0, sums.length);
            }
        } else {
            comm.allReduceSum(grads);
            comm.allReduceSum(sums);
        }
    }

    // ------------------------------------------------------------------ a run

    /**
     * Runs the steps from {@link #completedSteps} (0, or where a resuming {@link RunFolder} put it)
     * to {@link #totalSteps}, each on the plan's next batch, telling the listeners. Returns the
     * step it started from.
     *
     * @throws TrainingDivergedException at a step whose loss or gradient norm is not finite (after
     *         the listeners heard of it; its update was not applied)
     */
    public int fit() throws IOException {
        if (examples == null) throw new IllegalStateException("fit needs training data: make the Trainer with examples and a batch plan");
        startNanos = System.nanoTime();
        for (Listener l : listeners) l.onStart(this);
        if (comm.size() > 1) takeRankZerosState();
        int start = completedSteps;
        List<int[]> epochPlan = null;
        int planEpoch = -1;
        while (completedSteps < totalSteps) {
            int step = completedSteps;
            int epoch = step / stepsPerEpoch;
            if (epoch != planEpoch) {
                epochPlan = plan.plan(epoch);
                planEpoch = epoch;
            }
            List<Example> batch = new ArrayList<>();
            for (int i : epochPlan.get(step % stepsPerEpoch)) batch.add(examples.get(i));
            StepMetrics sm = step(batch);
            notifyStep(sm);
            if (sm.diverged()) throw new TrainingDivergedException(sm.step(), totalSteps, sm.loss(), sm.gradNorm(), null, null);
        }
        for (int i = listeners.size() - 1; i >= 0; i--) listeners.get(i).onEnd(this);
        return start;
    }

    /**
     * Every rank continues from rank 0's state: its step (where its RunFolder resumed), trainable
     * weights and AdamW moments (a checkpoint is the same for any number of ranks).
     */
    private void takeRankZerosState() {
        double[] at = {comm.rank() == 0 ? completedSteps : 0};
        comm.allReduceSum(at);
        completedSteps = (int) at[0];
        for (int i = 0; i < params.size(); i++) {
            comm.broadcast(params.get(i).value(), 0);
            comm.broadcast(m[i], 0);
            comm.broadcast(v[i], 0);
        }
    }

    /** Every listener hears the step; the first exception is thrown once all have. */
    private void notifyStep(StepMetrics sm) throws IOException {
        Throwable first = null;
        for (Listener l : listeners) {
            try {
                l.onStep(sm);
            } catch (IOException | RuntimeException | Error e) {
                if (first == null) first = e;
                else first.addSuppressed(e);
            }
        }
        switch (first) {
            case null -> { }
            case IOException e -> throw e;
            case RuntimeException e -> throw e;
            case Error e -> throw e;
            default -> throw new IllegalStateException(first);
        }
    }

    // ------------------------------------------------------------------ for RunFolder

    /** The moments of AdamW, per parameter: exp_avg ([0]) and exp_avg_sq ([1]). */
    Tensor[] moments(int parameter) { return new Tensor[] {m[parameter], v[parameter]}; }

    /** Continues after {@code step} steps (a restored checkpoint). */
    void resumeAt(int step) {
        if (step < 0 || step > totalSteps) throw new IllegalArgumentException("step " + step + " is not in [0, " + totalSteps + "]");
        completedSteps = step;
    }

    /** What this run is, as trainer_state.json records it (at step 0). */
    TrainerState state() {
        if (examples == null) throw new IllegalStateException("a run's state needs its data: make the Trainer with examples and a batch plan");
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
}
