package dev.tenfold.engine.cpu;

import dev.tenfold.engine.Check;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Nf4Format;
import dev.tenfold.engine.Numerics;
import dev.tenfold.engine.OpChecks;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * NF4 dequantization on the host (the bitsandbytes layout; see {@code Backend.dequantizeNf4}).
 * The reference decodes one element at a time; the fast path decodes a 64-element block at a
 * time on all cores. Both compute each value as one float product, so they agree bit for bit.
 */
final class Nf4Dequant {
    private Nf4Dequant() {}

    /** The NF4 codebook, index 0..15 (a local copy for the hot loops). */
    static final float[] CODE = Nf4Format.code();
    static final int BLOCK = Nf4Format.BLOCK;
    static final int NESTED_BLOCK = Nf4Format.NESTED_BLOCK;

    static void dequantize(boolean fast, Tensor packed, Tensor absmax, Tensor nestedAbsmax, Tensor nestedCode,
                           float offset, Tensor out) {
        long n = OpChecks.nf4(packed, absmax, nestedAbsmax, nestedCode, out); // the device check is CpuBackend's
        long blocks = n / BLOCK;
        boolean nested = absmax.dtype() == DType.U8;
        float[] code2 = nested ? nestedCode.toFloatArray() : null;
        MemorySegment p = packed.data(), a = absmax.data(), o = out.data();
        MemorySegment na = nested ? nestedAbsmax.data() : null;
        boolean bf16 = out.dtype() == DType.BF16;
        if (!fast) {
            for (long e = 0; e < n; e++) {
                int b = p.get(ValueLayout.JAVA_BYTE, e / 2) & 0xff;
                int nibble = e % 2 == 0 ? b >>> 4 : b & 0x0f;
                store(o, bf16, e, CODE[nibble] * absmaxOf(a, na, code2, offset, e / BLOCK));
            }
            return;
        }
        Parallel.forRange(Check.intSize("dequantizeNf4", blocks), 64, (b0, b1) -> {
            for (long blk = b0; blk < b1; blk++) {
                float s = absmaxOf(a, na, code2, offset, blk);
                long e0 = blk * BLOCK;
                for (int j = 0; j < BLOCK; j += 2) {
                    int b = p.get(ValueLayout.JAVA_BYTE, (e0 + j) / 2) & 0xff;
                    store(o, bf16, e0 + j, CODE[b >>> 4] * s);
                    store(o, bf16, e0 + j + 1, CODE[b & 0x0f] * s);
                }
            }
        });
    }

    private static float absmaxOf(MemorySegment absmax, MemorySegment nestedAbsmax, float[] code2, float offset, long block) {
        if (code2 == null) return absmax.getAtIndex(Tensor.F32, block);
        int q = absmax.get(ValueLayout.JAVA_BYTE, block) & 0xff;
        return code2[q] * nestedAbsmax.getAtIndex(Tensor.F32, block / NESTED_BLOCK) + offset;
    }

    private static void store(MemorySegment out, boolean bf16, long i, float v) {
        if (bf16) out.setAtIndex(Tensor.I16, i, Numerics.floatToBf16(v));
        else out.setAtIndex(Tensor.F32, i, v);
    }
}
