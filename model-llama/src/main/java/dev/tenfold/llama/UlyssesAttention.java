package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.collective.Communicator;

/**
 * DeepSpeed-Ulysses attention for a sequence cut into N contiguous shards of t tokens, rank r
 * holding tokens [r t, (r + 1) t): an all-to-all turns the shards' q, k, v [t, H, d] into the whole
 * sequence's q, k, v for this rank's heads [N t, H / N, d] (rank r takes query heads
 * [r Hq / N, (r + 1) Hq / N) and the key/value heads they read), the backend's attention runs over
 * the whole sequence for those heads, and a second all-to-all brings the output back to the shard.
 * The backward moves dOut the same way, runs the attention backward on the saved head-sharded
 * tensors and moves dq, dk, dv back. Each head's attention is the one-rank computation over the same
 * rows, so on the CPU the result is bit-identical to one rank's.
 *
 * <p>Limits: N divides the key/value heads (8 for Llama-3-8B: Ulysses goes up to 8 ranks); every
 * shard has the same t (the caller pads the sequence's end to a multiple of N: causal attention
 * makes padding at the end invisible to the real tokens); the tensors live where the communicator
 * moves them (host tensors with the in-process and MPI ones, a GPU's with NCCL): the re-layouts of
 * head blocks are {@link Backend#copy2d}s on the backend, the moves the communicator's.
 * On the memory plan's backend (which computes nothing) the buffers are allocated as on a device
 * and nothing moves.
 * The backward uses the head-sharded tensors of the forward that ran last (DecoderLayer's backward
 * recomputes the attention block, and so this forward, just before).
 */
public final class UlyssesAttention implements ShardedAttention {
    private final Communicator group;
    private final Backend b;
    private final int n;
    private int t, hq, hkv, d;
    private DType dtype;
    // the whole sequence for this rank's heads, [N t, heads / N, d]; staging takes a shard's re-laid-out blocks
    private Tensor qh, kh, vh, atth, dAtth, dqh, dkh, dvh, staging;
    private long lastAtt; // the forward's output address: the backward must follow it
    // the memory plan's backend computes nothing: the buffers are allocated, nothing is moved
    private final boolean planning;

    private UlyssesAttention(Communicator group, Backend backend) {
        this.group = group;
        this.b = backend;
        this.n = group.size();
        this.planning = backend instanceof dev.tenfold.engine.plan.PlanningBackend;
    }

    /** Ulysses over the ranks of {@code group} (one sequence), computing on {@code backend}. */
    public static UlyssesAttention over(Communicator group, Backend backend) {
        return new UlyssesAttention(group, backend);
    }

    @Override public int ranks() { return n; }

    @Override public ContextParallelScheme scheme() { return ContextParallelScheme.ULYSSES; }

    @Override
    public void forward(Tensor q, Tensor k, Tensor v, float scale, Tensor att, Tensor lse) {
        shapes(q, k);
        toHeads(q, hq, qh);
        toHeads(k, hkv, kh);
        toHeads(v, hkv, vh);
        b.attention(whole(qh, hq), whole(kh, hkv), whole(vh, hkv), scale, whole(atth, hq), headLse(lse));
        toTokens(atth, hq, att);
        lastAtt = att.data().address();
    }

    @Override
    public void backward(Tensor dAtt, Tensor q, Tensor k, Tensor v, Tensor att, Tensor lse, float scale, Tensor dq, Tensor dk, Tensor dv) {
        if (qh == null || att.data().address() != lastAtt) {
            throw new IllegalStateException("Ulysses attention: the backward must follow the forward of the same tensors");
        }
        if (dAtth == null) {
            dAtth = b.allocate(dtype, (long) n * t, hq / n, d);
            dqh = b.allocate(dtype, (long) n * t, hq / n, d);
            dkh = b.allocate(dtype, (long) n * t, hkv / n, d);
            dvh = b.allocate(dtype, (long) n * t, hkv / n, d);
        }
        toHeads(dAtt, hq, dAtth);
        b.attentionBackward(whole(dAtth, hq), whole(qh, hq), whole(kh, hkv), whole(vh, hkv), whole(atth, hq), headLse(lse), scale,
                whole(dqh, hq), whole(dkh, hkv), whole(dvh, hkv));
        toTokens(dqh, hq, dq);
        toTokens(dkh, hkv, dk);
        toTokens(dvh, hkv, dv);
    }

