package dev.tenfold.engine.cpu;

import static dev.tenfold.engine.cpu.Elementwise.F;
import static dev.tenfold.engine.cpu.Elementwise.L;
import static dev.tenfold.engine.cpu.Elementwise.LE;

import dev.tenfold.engine.Check;
import dev.tenfold.engine.OpChecks;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;

/**
 * RMSNorm forward and backward: y = x * r * w with r = 1 / sqrt(mean(x^2) + eps) per row.
 * Backward: dx = r * w * g - x * r^3 * sum(g * w * x) / H; dWeight += sum over rows of g * x * r.
 */
final class RmsNorm {
    private RmsNorm() {}

    /** Columns per dWeight task: each task owns its columns, so accumulation needs no locks. */
    private static final int COLUMN_BLOCK = 256;

    /** Shared checks; returns {rows, H}. {@code a} is out (forward) or dOut (backward), {@code dx} null in the forward. */
    static int[] check(String op, Tensor x, Tensor weight, Tensor rstd, Tensor a, String aName, Tensor dx, Tensor dWeight) {
        return OpChecks.rmsnorm(op, x, weight, rstd, a, aName, dx, dWeight);
    }

    static void forward(boolean fast, Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) {
        int[] d = check("rmsnorm", x, weight, rstd, out, "out", null, null);
        int rows = d[0], h = d[1];
        MemorySegment xs = x.data(), ws = weight.data(), os = out.data(), rs = rstd.data();
        if (!fast) {
            for (long r = 0; r < rows; r++) {
                long base = r * h;
                double ss = 0;
                for (long j = 0; j < h; j++) {
                    double v = xs.getAtIndex(Tensor.F32, base + j);
                    ss += v * v;
                }
                double inv = 1.0 / Math.sqrt(ss / h + eps);
                rs.setAtIndex(Tensor.F32, r, (float) inv);
                for (long j = 0; j < h; j++) {
                    os.setAtIndex(Tensor.F32, base + j, (float) (xs.getAtIndex(Tensor.F32, base + j) * inv * ws.getAtIndex(Tensor.F32, j)));
                }
            }
            return;
        }
        Parallel.forRange(rows, grain(h), (start, end) -> {
            for (long r = start; r < end; r++) {
                long base = r * h;
                FloatVector acc = FloatVector.zero(F);
                int j = 0;
                int upper = F.loopBound(h);
                for (; j < upper; j += L) {
                    FloatVector v = FloatVector.fromMemorySegment(F, xs, 4 * (base + j), LE);
                    acc = v.fma(v, acc);
                }
                double ss = VectorMath.sumDouble(acc);
                for (; j < h; j++) {
                    float v = xs.getAtIndex(Tensor.F32, base + j);
                    ss += v * v;
                }
                float inv = (float) (1.0 / Math.sqrt(ss / h + eps));
                rs.setAtIndex(Tensor.F32, r, inv);
                // The row's sum is complete before the first write, so out may alias x.
                for (j = 0; j < upper; j += L) {
                    FloatVector v = FloatVector.fromMemorySegment(F, xs, 4 * (base + j), LE);
                    v.mul(inv).mul(FloatVector.fromMemorySegment(F, ws, 4L * j, LE)).intoMemorySegment(os, 4 * (base + j), LE);
                }
                for (; j < h; j++) {
                    os.setAtIndex(Tensor.F32, base + j, xs.getAtIndex(Tensor.F32, base + j) * inv * ws.getAtIndex(Tensor.F32, j));
                }
            }
        });
    }

