package dev.tenfold.engine.cpu;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.Widened;

/**
 * The CPU backend. {@link #reference()} runs the plain, obviously-correct loops with double
 * accumulation (the oracle that every fast path and every CUDA kernel is tested against);
 * {@link #fast()} runs the Vector API code on all cores. Each op family lives in its own file,
 * its reference and fast paths side by side. Activations may be BF16 where {@link Backend} says so:
 * those ops run the F32 op on F32 copies of a few rows at a time ({@link Widened}).
 */
public final class CpuBackend implements Backend {
    private static final CpuBackend REFERENCE = new CpuBackend(false);
    private static final CpuBackend FAST = new CpuBackend(true);

    private final boolean fast;
    /** Ops on BF16 activations: the F32 ops on F32 copies of a few rows at a time (host temporaries). */
    private final Widened widened = new Widened(this, Tensor::allocate);

    private CpuBackend(boolean fast) { this.fast = fast; }

    public static CpuBackend reference() { return REFERENCE; }

    public static CpuBackend fast() { return FAST; }

    public boolean isFast() { return fast; }

    /**
     * The F32 elements of the one host tensor the fast cross-entropy allocates for t tokens and a
     * vocabulary of v (a token chunk's logits: over the whole vocabulary when gradients are wanted
     * and they fit, else one vocabulary chunk): what a plan of a CPU step counts for the loss.
     */
    public static long crossEntropyScratchElements(long t, long v, boolean grads) {
        int[] c = CrossEntropy.defaultChunks(t, v, grads);
        long tc = Math.max(1, Math.min(c[0], t));
        return grads && CrossEntropy.keepsLogits(tc, v) ? tc * Math.max(1, v) : tc * Math.max(1, Math.min(c[1], v));
    }

    /**
     * Refuses a tensor that lives on a device: its memory is not the host's, so reading it would
     * crash the JVM instead of failing cleanly.
     */
    private static void host(String op, Tensor... tensors) {
        for (Tensor t : tensors) {
            if (t != null && !t.device().isCpu()) {
                throw new IllegalArgumentException(op + ": the cpu backend takes host tensors, got " + t.describe());
            }
        }
    }

    @Override public String name() { return fast ? "cpu" : "cpu-reference"; }

    /** Whether this process's fast kernels were warmed up already ({@link #warmUp}). */
    private static volatile boolean warm;

    /**
     * Runs the fast kernels on small tensors until the JIT has compiled them (at most a few seconds,
     * once per process; {@link CpuWarmup}). The reference backend has nothing to warm up: its loops are
     * plain Java that the interpreter runs at a tolerable speed.
     */
    @Override public synchronized double warmUp() {
        if (!fast || warm) return 0;
        warm = true;
        return CpuWarmup.run(this, WARMUP_BUDGET_SECONDS).seconds();
    }

    /**
     * The longest a warm-up runs; it stops as soon as the JIT is idle. On 2 cores the JIT was done with the
     * kernels after 7.5-11 s (6 s, the earlier budget, left it compiling into the first steps: the first
     * step 3-5 times the steady one, the first five steps longer in total than warm-up and all).
     */
    private static final double WARMUP_BUDGET_SECONDS = 12;

    @Override public void matmul(Tensor a, boolean transA, Tensor b, boolean transB, Tensor out, boolean accumulate) {
        host("matmul", a, b, out);
        if (out != null && out.dtype() == DType.BF16) {
            widened.matmul(a, transA, b, transB, out, accumulate);
            return;
        }
        Matmul.matmul(fast, a, transA, b, transB, out, accumulate);
    }

    @Override public void add(Tensor a, Tensor b, Tensor out) {
        host("add", a, b, out);
        if (Widened.any(a, b, out)) {
            widened.add(a, b, out);
            return;
        }
        Elementwise.add(fast, a, b, out);
    }

    @Override public void mul(Tensor a, Tensor b, Tensor out) {
        host("mul", a, b, out);
        if (Widened.any(a, b, out)) {
            widened.mul(a, b, out);
            return;
        }
        Elementwise.mul(fast, a, b, out);
    }

    @Override public void scale(Tensor a, float s, Tensor out) {
        host("scale", a, out);
        Elementwise.scale(fast, a, s, out);
    }

    @Override public void cast(Tensor src, Tensor dst) {
        host("cast", src, dst);
        Elementwise.cast(fast, src, dst);
    }

    @Override public void embedding(Tensor table, Tensor ids, Tensor out) {
        host("embedding", table, ids, out);
        if (Widened.any(out)) {
            widened.embedding(table, ids, out);
            return;
        }
        Embedding.forward(fast, table, ids, out);
    }

    @Override public void embeddingBackward(Tensor dOut, Tensor ids, Tensor dTable) {
        host("embeddingBackward", dOut, ids, dTable);
        Embedding.backward(fast, dOut, ids, dTable);
    }

