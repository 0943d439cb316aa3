package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.collective.Communicator;

/**
 * One sequence's loss and gradients with its tokens shared by the ranks of a group (context
 * parallelism): rank r of N computes {@link TrainingStep}'s step on the tokens its attention's scheme
 * gives it ({@link ContextParallelScheme#tokens}: Ulysses the contiguous [r t, (r + 1) t), t = ceil(T / N);
 * the all-gather the zigzag chunks r and 2N - 1 - r of ceil(T / 2N) tokens). Every op but attention is
 * local to the shard; attention spans the group ({@link ShardedAttention}). Positions stay global (RoPE
 * sees the token's place in the whole sequence) and the targets are the caller's, shifted before the
 * split, so a shard's last token predicts the next token of the sequence wherever it is. The returned
 * loss (sum and count) spans the group.
 *
 * <p>An uneven length is padded at the end to the shards' length times N: id 0, no target (-100), the
 * last real position. Causal attention keeps the padding out of every real token's forward, and with
 * no target its gradient is zero, so padding changes neither the loss nor the gradients.
 *
 * <p>Gradients: each rank's {@link Parameter}s receive the gradient of its shard's tokens only; the
 * group's sum is the sequence's gradient. Sum them once per optimiser step over every rank of the run
 * (data-parallel groups and context-parallel groups alike: the sum over the world is the batch's
 * gradient), as the trainer's one all-reduce does, or with {@link #allReduceGradients}.
 */
public final class ContextParallelStep {
    private ContextParallelStep() {}

    /**
     * This rank's share of the step on the whole sequence's {@code ids}, {@code targets} and
     * {@code positions} (every rank passes the same arrays), with {@code attention} over the group
     * (its communicator's rank says which shard is this rank's).
     *
     * @param gradScale multiplies the gradient of the summed loss (e.g. 1 / scored tokens of the whole batch)
     * @return the group's summed loss and scored tokens (the same on every rank)
     */
    public static Backend.LossSum run(LlamaModel model, ShardedAttention attention, Communicator group,
                                      int[] ids, int[] targets, int[] positions, float gradScale) {
        Backend.LossSum mine = runShard(model, attention, group, ids, targets, positions, gradScale);
        double[] sums = {mine.sum(), mine.count()};
        group.allReduceSum(sums); // in rank order on the host communicators
        return new Backend.LossSum(sums[0], (long) sums[1]);
    }

    /**
     * As {@link #run} but returns this rank's shard's loss only (for a caller that sums the losses with
     * the gradients, as the trainer's one all-reduce does).
     */
    public static Backend.LossSum runShard(LlamaModel model, ShardedAttention attention, Communicator group,
                                           int[] ids, int[] targets, int[] positions, float gradScale) {
        int n = group.size(), r = group.rank(), total = ids.length;
        if (attention.ranks() != n) {
            throw new IllegalArgumentException("context parallelism: the attention spans " + attention.ranks() + " ranks, the group " + n);
        }
        if (total == 0 || targets.length != total || positions.length != total) {
            throw new IllegalArgumentException("context parallelism: ids, targets and positions must have the same non-zero length, got "
                    + total + ", " + targets.length + ", " + positions.length);
        }
        int[] mine = attention.scheme().tokens(total, n, r);
        int maxPos = 0;
        for (int p : positions) maxPos = Math.max(maxPos, p);
        int[] myIds = shard(ids, mine, 0), myTargets = shard(targets, mine, -100), myPositions = shard(positions, mine, positions[total - 1]);
        return TrainingStep.run(model, myIds, myTargets, myPositions, null, gradScale, attention, maxPos + 1);
    }

    /** The entries of a whole-sequence array at the indices {@code tokens}, {@code pad} past its end. */
    static int[] shard(int[] whole, int[] tokens, int pad) {
        int[] out = new int[tokens.length];
        for (int i = 0; i < tokens.length; i++) out[i] = tokens[i] < whole.length ? whole[tokens[i]] : pad;
        return out;
    }

    /** Every trainable parameter's gradient becomes the sum over the group (host gradients, summed in rank order). */
    public static void allReduceGradients(LlamaModel model, Communicator group) {
        group.allReduceSum(model.parameters().stream().map(Parameter::grad).toList());
    }
}
