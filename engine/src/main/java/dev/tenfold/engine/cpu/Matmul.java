package dev.tenfold.engine.cpu;

import dev.tenfold.engine.Check;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;

/** Matrix product, optionally transposed and batched: the reference and the fast path. */
final class Matmul {
    private Matmul() {}

    /** The problem, after the argument checks: out[bt] (M x N) = op(a[bt]) (M x K) * op(b[bt]) (K x N). */
    record Dims(int batch, int m, int n, int k, boolean bBatched) {}

    static void matmul(boolean fast, Tensor a, boolean transA, Tensor b, boolean transB, Tensor out, boolean accumulate) {
        Dims d = check(a, transA, b, transB, out);
        if (fast) {
            fast(d, a, transA, b, transB, out, accumulate);
        } else {
            reference(d, a, transA, b, transB, out, accumulate);
        }
    }

    static Dims check(Tensor a, boolean transA, Tensor b, boolean transB, Tensor out) {
        String op = "matmul";
        Check.dtype(op, "a", a, DType.F32, DType.BF16);
        Check.dtype(op, "b", b, DType.F32, DType.BF16);
        Check.dtype(op, "out", out, DType.F32);
        Check.rank(op, "a", a, 2, 3);
        Check.rank(op, "b", b, 2, 3);
        Check.rank(op, "out", out, a.rank());
        int batch = a.rank() == 3 ? Check.intSize(op, a.dim(0)) : 1;
        if (b.rank() == 3 && (a.rank() != 3 || b.dim(0) != a.dim(0))) {
            throw Check.fail(op, "a batched b needs an a with the same batch", a, b);
        }
        long m = transA ? a.dim(-1) : a.dim(-2);
        long ka = transA ? a.dim(-2) : a.dim(-1);
        long kb = transB ? b.dim(-1) : b.dim(-2);
        long n = transB ? b.dim(-2) : b.dim(-1);
        if (ka != kb) {
            throw Check.fail(op, "inner dimensions differ (" + ka + " vs " + kb + ", transA=" + transA + ", transB=" + transB + ")", a, b);
        }
        long[] expected = a.rank() == 3 ? new long[] {batch, m, n} : new long[] {m, n};
        Check.shape(op, "out", out, expected);
        return new Dims(batch, Check.intSize(op, m), Check.intSize(op, n), Check.intSize(op, ka), b.rank() == 3);
    }

    /** Obvious triple loop with double accumulation: the oracle. */
    static void reference(Dims d, Tensor a, boolean transA, Tensor b, boolean transB, Tensor out, boolean accumulate) {
        int m = d.m(), n = d.n(), k = d.k();
        for (int bt = 0; bt < d.batch(); bt++) {
            long aBase = (long) bt * m * k;
            long bBase = d.bBatched() ? (long) bt * k * n : 0;
            long oBase = (long) bt * m * n;
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double acc = 0;
                    for (int p = 0; p < k; p++) {
                        float av = a.getFloat(aBase + (transA ? (long) p * m + i : (long) i * k + p));
                        float bv = b.getFloat(bBase + (transB ? (long) j * k + p : (long) p * n + j));
                        acc += (double) av * bv;
                    }
                    long o = oBase + (long) i * n + j;
                    out.setFloat(o, (float) (accumulate ? out.getFloat(o) + acc : acc));
                }
            }
        }
    }

    /** Fast path: cache-blocked, packed panels, Vector API micro-kernel, all cores. */
    static void fast(Dims d, Tensor a, boolean transA, Tensor b, boolean transB, Tensor out, boolean accumulate) {
        // Until the blocked kernel lands, the fast path is the reference.
        reference(d, a, transA, b, transB, out, accumulate);
    }
}
