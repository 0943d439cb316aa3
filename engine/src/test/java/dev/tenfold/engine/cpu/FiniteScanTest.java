package dev.tenfold.engine.cpu;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class FiniteScanTest {
    private static final int BLOCK = 1 << 16;
    /** Awkward sizes: empty, below one vector, around vector and block boundaries, several blocks with a tail. */
    private static final int[] SIZES = {0, 1, 7, 31, 33, 65, 1000, BLOCK - 1, BLOCK, BLOCK + 3, 3 * BLOCK + 17};

    /** Raw bit patterns of the non-finite values of each format: +inf, -inf, quiet, signalling and negative NaNs. */
    private static int[] nonFinite(DType t) {
        return switch (t) {
            case F32 -> new int[] {0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffffffff};
            case BF16 -> new int[] {0x7f80, 0xff80, 0x7fc0, 0x7f81, 0xffff};
            case F16 -> new int[] {0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xffff};
            default -> throw new IllegalArgumentException();
        };
    }

    /** The largest finite values, which must not be mistaken for infinities (exponent one below all ones). */
    private static int[] largestFinite(DType t) {
        return switch (t) {
            case F32 -> new int[] {0x7f7fffff, 0xff7fffff, 0x00000001};
            case BF16 -> new int[] {0x7f7f, 0xff7f, 0x0001};
            case F16 -> new int[] {0x7bff, 0xfbff, 0x0001};
            default -> throw new IllegalArgumentException();
        };
    }

    private static void setBits(Tensor t, long i, int bits) {
        if (t.dtype() == DType.F32) t.data().setAtIndex(Tensor.I32, i, bits);
        else t.data().setAtIndex(Tensor.I16, i, (short) bits);
    }

    private static Tensor randomFinite(SplittableRandom rng, DType dtype, int n) {
        Tensor t = Tensor.allocate(dtype, n);
        for (int i = 0; i < n; i++) t.setFloat(i, (float) ((rng.nextDouble() * 2 - 1) * (dtype == DType.F16 ? 60000 : 1e30)));
        return t;
    }

    @Test
    void fastMatchesReference() {
        SplittableRandom rng = new SplittableRandom(11);
        for (DType dtype : new DType[] {DType.F32, DType.BF16, DType.F16}) {
            for (int n : SIZES) {
                try (Tensor t = randomFinite(rng, dtype, n)) {
                    for (int bits : largestFinite(dtype)) if (n > 0) setBits(t, rng.nextInt(n), bits);
                    assertEquals(-1, FiniteScan.firstNonFiniteReference(t), dtype + " n=" + n);
                    assertEquals(-1, FiniteScan.firstNonFinite(t), dtype + " n=" + n);
                    if (n == 0) continue;
                    for (int bits : nonFinite(dtype)) {
                        // one bad value at the end, then an earlier one, then one in the first element
                        for (long at : new long[] {n - 1, rng.nextInt(n), 0}) {
                            setBits(t, at, bits);
                            long ref = FiniteScan.firstNonFiniteReference(t);
                            assertEquals(ref, FiniteScan.firstNonFinite(t), dtype + " n=" + n + " bits " + Integer.toHexString(bits));
                            assertTrue(ref <= at);
                        }
                        try (Tensor fresh = randomFinite(rng, dtype, n)) {
                            t.copyFrom(fresh.toFloatArray()); // clean again for the next pattern
                        }
                    }
                }
            }
        }
    }

    @Test
    void unalignedMemoryAndIntegerTypes() {
        try (Arena arena = Arena.ofShared()) { // shared, as every tensor tenfold makes or maps
            MemorySegment raw = arena.allocate(2L * BLOCK + 64);
            // a BF16 tensor starting at an odd byte offset, as a tensor in a safetensors file may
            Tensor t = Tensor.wrap(raw.asSlice(3, 2L * (BLOCK + 5)), DType.BF16, BLOCK + 5);
            for (int i = 0; i < BLOCK + 5; i++) t.setFloat(i, i % 7 - 3);
            assertEquals(-1, FiniteScan.firstNonFinite(t));
            t.setFloat(BLOCK + 2, Float.NaN);
            assertEquals(BLOCK + 2, FiniteScan.firstNonFinite(t));
            assertEquals(BLOCK + 2, FiniteScan.firstNonFiniteReference(t));
        }
        try (Tensor ints = Tensor.allocate(DType.I32, 10); Tensor bytes = Tensor.allocate(DType.U8, 10)) {
            ints.data().fill((byte) 0xff); // would be NaN as floats: integers are never non-finite
            bytes.data().fill((byte) 0xff);
            assertEquals(-1, FiniteScan.firstNonFinite(ints));
            assertEquals(-1, FiniteScan.firstNonFinite(bytes));
        }
        try (Tensor f64 = Tensor.allocate(DType.F64, 5)) {
            f64.data().setAtIndex(Tensor.F64, 3, Double.NEGATIVE_INFINITY);
            assertEquals(3, FiniteScan.firstNonFinite(f64));
        }
    }

    @Test
    void requireFiniteNamesTheTensorAndTheIndex() {
        try (Tensor t = Tensor.allocate(DType.BF16, 4, 6)) {
            FiniteScan.requireFinite("tensor w", t);
            t.setFloat(15, Float.NEGATIVE_INFINITY);
            t.setFloat(20, Float.NaN);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> FiniteScan.requireFinite("tensor w", t));
            assertTrue(e.getMessage().startsWith("tensor w holds -Infinity at index 15 [2, 3] (of 24 elements)"), e.getMessage());
            t.setFloat(15, 1f);
            e = assertThrows(IllegalArgumentException.class, () -> FiniteScan.requireFinite("tensor w", t));
            assertTrue(e.getMessage().startsWith("tensor w holds NaN at index 20 [3, 2]"), e.getMessage());
        }
    }
}
