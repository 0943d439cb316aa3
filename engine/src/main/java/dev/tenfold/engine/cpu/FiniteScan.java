package dev.tenfold.engine.cpu;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLong;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Finds NaN and infinities in host tensors (checkpoints and adapters as they are loaded, so that
 * a diverged run's weights are refused by name instead of computing NaN). It runs over every
 * weight of a model (16 GB for an 8B one), so the fast path reads raw bits with the Vector API, in
 * parallel blocks: a float is not finite exactly when its exponent bits are all ones, that is
 * when {@code bits & ~sign} is at least the infinity pattern, so each block keeps a lane-wise max
 * of {@code bits & ~sign} and only a block whose max reaches the pattern is scanned again, one
 * element at a time, for the index. The reference reads every element as a float.
 */
public final class FiniteScan {
    private FiniteScan() {}

    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_PREFERRED;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Elements per parallel task (128 KB of BF16): large enough that scheduling costs nothing. */
    private static final int BLOCK = 1 << 16;
    /** Below the sign bit, bits at or above these are infinities and NaNs. */
    private static final int F32_INF = 0x7f800000;
    private static final short BF16_INF = 0x7f80, F16_INF = 0x7c00;

    /** Whether the scan applies: floating dtypes with a NaN (F32, BF16, F16, F64); integers are always finite. */
    public static boolean scans(DType dtype) {
        return dtype == DType.F32 || dtype == DType.BF16 || dtype == DType.F16 || dtype == DType.F64;
    }

    /** Flat index of the first NaN or infinity in host tensor t, or -1 when every element is finite. */
    public static long firstNonFinite(Tensor t) {
        requireHost(t);
        if (!scans(t.dtype())) return -1;
        if (t.dtype() == DType.F64) return firstNonFiniteReference(t);
        long n = t.numel();
        MemorySegment d = t.data();
        long blocks = (n + BLOCK - 1) / BLOCK;
        if (blocks > Integer.MAX_VALUE) return firstNonFiniteReference(t); // 2^47 elements: not a tensor we meet
        AtomicLong first = new AtomicLong(Long.MAX_VALUE);
        Parallel.forRange((int) blocks, 1, (b0, b1) -> {
            for (int b = b0; b < b1; b++) {
                long start = (long) b * BLOCK;
                if (start >= first.get()) return; // an earlier index is already known
                long end = Math.min(n, start + BLOCK);
                if (blockHasNonFinite(t.dtype(), d, start, end)) {
                    long hit = scalarScan(t.dtype(), d, start, end);
                    first.accumulateAndGet(hit, Math::min);
                    return; // later blocks of this range hold later indexes
                }
            }
        });
        return first.get() == Long.MAX_VALUE ? -1 : first.get();
    }

    /** The plain loop: each element read as a float (a double for F64), the first that is not finite. */
    public static long firstNonFiniteReference(Tensor t) {
        requireHost(t);
        if (!scans(t.dtype())) return -1;
        long n = t.numel();
        MemorySegment d = t.data();
        for (long i = 0; i < n; i++) {
            double v = t.dtype() == DType.F64 ? d.getAtIndex(Tensor.F64, i) : t.getFloat(i);
            if (!Double.isFinite(v)) return i;
        }
        return -1;
    }

    /**
     * Throws when host tensor t holds a NaN or an infinity: "NAME holds NaN at index i [coordinates]
     * (of n elements)". {@code name} says what the tensor is, e.g. "tensor model.norm.weight".
     */
    public static void requireFinite(String name, Tensor t) {
        long i = firstNonFinite(t);
        if (i < 0) return;
        double v = t.dtype() == DType.F64 ? t.data().getAtIndex(Tensor.F64, i) : t.getFloat(i);
        throw new IllegalArgumentException(name + " holds " + (Double.isNaN(v) ? "NaN" : v > 0 ? "+Infinity" : "-Infinity")
                + " at index " + i + (t.rank() > 1 ? " " + Arrays.toString(coordinates(t.shape(), i)) : "") + " (of " + t.numel()
                + " elements); the weights are not usable (a diverged run?)");
    }

    private static void requireHost(Tensor t) {
        if (!t.device().isCpu()) throw new IllegalArgumentException("FiniteScan reads host tensors, got " + t.describe());
    }

    private static long[] coordinates(long[] shape, long flat) {
        long[] c = new long[shape.length];
        for (int k = shape.length - 1; k >= 0; k--) {
            c[k] = flat % shape[k];
            flat /= shape[k];
        }
        return c;
    }

    private static boolean blockHasNonFinite(DType dtype, MemorySegment d, long start, long end) {
        if (dtype == DType.F32) {
            IntVector max = IntVector.zero(I);
            long i = start;
            for (long upper = start + I.loopBound(end - start); i < upper; i += I.length()) {
                max = max.max(IntVector.fromMemorySegment(I, d, 4 * i, LE).and(0x7fffffff));
            }
            if (max.reduceLanes(VectorOperators.MAX) >= F32_INF) return true;
            for (; i < end; i++) if ((d.getAtIndex(Tensor.I32, i) & 0x7fffffff) >= F32_INF) return true;
            return false;
        }
        short inf = dtype == DType.BF16 ? BF16_INF : F16_INF;
        ShortVector max = ShortVector.zero(S);
        long i = start;
        for (long upper = start + S.loopBound(end - start); i < upper; i += S.length()) {
            max = max.max(ShortVector.fromMemorySegment(S, d, 2 * i, LE).and((short) 0x7fff));
        }
        if (max.reduceLanes(VectorOperators.MAX) >= inf) return true;
        for (; i < end; i++) if ((d.getAtIndex(Tensor.I16, i) & 0x7fff) >= inf) return true;
        return false;
    }

    private static long scalarScan(DType dtype, MemorySegment d, long start, long end) {
        for (long i = start; i < end; i++) {
            boolean bad = dtype == DType.F32 ? (d.getAtIndex(Tensor.I32, i) & 0x7fffffff) >= F32_INF
                    : (d.getAtIndex(Tensor.I16, i) & 0x7fff) >= (dtype == DType.BF16 ? BF16_INF : F16_INF);
            if (bad) return i;
        }
        throw new IllegalStateException("the block scan saw a non-finite value that the element scan did not");
    }
}