    /** Takes the shard's shape from q [1, t, Hq, d] and k [1, t, Hkv, d]; (re)allocates the head-sharded buffers. */
    private void shapes(Tensor q, Tensor k) {
        if (!planning && !q.device().equals(group.device())) {
            throw new UnsupportedOperationException("Ulysses attention: the tensors are on " + q.device() + " (" + q.describe()
                    + ") but the communicator (" + group.describe() + ") moves tensors on " + group.device()
                    + (q.device().isCpu() ? "" : "; device tensors need NCCL (one process per GPU)"));
        }
        int t = (int) q.dim(1), hq = (int) q.dim(2), hkv = (int) k.dim(2), d = (int) q.dim(3);
        if (hkv % n != 0 || hq % hkv != 0) {
            throw new IllegalArgumentException("Ulysses attention: " + n + " ranks must divide the " + hkv + " key/value heads (and "
                    + hkv + " the " + hq + " query heads); use a group of at most " + hkv + " ranks that divides it");
        }
        if (qh != null && t == this.t && hq == this.hq && hkv == this.hkv && d == this.d && q.dtype() == dtype) return;
        close();
        this.t = t;
        this.hq = hq;
        this.hkv = hkv;
        this.d = d;
        this.dtype = q.dtype();
        long tokens = (long) n * t;
        qh = b.allocate(dtype, tokens, hq / n, d);
        kh = b.allocate(dtype, tokens, hkv / n, d);
        vh = b.allocate(dtype, tokens, hkv / n, d);
        atth = b.allocate(dtype, tokens, hq / n, d);
        staging = b.allocate(dtype, (long) t * hq * d);
    }

    /** A head-sharded buffer as attention's [1, N t, heads / N, d]. */
    private Tensor whole(Tensor x, int heads) {
        return x.view(1, (long) n * t, heads / n, d);
    }

    /** The layer's lse (Hq x t floats) as this rank's heads over the whole sequence, [1, Hq / N, N t]. */
    private Tensor headLse(Tensor lse) {
        if (lse.numel() != (long) hq * t) throw new IllegalArgumentException("Ulysses attention: lse needs " + (long) hq * t + " floats, got " + lse.describe());
        return lse.view(1, hq / n, (long) n * t);
    }

    /**
     * x [1, t, heads, d] of this shard to out [N t, heads / N, d] for this rank's heads: block j of the
     * staging buffer is x's head group j for the shard's t tokens, then all-to-all.
     */
    private void toHeads(Tensor x, int heads, Tensor out) {
        if (planning) return;
        long row = (long) heads / n * d * dtype.byteSize(1); // one token's heads of one group, in bytes
        Tensor st = stage(heads);
        for (int j = 0; j < n; j++) b.copy2d(x, j * row, n * row, st, j * t * row, row, row, t);
        group.allToAll(st, out);
    }

    /** The reverse of {@link #toHeads}: xh [N t, heads / N, d] (block i: shard i's tokens) to out [1, t, heads, d] of this shard. */
    private void toTokens(Tensor xh, int heads, Tensor out) {
        if (planning) return;
        long row = (long) heads / n * d * dtype.byteSize(1);
        Tensor st = stage(heads);
        group.allToAll(xh, st);
        for (int j = 0; j < n; j++) b.copy2d(st, j * t * row, row, out, j * row, n * row, row, t);
    }

    /** The staging buffer as one shard's t x heads x d elements. */
    private Tensor stage(int heads) {
        return staging.slice(0, (long) t * heads * d);
    }

    /** Frees the head-sharded buffers (the next forward allocates them again). */
    @Override
    public void close() {
        for (Tensor x : new Tensor[] {qh, kh, vh, atth, dAtth, dqh, dkh, dvh, staging}) if (x != null) x.close();
        qh = kh = vh = atth = dAtth = dqh = dkh = dvh = staging = null;
    }
}
