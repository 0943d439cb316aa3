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
     * The rank that runs each sequence of the batch: the costliest first, each to the rank with the
     * least cost so far (the lowest rank on ties). A sequence of n tokens costs
     * {@code n * (n + tokensPerPair)} ({@link #cost}): the square, attention's share, and a linear
     * part for the matmuls. It depends on the batch, the number of ranks and the model's shape only,
     * so every rank computes the same shares.
     */
    static int[] owners(List<Trainer.Example> batch, int ranks, long linearTokens) {
        int[] owner = new int[batch.size()];
        if (ranks == 1) return owner;
        List<Integer> order = new ArrayList<>();
        for (int j = 0; j < batch.size(); j++) order.add(j);
        order.sort(Comparator.comparingLong((Integer j) -> -cost(batch.get(j), linearTokens)).thenComparingInt(j -> j));
        long[] load = new long[ranks];
        for (int j : order) {
            int best = 0;
            for (int r = 1; r < ranks; r++) if (load[r] < load[best]) best = r;
            owner[j] = best;
            load[best] += cost(batch.get(j), linearTokens);
        }
        return owner;
    }

    /**
     * A sequence's training FLOPs in units of attention's per token pair: n squared (attention's
     * 9 h L n^2 with checkpointing: QK and PV forward, again recomputed, 2.5 times in the backward)
     * plus n times {@code linearTokens} (the matmuls' 6 P n over the same unit).
     */
    static long cost(Trainer.Example e, long linearTokens) {
        long n = e.ids().length;
        return n * (n + linearTokens);
    }

    /**
     * The length at which a sequence's attention costs what its matmuls cost: 6 P / (9 h L), P the
     * weights of the projections, the MLP and the output head (about 38,000 tokens for Llama-3-8B).
     */
    static long linearTokens(dev.tenfold.llama.LlamaConfig c) {
        long h = c.hiddenSize(), q = (long) c.numHeads() * c.headDim(), kv = (long) c.numKvHeads() * c.headDim();
        long perLayer = 2 * h * q + 2 * h * kv + 3 * h * c.intermediateSize();
        long p = c.numLayers() * perLayer + (long) c.vocabSize() * h;
        return Math.max(0, 6 * p / (9 * q * c.numLayers()));
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
