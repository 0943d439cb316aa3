package dev.tenfold.engine.cpu;

import static org.junit.jupiter.api.Assertions.*;

import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

class VectorMathTest {
    private static final int L = VectorMath.F.length();

    private static float[] exp(float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i += L) VectorMath.exp(FloatVector.fromArray(VectorMath.F, x, i)).intoArray(out, i);
        return out;
    }

    @Test
    void expIsWithinTwoUlpOfMathExp() {
        SplittableRandom rng = new SplittableRandom(1);
        float[] x = new float[L * 20000];
        for (int i = 0; i < x.length; i++) x[i] = (float) (rng.nextDouble() * 200 - 100);
        float[] y = exp(x);
        for (int i = 0; i < x.length; i++) {
            float want = (float) Math.exp(x[i]);
            if (x[i] < -87.3f) {
                assertEquals(0f, y[i], "flushed to zero below -87.3: x = " + x[i]);
            } else if (Float.isInfinite(want)) {
                assertEquals(want, y[i], "x = " + x[i]);
            } else {
                assertTrue(Math.abs(y[i] - want) <= 2 * Math.ulp(want), "x = " + x[i] + ": " + y[i] + " vs " + want);
            }
        }
    }

    @Test
    void expSpecialValues() {
        float[] x = new float[L];
        float[] special = {0f, -0f, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY, Float.NaN, -87.2f, 88.5f, 1f};
        for (int i = 0; i < L; i++) x[i] = special[i % special.length];
        float[] y = exp(x);
        for (int i = 0; i < L; i++) {
            float want = (float) Math.exp(x[i]);
            if (Float.isNaN(want)) assertTrue(Float.isNaN(y[i]));
            else if (x[i] == Float.NEGATIVE_INFINITY) assertEquals(0f, y[i]);
            else assertEquals(want, y[i], Math.ulp(want) * 2, "x = " + x[i]);
        }
    }

    @Test
    void sumsAddLanesInOrder() {
        float[] x = new float[L];
        for (int i = 0; i < L; i++) x[i] = i % 2 == 0 ? 1e8f : 1f; // order-sensitive in float
        float s = 0;
        for (float v : x) s += v;
        assertEquals(s, VectorMath.sum(FloatVector.fromArray(VectorMath.F, x, 0)));
        double d = 0;
        for (float v : x) d += v;
        assertEquals(d, VectorMath.sumDouble(FloatVector.fromArray(VectorMath.F, x, 0)));
    }
}
