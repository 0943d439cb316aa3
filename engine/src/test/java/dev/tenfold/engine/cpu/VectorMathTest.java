package dev.tenfold.engine.cpu;

import static org.junit.jupiter.api.Assertions.*;

import java.util.SplittableRandom;
import java.util.function.UnaryOperator;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

class VectorMathTest {
    private static final int L = VectorMath.F.length();

    /** f applied to x a vector at a time (x.length a multiple of L). */
    private static float[] lanes(UnaryOperator<FloatVector> f, float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i += L) f.apply(FloatVector.fromArray(VectorMath.F, x, i)).intoArray(out, i);
        return out;
    }

    private static float[] exp(float[] x) { return lanes(VectorMath::exp, x); }

    private static float[] exp2(float[] x) { return lanes(VectorMath::exp2, x); }

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
    void exp2IsWithinTwoUlpOfMathPow() {
        SplittableRandom rng = new SplittableRandom(2);
        float[] x = new float[L * 20000];
        for (int i = 0; i < x.length; i++) x[i] = (float) (rng.nextDouble() * 260 - 130); // -130 .. 130
        for (int i = 0; i < x.length; i++) if (x[i] > 127) x[i] = (float) (rng.nextDouble() * 0.01); // its domain: x <= 127
        float[] y = exp2(x);
        for (int i = 0; i < x.length; i++) {
            float want = (float) Math.pow(2, x[i]);
            if (x[i] < -126f) {
                assertEquals(0f, y[i], "flushed to zero below -126: x = " + x[i]);
            } else {
                assertTrue(Math.abs(y[i] - want) <= 2 * Math.ulp(want), "x = " + x[i] + ": " + y[i] + " vs " + want);
            }
        }
    }

    @Test
    void exp2SpecialValues() {
        float[] special = {0f, -0f, Float.NEGATIVE_INFINITY, Float.NaN, -126f, -0.5f, 0.5f, 1f, 127f, -1e-7f};
        float[] x = new float[Math.ceilDiv(special.length, L) * L];
        for (int i = 0; i < x.length; i++) x[i] = special[i % special.length];
        float[] y = exp2(x);
        for (int i = 0; i < x.length; i++) {
            float want = (float) Math.pow(2, x[i]);
            if (Float.isNaN(want)) assertTrue(Float.isNaN(y[i]), "NaN stays NaN");
            else if (x[i] == Float.NEGATIVE_INFINITY) assertEquals(0f, y[i], "a masked score");
            else assertEquals(want, y[i], Math.ulp(want) * 2, "x = " + x[i]);
        }
    }

    /**
     * Not only within 2 ulp but mostly exact: exp and exp2 finish their polynomials as Horner's scheme does, which
     * keeps the mean error near a quarter ulp (evaluating all of it by Estrin's scheme measured 0.42, 65% exact).
     */
    @Test
    void expAndExp2AreMostlyCorrectlyRounded() {
        SplittableRandom rng = new SplittableRandom(3);
        float[] x = new float[L * 50000];
        for (int i = 0; i < x.length; i++) x[i] = (float) (rng.nextDouble() * 160 - 80);
        float[] e = exp(x), e2 = exp2(x);
        double errE = 0, errE2 = 0;
        for (int i = 0; i < x.length; i++) {
            double want = Math.exp(x[i]), want2 = Math.pow(2, x[i]);
            errE += Math.abs(e[i] - want) / Math.ulp((float) want);
            errE2 += Math.abs(e2[i] - want2) / Math.ulp((float) want2);
        }
        assertTrue(errE / x.length < 0.3, "exp: mean error " + errE / x.length + " ulp");
        assertTrue(errE2 / x.length < 0.3, "exp2: mean error " + errE2 / x.length + " ulp");
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
