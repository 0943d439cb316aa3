package dev.tenfold.llama;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.collective.Communicator;

/**
 * How the ranks of a context-parallel group share a sequence's attention, and so which tokens each
 * rank holds (the layout).
 *
 * <ul>
 * <li>{@link #ULYSSES}: rank r of N holds the contiguous tokens [r t, (r + 1) t), t = ceil(T / N); two
 *     all-to-alls per attention turn token shards into head shards ({@link UlyssesAttention}). N must
 *     divide the key/value heads.
 * <li>{@link #ALL_GATHER}: the sequence is cut into 2N chunks of c = ceil(T / 2N) tokens and rank r holds
 *     chunks r and 2N - 1 - r (the zigzag layout of the Llama 3 paper: every rank has as much causal work);
 *     each attention all-gathers the keys and values ({@link ZigzagAllGatherAttention}). Any N.
 * <li>{@link #AUTO}: Ulysses when N divides the key/value heads and the group is on one machine, else
 *     the all-gather.
 * </ul>
 */
public enum ContextParallelScheme {
    AUTO("auto"), ULYSSES("ulysses"), ALL_GATHER("allgather");

    private final String flag;

    ContextParallelScheme(String flag) { this.flag = flag; }

    /** The name on the command line ({@code --cp-scheme}). */
    public String flag() { return flag; }

    /** The scheme named {@code auto}, {@code ulysses} or {@code allgather}. */
    public static ContextParallelScheme fromFlag(String name) {
        for (ContextParallelScheme s : values()) if (s.flag.equals(name)) return s;
        throw new IllegalArgumentException("context-parallel scheme '" + name + "': expected auto, ulysses or allgather");
    }

    /**
     * The scheme a group of {@code ranks} runs on a model of {@code kvHeads} key/value heads: this one, or for
     * {@link #AUTO} Ulysses when it can run, else the all-gather. Ulysses asked for where it cannot run is refused.
     */
    public ContextParallelScheme resolve(int ranks, int kvHeads) {
        return resolve(ranks, kvHeads, false);
    }

    /**
     * As {@link #resolve(int, int)} for a group whose ranks may sit on several machines: there {@link #AUTO}
     * takes the all-gather, whose traffic per layer is one all-gather of k, v and one reduce-scatter of their
     * gradients, where Ulysses' four all-to-alls per layer would all cross the slower network between machines.
     */
    public ContextParallelScheme resolve(int ranks, int kvHeads, boolean acrossMachines) {
        if (ranks < 1) throw new IllegalArgumentException("context parallelism: the group needs >= 1 rank, got " + ranks);
        return switch (this) {
            case AUTO -> kvHeads % ranks == 0 && !acrossMachines ? ULYSSES : ALL_GATHER;
            case ULYSSES -> {
                if (kvHeads % ranks != 0) {
                    throw new IllegalArgumentException("context parallelism: Ulysses needs the " + ranks + " ranks to divide the model's " + kvHeads
                            + " key/value heads; use --cp-scheme allgather (or auto) for " + ranks + " ranks");
                }
                yield ULYSSES;
            }
            case ALL_GATHER -> ALL_GATHER;
        };
    }

    /** This scheme's attention over {@code group}, computing on {@code backend} (a resolved scheme). */
    public ShardedAttention attention(Communicator group, Backend backend) {
        return switch (this) {
            case ULYSSES -> UlyssesAttention.over(group, backend);
            case ALL_GATHER -> ZigzagAllGatherAttention.over(group, backend);
            case AUTO -> throw new IllegalStateException("context parallelism: resolve AUTO to a scheme first");
        };
    }

    /** The tokens one rank holds of a sequence of {@code total} tokens shared by {@code ranks} ranks (padding included). */
    public int shardLength(int total, int ranks) {
        return switch (this) {
            case ULYSSES -> Math.ceilDiv(total, ranks);
            case ALL_GATHER -> 2 * Math.ceilDiv(total, 2 * ranks);
            case AUTO -> throw new IllegalStateException("context parallelism: resolve AUTO to a scheme first");
        };
    }

    /**
     * The whole sequence's index of each token rank {@code r} holds, in the order the rank holds them; an index
     * >= {@code total} is padding (the sequence's end padded to the shards' length).
     */
    public int[] tokens(int total, int ranks, int r) {
        int t = shardLength(total, ranks);
        int[] out = new int[t];
        if (this == ULYSSES) {
            for (int i = 0; i < t; i++) out[i] = r * t + i;
        } else { // chunks r and 2N - 1 - r of c tokens
            int c = t / 2;
            for (int i = 0; i < c; i++) {
                out[i] = r * c + i;
                out[c + i] = (2 * ranks - 1 - r) * c + i;
            }
        }
        return out;
    }
}
