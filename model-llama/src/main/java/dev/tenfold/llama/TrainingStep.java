package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Scratch;
import dev.tenfold.engine.Tensor;

/**
 * One sequence's loss and gradients: the forward pass with gradient checkpointing per decoder
 * layer (only each layer's input is kept; the layer is recomputed in the backward), the chunked
 * cross-entropy (no sequence x vocabulary logits), and the backward pass through every layer.
 * Gradients are added into the model's {@link Parameter}s; frozen weights pass input gradients
 * through. Each decoder layer's forward and backward are side by side in {@link DecoderLayer}.
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
        LlamaConfig c = model.config();
        int t = ids.length;
        if (t == 0 || targets.length != t || positions.length != t) {
            throw new IllegalArgumentException("training step: ids, targets and positions must have the same non-zero length, got "
                    + t + ", " + targets.length + ", " + positions.length);
        }
        Backend b = model.backend();
        int h = c.hiddenSize();
        int maxPos = 0;
        for (int p : positions) maxPos = Math.max(maxPos, p);
        // everything of this step lives where the backend computes; ids, positions, targets and the
        // RoPE frequencies are its only uploads, the loss (two numbers) its only download
        try (Scratch scratch = new Scratch(b)) {
            Tensor invFreq = scratch.floats(c.ropeInverseFrequencies(maxPos + 1));
            Tensor idsT = scratch.ints(ids), posT = scratch.ints(positions), targetsT = scratch.ints(targets);
            DecoderLayer pass = new DecoderLayer(model, scratch, t, invFreq, posT);

            // forward, keeping only each layer's input
            Tensor[] inputs = new Tensor[c.numLayers() + 1];
            inputs[0] = scratch.tensor(DType.F32, t, h);
            b.embedding(model.embedding(), idsT, inputs[0]);
            for (int l = 0; l < c.numLayers(); l++) {
                inputs[l + 1] = scratch.tensor(DType.F32, t, h);
                pass.forward(l, inputs[l], inputs[l + 1], null);
            }

            // final norm and loss; the output matrix's gradient goes to the embedding when tied and trained
            Tensor xn = scratch.tensor(DType.F32, t, h), rstd = scratch.tensor(DType.F32, t);
            b.rmsnorm(inputs[c.numLayers()], model.finalNorm(), (float) c.rmsNormEps(), xn, rstd);
            Tensor dxn = scratch.tensor(DType.F32, t, h);
            Parameter emb = model.embeddingParameter();
            Tensor dOutput = model.outputIsEmbedding() ? (emb != null ? emb.grad() : null)
                    : (model.outputParameter() != null ? model.outputParameter().grad() : null);
            Backend.LossSum loss = b.crossEntropy(xn, model.output(), targetsT, gradScale, dxn, dOutput);

            // backward, layer by layer from the top, recomputing each layer from its saved input
            Tensor dx = scratch.tensor(DType.F32, t, h);
            b.rmsnormBackward(dxn, inputs[c.numLayers()], model.finalNorm(), rstd, dx, DecoderLayer.grad(model.finalNormParameter()));
            Tensor dxBelow = scratch.tensor(DType.F32, t, h);
            for (int l = c.numLayers() - 1; l >= 0; l--) {
                pass.backward(l, inputs[l], dx, dxBelow);
                Tensor swap = dx;
                dx = dxBelow;
                dxBelow = swap;
            }
            if (emb != null) b.embeddingBackward(dx, idsT, emb.grad());
            return loss;
        }
    }

    /** Positions 0..n-1. */
    public static int[] consecutive(int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        return p;
    }
}
