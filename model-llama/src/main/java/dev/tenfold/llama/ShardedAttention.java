package dev.tenfold.llama;

import dev.tenfold.engine.Tensor;

/**
 * Causal attention over a sequence of which this rank holds one shard of tokens (context
 * parallelism): the other ranks of its group hold the rest and call the same methods at the same
 * time. Which tokens a rank holds is the scheme's layout ({@link ContextParallelScheme#tokens}).
 * Arguments as {@link dev.tenfold.engine.Backend#attention}'s for the shard: q, att [1, t, Hq, d];
 * k, v [1, t, Hkv, d]; lse holds Hq x t floats, laid out as the implementation needs.
 * Implementations: {@link UlyssesAttention} (contiguous shards) and {@link ZigzagAllGatherAttention}
 * (zigzag chunks).
 */
public interface ShardedAttention extends AutoCloseable {

    /** The ranks sharing the sequence. */
    int ranks();

    /** The scheme, whose layout says which tokens of the sequence each rank holds. */
    ContextParallelScheme scheme();

    /** att = causal attention of the shard's queries over the sequence's keys and values up to each query. */
    void forward(Tensor q, Tensor k, Tensor v, float scale, Tensor att, Tensor lse);

    /** The backward of the {@link #forward} that just ran on these tensors: dq, dk, dv for the shard. */
    void backward(Tensor dAtt, Tensor q, Tensor k, Tensor v, Tensor att, Tensor lse, float scale, Tensor dq, Tensor dk, Tensor dv);

    /** Frees the buffers it keeps between calls. */
    @Override
    void close();
}
