package dev.tenfold.engine.cpu;

import dev.tenfold.engine.Check;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Numerics;
import dev.tenfold.engine.OpChecks;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Elementwise add, multiply, scale and casts: reference and fast (Vector API) paths.
 * Also home of the vector bf16 load/store that the other ops reuse.
 */
final class Elementwise {
    private Elementwise() {}

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int L = F.length();
    // bf16 lanes: a short vector of half the bit size holds as many lanes as a float vector.
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** Elements per parallel task: big enough that handing a chunk to a thread costs next to nothing. */
    static final int GRAIN = 1 << 15;

    private enum Kind { ADD, MUL, SCALE }

    static void add(boolean fast, Tensor a, Tensor b, Tensor out) { binary("add", Kind.ADD, fast, a, b, 0f, out); }

    static void mul(boolean fast, Tensor a, Tensor b, Tensor out) { binary("mul", Kind.MUL, fast, a, b, 0f, out); }

    static void scale(boolean fast, Tensor a, float s, Tensor out) { binary("scale", Kind.SCALE, fast, a, null, s, out); }

    /** Shared checks: all F32, same shapes (b absent for scale); returns the element count. */
    static int check(String op, Tensor a, Tensor b, Tensor out) {
        return Check.intSize(op, OpChecks.elementwise(op, a, b, out));
    }

    private static void binary(String op, Kind kind, boolean fast, Tensor a, Tensor b, float s, Tensor out) {
        int n = check(op, a, b, out);
        MemorySegment as = a.data(), bs = b == null ? null : b.data(), os = out.data();
        if (!fast) {
            // Same index read then written, so out may alias a or b.
            for (long i = 0; i < n; i++) {
                float x = as.getAtIndex(Tensor.F32, i);
                float r = switch (kind) {
                    case ADD -> x + bs.getAtIndex(Tensor.F32, i);
                    case MUL -> x * bs.getAtIndex(Tensor.F32, i);
                    case SCALE -> x * s;
                };
                os.setAtIndex(Tensor.F32, i, r);
            }
            return;
        }
        Parallel.forRange(n, GRAIN, (start, end) -> {
            int i = start;
            for (int upper = start + F.loopBound(end - start); i < upper; i += L) {
                long off = 4L * i;
                FloatVector x = FloatVector.fromMemorySegment(F, as, off, LE);
                FloatVector r = switch (kind) {
                    case ADD -> x.add(FloatVector.fromMemorySegment(F, bs, off, LE));
                    case MUL -> x.mul(FloatVector.fromMemorySegment(F, bs, off, LE));
                    case SCALE -> x.mul(s);
                };
                r.intoMemorySegment(os, off, LE);
            }
            for (; i < end; i++) {
                float x = as.getAtIndex(Tensor.F32, i);
                float r = switch (kind) {
                    case ADD -> x + bs.getAtIndex(Tensor.F32, i);
                    case MUL -> x * bs.getAtIndex(Tensor.F32, i);
                    case SCALE -> x * s;
                };
                os.setAtIndex(Tensor.F32, i, r);
            }
        });
    }

    /** Checks of cast: float types of the same shape; returns the element count. */
    static int checkCast(Tensor src, Tensor dst) {
        return Check.intSize("cast", OpChecks.cast(src, dst));
    }

    static void cast(boolean fast, Tensor src, Tensor dst) {
        int n = checkCast(src, dst);
        DType from = src.dtype(), to = dst.dtype();
        MemorySegment ss = src.data(), ds = dst.data();
        if (from == to) {
            MemorySegment.copy(ss, 0, ds, 0, ss.byteSize());
            return;
        }
        if (!fast) {
            for (long i = 0; i < n; i++) store(ds, to, i, load(ss, from, i));
            return;
        }
        Parallel.forRange(n, GRAIN, (start, end) -> {
            int i = start;
            // The vector path covers F32 <-> BF16; F16 goes through Float.floatToFloat16 and
            // Float.float16ToFloat, which the JIT already turns into single instructions.
            if (from != DType.F16 && to != DType.F16) {
                for (int upper = start + F.loopBound(end - start); i < upper; i += L) {
                    FloatVector v = from == DType.F32 ? FloatVector.fromMemorySegment(F, ss, 4L * i, LE) : loadBf16(ss, 2L * i);
                    if (to == DType.F32) v.intoMemorySegment(ds, 4L * i, LE); else storeBf16(v, ds, 2L * i);
                }
            }
            for (; i < end; i++) store(ds, to, i, load(ss, from, i));
        });
    }

    /** Scalar element i of a F32, BF16 or F16 segment. */
    static float load(MemorySegment s, DType t, long i) {
        return switch (t) {
            case F32 -> s.getAtIndex(Tensor.F32, i);
            case BF16 -> Numerics.bf16ToFloat(s.getAtIndex(Tensor.I16, i));
            case F16 -> Numerics.f16ToFloat(s.getAtIndex(Tensor.I16, i));
            default -> throw new IllegalStateException(t.toString());
        };
    }

    /** Stores v at element i of a F32, BF16 or F16 segment, rounding to nearest even. */
    static void store(MemorySegment s, DType t, long i, float v) {
        switch (t) {
            case F32 -> s.setAtIndex(Tensor.F32, i, v);
            case BF16 -> s.setAtIndex(Tensor.I16, i, Numerics.floatToBf16(v));
            case F16 -> s.setAtIndex(Tensor.I16, i, Numerics.floatToF16(v));
            default -> throw new IllegalStateException(t.toString());
        }
    }

    /** L bf16 values at byteOffset, widened to f32 (bf16 is the top half of an f32). */
    static FloatVector loadBf16(MemorySegment seg, long byteOffset) {
        IntVector wide = (IntVector) ShortVector.fromMemorySegment(S, seg, byteOffset, LE).convertShape(VectorOperators.S2I, I, 0);
        return wide.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    /** Stores v as L bf16 values at byteOffset, with the same rounding as Numerics.floatToBf16. */
    static void storeBf16(FloatVector v, MemorySegment seg, long byteOffset) {
        IntVector x = v.reinterpretAsInts();
        IntVector hi = x.lanewise(VectorOperators.LSHR, 16);
        IntVector rounded = x.add(hi.and(1).add(0x7fff)).lanewise(VectorOperators.LSHR, 16);
        // NaN keeps its sign and top payload and is made quiet, never rounded into an infinity.
        IntVector nan = hi.or(0x0040);
        IntVector r = rounded.blend(nan, x.and(0x7fffffff).compare(VectorOperators.GT, 0x7f800000));
        ((ShortVector) r.convertShape(VectorOperators.I2S, S, 0)).intoMemorySegment(seg, byteOffset, LE);
    }

    /** L values of a F32 or BF16 row at element index i. */
    static FloatVector loadRow(MemorySegment seg, DType t, long i) {
        return t == DType.BF16 ? loadBf16(seg, 2L * i) : FloatVector.fromMemorySegment(F, seg, 4L * i, LE);
    }
}
