package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.StepArena;
import dev.tenfold.engine.Tensor;

/**
 * One sequence's loss and gradients: the forward pass with gradient checkpointing per decoder
 * layer (only each layer's input is kept, in {@link Checkpoints}; the layer is recomputed in the
 * backward; on the CPU, when every layer's activations fit in an eighth of the host's memory, they are
 * kept instead and nothing is recomputed), the chunked cross-entropy (no sequence x vocabulary logits), and the backward pass
 * through every layer. Gradients are added into the model's {@link Parameter}s; frozen weights pass
 * input gradients through. Each decoder layer's forward and backward are side by side in
 * {@link DecoderLayer}.
 *
 * <p>What it keeps is set by the model's {@link TrainingMemory}: the dtype of the checkpoints and of
 * the layer working set, whether checkpoints wait in host memory, the MLP tile. Its buffers come from
 * the model's step arena and are kept for the next step: a step at fixed shapes allocates nothing of
 * its own after the first (the ops' temporaries come from the backend's allocator, whose cache serves
 * them again on a GPU).
 */
public final class TrainingStep {
    private TrainingStep() {}

    /**
     * @param ids       input token ids, T of them
     * @param targets   the token each position should predict (T entries, -100 = no loss)
     * @param positions RoPE position of each token (T entries; 0..T-1 normally, with gaps for PoSE)
     * @param gradScale multiplies the gradient of the summed loss (e.g. 1 / tokens in the batch)
     * @return the summed loss and the number of scored tokens
     */
    public static Backend.LossSum run(LlamaModel model, int[] ids, int[] targets, int[] positions, float gradScale) {
        return run(model, ids, targets, positions, null, gradScale);
    }

    /**
     * As {@link #run(LlamaModel, int[], int[], int[], float)} for several records packed into one sequence:
     * {@code recordStarts} holds the index of each record's first token (0 first, increasing; null or one
     * entry: a single record). Attention stays inside each record; the positions (given per record) and the
     * targets are the caller's, so the loss is the sum of the records' own losses.
     */
    public static Backend.LossSum run(LlamaModel model, int[] ids, int[] targets, int[] positions, int[] recordStarts, float gradScale) {
        return run(model, ids, targets, positions, recordStarts, gradScale, null, 0);
    }

