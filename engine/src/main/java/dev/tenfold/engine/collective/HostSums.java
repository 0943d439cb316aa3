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

    /**
     * Checks an all-gather's or all-to-all's buffers: host tensors of one dtype, {@code out} holding
     * {@code outBlocks} x the bytes of {@code in} (all-gather: size blocks; all-to-all: 1, the same size
     * as in, which it cuts into size blocks itself), different memory. Returns the bytes of one block.
     */
    static long checkMove(String op, Tensor in, Tensor out, int size, boolean gather) {
        for (Tensor t : new Tensor[] {in, out}) {
            if (t == null) throw new IllegalArgumentException(op + ": a buffer is null");
            if (!t.device().isCpu()) throw new IllegalArgumentException(op + ": host tensors only, got " + t.describe());
        }
        if (in.dtype() != out.dtype()) throw new IllegalArgumentException(op + ": " + in.describe() + " and " + out.describe() + " differ in dtype");
        long expect = gather ? in.byteSize() * size : in.byteSize();
        if (out.byteSize() != expect) {
            throw new IllegalArgumentException(op + ": the output " + out.describe() + " must hold " + expect + " bytes ("
                    + (gather ? size + " x the input " : "the input ") + in.describe() + "), got " + out.byteSize());
        }
        if (!gather && in.numel() % size != 0) {
            throw new IllegalArgumentException(op + ": " + in.describe() + " does not cut into " + size + " equal blocks");
        }
        if (in.data().asOverlappingSlice(out.data()).isPresent() && in.byteSize() > 0) {
            throw new IllegalArgumentException(op + ": the input and output overlap");
        }
        return gather ? in.byteSize() : in.byteSize() / size;
    }

    /**
     * Checks a reduce-scatter's buffers: host tensors, F32 or F64, one dtype, {@code send} holding {@code size}
     * x the bytes of {@code recv}, different memory. Returns the bytes of one block.
     */
    static long checkScatter(String op, Tensor send, Tensor recv, int size) {
        if (send == null || recv == null) throw new IllegalArgumentException(op + ": a buffer is null");
        checkSum(op, List.of(send, recv));
        if (send.dtype() != recv.dtype()) throw new IllegalArgumentException(op + ": " + send.describe() + " and " + recv.describe() + " differ in dtype");
        if (send.byteSize() != recv.byteSize() * size) {
            throw new IllegalArgumentException(op + ": the input " + send.describe() + " must hold " + size + " x the output "
                    + recv.describe() + " (one block per rank)");
        }
        if (send.data().asOverlappingSlice(recv.data()).isPresent() && recv.byteSize() > 0) {
            throw new IllegalArgumentException(op + ": the input and output overlap");
        }
        return recv.byteSize();
    }

    /** One rank's all-gather or all-to-all: out = in (host tensors, or the same tensor). */
    static void copyOneBlock(String op, Tensor in, Tensor out) {
        if (in.data().equals(out.data())) return;
        checkMove(op, in, out, 1, true);
        MemorySegment.copy(in.data(), 0, out.data(), 0, in.byteSize());
    }
}
