package dev.tenfold.qlora.nf4;

import static org.junit.jupiter.api.Assertions.*;

import java.math.BigDecimal;
import java.math.MathContext;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The codebook, the 4-bit rounding rule, the dynamic map and the double quantization. */
class Nf4Test {

    /** The constants of bitsandbytes' dQuantizeNF4 decision tree, in ascending order. */
    private static final double[] BNB_TREE = {
        -0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544,
        -0.23460740596055984, -0.13791173323988914, -0.045525018125772476, 0.03979014977812767,
        0.1202552504837513, 0.2035212516784668, 0.2920137718319893, 0.3893125355243683,
        0.5016634166240692, 0.6427869200706482, 0.8614784181118011,
    };

    @Test
    void thresholdsAreTheTreeConstants() {
        assertEquals(16, Nf4.CODE.length);
        for (int i = 0; i < 15; i++) {
            assertTrue(Nf4.CODE[i] < Nf4.CODE[i + 1]);
            assertEquals((float) BNB_TREE[i], Nf4.THRESHOLDS[i], 0f, "threshold " + i);
        }
        assertEquals(-1f, Nf4.CODE[0]);
        assertEquals(0f, Nf4.CODE[7]);
        assertEquals(1f, Nf4.CODE[15]);
    }

    @Test
    void quantizeIsNearestWithTiesToTheLowerCode() {
        for (int i = 0; i < 16; i++) assertEquals(i, Nf4.quantize(Nf4.CODE[i]), "code " + i + " maps to itself");
        for (int i = 0; i < 15; i++) {
            float t = Nf4.THRESHOLDS[i];
            assertEquals(i, Nf4.quantize(t), "on the midpoint: the lower code (x > t fails)");
            assertEquals(i + 1, Nf4.quantize(Math.nextUp(t)));
            assertEquals(i, Nf4.quantize(Math.nextDown(t)));
        }
        assertEquals(0, Nf4.quantize(Float.NaN), "NaN fails every test of the tree");
        assertEquals(0, Nf4.quantize(-5f));
        assertEquals(15, Nf4.quantize(5f));
        // against a plain argmin (ties to the lower index) on random inputs
        SplittableRandom rng = new SplittableRandom(1);
        for (int n = 0; n < 100_000; n++) {
            float x = (float) (rng.nextDouble() * 2.2 - 1.1);
            int best = 0;
            for (int k = 1; k < 16; k++) if (Math.abs(x - Nf4.CODE[k]) < Math.abs(x - Nf4.CODE[best])) best = k;
            assertEquals(best, Nf4.quantize(x), "x = " + x);
        }
    }

    @Test
    void quantizeBlockScalesByTheReciprocalAndPacksHighFirst() {
        float[] src = new float[70];
        for (int j = 0; j < 64; j++) src[3 + j] = Nf4.CODE[j % 16] * 0.5f; // codes 0..15 repeated, absmax 0.5
        byte[] dst = new byte[40];
        assertEquals(0.5f, Nf4.quantizeBlock(src, 3, dst, 5));
        for (int j = 0; j < 32; j++) {
            int e = 2 * j;
            assertEquals((e % 16) << 4 | (e + 1) % 16, dst[5 + j] & 0xff, "byte " + j);
        }
        assertEquals(0, dst[4]);
        assertEquals(0, dst[37]);
    }

    @Test
    void dynamicMapKnownEntriesAndShape() {
        float[] m = Nf4.DYNAMIC_MAP;
        assertEquals(256, m.length);
        assertEquals(-0.99296875f, m[0]);
        assertEquals(0f, m[127]);
        assertEquals(1.0f, m[255]);
        for (int i = 0; i < 255; i++) assertTrue(m[i] < m[i + 1], "strictly increasing at " + i);
        for (int k = 0; k < 127; k++) assertEquals(-m[126 - k], m[128 + k], 0f, "signed map is symmetric");
        // Against the formula in exact arithmetic: exponent group i (scale 10^(i-6)) has 2^i means of
        // linspace(0.1, 1, 2^i + 1); float rounding may only move an entry by a few ulps.
        float[] exact = new float[127];
        int n = 0;
        for (int i = 0; i < 7; i++) {
            int k = 1 << i;
            for (int j = 0; j < k; j++) {
                BigDecimal mean = BigDecimal.valueOf(1, 1).add(BigDecimal.valueOf(9, 1).multiply(BigDecimal.valueOf(2L * j + 1))
                        .divide(BigDecimal.valueOf(2L * k), MathContext.DECIMAL128));
                exact[n++] = mean.scaleByPowerOfTen(i - 6).floatValue();
            }
        }
        java.util.Arrays.sort(exact);
        for (int i = 0; i < 127; i++) {
            float got = m[128 + i];
            assertTrue(Math.abs(got - exact[i]) <= 3 * Math.ulp(exact[i]), "entry " + (128 + i) + ": " + got + " vs exact " + exact[i]);
        }
        assertEquals(5.5e-7f, m[128], 2 * Math.ulp(5.5e-7f), "the smallest positive entry is 1e-6 * 0.55");
    }

