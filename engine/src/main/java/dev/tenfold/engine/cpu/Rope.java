package dev.tenfold.engine.cpu;

import static dev.tenfold.engine.cpu.Elementwise.F;
import static dev.tenfold.engine.cpu.Elementwise.L;
import static dev.tenfold.engine.cpu.Elementwise.LE;

import dev.tenfold.engine.Check;
import dev.tenfold.engine.OpChecks;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/**
 * Rotary position embedding (Hugging Face rotate_half: dimension j pairs with j + d/2) forward
 * and backward. The backward is the same rotation by the negative angle, i.e. with sin negated.
 */
final class Rope {
    private Rope() {}

    /** Shared checks; returns {rows (B*T), heads, d}. */
    static int[] check(String op, Tensor x, String xName, Tensor invFreq, Tensor positions, Tensor out, String outName) {
        int[] d = OpChecks.rope(op, x, xName, invFreq, positions, out, outName);
        Check.intSize(op, x.numel()); // the host loops index x with ints
        return d;
    }

    static void forward(boolean fast, Tensor x, Tensor invFreq, Tensor positions, float attnScale, Tensor out) {
        int[] dims = check("rope", x, "x", invFreq, positions, out, "out");
        apply(fast, dims, x, invFreq, positions, attnScale, 1f, out);
    }

    static void backward(boolean fast, Tensor dOut, Tensor invFreq, Tensor positions, float attnScale, Tensor dx) {
        int[] dims = check("ropeBackward", dOut, "dOut", invFreq, positions, dx, "dx");
        apply(fast, dims, dOut, invFreq, positions, attnScale, -1f, dx);
    }

    /** The angle exactly as Hugging Face computes it: position times inverse frequency, in f32. */
    static float angle(int position, float invFreq) { return (float) position * invFreq; }

    /** out = rotate(x) by sign * angle. Each pair is read before it is written, so out may alias x. */
    private static void apply(boolean fast, int[] dims, Tensor x, Tensor invFreq, Tensor positions, float attnScale,
                              float sign, Tensor out) {
        int rows = dims[0], heads = dims[1], d = dims[2], half = d / 2;
        MemorySegment xs = x.data(), fs = invFreq.data(), ps = positions.data(), os = out.data();
        if (!fast) {
            for (long r = 0; r < rows; r++) {
                int p = ps.getAtIndex(Tensor.I32, r);
                for (long h = 0; h < heads; h++) {
                    long base = (r * heads + h) * d;
                    for (int j = 0; j < half; j++) {
                        float a = angle(p, fs.getAtIndex(Tensor.F32, j));
                        double c = (float) Math.cos(a) * attnScale, s = sign * ((float) Math.sin(a) * attnScale);
                        double x0 = xs.getAtIndex(Tensor.F32, base + j), x1 = xs.getAtIndex(Tensor.F32, base + half + j);
                        os.setAtIndex(Tensor.F32, base + j, (float) (x0 * c - x1 * s));
                        os.setAtIndex(Tensor.F32, base + half + j, (float) (x1 * c + x0 * s));
                    }
                }
            }
            return;
        }
        float[] inv = invFreq.toFloatArray();
        Parallel.forRange(rows, RmsNorm.grain(heads * d), (start, end) -> {
            // cos/sin depend on the row's position only: computed once per row, used by every head.
            float[] cos = new float[half], sin = new float[half];
            int upper = F.loopBound(half);
            boolean have = false;
            int last = 0;
            for (long r = start; r < end; r++) {
                int p = ps.getAtIndex(Tensor.I32, r);
                if (!have || p != last) {
                    for (int j = 0; j < half; j++) {
                        float a = angle(p, inv[j]);
                        cos[j] = (float) Math.cos(a) * attnScale;
                        sin[j] = sign * ((float) Math.sin(a) * attnScale);
                    }
                    have = true;
                    last = p;
                }
                for (long h = 0; h < heads; h++) {
                    long lo = (r * heads + h) * d, hi = lo + half;
                    int j = 0;
                    for (; j < upper; j += L) {
                        FloatVector c = FloatVector.fromArray(F, cos, j), s = FloatVector.fromArray(F, sin, j);
                        FloatVector x0 = FloatVector.fromMemorySegment(F, xs, 4 * (lo + j), LE);
                        FloatVector x1 = FloatVector.fromMemorySegment(F, xs, 4 * (hi + j), LE);
                        x0.mul(c).sub(x1.mul(s)).intoMemorySegment(os, 4 * (lo + j), LE);
                        x1.mul(c).add(x0.mul(s)).intoMemorySegment(os, 4 * (hi + j), LE);
                    }
                    for (; j < half; j++) {
                        float x0 = xs.getAtIndex(Tensor.F32, lo + j), x1 = xs.getAtIndex(Tensor.F32, hi + j);
                        os.setAtIndex(Tensor.F32, lo + j, x0 * cos[j] - x1 * sin[j]);
                        os.setAtIndex(Tensor.F32, hi + j, x1 * cos[j] + x0 * sin[j]);
                    }
                }
            }
        });
    }
}
