package dev.tenfold.qlora;

import java.util.Locale;
import java.util.Objects;

/**
 * The settings of a training run: the learning rate and its schedule, the length of the run,
 * AdamW's hyper-parameters, gradient clipping, checkpointing and the seed of the run's randomness
 * (LoRA dropout). Immutable; each wither returns a changed copy and checks its value where it
 * enters: one outside its range throws an {@link InvalidSettingException} naming the setting as
 * the wither is called ({@code lr}, {@code beta2}, {@code warmupSteps}, ...) and the range, so
 * that a command line can name its own flag.
 *
 * <pre>{@code TrainingSettings.defaults().lr(5e-5).schedule(LrSchedule.Kind.COSINE).maxSteps(1000)}</pre>
 */
public final class TrainingSettings {
    private double lr = 2e-4;
    private LrSchedule.Kind schedule = LrSchedule.Kind.LINEAR;
    private int warmupSteps;
    private int epochs = 1;
    private Integer maxSteps;
    private float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weightDecay;
    private double maxGradNorm = 1.0;
    private int saveEvery;
    private int keepCheckpoints = 2;
    private long seed;
    private int packTokens;

    private TrainingSettings() {}

    /**
     * lr 2e-4, linear decay to 0 without warmup, one epoch, AdamW (0.9, 0.999, 1e-8) without weight
     * decay, the gradient norm clipped at 1, no checkpoints (the two newest kept when there are),
     * seed 0.
     */
    public static TrainingSettings defaults() { return new TrainingSettings(); }

    /** The peak learning rate (AdamW takes it as a float: at most Float.MAX_VALUE). */
    public TrainingSettings lr(double v) {
        require(v > 0 && v <= Float.MAX_VALUE, "lr", "must be a finite number > 0 (at most " + Float.MAX_VALUE + ")", v);
        return with(s -> s.lr = v);
    }

    /** How the rate goes from warmup to the last step: constant, linear to 0, or half a cosine to 0. */
    public TrainingSettings schedule(LrSchedule.Kind v) {
        if (v == null) throw new InvalidSettingException("schedule", "schedule must be given (constant, linear or cosine)");
        return with(s -> s.schedule = v);
    }

    /** Steps of linear warmup from 0 to the peak rate. */
    public TrainingSettings warmupSteps(int v) {
        require(v >= 0, "warmupSteps", "must be >= 0", v);
        return with(s -> s.warmupSteps = v);
    }

    /** Passes over the data (unless {@link #maxSteps} is set). */
    public TrainingSettings epochs(int v) {
        require(v >= 1, "epochs", "must be >= 1", v);
        return with(s -> s.epochs = v);
    }

    /** Optimizer steps of the run, overriding {@link #epochs} (null: whole epochs). */
    public TrainingSettings maxSteps(Integer v) {
        require(v == null || v >= 1, "maxSteps", "must be >= 1 (or none: whole epochs)", v);
        return with(s -> s.maxSteps = v);
    }

    public TrainingSettings beta1(float v) {
        require(v >= 0 && v < 1, "beta1", "must be in [0, 1)", v);
        return with(s -> s.beta1 = v);
    }

    public TrainingSettings beta2(float v) {
        require(v >= 0 && v < 1, "beta2", "must be in [0, 1)", v);
        return with(s -> s.beta2 = v);
    }

    /** AdamW's epsilon. */
    public TrainingSettings eps(float v) {
        require(v > 0 && Float.isFinite(v), "eps", "must be a finite number > 0", v);
        return with(s -> s.eps = v);
    }

    /** AdamW's decoupled weight decay. */
    public TrainingSettings weightDecay(float v) {
        require(v >= 0 && Float.isFinite(v), "weightDecay", "must be a finite number >= 0", v);
        return with(s -> s.weightDecay = v);
    }

    /** The global gradient norm is clipped to this (0: no clipping). */
    public TrainingSettings maxGradNorm(double v) {
        require(v >= 0 && Double.isFinite(v), "maxGradNorm", "must be a finite number >= 0 (0: no clipping)", v);
        return with(s -> s.maxGradNorm = v);
    }

