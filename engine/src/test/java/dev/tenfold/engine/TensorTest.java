package dev.tenfold.engine;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.foreign.Arena;
import org.junit.jupiter.api.Test;

class TensorTest {

    @Test
    void allocateIsZeroedAndShaped() {
        try (Tensor t = Tensor.allocate(DType.F32, 3, 5)) {
            assertArrayEquals(new long[] {3, 5}, t.shape());
            assertEquals(15, t.numel());
            assertEquals(60, t.byteSize());
            for (float f : t.toFloatArray()) assertEquals(0f, f);
        }
    }

    @Test
    void nf4PacksTwoPerByte() {
        assertEquals(3, DType.NF4.byteSize(5));
        try (Tensor t = Tensor.allocate(DType.NF4, 4, 64)) {
            assertEquals(128, t.byteSize());
        }
    }

    @Test
    void closeTwiceIsHarmlessAndUseAfterCloseIsClear() {
        Tensor t = Tensor.of(new float[] {1, 2, 3});
        t.close();
        t.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> t.getFloat(0));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }

    @Test
    void bf16AndF16RoundTrip() {
        try (Tensor b = Tensor.allocate(DType.BF16, 4); Tensor h = Tensor.allocate(DType.F16, 4)) {
            float[] v = {1f, -2.5f, 3.140625f, 2048f};
            b.copyFrom(v);
            h.copyFrom(v);
            assertArrayEquals(v, b.toFloatArray());
            assertArrayEquals(v, h.toFloatArray());
        }
        // round to nearest even: 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7
        assertEquals(1f, Numerics.roundToBf16(1f + 1f / 256));
        assertEquals(1f + 1f / 64, Numerics.roundToBf16(1f + 1f / 64 + 1f / 1024));
        assertTrue(Float.isNaN(Numerics.roundToBf16(Float.NaN)));
        assertEquals(Float.POSITIVE_INFINITY, Numerics.roundToBf16(Float.POSITIVE_INFINITY));
    }

    @Test
    void viewsAndSlicesShareMemory() {
        try (Tensor t = Tensor.of(new float[] {0, 1, 2, 3, 4, 5}, 3, 2)) {
            Tensor row = t.slice(1, 3);
            assertArrayEquals(new long[] {2, 2}, row.shape());
            assertEquals(2f, row.getFloat(0));
            row.setFloat(3, 42f);
            assertEquals(42f, t.getFloat(5));
            Tensor flat = t.view(6);
            assertEquals(42f, flat.getFloat(5));
            assertThrows(IllegalArgumentException.class, () -> t.view(4));
            assertThrows(IllegalArgumentException.class, () -> t.slice(2, 4));
        }
    }

    @Test
    void arenaTensorsAreFreedWithTheArena() {
        Tensor t;
        try (Arena arena = Arena.ofConfined()) {
            t = Tensor.allocate(arena, DType.I32, 4);
            t.setInt(2, 7);
            assertEquals(7, t.getInt(2));
        }
        assertThrows(IllegalStateException.class, () -> t.getInt(2));
    }

    @Test
    void badShapesAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> Tensor.allocate(DType.F32, 2, -1));
        assertThrows(IllegalArgumentException.class, () -> Tensor.of(new float[] {1, 2, 3}, 2, 2));
        assertThrows(ArithmeticException.class, () -> Tensor.allocate(DType.F32, Long.MAX_VALUE, 4));
    }

    @Test
    void deviceParsing() {
        assertEquals(Device.CPU, Device.parse("cpu"));
        assertEquals(Device.cuda(0), Device.parse("cuda"));
        assertEquals(Device.cuda(3), Device.parse("CUDA:3"));
        assertThrows(IllegalArgumentException.class, () -> Device.parse("tpu"));
        assertThrows(IllegalArgumentException.class, () -> Device.parse("cuda:x"));
    }
}
