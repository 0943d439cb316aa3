package dev.tenfold.qlora.nf4;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.testing.TestTensors;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Packing, quantization error, and the fast dequantization against the reference. */
class Nf4TensorTest {

    private static int byteAt(Nf4Tensor t, long i) { return t.packed().data().get(ValueLayout.JAVA_BYTE, i) & 0xff; }

    @Test
    void handBuiltBlockPacksHighNibbleFirst() {
        // One block of 64 whose absmax is 2: element e gets code (e * 7) % 16, stored as code * 2,
        // so every scaled value is exactly a code and the expected nibbles are known.
        float[] w = new float[64];
        int[] codes = new int[64];
        for (int e = 0; e < 64; e++) {
            codes[e] = (e * 7) % 16;
            w[e] = Nf4.CODE[codes[e]] * 2f;
        }
        w[3] = 2f; // absmax reached (code 15) ...
        codes[3] = 15;
        w[5] = -2f; // ... and its negative (code 0)
        codes[5] = 0;
        try (Tensor weight = Tensor.of(w, 2, 32); Nf4Tensor q = Nf4Tensor.quantize(weight, false)) {
            assertEquals(32, q.packed().byteSize());
            assertEquals(2f, q.blockAbsmax(0));
            for (int j = 0; j < 32; j++) {
                assertEquals(codes[2 * j] << 4 | codes[2 * j + 1], byteAt(q, j), "byte " + j + ": element " + 2 * j + " high, " + (2 * j + 1) + " low");
            }
            assertEquals(0x07, byteAt(q, 0), "element 0 is code 0*7=0 (high), element 1 is code 7 (low)");
            try (Tensor out = q.dequantize()) {
                for (int e = 0; e < 64; e++) assertEquals(Nf4.CODE[codes[e]] * 2f, out.getFloat(e), "element " + e);
            }
        }
    }

    @Test
    void tiesAndScalingFollowTheKernel() {
        // absmax 1 makes the reciprocal exact, so the values below are exactly the tree's thresholds
        float[] w = new float[64];
        w[0] = 1f;
        for (int i = 0; i < 15; i++) {
            w[1 + 2 * i] = Nf4.THRESHOLDS[i];             // on a midpoint: lower code
            w[2 + 2 * i] = Math.nextUp(Nf4.THRESHOLDS[i]); // just above: upper code
        }
        try (Tensor weight = Tensor.of(w, 1, 64); Nf4Tensor q = Nf4Tensor.quantize(weight, false)) {
            for (int i = 0; i < 15; i++) {
                assertEquals(i, nibble(q, 1 + 2 * i));
                assertEquals(i + 1, nibble(q, 2 + 2 * i));
            }
            assertEquals(7, nibble(q, 31), "zero is code 7");
        }
    }

    private static int nibble(Nf4Tensor q, long e) {
        int b = byteAt(q, e / 2);
        return e % 2 == 0 ? b >>> 4 : b & 15;
    }

    @Test
    void allZeroBlockIsCodeZeroAndDequantizesToZero() {
        float[] w = new float[128];
        for (int i = 64; i < 128; i++) w[i] = i - 100;
        try (Tensor weight = Tensor.of(w, 2, 64); Nf4Tensor q = Nf4Tensor.quantize(weight, false); Tensor out = q.dequantize();
             Nf4Tensor dq = Nf4Tensor.quantize(weight, true)) {
            for (int j = 0; j < 32; j++) assertEquals(0, byteAt(q, j), "0 * (1/0) = NaN takes code 0, as in bitsandbytes");
            for (int e = 0; e < 64; e++) assertEquals(0f, out.getFloat(e), 0f);
            // with double quantization the block's absmax is only approximately 0, as in bitsandbytes
            for (int j = 0; j < 32; j++) assertEquals(0, byteAt(dq, j));
            assertEquals(0f, dq.blockAbsmax(0), dq.nestedAbsmax().getFloat(0) * 0.01f);
        }
    }

    @Test
    void roundTripErrorIsBoundedByTheHalfGap() {
        SplittableRandom rng = new SplittableRandom(11);
        float halfGap = Nf4.maxHalfGap();
        for (DType dt : new DType[] {DType.F32, DType.BF16, DType.F16}) {
            try (Tensor w = TestTensors.random(rng, dt, 0.7f, 37, 192);
                 Nf4Tensor q = Nf4Tensor.quantize(w, false);
                 Tensor out = q.dequantize()) {
                assertEquals(dt, q.sourceDtype());
                for (long e = 0; e < w.numel(); e++) {
                    float a = q.blockAbsmax((int) (e / 64));
                    double err = Math.abs(w.getFloat(e) - out.getFloat(e));
                    assertTrue(err <= a * halfGap * (1 + 1e-6), dt + " element " + e + ": error " + err + " > " + a * halfGap);
                }
                // absmax is exactly the block's largest magnitude
                for (int b = 0; b < q.blocks(); b++) {
                    float m = 0;
                    for (int j = 0; j < 64; j++) m = Math.max(m, Math.abs(w.getFloat(b * 64L + j)));
                    assertEquals(m, q.blockAbsmax(b));
                }
            }
        }
    }