    @Override public void rmsnorm(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) {
        host("rmsnorm", x, weight, out, rstd);
        if (Widened.any(x, out)) {
            widened.rmsnorm(x, weight, eps, out, rstd);
            return;
        }
        RmsNorm.forward(fast, x, weight, eps, out, rstd);
    }

    @Override public void rmsnormBackward(Tensor dOut, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor dWeight) {
        host("rmsnormBackward", dOut, x, weight, rstd, dx, dWeight);
        if (Widened.any(dOut, x, dx)) {
            widened.rmsnormBackward(dOut, x, weight, rstd, dx, dWeight);
            return;
        }
        RmsNorm.backward(fast, dOut, x, weight, rstd, dx, dWeight);
    }

    @Override public void rope(Tensor x, Tensor invFreq, Tensor positions, float attnScale, Tensor out) {
        host("rope", x, invFreq, positions, out);
        if (Widened.any(x, out)) {
            widened.rope(x, invFreq, positions, attnScale, out, false);
            return;
        }
        Rope.forward(fast, x, invFreq, positions, attnScale, out);
    }

    @Override public void ropeBackward(Tensor dOut, Tensor invFreq, Tensor positions, float attnScale, Tensor dx) {
        host("ropeBackward", dOut, invFreq, positions, dx);
        if (Widened.any(dOut, dx)) {
            widened.rope(dOut, invFreq, positions, attnScale, dx, true);
            return;
        }
        Rope.backward(fast, dOut, invFreq, positions, attnScale, dx);
    }

    @Override public void swiglu(Tensor gate, Tensor up, Tensor out) {
        host("swiglu", gate, up, out);
        if (Widened.any(gate, up, out)) {
            widened.swiglu(gate, up, out);
            return;
        }
        SwiGlu.forward(fast, gate, up, out);
    }

    @Override public void swigluBackward(Tensor dOut, Tensor gate, Tensor up, Tensor dGate, Tensor dUp) {
        host("swigluBackward", dOut, gate, up, dGate, dUp);
        if (Widened.any(dOut, gate, up, dGate, dUp)) {
            widened.swigluBackward(dOut, gate, up, dGate, dUp);
            return;
        }
        SwiGlu.backward(fast, dOut, gate, up, dGate, dUp);
    }

    @Override public void softmax(Tensor x, Tensor out) {
        host("softmax", x, out);
        Softmax.forward(fast, x, out);
    }

    @Override public void softmaxBackward(Tensor dOut, Tensor y, Tensor dx) {
        host("softmaxBackward", dOut, y, dx);
        Softmax.backward(fast, dOut, y, dx);
    }

    @Override public void attention(Tensor q, Tensor k, Tensor v, float scale, Tensor out, Tensor lse) {
        host("attention", q, k, v, out, lse);
        if (Widened.any(q, k, v, out)) {
            widened.attention(q, k, v, scale, out, lse);
            return;
        }
        Attention.forward(fast, q, k, v, scale, out, lse);
    }

    @Override public void attentionBackward(Tensor dOut, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, float scale,
                                            Tensor dq, Tensor dk, Tensor dv) {
        host("attentionBackward", dOut, q, k, v, out, lse, dq, dk, dv);
        if (Widened.any(dOut, q, k, v, out, dq, dk, dv)) {
            widened.attentionBackward(dOut, q, k, v, out, lse, scale, dq, dk, dv);
            return;
        }
        Attention.backward(fast, dOut, q, k, v, out, lse, scale, dq, dk, dv);
    }

    @Override public LossSum crossEntropy(Tensor hidden, Tensor weight, Tensor targets, float gradScale,
                                          Tensor dHidden, Tensor dWeight) {
        host("crossEntropy", hidden, weight, targets, dHidden, dWeight);
        if (Widened.any(hidden, dHidden)) return widened.crossEntropy(hidden, weight, targets, gradScale, dHidden, dWeight);
        return CrossEntropy.compute(fast, hidden, weight, targets, gradScale, dHidden, dWeight);
    }

    @Override public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamW hp, long step) {
        host("adamw", param, grad, m, v);
        AdamWStep.step(fast, param, grad, m, v, hp, step);
    }

    @Override public void dequantizeNf4(Tensor packed, Tensor absmax, Tensor nestedAbsmax, Tensor nestedCode, float offset,
                                        Tensor out) {
        host("dequantizeNf4", packed, absmax, nestedAbsmax, nestedCode, out);
        Nf4Dequant.dequantize(fast, packed, absmax, nestedAbsmax, nestedCode, offset, out);
    }

    @Override public double sum(Tensor x) {
        host("sum", x);
        return Reductions.sum(fast, x);
    }

    @Override public float max(Tensor x) {
        host("max", x);
        return Reductions.max(fast, x);
    }

    @Override public double sumOfSquares(Tensor x) {
        host("sumOfSquares", x);
        return Reductions.sumOfSquares(fast, x);
    }
}
