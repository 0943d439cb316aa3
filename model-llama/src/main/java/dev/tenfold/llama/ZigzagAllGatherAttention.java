package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.collective.Communicator;

/**
 * Context-parallel attention by all-gathering the keys and values, with the zigzag layout of the
 * Llama 3 paper: the sequence is cut into 2N chunks of c tokens and rank r of N holds chunks r and
 * 2N - 1 - r (its t = 2c tokens in that order), so that every rank has the same causal work. Each
 * forward all-gathers k and v (the key/value heads only: with grouped-query attention they are the
 * small part) and puts them in sequence order; each local chunk then runs the backend's attention
 * over the prefix of keys up to its own end (the backend aligns the queries with the last keys, so
 * the causal mask is the one of the global positions). The backward runs the attention backward per
 * chunk over the same prefixes, which gives dk and dv for the whole sequence; a reduce-scatter sums
 * them over the group and leaves each rank its own chunks' share.
 *
 * <p>Unlike Ulysses, any N works (N need not divide the key/value heads); each rank holds the whole
 * sequence's k and v (and their gradients in the backward), the memory the plan counts: per rank
 * 4 x the sequence's k in the activations' dtype (k, v, dk, dv) and one F32 staging buffer of the
 * same elements (the gathered blocks, then the first chunk's dk and dv, then the reduce-scatter's).
 *
 * <p>Limits as {@link UlyssesAttention}'s: the tensors live where the communicator moves them (the
 * chunks' re-layouts are {@link Backend#copy2d}s, casts and fills on the backend);
 * on the memory plan's backend the buffers are allocated and nothing moves; the backward uses the
 * gathered k and v of the forward that ran last (DecoderLayer recomputes it just before). The sums of
 * dk and dv run in F32 (an F32 copy when the activations are BF16).
 */
public final class ZigzagAllGatherAttention implements ShardedAttention {
    private final Communicator group;
    private final Backend b;
    private final int n, rank;
    private final boolean planning; // the memory plan's backend computes nothing
    private int c, hq, hkv, d;
    private DType dtype;
    // staging, F32 of the whole sequence's [2N c, Hkv, d], holds in turn: the ranks' k (or v) side by side as gathered
    // (rank 0's first), the first chunk's dk and dv in the backward, and the F32 blocks of the reduce-scatter
    private Tensor staging;
    // the whole sequence's k, v in sequence order [2N c, Hkv, d], and in the backward their gradients
    private Tensor kSeq, vSeq, dkSeq, dvSeq;
    private Tensor recv32; // BF16 activations: the reduce-scatter's F32 result

    private long lastAtt; // the forward's output address: the backward must follow it

    private ZigzagAllGatherAttention(Communicator group, Backend backend) {
        this.group = group;
        this.b = backend;
        this.n = group.size();
        this.rank = group.rank();
        this.planning = backend instanceof dev.tenfold.engine.plan.PlanningBackend;
    }

    /** The all-gather attention over the ranks of {@code group} (one sequence), computing on {@code backend}. */
    public static ZigzagAllGatherAttention over(Communicator group, Backend backend) {
        return new ZigzagAllGatherAttention(group, backend);
    }

    @Override public int ranks() { return n; }

    @Override public ContextParallelScheme scheme() { return ContextParallelScheme.ALL_GATHER; }

    @Override
    public void forward(Tensor q, Tensor k, Tensor v, float scale, Tensor att, Tensor lse) {
        shapes(q, k, lse);
        gather(k, kSeq);
        gather(v, vSeq);
        for (int half = 0; half < 2; half++) {
            int keys = prefix(half);
            b.attention(local(q, half, hq), whole(kSeq, keys), whole(vSeq, keys), scale, local(att, half, hq), lseOf(lse, half));
        }
        lastAtt = att.data().address();
    }

