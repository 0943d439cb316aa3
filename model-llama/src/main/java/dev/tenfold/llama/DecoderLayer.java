package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;

/**
 * One decoder layer's forward and backward, in one place, with the working set of a pass over t
 * tokens (allocated once, where the backend computes, and reused by every layer; the gradient
 * buffers only once a backward runs):
 * <pre>
 *   a  = rmsnorm(x, attnNorm);  q, k, v = a Wq^T, a Wk^T, a Wv^T;  q, k = rope(q), rope(k)
 *   x2 = x + Wo · attention(q, k, v)
 *   m  = rmsnorm(x2, mlpNorm);  g, u = m Wg^T, m Wu^T;  y = x2 + Wd · (silu(g) * u)
 * </pre>
 * Inference passes a {@link KvCache}: the chunk's keys and values are appended to it and the
 * queries attend to everything cached. Training passes none: the chunk is the whole sequence, or
 * several records packed back to back ({@code recordStarts}), each attending only within itself.
 *
 * <p>Memory (what makes long sequences fit): activations are stored in the pass's dtype (F32, or
 * BF16 on a GPU; arithmetic is F32 either way); the MLP block runs on tiles of at most
 * {@code tile} tokens, forward and backward, so nothing of size tokens x intermediate exists whole;
 * one buffer holds a, then x2; one slab holds q, k, v, the attention output and its gradient, and
 * later the gradient of a; the backward writes dq, dk and dv into its own output dx while dx is
 * still free (when they fit there), and turns its input dy into the gradient of x2 in place.
 */
final class DecoderLayer {
    /** How a pass gets its buffers: a {@link dev.tenfold.engine.Scratch} or a step's arena. */
    @FunctionalInterface
    interface Buffers {
        Tensor tensor(DType dtype, long... shape);
    }

    private static final long ALIGN = 256; // bytes: views inside one buffer start on this

    final LlamaModel model;
    final Backend b;
    final LlamaConfig c;
    final int t, hq, hkv, d, tile;
    final long h, qw, kvw, inter;
    final float eps, scale, ropeScale;
    final DType act;
    final Tensor invFreq, positions;
    // packed records: the first token of each, then t (null: one record); attention stays inside each
    private final int[] bounds;
    // the attention block's working set: a (then x2), the slab (q, k, v, att, dAtt; later dA, tmpA), lse, rstd1
    private final Tensor aOrX2, slab, lse, rstd1;
    final Tensor q, k, v, att;
    // one MLP tile: m, rstd2, g, u, s (s also takes dG in the backward)
    private final Tensor m, rstd2, g, u, s;
    // gradients (allocated by the first backward)
    private final Buffers buffers;
    private Tensor dS, dU, dM, tmpM, dX2part, dqkv;
    // context parallelism: the pass's tokens are one shard of the sequence and attention spans the group (null: local)
    private ShardedAttention sharded;

    DecoderLayer(LlamaModel model, Buffers buffers, int t, Tensor invFreq, Tensor positions, DType act, int mlpTile, int[] recordStarts) {
        this.model = model;
        this.bounds = recordStarts == null || recordStarts.length <= 1 ? null : bounds(recordStarts, t);
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
        this.act = act;
        this.buffers = buffers;
        this.tile = Math.min(t, mlpTile);
        h = c.hiddenSize();
        qw = (long) hq * d;
        kvw = (long) hkv * d;
        inter = c.intermediateSize();
        aOrX2 = buffers.tensor(act, t, h);
        long es = act.byteSize(1);
        long forward = aligned(t * qw * es) * 2 + aligned(t * kvw * es) * 2 + aligned(t * qw * es); // q, k, v, att, dAtt
        long backward = aligned(t * h * 4) + aligned(t * h * es);                                   // dA (F32), tmpA
        slab = buffers.tensor(DType.U8, Math.max(forward, backward));
        q = view(slab, 0, act, t, qw);
        k = view(slab, aligned(t * qw * es), act, t, kvw);
        v = view(slab, aligned(t * qw * es) + aligned(t * kvw * es), act, t, kvw);
        att = view(slab, aligned(t * qw * es) + 2 * aligned(t * kvw * es), act, t, qw);
        lse = buffers.tensor(DType.F32, 1, hq, t);
        rstd1 = buffers.tensor(DType.F32, t);
        m = buffers.tensor(act, tile, h);
        rstd2 = buffers.tensor(DType.F32, tile);
        g = buffers.tensor(act, tile, inter);
        u = buffers.tensor(act, tile, inter);
        s = buffers.tensor(act, tile, inter);
    }

    /** An inference pass: F32, one MLP tile for the whole chunk. */
    DecoderLayer(LlamaModel model, Buffers buffers, int t, Tensor invFreq, Tensor positions) {
        this(model, buffers, t, invFreq, positions, DType.F32, t, null);
    }