    /**
     * The step, with context parallelism when {@code sharded} is not null: the tokens are one shard of a
     * longer sequence, attention spans the group, and the RoPE frequencies are those of a sequence of
     * {@code ropeLength} positions (the whole sequence's, not the shard's: dynamic scalings depend on it).
     */
    static Backend.LossSum run(LlamaModel model, int[] ids, int[] targets, int[] positions, int[] recordStarts, float gradScale,
                               ShardedAttention sharded, int ropeLength) {
        LlamaConfig c = model.config();
        int t = ids.length;
        if (t == 0 || targets.length != t || positions.length != t) {
            throw new IllegalArgumentException("training step: ids, targets and positions must have the same non-zero length, got "
                    + t + ", " + targets.length + ", " + positions.length);
        }
        Backend b = model.backend();
        TrainingMemory memory = model.trainingMemory();
        DType act = memory.activations();
        int h = c.hiddenSize(), layers = c.numLayers();
        int maxPos = 0;
        for (int p : positions) maxPos = Math.max(maxPos, p);
        // everything of this step lives where the backend computes; ids, positions, targets and the
        // RoPE frequencies are its only uploads, the loss (two numbers) its only download
        StepArena arena = model.stepArena();
        arena.begin();
        Tensor invFreq = arena.floats(c.ropeInverseFrequencies(Math.max(maxPos + 1, ropeLength)));
        Tensor idsT = arena.ints(ids), posT = arena.ints(positions), targetsT = arena.ints(targets);
        // Small enough (a small model, or a short sequence, on the CPU): every layer keeps its forward's
        // working set and the backward starts from it, skipping the recompute (a quarter of the step's work).
        boolean keep = sharded == null && keepsLayerActivations(model, t);
        DecoderLayer[] passes = new DecoderLayer[keep ? layers : 1];
        for (int l = 0; l < passes.length; l++) {
            passes[l] = new DecoderLayer(model, arena::tensor, t, invFreq, posT, act, keep ? t : memory.mlpTileTokens(), recordStarts)
                    .shardedAttention(sharded);
            if (l > 0) passes[l].shareGradientsOf(passes[0]);
        }
        DecoderLayer pass = passes[0];
        Checkpoints saved = new Checkpoints(b, arena, layers, t, h, act, memory.offloadCheckpoints());
        Tensor dy = arena.tensor(DType.F32, t, h), dx = arena.tensor(DType.F32, t, h); // gradients of the residual stream
        Tensor rstd = arena.tensor(DType.F32, t);
        try {
            // forward, keeping only each layer's input
            Tensor x = saved.forwardBuffer(0);
            b.embedding(model.embedding(), idsT, x);
            saved.written(0);
            for (int l = 0; l < layers; l++) {
                Tensor y = saved.forwardBuffer(l + 1);
                passes[keep ? l : 0].forward(l, x, y, null);
                saved.written(l + 1);
                x = y;
            }

            // final norm and loss (the norm's output in the layer's spare buffer, its gradient in dx);
            // the output matrix's gradient goes to the embedding when tied and trained
            Tensor xn = keep ? arena.tensor(act, t, h) : pass.spare(); // kept, every layer's buffers are taken
            b.rmsnorm(saved.last(), model.finalNorm(), (float) c.rmsNormEps(), xn, rstd);
            Parameter emb = model.embeddingParameter();
            Tensor dOutput = model.outputIsEmbedding() ? (emb != null ? emb.grad() : null)
                    : (model.outputParameter() != null ? model.outputParameter().grad() : null);
            Backend.LossSum loss = b.crossEntropy(xn, model.output(), targetsT, gradScale, dx, dOutput);

            // backward, layer by layer from the top, recomputing each layer from its saved input
            b.rmsnormBackward(dx, saved.last(), model.finalNorm(), rstd, dy, DecoderLayer.grad(model.finalNormParameter()));
            for (int l = layers - 1; l >= 0; l--) {
                // under a frozen embedding nothing reads layer 0's input gradient: as autograd, skip it
                passes[keep ? l : 0].backward(l, saved.backwardInput(l), dy, dx, !keep, l > 0 || emb != null);
                Tensor swap = dy;
                dy = dx;
                dx = swap;
            }
            if (emb != null) b.embeddingBackward(dy, idsT, emb.grad());
            return loss;
        } finally {
            saved.finish();
        }
    }

    /**
     * Whether a step of t tokens keeps every layer's activations instead of recomputing them in the backward:
     * on the CPU with the default {@link TrainingMemory#f32()}, when all layers' working sets take at most
     * {@link #KEPT_SHARE_OF_MEMORY} of the host's memory. A device's step, and a step whose memory settings
     * were chosen to save memory, recompute (the memory plan counts that step).
     */
    public static boolean keepsLayerActivations(LlamaModel model, int t) {
        Backend b = model.backend();
        // by the device, not the class, so that a backend wrapping the CPU's (step-peer's op timer) makes the same choice; a plan
        // of a CPU step (the planning backend with the CPU as its target) makes it too, so that it counts what runs
        boolean cpu = b.device().isCpu()
                || b instanceof dev.tenfold.engine.plan.PlanningBackend plan && plan.target() == dev.tenfold.engine.plan.PlanningBackend.Target.CPU;
        if (!cpu || !model.trainingMemory().equals(TrainingMemory.f32())) return false;
        long host = dev.tenfold.engine.Machine.physicalMemory();
        if (host <= 0) return false;
        long kept = (long) model.config().numLayers() * DecoderLayer.workingSetBytes(model.config(), t, t, model.trainingMemory().activations());
        return kept <= host * KEPT_SHARE_OF_MEMORY;
    }

    /** The share of the host's memory a CPU step may spend on keeping every layer's activations. */
    static final double KEPT_SHARE_OF_MEMORY = 0.125;

    /** Positions 0..n-1. */
    public static int[] consecutive(int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        return p;
    }
}