    @Test
    void doubleQuantizedRoundTripErrorIsBounded() {
        SplittableRandom rng = new SplittableRandom(12);
        float halfGap = Nf4.maxHalfGap();
        float dynHalfGap = 0;
        for (int i = 0; i < 255; i++) dynHalfGap = Math.max(dynHalfGap, (Nf4.DYNAMIC_MAP[i + 1] - Nf4.DYNAMIC_MAP[i]) / 2);
        // 1500 blocks: 5 full nested blocks and a partial one
        try (Tensor w = TestTensors.random(rng, DType.BF16, 0.3f, 300, 320);
             Nf4Tensor single = Nf4Tensor.quantize(w, false);
             Nf4Tensor dq = Nf4Tensor.quantize(w, true);
             Tensor out = dq.dequantize()) {
            assertTrue(dq.doubleQuant());
            assertEquals(DType.U8, dq.absmax().dtype());
            assertEquals(6, dq.nestedAbsmax().numel());
            assertEquals(-1L, single.packed().data().mismatch(dq.packed().data()), "the 4-bit codes do not depend on double quantization");
            for (int b = 0; b < dq.blocks(); b++) {
                double err = Math.abs(dq.blockAbsmax(b) - single.blockAbsmax(b));
                assertTrue(err <= dq.nestedAbsmax().getFloat(b / 256) * dynHalfGap * 1.001 + 1e-7, "absmax " + b + " error " + err);
            }
            for (long e = 0; e < w.numel(); e++) {
                int b = (int) (e / 64);
                double absmaxErr = Math.abs(dq.blockAbsmax(b) - single.blockAbsmax(b));
                double bound = single.blockAbsmax(b) * halfGap + absmaxErr + 1e-6;
                assertTrue(Math.abs(w.getFloat(e) - out.getFloat(e)) <= bound, "element " + e);
            }
        }
    }

    @Test
    void fastDequantizationEqualsReferenceBitForBit() {
        SplittableRandom rng = new SplittableRandom(13);
        long[][] shapes = {{1, 64}, {48, 32}, {37, 192}, {300, 320}, {7, 576}};
        for (long[] s : shapes) {
            for (boolean nested : new boolean[] {false, true}) {
                try (Tensor w = TestTensors.random(rng, DType.F32, 2f, s[0], s[1]); Nf4Tensor q = Nf4Tensor.quantize(w, nested)) {
                    for (DType outType : new DType[] {DType.F32, DType.BF16}) {
                        try (Tensor ref = TestTensors.poisoned(outType, s[0], s[1]); Tensor fast = TestTensors.poisoned(outType, s[0], s[1])) {
                            q.dequantizeReference(ref);
                            q.dequantize(fast);
                            String what = java.util.Arrays.toString(s) + (nested ? " nested " : " ") + outType;
                            assertEquals(-1, ref.data().mismatch(fast.data()), what + ": fast path differs from the reference");
                            for (long e = 0; e < ref.numel(); e++) assertFalse(Float.isNaN(ref.getFloat(e)), what + " unwritten " + e);
                        }
                    }
                }
            }
        }
    }

    @Test
    void rowRangesMatchTheWholeTensor() {
        SplittableRandom rng = new SplittableRandom(14);
        // rows of 48 elements: blocks straddle rows, and odd row offsets start mid-block
        try (Tensor w = TestTensors.random(rng, 24, 48); Nf4Tensor q = Nf4Tensor.quantize(w, true); Tensor all = q.dequantize()) {
            float[] whole = all.toFloatArray();
            int[][] ranges = {{0, 24}, {0, 1}, {1, 3}, {3, 7}, {23, 1}, {10, 0}, {5, 19}};
            for (int[] r : ranges) {
                try (Tensor part = TestTensors.poisoned(r[1], 48)) {
                    q.dequantizeRows(r[0], r[1], part);
                    float[] arr = new float[r[1] * 48 + 3];
                    java.util.Arrays.fill(arr, Float.NaN);
                    q.dequantizeRows(r[0], r[1], arr);
                    for (int i = 0; i < r[1] * 48; i++) {
                        assertEquals(whole[r[0] * 48 + i], part.getFloat(i), 0f, "rows " + r[0] + "+" + r[1] + " element " + i);
                        assertEquals(whole[r[0] * 48 + i], arr[i], 0f);
                    }
                    assertTrue(Float.isNaN(arr[r[1] * 48]), "nothing written past the rows");
                }
            }
            assertThrows(IllegalArgumentException.class, () -> q.dequantizeRows(20, 5, new float[5 * 48]));
        }
    }

    @Test
    void partsRoundTripThroughOf() {
        SplittableRandom rng = new SplittableRandom(15);
        try (Tensor w = TestTensors.random(rng, 64, 96); Nf4Tensor q = Nf4Tensor.quantize(w, true)) {
            Nf4Tensor again = Nf4Tensor.of(64, 96, q.packed().view(64 * 96 / 2, 1), q.absmax(), q.nestedAbsmax(),
                    q.nestedCode(), q.offset(), q.sourceDtype());
            assertTrue(again.sameContent(q));
            assertEquals(DType.NF4, q.asNf4View().dtype());
            assertEquals(q.packed().byteSize(), q.asNf4View().byteSize());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Nf4Tensor.of(64, 96, q.packed(), q.absmax().slice(0, 10), q.nestedAbsmax(), q.nestedCode(), q.offset(), DType.F32));
            assertTrue(e.getMessage().contains("absmax"), e.getMessage());
        }
    }

    @Test
    void badWeightsAreClearErrors() {
        try (Tensor w = Tensor.allocate(DType.F32, 3, 10)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Nf4Tensor.quantize(w, true));
            assertTrue(e.getMessage().contains("[3, 10]") && e.getMessage().contains("multiple of"), e.getMessage());
        }
        try (Tensor w = Tensor.allocate(DType.F32, 4, 64)) {
            w.setFloat(2 * 64 + 5, Float.NaN);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Nf4Tensor.quantize(w, false));
            assertTrue(e.getMessage().contains("NaN at [2, 5]"), e.getMessage());
        }
        try (Tensor w = Tensor.allocate(DType.I32, 4, 64)) {
            assertThrows(IllegalArgumentException.class, () -> Nf4Tensor.quantize(w, false));
        }
    }
}
