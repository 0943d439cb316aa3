package dev.tenfold.engine.collective;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.List;

/** The host collectives' shared pieces: argument checks and the sum in rank order. */
final class HostSums {
    private HostSums() {}

    /** Host tensors, F32 or F64, for a sum. */
    static void checkSum(String op, List<Tensor> tensors) {
        for (Tensor t : tensors) {
            if (!t.device().isCpu()) throw new IllegalArgumentException(op + ": host tensors only, got " + t.describe());
            if (t.dtype() != DType.F32 && t.dtype() != DType.F64) {
                throw new IllegalArgumentException(op + ": F32 or F64 tensors only, got " + t.describe());
            }
        }
    }

    static void checkRoot(String op, int root, int size) {
        if (root < 0 || root >= size) throw new IllegalArgumentException(op + ": root " + root + " is not in [0, " + size + ")");
    }

    /** acc += x, element by element, in acc's dtype (F32 adds in F32, F64 in F64), over {@code n} elements. */
    static void add(MemorySegment acc, MemorySegment x, DType dtype, long n) {
        if (dtype == DType.F64) {
            for (long i = 0; i < n; i++) acc.setAtIndex(Tensor.F64, i, acc.getAtIndex(Tensor.F64, i) + x.getAtIndex(Tensor.F64, i));
        } else {
            for (long i = 0; i < n; i++) acc.setAtIndex(Tensor.F32, i, acc.getAtIndex(Tensor.F32, i) + x.getAtIndex(Tensor.F32, i));
        }
    }
}
