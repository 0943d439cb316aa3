package dev.tenfold.engine.cpu;

import static dev.tenfold.engine.cpu.Elementwise.F;
import static dev.tenfold.engine.cpu.Elementwise.L;
import static dev.tenfold.engine.cpu.Elementwise.LE;

import dev.tenfold.engine.Check;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.OpChecks;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/** Embedding lookup and its scatter-add backward. */
final class Embedding {
    private Embedding() {}

    /** Columns per backward task: each task owns whole columns of dTable, so no two write the same element. */
    private static final int COLUMN_BLOCK = 256;

    /** Shared checks; returns {T, H, V}. Every id is checked against [0, V). */
    static int[] check(String op, Tensor table, Tensor ids, Tensor rows, boolean backward) {
        int[] d = OpChecks.embedding(op, table, ids, rows, backward);
        MemorySegment is = ids.data();
        for (long i = 0; i < d[0]; i++) {
            int id = is.getAtIndex(Tensor.I32, i);
            if (id < 0 || id >= d[2]) {
                throw Check.fail(op, "id " + id + " at position " + i + " is out of range [0, " + d[2] + ")", table, ids);
            }
        }
        return d;
    }

    static void forward(boolean fast, Tensor table, Tensor ids, Tensor out) {
        int[] d = check("embedding", table, ids, out, false);
        int t = d[0], h = d[1];
        MemorySegment tab = table.data(), is = ids.data(), os = out.data();
        DType dt = table.dtype();
        if (!fast) {
            for (long r = 0; r < t; r++) {
                long src = (long) is.getAtIndex(Tensor.I32, r) * h;
                for (long j = 0; j < h; j++) os.setAtIndex(Tensor.F32, r * h + j, Elementwise.load(tab, dt, src + j));
            }
            return;
        }
        Parallel.forRange(t, Math.max(1, Elementwise.GRAIN / Math.max(1, h)), (start, end) -> {
            for (long r = start; r < end; r++) {
                long src = (long) is.getAtIndex(Tensor.I32, r) * h, dst = r * h;
                if (dt == DType.F32) {
                    MemorySegment.copy(tab, 4 * src, os, 4 * dst, 4L * h);
                    continue;
                }
                int j = 0;
                for (int upper = F.loopBound(h); j < upper; j += L) {
                    Elementwise.loadBf16(tab, 2 * (src + j)).intoMemorySegment(os, 4 * (dst + j), LE);
                }
                for (; j < h; j++) os.setAtIndex(Tensor.F32, dst + j, Elementwise.load(tab, dt, src + j));
            }
        });
    }

    static void backward(boolean fast, Tensor dOut, Tensor ids, Tensor dTable) {
        int[] d = check("embeddingBackward", dTable, ids, dOut, true);
        int t = d[0], h = d[1];
        MemorySegment gs = dOut.data(), is = ids.data(), ts = dTable.data();
        if (!fast) {
            for (long r = 0; r < t; r++) {
                long dst = (long) is.getAtIndex(Tensor.I32, r) * h;
                for (long j = 0; j < h; j++) {
                    ts.setAtIndex(Tensor.F32, dst + j, ts.getAtIndex(Tensor.F32, dst + j) + gs.getAtIndex(Tensor.F32, r * h + j));
                }
            }
            return;
        }
        // Repeated ids would race if tokens were split over threads; split the columns instead.
        // Within a column block tokens are added in order, so the result equals the reference's.
        int blocks = (h + COLUMN_BLOCK - 1) / COLUMN_BLOCK;
        Parallel.forRange(blocks, Math.max(1, Elementwise.GRAIN / Math.max(1, t)), (b0, b1) -> {
            int c0 = b0 * COLUMN_BLOCK, c1 = Math.min(h, b1 * COLUMN_BLOCK);
            for (long r = 0; r < t; r++) {
                long dst = (long) is.getAtIndex(Tensor.I32, r) * h, src = r * h;
                int j = c0;
                for (int upper = c0 + F.loopBound(c1 - c0); j < upper; j += L) {
                    FloatVector acc = FloatVector.fromMemorySegment(F, ts, 4 * (dst + j), LE);
                    acc.add(FloatVector.fromMemorySegment(F, gs, 4 * (src + j), LE)).intoMemorySegment(ts, 4 * (dst + j), LE);
                }
                for (; j < c1; j++) {
                    ts.setAtIndex(Tensor.F32, dst + j, ts.getAtIndex(Tensor.F32, dst + j) + gs.getAtIndex(Tensor.F32, src + j));
                }
            }
        });
    }
}
