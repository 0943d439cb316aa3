package dev.tenfold.engine.cpu;

import static dev.tenfold.engine.cpu.Elementwise.F;
import static dev.tenfold.engine.cpu.Elementwise.L;
import static dev.tenfold.engine.cpu.Elementwise.LE;

import dev.tenfold.engine.Check;
import dev.tenfold.engine.OpChecks;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Sum, max and sum of squares of all elements. The fast path reduces fixed blocks in parallel
 * and combines the block results in order, so its answer does not depend on the thread count.
 */
final class Reductions {
    private Reductions() {}

    /** Double lanes: half as many as float lanes in a vector of the same size. */
    private static final VectorSpecies<Double> D = VectorSpecies.of(double.class, F.vectorShape());
    private static final int BLOCK = 1 << 14;

    private enum Kind { SUM, SQUARES }

    /** Shared check: F32, any shape; returns the element count. */
    static int check(String op, Tensor x) {
        return Check.intSize(op, OpChecks.reduction(op, x));
    }

    static double sum(boolean fast, Tensor x) { return sumOf("sum", Kind.SUM, fast, x); }

    static double sumOfSquares(boolean fast, Tensor x) { return sumOf("sumOfSquares", Kind.SQUARES, fast, x); }

    private static double sumOf(String op, Kind kind, boolean fast, Tensor x) {
        int n = check(op, x);
        MemorySegment xs = x.data();
        if (!fast) {
            double s = 0;
            for (long i = 0; i < n; i++) {
                double v = xs.getAtIndex(Tensor.F32, i);
                s += kind == Kind.SUM ? v : v * v;
            }
            return s;
        }
        int blocks = (n + BLOCK - 1) / BLOCK;
        double[] partial = new double[blocks];
        Parallel.forRange(blocks, 1, (b0, b1) -> {
            for (int b = b0; b < b1; b++) {
                int start = b * BLOCK, end = Math.min(n, start + BLOCK), i = start;
                // Each float vector is widened to two double vectors: accumulation in double, as the contract says.
                DoubleVector acc = DoubleVector.zero(D);
                for (int upper = start + F.loopBound(end - start); i < upper; i += L) {
                    FloatVector v = FloatVector.fromMemorySegment(F, xs, 4L * i, LE);
                    DoubleVector lo = (DoubleVector) v.convertShape(VectorOperators.F2D, D, 0);
                    DoubleVector hi = (DoubleVector) v.convertShape(VectorOperators.F2D, D, 1);
                    acc = kind == Kind.SUM ? acc.add(lo).add(hi) : lo.fma(lo, hi.fma(hi, acc));
                }
                double s = 0;
                for (double lane : acc.toArray()) s += lane; // fixed order: reduceLanes(ADD) may vary with the JIT
                for (; i < end; i++) {
                    double v = xs.getAtIndex(Tensor.F32, i);
                    s += kind == Kind.SUM ? v : v * v;
                }
                partial[b] = s;
            }
        });
        double s = 0;
        for (double p : partial) s += p;
        return s;
    }

    /** Largest element; NaN if any element is NaN (Math.max propagates NaN); -infinity when empty. */
    static float max(boolean fast, Tensor x) {
        int n = check("max", x);
        MemorySegment xs = x.data();
        if (!fast) {
            float m = Float.NEGATIVE_INFINITY;
            for (long i = 0; i < n; i++) m = Math.max(m, xs.getAtIndex(Tensor.F32, i));
            return m;
        }
        int blocks = (n + BLOCK - 1) / BLOCK;
        float[] partial = new float[blocks];
        Parallel.forRange(blocks, 1, (b0, b1) -> {
            for (int b = b0; b < b1; b++) {
                int start = b * BLOCK, end = Math.min(n, start + BLOCK), i = start;
                FloatVector acc = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
                for (int upper = start + F.loopBound(end - start); i < upper; i += L) {
                    acc = acc.max(FloatVector.fromMemorySegment(F, xs, 4L * i, LE));
                }
                float m = acc.reduceLanes(VectorOperators.MAX);
                for (; i < end; i++) m = Math.max(m, xs.getAtIndex(Tensor.F32, i));
                partial[b] = m;
            }
        });
        float m = Float.NEGATIVE_INFINITY;
        for (float p : partial) m = Math.max(m, p);
        return m;
    }
}
