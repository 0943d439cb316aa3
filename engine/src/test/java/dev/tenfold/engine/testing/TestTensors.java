package dev.tenfold.engine.testing;

import static org.junit.jupiter.api.Assertions.fail;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.util.Arrays;
import java.util.SplittableRandom;

/** Random inputs, poisoned outputs and closeness checks shared by the op tests. */
public final class TestTensors {
    private TestTensors() {}

    /** F32 tensor of uniform values in [-1, 1) (never all zeros). */
    public static Tensor random(SplittableRandom rng, long... shape) {
        return random(rng, DType.F32, 1f, shape);
    }

    /** Tensor of the given float dtype with uniform values in [-amplitude, amplitude). */
    public static Tensor random(SplittableRandom rng, DType dtype, float amplitude, long... shape) {
        Tensor t = Tensor.allocate(dtype, shape);
        for (long i = 0; i < t.numel(); i++) t.setFloat(i, (float) ((rng.nextDouble() * 2 - 1) * amplitude));
        return t;
    }

    /** I32 tensor of values in [0, bound). */
    public static Tensor randomInts(SplittableRandom rng, int bound, long... shape) {
        Tensor t = Tensor.allocate(DType.I32, shape);
        for (long i = 0; i < t.numel(); i++) t.setInt(i, rng.nextInt(bound));
        return t;
    }

    /** An output tensor filled with NaN, so that an element the op forgets to write fails the comparison. */
    public static Tensor poisoned(DType dtype, long... shape) {
        Tensor t = Tensor.allocate(dtype, shape);
        t.fill(Float.NaN);
        return t;
    }

    public static Tensor poisoned(long... shape) { return poisoned(DType.F32, shape); }

    /**
     * Fails unless |expected - actual| <= atol + rtol * |expected| everywhere; NaN or infinity in
     * actual always fails. The message names the first bad index and the worst error.
     */
    public static void assertClose(String what, Tensor expected, Tensor actual, double atol, double rtol) {
        if (!Arrays.equals(expected.shape(), actual.shape())) {
            fail(what + ": shape " + Arrays.toString(actual.shape()) + " != expected " + Arrays.toString(expected.shape()));
        }
        assertClose(what, expected.toFloatArray(), actual.toFloatArray(), atol, rtol);
    }

    public static void assertClose(String what, float[] expected, float[] actual, double atol, double rtol) {
        if (expected.length != actual.length) fail(what + ": length " + actual.length + " != " + expected.length);
        double worst = 0;
        int worstAt = -1;
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i], a = actual[i];
            if (!Double.isFinite(a) || !Double.isFinite(e)) {
                fail(what + ": non-finite value at " + i + ": expected " + e + ", got " + a);
            }
            double err = Math.abs(e - a);
            double excess = err - (atol + rtol * Math.abs(e));
            if (excess > 0 && (worstAt < 0 || err > worst)) {
                worst = err;
                worstAt = i;
            }
        }
        if (worstAt >= 0) {
            fail(what + ": worst error " + worst + " at " + worstAt + ": expected " + expected[worstAt] + ", got "
                    + actual[worstAt] + " (atol " + atol + ", rtol " + rtol + ")");
        }
    }

    /** Largest |a - b| over all elements. */
    public static double maxAbsDiff(Tensor a, Tensor b) {
        float[] x = a.toFloatArray(), y = b.toFloatArray();
        double m = 0;
        for (int i = 0; i < x.length; i++) m = Math.max(m, Math.abs((double) x[i] - y[i]));
        return m;
    }
}
