package dev.tenfold.qlora;

import java.nio.file.Path;

/**
 * A training run whose loss or gradient norm became NaN or infinite at some step: it stopped there
 * before applying that step's update, so the parameters are the last finite ones; nothing was
 * written for the step, the final output was not written, and the checkpoints already on disk are
 * as they were. (Also thrown, before a checkpoint or the output is written, when an update made a
 * parameter itself non-finite.)
 */
public final class TrainingDivergedException extends RuntimeException {
    private final int step;
    private final double loss;
    private final double gradNorm;
    private final transient Path lastCheckpoint;

    /**
     * @param parameter the parameter found non-finite after the step's update, or null when the
     *                  step's loss or gradient norm was (the update not applied)
     */
    TrainingDivergedException(int step, int totalSteps, double loss, double gradNorm, String parameter, Path lastCheckpoint) {
        super("training diverged at step " + step + " of " + totalSteps + ": "
                + (parameter == null
                        ? "loss " + loss + ", gradient norm " + gradNorm + "; its update was not applied"
                        : "parameter " + parameter + " is not finite after its update (loss " + loss + ", gradient norm " + gradNorm + ")")
                + "; the output was not written, and "
                + (lastCheckpoint != null ? "the last checkpoint, " + lastCheckpoint + ", is kept" : "no checkpoint had been written")
                + " (a lower learning rate usually avoids this)");
        this.step = step;
        this.loss = loss;
        this.gradNorm = gradNorm;
        this.lastCheckpoint = lastCheckpoint;
    }

    /** The step (1-based, as in metrics.jsonl) at which the non-finite value appeared. */
    public int step() { return step; }

    /** That step's mean loss over its scored tokens (NaN when it had none). */
    public double loss() { return loss; }

    /** That step's global gradient norm before clipping. */
    public double gradNorm() { return gradNorm; }

    /** The newest checkpoint on disk, or null. */
    public Path lastCheckpoint() { return lastCheckpoint; }
}
