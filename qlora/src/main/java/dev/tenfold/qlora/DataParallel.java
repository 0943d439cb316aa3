package dev.tenfold.qlora;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.llama.Parameter;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/** What a {@link Trainer} needs to share a batch among ranks and sum their gradients reproducibly. */
final class DataParallel {
    private DataParallel() {}

    /**
     * The rank that runs each sequence of the batch: the costliest first (a sequence costs its
     * length squared, as attention does), each to the rank with the least cost so far (the lowest
     * rank on ties). It depends on the batch and the number of ranks only, so every rank computes
     * the same shares.
     */
    static int[] owners(List<Trainer.Example> batch, int ranks) {
        int[] owner = new int[batch.size()];
        if (ranks == 1) return owner;
        List<Integer> order = new ArrayList<>();
        for (int j = 0; j < batch.size(); j++) order.add(j);
        order.sort(Comparator.comparingLong((Integer j) -> -cost(batch.get(j))).thenComparingInt(j -> j));
        long[] load = new long[ranks];
        for (int j : order) {
            int best = 0;
            for (int r = 1; r < ranks; r++) if (load[r] < load[best]) best = r;
            owner[j] = best;
            load[best] += cost(batch.get(j));
        }
        return owner;
    }

    static long cost(Trainer.Example e) {
        long n = e.ids().length;
        return n * n;
    }

    /**
     * Gradients summed on the host in F64, sequence by sequence, for the CPU backend: a sum of f32
     * values in F64 is exact unless they span more than 29 binary orders of magnitude, so the sum
     * does not depend on how the sequences are grouped, and N ranks (each summing its share, then
     * the ranks' sums added) give the bits of one rank summing them all. Rounded to f32 once, into
     * the parameters' gradients.
     */
    static final class HostGradients implements AutoCloseable {
        private final List<Parameter> params;
        final Tensor sums; // F64, every parameter's gradient one after the other

        HostGradients(List<Parameter> params) {
            this.params = params;
            long n = 0;
            for (Parameter p : params) n += p.grad().numel();
            sums = Tensor.allocate(DType.F64, Math.max(1, n));
        }

        void zero() { sums.data().fill((byte) 0); }

        /** sums += every parameter's gradient (f32 to f64). */
        void add() {
            MemorySegment acc = sums.data();
            long off = 0;
            for (Parameter p : params) {
                MemorySegment g = p.grad().data();
                long n = p.grad().numel();
                for (long i = 0; i < n; i++) {
                    long k = off + i;
                    acc.setAtIndex(Tensor.F64, k, acc.getAtIndex(Tensor.F64, k) + g.getAtIndex(Tensor.F32, i));
                }
                off += n;
            }
        }

        /** Every parameter's gradient = its sum rounded to f32. */
        void roundIntoGradients() {
            MemorySegment acc = sums.data();
            long off = 0;
            for (Parameter p : params) {
                MemorySegment g = p.grad().data();
                long n = p.grad().numel();
                for (long i = 0; i < n; i++) g.setAtIndex(Tensor.F32, i, (float) acc.getAtIndex(Tensor.F64, off + i));
                off += n;
            }
        }

        @Override public void close() { sums.close(); }
    }
}