    @Test
    void linspaceMatchesTorchsHalves() {
        float[] l = Nf4.linspace(0.1f, 1.0f, 5);
        assertEquals(0.1f, l[0]);
        assertEquals(1.0f, l[4], "the second half counts down from end, so end is exact");
        assertEquals(0.1f + 0.225f, l[1], 1e-7f);
        assertArrayEquals(new float[] {0.1f, 1.0f}, Nf4.linspace(0.1f, 1.0f, 2));
    }

    @Test
    void quantizeDynamicIsNearestEntry() {
        float[] m = Nf4.DYNAMIC_MAP;
        for (int i = 0; i < 256; i++) assertEquals(i, Nf4.quantizeDynamic(m, m[i]), "entry " + i + " maps to itself");
        SplittableRandom rng = new SplittableRandom(2);
        for (int n = 0; n < 100_000; n++) {
            // spread over the exponent groups: magnitudes 1e-7 .. 1
            float x = (float) (Math.pow(10, -7 * rng.nextDouble()) * (rng.nextBoolean() ? 1 : -1));
            int q = Nf4.quantizeDynamic(m, x);
            double best = Double.MAX_VALUE;
            for (float c : m) best = Math.min(best, Math.abs((double) x - c));
            assertTrue(Math.abs((double) x - m[q]) <= best + 1e-7 * Math.abs(x), "x = " + x + " -> " + m[q]);
        }
        assertEquals(0, Nf4.quantizeDynamic(m, -1f));
        assertEquals(255, Nf4.quantizeDynamic(m, 1f));
        assertEquals(0, Nf4.quantizeDynamic(m, Float.NaN), "NaN walks down to index 0, as in the kernel");
    }

    @Test
    void doubleQuantizationErrorIsBounded() {
        SplittableRandom rng = new SplittableRandom(3);
        float[] absmax = new float[1000]; // 3 full nested blocks and a partial one
        for (int i = 0; i < absmax.length; i++) absmax[i] = (float) (0.01 + 0.2 * rng.nextDouble());
        Nf4.DoubleQuant dq = Nf4.doubleQuantize(absmax);
        assertEquals(4, dq.nested().length);
        double mean = 0;
        for (float a : absmax) mean += a;
        assertEquals((float) (mean / absmax.length), dq.offset());
        // the largest half-gap of the dynamic map (at the ends near +-1)
        float halfGap = 0;
        for (int i = 0; i < 255; i++) halfGap = Math.max(halfGap, (Nf4.DYNAMIC_MAP[i + 1] - Nf4.DYNAMIC_MAP[i]) / 2);
        for (int i = 0; i < absmax.length; i++) {
            float nested = dq.nested()[i / 256];
            double err = Math.abs(dq.absmax(i) - absmax[i]);
            assertTrue(err <= nested * halfGap * 1.001 + 1e-7, "block " + i + ": error " + err + " > " + nested * halfGap);
        }
        // each nested absmax is its block's largest |absmax - offset|
        for (int b = 0; b < 4; b++) {
            float m = 0;
            for (int i = b * 256; i < Math.min(1000, b * 256 + 256); i++) m = Math.max(m, Math.abs(absmax[i] - dq.offset()));
            assertEquals(m, dq.nested()[b]);
        }
    }

    @Test
    void constantAbsmaxDoubleQuantizesToTheOffset() {
        float[] absmax = new float[300];
        java.util.Arrays.fill(absmax, 0.25f);
        Nf4.DoubleQuant dq = Nf4.doubleQuantize(absmax);
        for (int i = 0; i < 300; i++) assertEquals(0.25f, dq.absmax(i), "0 * (1/0) is NaN -> index 0, times 0, plus offset");
    }

    @Test
    void pythonReprOfFloats() {
        assertEquals("0.10000000149011612", Nf4.pythonRepr(0.1f));
        assertEquals("0.0", Nf4.pythonRepr(0.0));
        assertEquals("-0.0", Nf4.pythonRepr(-0.0));
        assertEquals("1.0", Nf4.pythonRepr(1.0));
        assertEquals("123.0", Nf4.pythonRepr(123.0));
        assertEquals("0.0001", Nf4.pythonRepr(0.0001));
        assertEquals("0.00012345", Nf4.pythonRepr(0.00012345));
        assertEquals("1e-05", Nf4.pythonRepr(1e-5));
        assertEquals("1.5e-05", Nf4.pythonRepr(1.5e-5));
        assertEquals("-2.5e-07", Nf4.pythonRepr(-2.5e-7));
        assertEquals("1234567.0", Nf4.pythonRepr(1234567.0));
        assertEquals("1000000000000000.0", Nf4.pythonRepr(1e15));
        assertEquals("1e+16", Nf4.pythonRepr(1e16));
        assertEquals("0.01234500017017126", Nf4.pythonRepr(0.012345f));
    }
}
