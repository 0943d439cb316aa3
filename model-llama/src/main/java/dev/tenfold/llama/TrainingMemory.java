package dev.tenfold.llama;

import dev.tenfold.engine.DType;

/**
 * How a training step ({@link TrainingStep}) stores what it keeps, trading speed for memory.
 *
 * @param activations        the dtype of the saved layer inputs (checkpoints) and of the layer working set:
 *                           F32, or BF16 (half the memory; the arithmetic stays F32, each stored value is
 *                           rounded once). Residual-stream gradients and parameter gradients stay F32.
 * @param offloadCheckpoints whether the layer inputs wait for the backward in host memory (pinned on a GPU,
 *                           copied on a second stream while the next layer computes) instead of on the device:
 *                           two [tokens, hidden] buffers on the device instead of one per layer
 * @param mlpTileTokens      tokens of one MLP tile: the MLP runs on at most this many tokens at a time, so no
 *                           tokens x intermediate tensor exists whole, forward or backward
 */
public record TrainingMemory(DType activations, boolean offloadCheckpoints, int mlpTileTokens) {
    /** Tokens of an MLP tile unless set: 2048 x 14336 BF16 is 59 MB per tile buffer for Llama-3-8B. */
    public static final int DEFAULT_MLP_TILE = 2048;

    public TrainingMemory {
        if (activations != DType.F32 && activations != DType.BF16) {
            throw new IllegalArgumentException("activations must be F32 or BF16, got " + activations);
        }
        if (mlpTileTokens < 1) throw new IllegalArgumentException("mlpTileTokens must be >= 1, got " + mlpTileTokens);
    }

    /**
     * F32 activations kept on the device: the CPU's default, and the reference the lean step is checked against.
     * With these settings a CPU step whose layers' activations all fit in an eighth of the host's memory keeps
     * them and recomputes nothing (the same numbers, a quarter less work); any other settings recompute each
     * layer in the backward.
     */
    public static TrainingMemory f32() { return new TrainingMemory(DType.F32, false, DEFAULT_MLP_TILE); }

    /** BF16 activations, with or without offloaded checkpoints: a GPU's lean step. */
    public static TrainingMemory lean(boolean offloadCheckpoints) {
        return new TrainingMemory(DType.BF16, offloadCheckpoints, DEFAULT_MLP_TILE);
    }

    public TrainingMemory withOffload(boolean offload) { return new TrainingMemory(activations, offload, mlpTileTokens); }

    public TrainingMemory withMlpTile(int tokens) { return new TrainingMemory(activations, offloadCheckpoints, tokens); }
}