    @Override
    public void backward(Tensor dAtt, Tensor q, Tensor k, Tensor v, Tensor att, Tensor lse, float scale, Tensor dq, Tensor dk, Tensor dv) {
        if (kSeq == null || att.data().address() != lastAtt) {
            throw new IllegalStateException("all-gather attention: the backward must follow the forward of the same tensors");
        }
        if (dkSeq == null) {
            long rows = 2L * n * c;
            dkSeq = b.allocate(dtype, rows, hkv, d);
            dvSeq = b.allocate(dtype, rows, hkv, d);
            if (dtype != DType.F32) recv32 = b.allocate(DType.F32, 2L * c * hkv * d);
        }
        // the second chunk's prefix holds the first's: its backward writes dk, dv of its prefix (zeros after it);
        // the first chunk's (at most N c rows each) go to the staging buffer's two halves and are added
        int second = prefix(1), first = prefix(0);
        Tensor dkFirst = gathered().slice(0, first), dvFirst = gathered().slice((long) n * c, (long) n * c + first);
        b.attentionBackward(local(dAtt, 1, hq), local(q, 1, hq), whole(kSeq, second), whole(vSeq, second), local(att, 1, hq), lseOf(lse, 1),
                scale, local(dq, 1, hq), whole(dkSeq, second), whole(dvSeq, second));
        b.attentionBackward(local(dAtt, 0, hq), local(q, 0, hq), whole(kSeq, first), whole(vSeq, first), local(att, 0, hq), lseOf(lse, 0),
                scale, local(dq, 0, hq), dkFirst.view(1, first, hkv, d), dvFirst.view(1, first, hkv, d));
        if (planning) return;
        // rows past the second chunk's prefix were not written: the reduce-scatter takes zeros for them (scatter)
        for (Tensor[] g : new Tensor[][] {{dkSeq, dkFirst}, {dvSeq, dvFirst}}) {
            Tensor head = g[0].slice(0, first);
            b.add(head, g[1], head);
        }
        scatter(dkSeq, dk); // the staging buffer is free again: it takes the blocks of the reduce-scatter
        scatter(dvSeq, dv);
    }

    /** Takes the shard's shape from q [1, 2c, Hq, d] and k [1, 2c, Hkv, d]; (re)allocates the buffers. */
    private void shapes(Tensor q, Tensor k, Tensor lse) {
        if (!planning && !q.device().equals(group.device())) {
            throw new UnsupportedOperationException("all-gather attention: the tensors are on " + q.device() + " (" + q.describe()
                    + ") but the communicator (" + group.describe() + ") moves tensors on " + group.device()
                    + (q.device().isCpu() ? "" : "; device tensors need NCCL (one process per GPU)"));
        }
        int t = (int) q.dim(1), hq = (int) q.dim(2), hkv = (int) k.dim(2), d = (int) q.dim(3);
        if (t % 2 != 0) {
            throw new IllegalArgumentException("all-gather attention: a rank holds two chunks of the same length, so an even number of tokens,"
                    + " got " + t + " (the zigzag layout: ContextParallelScheme.ALL_GATHER.tokens)");
        }
        if (hq % hkv != 0) {
            throw new IllegalArgumentException("all-gather attention: the " + hkv + " key/value heads must divide the " + hq + " query heads");
        }
        if (lse.numel() != (long) hq * t) throw new IllegalArgumentException("all-gather attention: lse needs " + (long) hq * t + " floats, got " + lse.describe());
        if (kSeq != null && t == 2 * c && hq == this.hq && hkv == this.hkv && d == this.d && q.dtype() == dtype) return;
        close();
        this.c = t / 2;
        this.hq = hq;
        this.hkv = hkv;
        this.d = d;
        this.dtype = q.dtype();
        long rows = 2L * n * c;
        staging = b.allocate(DType.F32, rows * hkv * d); // F32: the reduce-scatter's blocks; BF16 k or v take its first half
        kSeq = b.allocate(dtype, rows, hkv, d);
        vSeq = b.allocate(dtype, rows, hkv, d);
    }

    /** The keys the rank's chunk {@code half} (0: chunk r, 1: chunk 2N - 1 - r) sees: the sequence up to that chunk's end. */
    private int prefix(int half) {
        return (half == 0 ? rank + 1 : 2 * n - rank) * c;
    }