    /** A checkpoint every this many steps ({@link RunFolder}; 0: none). */
    public TrainingSettings saveEvery(int v) {
        require(v >= 0, "saveEvery", "must be >= 0 (0: no checkpoints)", v);
        return with(s -> s.saveEvery = v);
    }

    /** How many of the newest checkpoints stay on disk. */
    public TrainingSettings keepCheckpoints(int v) {
        require(v >= 1, "keepCheckpoints", "must be >= 1", v);
        return with(s -> s.keepCheckpoints = v);
    }

    /** The seed of the run's randomness (LoRA dropout masks). */
    public TrainingSettings seed(long v) { return with(s -> s.seed = v); }

    /**
     * Packs each batch's records into sequences of up to {@code v} tokens (0: off, one record per
     * sequence), attention kept inside each record, positions restarting per record: the loss and
     * gradients are the unpacked batch's (up to the order of float sums), in fewer, longer passes. A
     * record longer than {@code v} runs alone. With LoRA dropout the masks are drawn per packed sequence.
     */
    public TrainingSettings packing(int v) {
        require(v >= 0, "packing", "must be >= 0 tokens (0: off)", v);
        return with(s -> s.packTokens = v);
    }

    public double lr() { return lr; }

    public LrSchedule.Kind schedule() { return schedule; }

    public int warmupSteps() { return warmupSteps; }

    public int epochs() { return epochs; }

    public Integer maxSteps() { return maxSteps; }

    public float beta1() { return beta1; }

    public float beta2() { return beta2; }

    public float eps() { return eps; }

    public float weightDecay() { return weightDecay; }

    public double maxGradNorm() { return maxGradNorm; }

    public int saveEvery() { return saveEvery; }

    public int keepCheckpoints() { return keepCheckpoints; }

    public long seed() { return seed; }

    /** The longest packed sequence, or 0 when records are not packed. */
    public int packTokens() { return packTokens; }

    private static void require(boolean ok, String setting, String range, Object value) {
        if (!ok) throw new InvalidSettingException(setting, setting + " " + range + ", got " + value);
    }

    private TrainingSettings with(java.util.function.Consumer<TrainingSettings> change) {
        TrainingSettings c = new TrainingSettings();
        c.lr = lr;
        c.schedule = schedule;
        c.warmupSteps = warmupSteps;
        c.epochs = epochs;
        c.maxSteps = maxSteps;
        c.beta1 = beta1;
        c.beta2 = beta2;
        c.eps = eps;
        c.weightDecay = weightDecay;
        c.maxGradNorm = maxGradNorm;
        c.saveEvery = saveEvery;
        c.keepCheckpoints = keepCheckpoints;
        c.seed = seed;
        c.packTokens = packTokens;
        change.accept(c);
        return c;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TrainingSettings s && Double.compare(lr, s.lr) == 0 && schedule == s.schedule && warmupSteps == s.warmupSteps
                && epochs == s.epochs && Objects.equals(maxSteps, s.maxSteps) && Float.compare(beta1, s.beta1) == 0
                && Float.compare(beta2, s.beta2) == 0 && Float.compare(eps, s.eps) == 0 && Float.compare(weightDecay, s.weightDecay) == 0
                && Double.compare(maxGradNorm, s.maxGradNorm) == 0 && saveEvery == s.saveEvery && keepCheckpoints == s.keepCheckpoints
                && seed == s.seed && packTokens == s.packTokens;
    }

    @Override
    public int hashCode() {
        return Objects.hash(lr, schedule, warmupSteps, epochs, maxSteps, beta1, beta2, eps, weightDecay, maxGradNorm, saveEvery,
                keepCheckpoints, seed, packTokens);
    }

    @Override
    public String toString() {
        return "lr " + lr + " " + schedule.name().toLowerCase(Locale.ROOT) + (warmupSteps > 0 ? " (warmup " + warmupSteps + ")" : "")
                + ", " + (maxSteps != null ? maxSteps + " steps" : epochs + " epoch" + (epochs == 1 ? "" : "s")) + ", AdamW(" + beta1 + ", "
                + beta2 + ", " + eps + ", decay " + weightDecay + "), clip " + maxGradNorm
                + (packTokens > 0 ? ", packed into " + packTokens + " tokens" : "");
    }
}