    /** Attention over a sequence sharded across ranks ({@link ShardedAttention}) instead of over this pass's tokens alone. */
    DecoderLayer shardedAttention(ShardedAttention attention) {
        if (attention != null && bounds != null) throw new IllegalArgumentException("context parallelism does not take packed records");
        this.sharded = attention;
        return this;
    }

    /** {@code starts} (0 first, increasing, each < t) followed by t. */
    private static int[] bounds(int[] starts, int t) {
        if (starts[0] != 0) throw new IllegalArgumentException("packed records: the first starts at 0, got " + starts[0]);
        int[] out = java.util.Arrays.copyOf(starts, starts.length + 1);
        out[starts.length] = t;
        for (int i = 1; i < out.length; i++) {
            if (out[i] <= out[i - 1]) {
                throw new IllegalArgumentException("packed records: starts must increase and stay below " + t + ", got "
                        + java.util.Arrays.toString(starts));
            }
        }
        return out;
    }

    /**
     * Causal attention of the pass's t tokens (q, k, v, att as [t, heads * d]); packed, one call per
     * record on its rows, its lse rows a contiguous [heads, n] block of lse at heads x its first token.
     */
    private void attend(Tensor q, Tensor k, Tensor v, Tensor att) {
        if (sharded != null) {
            sharded.forward(q.view(1, t, hq, d), k.view(1, t, hkv, d), v.view(1, t, hkv, d), scale, att.view(1, t, hq, d), lse);
            return;
        }
        if (bounds == null) {
            b.attention(q.view(1, t, hq, d), k.view(1, t, hkv, d), v.view(1, t, hkv, d), scale, att.view(1, t, hq, d), lse);
            return;
        }
        for (int r = 0; r + 1 < bounds.length; r++) {
            int s0 = bounds[r], e = bounds[r + 1], n = e - s0;
            b.attention(q.slice(s0, e).view(1, n, hq, d), k.slice(s0, e).view(1, n, hkv, d), v.slice(s0, e).view(1, n, hkv, d),
                    scale, att.slice(s0, e).view(1, n, hq, d), lseOf(s0, n));
        }
    }

    /** The backward of {@link #attend}, record by record as it ran. */
    private void attendBackward(Tensor dAtt, Tensor dq, Tensor dk, Tensor dv) {
        if (sharded != null) {
            sharded.backward(dAtt.view(1, t, hq, d), q.view(1, t, hq, d), k.view(1, t, hkv, d), v.view(1, t, hkv, d),
                    att.view(1, t, hq, d), lse, scale, dq.view(1, t, hq, d), dk.view(1, t, hkv, d), dv.view(1, t, hkv, d));
            return;
        }
        if (bounds == null) {
            b.attentionBackward(dAtt.view(1, t, hq, d), q.view(1, t, hq, d), k.view(1, t, hkv, d), v.view(1, t, hkv, d),
                    att.view(1, t, hq, d), lse, scale, dq.view(1, t, hq, d), dk.view(1, t, hkv, d), dv.view(1, t, hkv, d));
            return;
        }
        for (int r = 0; r + 1 < bounds.length; r++) {
            int s0 = bounds[r], e = bounds[r + 1], n = e - s0;
            b.attentionBackward(dAtt.slice(s0, e).view(1, n, hq, d), q.slice(s0, e).view(1, n, hq, d), k.slice(s0, e).view(1, n, hkv, d),
                    v.slice(s0, e).view(1, n, hkv, d), att.slice(s0, e).view(1, n, hq, d), lseOf(s0, n), scale,
                    dq.slice(s0, e).view(1, n, hq, d), dk.slice(s0, e).view(1, n, hkv, d), dv.slice(s0, e).view(1, n, hkv, d));
        }
    }

    /** Rows [start, start + n) of lse, laid out record after record. */
    private Tensor lseOf(int start, int n) {
        return Tensor.wrap(lse.data().asSlice((long) hq * start * 4, (long) hq * n * 4), lse.device(), DType.F32, 1, hq, n);
    }

    private static long aligned(long bytes) { return Math.ceilDiv(bytes, ALIGN) * ALIGN; }

    /** A [rows, cols] view of dtype at a byte offset of a buffer. */
    private static Tensor view(Tensor buffer, long offset, DType dtype, long rows, long cols) {
        return Tensor.wrap(buffer.data().asSlice(offset, dtype.byteSize(rows * cols)), buffer.device(), dtype, rows, cols);
    }

    /**
     * Lets this pass use {@code other}'s gradient buffers (allocating them first if needed): passes that run
     * their backwards one after the other need only one set.
     */
    DecoderLayer shareGradientsOf(DecoderLayer other) {
        if (other.t != t || other.tile != tile || other.act != act) throw new IllegalArgumentException("passes of different shapes");
        if (other.dS == null) other.allocateGradients();
        dS = other.dS;
        dU = other.dU;
        dM = other.dM;
        tmpM = other.tmpM;
        dX2part = other.dX2part;
        dqkv = other.dqkv;
        return this;
    }

