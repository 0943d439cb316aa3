package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Scratch;
import dev.tenfold.engine.Tensor;

/**
 * One decoder layer's forward and backward, in one place, with the scratch tensors of a chunk of
 * t tokens (allocated once, where the backend computes, and reused by every layer; the gradient
 * scratch only once a backward runs):
 * <pre>
 *   a  = rmsnorm(x, attnNorm);  q, k, v = a Wq^T, a Wk^T, a Wv^T;  q, k = rope(q), rope(k)
 *   x2 = x + Wo · attention(q, k, v)
 *   m  = rmsnorm(x2, mlpNorm);  g, u = m Wg^T, m Wu^T;  y = x2 + Wd · (silu(g) * u)
 * </pre>
 * Inference passes a {@link KvCache}: the chunk's keys and values are appended to it and the
 * queries attend to everything cached. Training passes none: the chunk is the whole sequence.
 */
final class DecoderLayer {
    final LlamaModel model;
    final Backend b;
    final LlamaConfig c;
    final int t, hq, hkv, d;
    final float eps, scale, ropeScale;
    final Tensor invFreq, positions;
    // activations of the layer being run (recomputed in the backward)
    final Tensor a, rstd1, q, k, v, att, lse, x2, m, rstd2, g, u, s;
    // gradients (allocated by the first backward)
    private final Scratch arena;
    private Tensor dAtt, dq, dk, dv, dA, tmpA, dM, tmpM, dS, dG, dU, dX2;

    DecoderLayer(LlamaModel model, Scratch arena, int t, Tensor invFreq, Tensor positions) {
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
        this.arena = arena;
    }

    private void allocateGradients() {
        long h = c.hiddenSize(), qw = (long) hq * d, kvw = (long) hkv * d, inter = c.intermediateSize();
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

    private static Tensor f32(Scratch arena, long... shape) { return arena.tensor(DType.F32, shape); }

    /** A parameter's gradient, or null for a frozen weight (the ops then skip it). */
    static Tensor grad(Parameter p) { return p == null ? null : p.grad(); }

    /**
     * y = layer(x) (y must not be x); leaves the layer's activations in this pass's scratch (the
     * backward uses them). With a cache, the tokens sit at positions cache.length() onwards.
     */
    void forward(int l, Tensor x, Tensor y, KvCache cache) {
        LlamaModel.Layer layer = model.layer(l);
        b.rmsnorm(x, layer.attnNorm, eps, a, rstd1);
        layer.q.forward(b, a, q);
        layer.k.forward(b, a, k);
        layer.v.forward(b, a, v);
        Tensor q3 = q.view(t, hq, d), k3 = k.view(t, hkv, d);
        b.rope(q3, invFreq, positions, ropeScale, q3);
        b.rope(k3, invFreq, positions, ropeScale, k3);
        if (cache == null) {
            b.attention(q.view(1, t, hq, d), k.view(1, t, hkv, d), v.view(1, t, hkv, d), scale, att.view(1, t, hq, d), lse);
        } else {
            int p0 = cache.length(), tk = p0 + t;
            Tensor kc = cache.keys[l], vc = cache.values[l];
            b.copy(k, kc.slice(p0, tk));
            b.copy(v, vc.slice(p0, tk));
            b.attention(q.view(1, t, hq, d), kc.slice(0, tk).view(1, tk, hkv, d), vc.slice(0, tk).view(1, tk, hkv, d),
                    scale, att.view(1, t, hq, d), lse);
        }
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
        if (dAtt == null) allocateGradients();
        forward(l, x, dx, null); // recompute the activations (dx is free scratch until written below)
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