    static void backward(boolean fast, Tensor dOut, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor dWeight) {
        int[] d = check("rmsnormBackward", x, weight, rstd, dOut, "dOut", dx, dWeight);
        Check.notNull("rmsnormBackward", "dx", dx);
        int rows = d[0], h = d[1];
        MemorySegment gs = dOut.data(), xs = x.data(), ws = weight.data(), rs = rstd.data(), dxs = dx.data();
        MemorySegment dws = dWeight == null ? null : dWeight.data();
        if (!fast) {
            double[] dw = new double[h];
            for (long r = 0; r < rows; r++) {
                long base = r * h;
                double inv = rs.getAtIndex(Tensor.F32, r);
                double dot = 0;
                for (long j = 0; j < h; j++) {
                    dot += (double) gs.getAtIndex(Tensor.F32, base + j) * ws.getAtIndex(Tensor.F32, j) * xs.getAtIndex(Tensor.F32, base + j);
                }
                double c = inv * inv * inv * dot / h;
                for (int j = 0; j < h; j++) {
                    double g = gs.getAtIndex(Tensor.F32, base + j), xv = xs.getAtIndex(Tensor.F32, base + j);
                    dw[j] += g * xv * inv;
                    dxs.setAtIndex(Tensor.F32, base + j, (float) (inv * ws.getAtIndex(Tensor.F32, j) * g - c * xv));
                }
            }
            if (dws != null) {
                for (int j = 0; j < h; j++) dws.setAtIndex(Tensor.F32, j, (float) (dws.getAtIndex(Tensor.F32, j) + dw[j]));
            }
            return;
        }
        // dWeight first: it reads dOut, which dx might overwrite if a caller aliases them.
        if (dws != null) {
            int blocks = (h + COLUMN_BLOCK - 1) / COLUMN_BLOCK;
            Parallel.forRange(blocks, (int) Math.max(1, Elementwise.GRAIN / Math.max(1L, (long) rows * COLUMN_BLOCK)), (b0, b1) -> {
                float[] acc = new float[COLUMN_BLOCK];
                for (int b = b0; b < b1; b++) {
                    int c0 = b * COLUMN_BLOCK, n = Math.min(h, c0 + COLUMN_BLOCK) - c0, upper = F.loopBound(n);
                    Arrays.fill(acc, 0f);
                    for (long r = 0; r < rows; r++) {
                        long base = r * h + c0;
                        float inv = rs.getAtIndex(Tensor.F32, r);
                        int j = 0;
                        for (; j < upper; j += L) {
                            FloatVector gx = FloatVector.fromMemorySegment(F, gs, 4 * (base + j), LE)
                                    .mul(FloatVector.fromMemorySegment(F, xs, 4 * (base + j), LE));
                            gx.mul(inv).add(FloatVector.fromArray(F, acc, j)).intoArray(acc, j);
                        }
                        for (; j < n; j++) acc[j] += gs.getAtIndex(Tensor.F32, base + j) * xs.getAtIndex(Tensor.F32, base + j) * inv;
                    }
                    for (int j = 0; j < n; j++) dws.setAtIndex(Tensor.F32, c0 + j, dws.getAtIndex(Tensor.F32, c0 + j) + acc[j]);
                }
            });
        }
        Parallel.forRange(rows, grain(h), (start, end) -> {
            int upper = F.loopBound(h);
            for (long r = start; r < end; r++) {
                long base = r * h;
                float inv = rs.getAtIndex(Tensor.F32, r);
                FloatVector acc = FloatVector.zero(F);
                int j = 0;
                for (; j < upper; j += L) {
                    FloatVector gw = FloatVector.fromMemorySegment(F, gs, 4 * (base + j), LE).mul(FloatVector.fromMemorySegment(F, ws, 4L * j, LE));
                    acc = gw.fma(FloatVector.fromMemorySegment(F, xs, 4 * (base + j), LE), acc);
                }
                double dot = VectorMath.sumDouble(acc);
                for (; j < h; j++) {
                    dot += gs.getAtIndex(Tensor.F32, base + j) * ws.getAtIndex(Tensor.F32, j) * xs.getAtIndex(Tensor.F32, base + j);
                }
                float c = (float) ((double) inv * inv * inv * dot / h);
                for (j = 0; j < upper; j += L) {
                    FloatVector gw = FloatVector.fromMemorySegment(F, gs, 4 * (base + j), LE).mul(FloatVector.fromMemorySegment(F, ws, 4L * j, LE));
                    FloatVector xv = FloatVector.fromMemorySegment(F, xs, 4 * (base + j), LE);
                    gw.mul(inv).sub(xv.mul(c)).intoMemorySegment(dxs, 4 * (base + j), LE);
                }
                for (; j < h; j++) {
                    float gw = gs.getAtIndex(Tensor.F32, base + j) * ws.getAtIndex(Tensor.F32, j);
                    dxs.setAtIndex(Tensor.F32, base + j, gw * inv - xs.getAtIndex(Tensor.F32, base + j) * c);
                }
            }
        });
    }

    /** Rows per task: enough elements that splitting pays. */
    static int grain(int width) { return Math.max(1, Elementwise.GRAIN / Math.max(1, width)); }
}