    /** Global chunk j's place in the gathered buffer, in rows: rank j's first half, or rank 2N - 1 - j's second. */
    private long gatheredRow(int j) {
        return j < n ? 2L * c * j : 2L * c * (2 * n - 1 - j) + c;
    }

    private long rowBytes() { return dtype.byteSize((long) hkv * d); }

    /** The staging buffer as the whole sequence's [2N c, Hkv, d] in the activations' dtype. */
    private Tensor gathered() {
        long rows = 2L * n * c;
        return Tensor.wrap(staging.data().asSlice(0, rowBytes() * rows), staging.device(), dtype, rows, hkv, d);
    }

    /** x [1, 2c, heads, d] of this rank to the whole sequence's [2N c, Hkv, d] in sequence order. */
    private void gather(Tensor x, Tensor seq) {
        if (planning) return;
        Tensor gathered = gathered();
        group.allGather(x, gathered);
        long chunk = rowBytes() * c;
        // chunks 0 .. N-1 are each rank's first half, every 2c rows; chunks N .. 2N-1 come from the ranks in reverse order
        b.copy2d(gathered, 0, 2 * chunk, seq, 0, chunk, chunk, n);
        for (int j = n; j < 2 * n; j++) b.copy2d(gathered, rowBytes() * gatheredRow(j), chunk, seq, chunk * j, chunk, chunk, 1);
    }

    /**
     * The whole sequence's gradient [2N c, Hkv, d] in sequence order, summed over the group: this rank's chunks into out.
     * Its rows from the second chunk's prefix on were never written: those chunks go to the reduce-scatter as zeros.
     */
    private void scatter(Tensor seq, Tensor out) {
        // rank-major F32 for the reduce-scatter: block j is rank j's two chunks
        long chunk = (long) c * hkv * d, rowElems = (long) hkv * d;
        int written = 2 * n - rank; // chunks 0 .. written-1 hold the backward's sums
        if (dtype == DType.F32) { // chunks 0 .. N-1 (all written) in one strided copy, every other block of c rows
            long bytes = dtype.byteSize(chunk);
            b.copy2d(seq, 0, bytes, staging, 0, 2 * bytes, bytes, n);
        }
        for (int j = dtype == DType.F32 ? n : 0; j < 2 * n; j++) {
            Tensor to = staging.slice(rowElems * gatheredRow(j), rowElems * gatheredRow(j) + chunk);
            if (j >= written) {
                b.fill(to, 0f);
                continue;
            }
            Tensor from = seq.view(seq.numel()).slice(chunk * j, chunk * (j + 1));
            if (dtype == DType.F32) b.copy(from, to);
            else b.cast(from, to);
        }
        if (dtype == DType.F32) {
            group.reduceScatter(staging, out.view(out.numel()));
        } else {
            group.reduceScatter(staging, recv32);
            b.cast(recv32, out.view(out.numel()));
        }
    }

    /** This rank's chunk {@code half} of a [1, 2c, heads, d] tensor, as [1, c, heads, d]. */
    private Tensor local(Tensor x, int half, int heads) {
        return x.view(2L * c, heads, d).slice((long) half * c, (long) (half + 1) * c).view(1, c, heads, d);
    }

    /** The first {@code rows} rows of a sequence buffer, as attention's [1, rows, Hkv, d]. */
    private Tensor whole(Tensor seq, int rows) {
        return seq.slice(0, rows).view(1, rows, hkv, d);
    }

    /** Chunk {@code half}'s lse: the layer's Hq x 2c floats hold chunk r's [Hq, c] then chunk 2N - 1 - r's. */
    private Tensor lseOf(Tensor lse, int half) {
        return lse.view((long) hq * 2 * c).slice((long) half * hq * c, (long) (half + 1) * hq * c).view(1, hq, c);
    }

    /** Frees the buffers (the next forward allocates them again). */
    @Override
    public void close() {
        for (Tensor x : new Tensor[] {staging, kSeq, vSeq, dkSeq, dvSeq, recv32}) if (x != null) x.close();
        staging = kSeq = vSeq = dkSeq = dvSeq = recv32 = null;
    }
}
