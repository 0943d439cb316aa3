package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * One sequence's loss and gradients: the forward pass with gradient checkpointing per decoder
 * layer (only each layer's input is kept; the layer is recomputed in the backward), the chunked
 * cross-entropy (no sequence x vocabulary logits), and the backward pass through every layer.
 * Gradients are added into the model's {@link Parameter}s; frozen weights pass input gradients
 * through. Each decoder layer's forward and backward are side by side in {@link LayerPass}.
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
        try (Arena arena = Arena.ofShared(); Tensor invFreq = Tensor.of(c.ropeInverseFrequencies(maxPos + 1))) {
            Tensor idsT = ints(arena, ids), posT = ints(arena, positions), targetsT = ints(arena, targets);
            LayerPass pass = new LayerPass(model, arena, t, invFreq, posT);

            // forward, keeping only each layer's input
            Tensor[] inputs = new Tensor[c.numLayers() + 1];
            inputs[0] = Tensor.allocate(arena, DType.F32, t, h);
            b.embedding(model.embedding(), idsT, inputs[0]);
            for (int l = 0; l < c.numLayers(); l++) {
                inputs[l + 1] = Tensor.allocate(arena, DType.F32, t, h);
                pass.forward(l, inputs[l], inputs[l + 1]);
            }

            // final norm and loss; the output matrix's gradient goes to the embedding when tied and trained
            Tensor xn = Tensor.allocate(arena, DType.F32, t, h), rstd = Tensor.allocate(arena, DType.F32, t);
            b.rmsnorm(inputs[c.numLayers()], model.finalNorm(), (float) c.rmsNormEps(), xn, rstd);
            Tensor dxn = Tensor.allocate(arena, DType.F32, t, h);
            Parameter emb = model.embeddingParameter();
            Tensor dOutput = model.outputIsEmbedding() ? (emb != null ? emb.grad() : null)
                    : (model.outputParameter() != null ? model.outputParameter().grad() : null);
            Backend.LossSum loss = b.crossEntropy(xn, model.output(), targetsT, gradScale, dxn, dOutput);

            // backward, layer by layer from the top, recomputing each layer from its saved input
            Tensor dx = Tensor.allocate(arena, DType.F32, t, h);
            b.rmsnormBackward(dxn, inputs[c.numLayers()], model.finalNorm(), rstd, dx, grad(model.finalNormParameter()));
            Tensor dxBelow = Tensor.allocate(arena, DType.F32, t, h);
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

    private static Tensor grad(Parameter p) { return p == null ? null : p.grad(); }

    /** Positions 0..n-1. */
    public static int[] consecutive(int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        return p;
    }

    private static Tensor ints(Arena arena, int[] v) {
        Tensor t = Tensor.allocate(arena, DType.I32, v.length);
        MemorySegment.copy(v, 0, t.data(), Tensor.I32, 0, v.length);
        return t;
    }

    /**
     * One decoder layer's forward and backward, with the scratch tensors of a step (allocated once
     * per step and reused by every layer):
     * <pre>
     *   a  = rmsnorm(x, attnNorm);  q, k, v = a Wq^T, a Wk^T, a Wv^T;  q, k = rope(q), rope(k)
     *   x2 = x + Wo · attention(q, k, v)
     *   m  = rmsnorm(x2, mlpNorm);  g, u = m Wg^T, m Wu^T;  y = x2 + Wd · (silu(g) * u)
     * </pre>
     */
    static final class LayerPass {
        final LlamaModel model;
        final Backend b;
        final LlamaConfig c;
        final int t, hq, hkv, d;
        final float eps, scale, ropeScale;
        final Tensor invFreq, positions;
        // activations of the layer being run (recomputed in the backward)
        final Tensor a, rstd1, q, k, v, att, lse, x2, m, rstd2, g, u, s;
        // gradients
        final Tensor dAtt, dq, dk, dv, dA, tmpA, dM, tmpM, dS, dG, dU, dX2;

        LayerPass(LlamaModel model, Arena arena, int t, Tensor invFreq, Tensor positions) {
            this.model = model;
            this.b = model.backend();
            this.c = model.config();
            this.t = t;
            this.hq = c.numHeads();
            this.hkv = c.numKvHeads();
            this.d = c.headDim();
            this.eps = (float) c.rmsNormEps();
            this.scale = (float) (1.0 / Math.sqrt(d));
            this.ropeScale = c.ropeScaling().attentionScale();
            this.invFreq = invFreq;
            this.positions = positions;
            long h = c.hiddenSize(), qw = (long) hq * d, kvw = (long) hkv * d, inter = c.intermediateSize();
            a = f32(arena, t, h);
            rstd1 = f32(arena, t);
            q = f32(arena, t, qw);
            k = f32(arena, t, kvw);
            v = f32(arena, t, kvw);
            att = f32(arena, t, qw);
            lse = f32(arena, 1, hq, t);
            x2 = f32(arena, t, h);
            m = f32(arena, t, h);
            rstd2 = f32(arena, t);
            g = f32(arena, t, inter);
            u = f32(arena, t, inter);
            s = f32(arena, t, inter);
            dAtt = f32(arena, t, qw);
            dq = f32(arena, t, qw);
            dk = f32(arena, t, kvw);
            dv = f32(arena, t, kvw);
            dA = f32(arena, t, h);
            tmpA = f32(arena, t, h);
            dM = f32(arena, t, h);
            tmpM = f32(arena, t, h);
            dS = f32(arena, t, inter);
            dG = f32(arena, t, inter);
            dU = f32(arena, t, inter);
            dX2 = f32(arena, t, h);
        }

        private static Tensor f32(Arena arena, long... shape) { return Tensor.allocate(arena, DType.F32, shape); }

        /** y = layer(x); leaves the layer's activations in this pass's scratch (the backward uses them). */
        void forward(int l, Tensor x, Tensor y) {
            LlamaModel.Layer layer = model.layer(l);
            b.rmsnorm(x, layer.attnNorm, eps, a, rstd1);
            layer.q.forward(b, a, q);
            layer.k.forward(b, a, k);
            layer.v.forward(b, a, v);
            Tensor q3 = q.view(t, hq, d), k3 = k.view(t, hkv, d);
            b.rope(q3, invFreq, positions, ropeScale, q3);
            b.rope(k3, invFreq, positions, ropeScale, k3);
            b.attention(q.view(1, t, hq, d), k.view(1, t, hkv, d), v.view(1, t, hkv, d), scale, att.view(1, t, hq, d), lse);
            layer.o.forward(b, att, x2);
            b.add(x, x2, x2);
            b.rmsnorm(x2, layer.mlpNorm, eps, m, rstd2);
            layer.gate.forward(b, m, g);
            layer.up.forward(b, m, u);
            b.swiglu(g, u, s);
            layer.down.forward(b, s, y);
            b.add(x2, y, y);
        }

        /** dx = d(layer)/dx · dy, adding parameter gradients; recomputes the forward from x first. */
        void backward(int l, Tensor x, Tensor dy, Tensor dx) {
            LlamaModel.Layer layer = model.layer(l);
            forward(l, x, dx); // recompute the activations (dx is free scratch until written below)
            // MLP block: y = x2 + down(silu(g) * u)
            layer.down.backward(b, s, dy, dS);
            b.swigluBackward(dS, g, u, dG, dU);
            layer.gate.backward(b, m, dG, dM);
            layer.up.backward(b, m, dU, tmpM);
            b.add(dM, tmpM, dM);
            b.rmsnormBackward(dM, x2, layer.mlpNorm, rstd2, dX2, grad(layer.mlpNormParameter));
            b.add(dX2, dy, dX2); // the residual
            // attention block: x2 = x + o(attention(rope(q), rope(k), v))
            layer.o.backward(b, att, dX2, dAtt);
            b.attentionBackward(dAtt.view(1, t, hq, d), q.view(1, t, hq, d), k.view(1, t, hkv, d), v.view(1, t, hkv, d),
                    att.view(1, t, hq, d), lse, scale, dq.view(1, t, hq, d), dk.view(1, t, hkv, d), dv.view(1, t, hkv, d));
            Tensor dq3 = dq.view(t, hq, d), dk3 = dk.view(t, hkv, d);
            b.ropeBackward(dq3, invFreq, positions, ropeScale, dq3);
            b.ropeBackward(dk3, invFreq, positions, ropeScale, dk3);
            // a was overwritten by nothing since the recompute, and q/k/v projections read it
            layer.q.backward(b, a, dq, dA);
            layer.k.backward(b, a, dk, tmpA);
            b.add(dA, tmpA, dA);
            layer.v.backward(b, a, dv, tmpA);
            b.add(dA, tmpA, dA);
            b.rmsnormBackward(dA, x, layer.attnNorm, rstd1, dx, grad(layer.attnNormParameter));
            b.add(dx, dX2, dx);
        }
    }
}
