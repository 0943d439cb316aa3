package dev.tenfold.engine.cpu;

import static dev.tenfold.engine.cpu.Elementwise.F;
import static dev.tenfold.engine.cpu.Elementwise.L;
import static dev.tenfold.engine.cpu.Elementwise.LE;

import dev.tenfold.engine.OpChecks;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/** Softmax over the last dimension (max subtracted first), forward and backward. */
final class Softmax {
    private Softmax() {}

    /** Shared checks: all F32 with the shape of the first; returns {rows, width}. */
    static int[] check(String op, String[] names, Tensor... ts) {
        return OpChecks.softmax(op, names, ts);
    }

    static void forward(boolean fast, Tensor x, Tensor out) {
        int[] d = check("softmax", new String[] {"x", "out"}, x, out);
        int rows = d[0], w = d[1];
        MemorySegment xs = x.data(), os = out.data();
        if (!fast) {
            double[] e = new double[w];
            for (long r = 0; r < rows; r++) {
                long base = r * w;
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < w; j++) max = Math.max(max, xs.getAtIndex(Tensor.F32, base + j));
                double sum = 0;
                for (int j = 0; j < w; j++) sum += e[j] = Math.exp(xs.getAtIndex(Tensor.F32, base + j) - max);
                for (int j = 0; j < w; j++) os.setAtIndex(Tensor.F32, base + j, (float) (e[j] / sum));
            }
            return;
        }
        Parallel.forRange(rows, RmsNorm.grain(w), (start, end) -> {
            int upper = F.loopBound(w);
            for (long r = start; r < end; r++) {
                long base = r * w;
                FloatVector mv = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
                int j = 0;
                for (; j < upper; j += L) mv = mv.max(FloatVector.fromMemorySegment(F, xs, 4 * (base + j), LE));
                float max = mv.reduceLanes(VectorOperators.MAX);
                for (; j < w; j++) max = Math.max(max, xs.getAtIndex(Tensor.F32, base + j));
                // exp(x - max) goes straight into out (each x is read before its slot is written,
                // so out may alias x), then the row is scaled by 1 / sum.
                FloatVector sv = FloatVector.zero(F);
                for (j = 0; j < upper; j += L) {
                    FloatVector e = VectorMath.exp(FloatVector.fromMemorySegment(F, xs, 4 * (base + j), LE).sub(max));
                    e.intoMemorySegment(os, 4 * (base + j), LE);
                    sv = sv.add(e);
                }
                double sum = VectorMath.sumDouble(sv);
                for (; j < w; j++) {
                    float e = (float) Math.exp(xs.getAtIndex(Tensor.F32, base + j) - max);
                    os.setAtIndex(Tensor.F32, base + j, e);
                    sum += e;
                }
                float inv = (float) (1 / sum);
                for (j = 0; j < upper; j += L) {
                    FloatVector.fromMemorySegment(F, os, 4 * (base + j), LE).mul(inv).intoMemorySegment(os, 4 * (base + j), LE);
                }
                for (; j < w; j++) os.setAtIndex(Tensor.F32, base + j, os.getAtIndex(Tensor.F32, base + j) * inv);
            }
        });
    }

    static void backward(boolean fast, Tensor dOut, Tensor y, Tensor dx) {
        int[] d = check("softmaxBackward", new String[] {"dOut", "y", "dx"}, dOut, y, dx);
        int rows = d[0], w = d[1];
        MemorySegment gs = dOut.data(), ys = y.data(), dxs = dx.data();
        if (!fast) {
            for (long r = 0; r < rows; r++) {
                long base = r * w;
                double dot = 0;
                for (int j = 0; j < w; j++) dot += (double) gs.getAtIndex(Tensor.F32, base + j) * ys.getAtIndex(Tensor.F32, base + j);
                for (int j = 0; j < w; j++) {
                    dxs.setAtIndex(Tensor.F32, base + j, (float) (ys.getAtIndex(Tensor.F32, base + j) * (gs.getAtIndex(Tensor.F32, base + j) - dot)));
                }
            }
            return;
        }
        Parallel.forRange(rows, RmsNorm.grain(w), (start, end) -> {
            int upper = F.loopBound(w);
            for (long r = start; r < end; r++) {
                long base = r * w;
                FloatVector acc = FloatVector.zero(F);
                int j = 0;
                for (; j < upper; j += L) {
                    acc = FloatVector.fromMemorySegment(F, gs, 4 * (base + j), LE).fma(FloatVector.fromMemorySegment(F, ys, 4 * (base + j), LE), acc);
                }
                double dotD = VectorMath.sumDouble(acc);
                for (; j < w; j++) dotD += gs.getAtIndex(Tensor.F32, base + j) * ys.getAtIndex(Tensor.F32, base + j);
                float dot = (float) dotD;
                for (j = 0; j < upper; j += L) {
                    FloatVector yv = FloatVector.fromMemorySegment(F, ys, 4 * (base + j), LE);
                    yv.mul(FloatVector.fromMemorySegment(F, gs, 4 * (base + j), LE).sub(dot)).intoMemorySegment(dxs, 4 * (base + j), LE);
                }
                for (; j < w; j++) {
                    dxs.setAtIndex(Tensor.F32, base + j, ys.getAtIndex(Tensor.F32, base + j) * (gs.getAtIndex(Tensor.F32, base + j) - dot));
                }
            }
        });
    }
}