    /**
     * Bytes of the buffers one pass of t tokens keeps, with an MLP tile of {@code tile} tokens (the
     * forward's working set: what a backward without recomputing needs per layer).
     */
    static long workingSetBytes(LlamaConfig c, int t, int tile, DType act) {
        long es = act.byteSize(1), h = c.hiddenSize(), qw = (long) c.numHeads() * c.headDim(), kvw = (long) c.numKvHeads() * c.headDim();
        long forward = aligned(t * qw * es) * 2 + aligned(t * kvw * es) * 2 + aligned(t * qw * es);
        long backward = aligned(t * h * 4) + aligned(t * h * es);
        long tl = Math.min(t, tile);
        return t * h * es + Math.max(forward, backward) + 4L * c.numHeads() * t + 4L * t
                + tl * h * es + 4L * tl + 3 * tl * c.intermediateSize() * es;
    }

    private void allocateGradients() {
        dS = buffers.tensor(act, tile, inter);
        dU = buffers.tensor(act, tile, inter);
        dM = buffers.tensor(act, tile, h);
        tmpM = buffers.tensor(act, tile, h);
        dX2part = buffers.tensor(DType.F32, tile, h);
        long es = act.byteSize(1);
        if (aligned(t * qw * es) + 2 * aligned(t * kvw * es) > t * h * 4) {
            dqkv = buffers.tensor(DType.U8, aligned(t * qw * es) + 2 * aligned(t * kvw * es)); // they do not fit in dx
        }
    }

    /** The buffer of a [t, hidden]: free between layers (the training step puts the final norm's output there). */
    Tensor spare() { return aOrX2; }

    /** A parameter's gradient, or null for a frozen weight (the ops then skip it). */
    static Tensor grad(Parameter p) { return p == null ? null : p.grad(); }

    /**
     * y = layer(x) (y must not be x); x and y of the pass's dtype. With a cache, the tokens sit at
     * positions cache.length() onwards.
     */
    void forward(int l, Tensor x, Tensor y, KvCache cache) {
        LlamaModel.Layer layer = model.layer(l);
        Tensor x2 = attentionBlock(layer, l, x, cache);
        for (int t0 = 0; t0 < t; t0 += tile) {
            int n = Math.min(tile, t - t0);
            Tensor x2t = x2.slice(t0, t0 + n), yt = y.slice(t0, t0 + n);
            mlpForward(layer, x2t, n);
            layer.down.forward(b, s.slice(0, n), yt);
            b.add(x2t, yt, yt);
        }
    }

    /**
     * x2 = x + o(attention(rope(q(a)), rope(k(a)), v(a))) with a = rmsnorm(x): leaves q, k, v (rotated),
     * att and lse in the slab, and returns x2 (in a's buffer).
     */
    private Tensor attentionBlock(LlamaModel.Layer layer, int l, Tensor x, KvCache cache) {
        Tensor a = aOrX2;
        b.rmsnorm(x, layer.attnNorm, eps, a, rstd1);
        layer.q.forward(b, a, q);
        layer.k.forward(b, a, k);
        layer.v.forward(b, a, v);
        Tensor q3 = q.view(t, hq, d), k3 = k.view(t, hkv, d);
        b.rope(q3, invFreq, positions, ropeScale, q3);
        b.rope(k3, invFreq, positions, ropeScale, k3);
        if (cache == null) {
            attend(q, k, v, att);
        } else {
            int p0 = cache.length(), tk = p0 + t;
            Tensor kc = cache.keys[l], vc = cache.values[l];
            b.copy(k, kc.slice(p0, tk));
            b.copy(v, vc.slice(p0, tk));
            b.attention(q.view(1, t, hq, d), kc.slice(0, tk).view(1, tk, hkv, d), vc.slice(0, tk).view(1, tk, hkv, d),
                    scale, att.view(1, t, hq, d), lse);
        }
        Tensor x2 = aOrX2; // a is not needed any more
        layer.o.forward(b, att, x2);
        b.add(x, x2, x2);
        return x2;
    }

    /** For n tokens of x2: m = rmsnorm(x2), g, u and s = silu(g) * u in the tile buffers. */
    private void mlpForward(LlamaModel.Layer layer, Tensor x2t, int n) {
        Tensor mt = m.slice(0, n), gt = g.slice(0, n), ut = u.slice(0, n);
        b.rmsnorm(x2t, layer.mlpNorm, eps, mt, rstd2.slice(0, n));
        layer.gate.forward(b, mt, gt);
        layer.up.forward(b, mt, ut);
        b.swiglu(gt, ut, s.slice(0, n));
    }

