package dev.tenfold.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Numerics;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.testing.TestTensors;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class Nf4DequantTest {

    private static Tensor randomBytes(SplittableRandom rng, long n) {
        Tensor t = Tensor.allocate(DType.U8, n);
        for (long i = 0; i < n; i++) t.data().set(ValueLayout.JAVA_BYTE, i, (byte) rng.nextInt(256));
        return t;
    }

    @Test
    void singleQuantizedValuesAreCodeTimesAbsmax() {
        // 64 elements: byte j holds (2j, 2j+1) as (high, low) nibbles.
        Tensor packed = Tensor.allocate(DType.U8, 32);
        packed.data().set(ValueLayout.JAVA_BYTE, 0, (byte) 0x0F); // element 0 -> code 0 (-1), element 1 -> code 15 (1)
        packed.data().set(ValueLayout.JAVA_BYTE, 1, (byte) 0x78); // element 2 -> code 7 (0), element 3 -> code 8
        Tensor absmax = Tensor.of(new float[] {2.5f}, 1);
        Tensor out = TestTensors.poisoned(64);
        CpuBackend.reference().dequantizeNf4(packed, absmax, null, null, 0f, out);
        assertEquals(-2.5f, out.getFloat(0));
        assertEquals(2.5f, out.getFloat(1));
        assertEquals(0f, out.getFloat(2));
        assertEquals(0.07958029955625534f * 2.5f, out.getFloat(3));
        assertEquals(-2.5f, out.getFloat(4)); // byte 2 is zero: both nibbles are code 0
    }

    @Test
    void fastMatchesReferenceBitForBitBothLayoutsBothOutputs() {
        SplittableRandom rng = new SplittableRandom(7);
        long n = 64 * 600; // 600 blocks: three nested blocks, the last one partial
        Tensor packed = randomBytes(rng, n / 2);
        Tensor absF32 = TestTensors.random(rng, 600);
        Tensor absU8 = randomBytes(rng, 600);
        Tensor nested = TestTensors.random(rng, 3);
        Tensor code2 = TestTensors.random(rng, 256);
        for (DType outType : new DType[] {DType.F32, DType.BF16}) {
            for (boolean dq : new boolean[] {false, true}) {
                Tensor ref = TestTensors.poisoned(outType, n);
                Tensor fast = TestTensors.poisoned(outType, n);
                Tensor a = dq ? absU8 : absF32;
                CpuBackend.reference().dequantizeNf4(packed, a, dq ? nested : null, dq ? code2 : null, dq ? 0.03f : 0f, ref);
                CpuBackend.fast().dequantizeNf4(packed, a, dq ? nested : null, dq ? code2 : null, dq ? 0.03f : 0f, fast);
                assertEquals(ref.data().mismatch(fast.data()), -1L, outType + " dq=" + dq);
            }
        }
        // One double-quantized value by hand: block 599 is in nested block 2.
        Tensor out = Tensor.allocate(DType.F32, n);
        CpuBackend.fast().dequantizeNf4(packed, absU8, nested, code2, 0.03f, out);
        long e = 599 * 64 + 5;
        int b = packed.data().get(ValueLayout.JAVA_BYTE, e / 2) & 0xff;
        float scale = code2.getFloat(absU8.data().get(ValueLayout.JAVA_BYTE, 599) & 0xff) * nested.getFloat(2) + 0.03f;
        assertEquals(Nf4Dequant.CODE[b & 0x0f] * scale, out.getFloat(e));
        Tensor bf = Tensor.allocate(DType.BF16, n);
        CpuBackend.fast().dequantizeNf4(packed, absU8, nested, code2, 0.03f, bf);
        assertEquals(Numerics.bf16ToFloat(Numerics.floatToBf16(out.getFloat(e))), bf.getFloat(e));
    }

    @Test
    void wrongSizesAreRefusedByName() {
        Tensor packed = Tensor.allocate(DType.U8, 32);
        Tensor out = Tensor.allocate(DType.F32, 64);
        var e = assertThrows(IllegalArgumentException.class,
                () -> CpuBackend.fast().dequantizeNf4(packed, Tensor.allocate(DType.F32, 2), null, null, 0f, out));
        assertTrue(e.getMessage().contains("absmax"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> CpuBackend.fast().dequantizeNf4(packed, Tensor.allocate(DType.U8, 1), null, null, 0f, out));
        assertTrue(e.getMessage().contains("nestedAbsmax"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> CpuBackend.fast().dequantizeNf4(Tensor.allocate(DType.U8, 31), Tensor.allocate(DType.F32, 1), null, null, 0f, out));
        assertTrue(e.getMessage().contains("packed"), e.getMessage());
    }
}