    /**
     * dx = d(layer)/dx · dy, adding parameter gradients; recomputes the forward from x first. x is of the
     * pass's dtype; dy and dx are F32 [t, hidden], dy is overwritten (it becomes the gradient of x2).
     */
    void backward(int l, Tensor x, Tensor dy, Tensor dx) {
        backward(l, x, dy, dx, true, true);
    }

    /**
     * As {@link #backward(int, Tensor, Tensor, Tensor)}; with {@code recompute} false, this pass's buffers
     * must still hold layer l's forward (its last {@link #forward} was layer l on x, with one MLP tile of
     * all t tokens): the backward starts from them instead of computing them again. With {@code inputGradient}
     * false nothing reads dx afterwards (layer 0 under a frozen embedding): the attention block's parameters get
     * their gradients, and its input gradient (q's, k's and v's input products, the attention norm's backward, the
     * residual add) is skipped unless the attention norm is trained. dx is still the scratch dq, dk and dv may use.
     */
    void backward(int l, Tensor x, Tensor dy, Tensor dx, boolean recompute, boolean inputGradient) {
        LlamaModel.Layer layer = model.layer(l);
        if (!recompute && tile < t) throw new IllegalStateException("a backward without recomputing needs one MLP tile of all " + t + " tokens");
        if (dS == null) allocateGradients();
        Tensor x2 = recompute ? attentionBlock(layer, l, x, null) : aOrX2; // the attention block's activations
        // MLP block, a tile at a time: y = x2 + down(silu(g) * u), m = rmsnorm(x2); dy becomes dy + dy/dx2
        for (int t0 = 0; t0 < t; t0 += tile) {
            int n = Math.min(tile, t - t0);
            Tensor x2t = x2.slice(t0, t0 + n), dyt = dy.slice(t0, t0 + n);
            if (recompute) mlpForward(layer, x2t, n);
            Tensor mt = m.slice(0, n), gt = g.slice(0, n), ut = u.slice(0, n), st = s.slice(0, n);
            Tensor dSt = dS.slice(0, n), dUt = dU.slice(0, n), dMt = dM.slice(0, n), tmpMt = tmpM.slice(0, n);
            layer.down.backward(b, st, dyt, dSt);
            b.swigluBackward(dSt, gt, ut, st, dUt); // dGate into s: s was read by down's backward
            layer.gate.backward(b, mt, st, dMt);
            layer.up.backward(b, mt, dUt, tmpMt);
            b.add(dMt, tmpMt, dMt);
            Tensor part = dX2part.slice(0, n);
            b.rmsnormBackward(dMt, x2t, layer.mlpNorm, rstd2.slice(0, n), part, grad(layer.mlpNormParameter));
            b.add(dyt, part, dyt); // the residual
        }
        Tensor dX2 = dy;
        // attention block: x2 = x + o(attention(rope(q), rope(k), v)); dq, dk, dv go where dx will be written last
        long es = act.byteSize(1);
        Tensor where = dqkv != null ? dqkv : dx;
        Tensor dq = view(where, 0, act, t, qw), dk = view(where, aligned(t * qw * es), act, t, kvw);
        Tensor dv = view(where, aligned(t * qw * es) + aligned(t * kvw * es), act, t, kvw);
        Tensor dAtt = view(slab, aligned(t * qw * es) * 2 + aligned(t * kvw * es) * 2, act, t, qw);
        layer.o.backward(b, att, dX2, dAtt);
        attendBackward(dAtt, dq, dk, dv);
        Tensor dq3 = dq.view(t, hq, d), dk3 = dk.view(t, hkv, d);
        b.ropeBackward(dq3, invFreq, positions, ropeScale, dq3);
        b.ropeBackward(dk3, invFreq, positions, ropeScale, dk3);
        // q, k, v, att and dAtt are spent: the slab takes dA and tmpA; a is recomputed into x2's buffer
        Tensor a = aOrX2;
        b.rmsnorm(x, layer.attnNorm, eps, a, rstd1);
        if (!inputGradient && grad(layer.attnNormParameter) == null) { // the adapters' gradients only
            layer.q.backward(b, a, dq, null);
            layer.k.backward(b, a, dk, null);
            layer.v.backward(b, a, dv, null);
            return;
        }
        Tensor dA = view(slab, 0, DType.F32, t, h), tmpA = view(slab, aligned(t * h * 4), act, t, h);
        layer.q.backward(b, a, dq, dA);
        layer.k.backward(b, a, dk, tmpA);
        b.add(dA, tmpA, dA);
        layer.v.backward(b, a, dv, tmpA);
        b.add(dA, tmpA, dA);
        b.rmsnormBackward(dA, x, layer.attnNorm, rstd1, dx, grad(layer.attnNormParameter));
        b.add(dx, dX2, dx);
    }
}
