package dev.tenfold.qlora;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.collective.Communicator;
import dev.tenfold.llama.ContextParallelScheme;
import dev.tenfold.llama.ContextParallelStep;
import dev.tenfold.llama.LlamaModel;
import dev.tenfold.llama.ShardedAttention;

/**
 * The trainer's context parallelism: the world's ranks in groups of N consecutive ranks, each group
 * training its share of the batch's sequences (as data parallelism shares them among ranks), each
 * sequence's tokens split over the group's ranks ({@link ContextParallelStep}, with the scheme's
 * attention over {@code group}: Ulysses or the zigzag all-gather, {@link ContextParallelScheme}). Each rank adds the gradients and the loss of its shard; the trainer's one
 * all-reduce over the world sums the shards and the groups at once.
 *
 * <p>Not with packed records (attention inside each record is not sharded) nor with LoRA dropout
 * (a shard would draw its masks for other token indices than one rank does).
 */
final class ContextParallel {
    private final LlamaModel model;
    private final Communicator group;
    private final ShardedAttention attention;
    private final int groups, groupIndex;

    private ContextParallel(LlamaModel model, Communicator group, ContextParallelScheme scheme, int groups, int groupIndex) {
        this.model = model;
        this.group = group;
        this.attention = scheme.attention(group, model.backend());
        model.own(attention);
        this.groups = groups;
        this.groupIndex = groupIndex;
    }

    static ContextParallel of(LlamaModel model, Communicator world, Communicator group, ContextParallelScheme setting) {
        int n = group.size(), kv = model.config().numKvHeads();
        if (n < 2) throw new IllegalArgumentException("context parallelism: the group needs >= 2 ranks, got " + n);
        if (world.size() % n != 0 || world.rank() % n != group.rank()) {
            throw new IllegalArgumentException("context parallelism: the world of " + world.size() + " ranks (rank " + world.rank()
                    + ") must be groups of " + n + " consecutive ranks, this one rank " + group.rank() + " of its group;"
                    + " call dataParallel(world) first");
        }
        ContextParallelScheme scheme = setting.resolve(n, kv, setting == ContextParallelScheme.AUTO && !oneMachine(group));
        return new ContextParallel(model, group, scheme, world.size() / n, world.rank() / n);
    }

    /** Whether every rank of the group runs on this machine: each rank's host id, gathered by one all-reduce of a slot each. */
    static boolean oneMachine(Communicator group) {
        double[] hosts = new double[group.size()];
        hosts[group.rank()] = hostId();
        group.allReduceSum(hosts);
        for (double h : hosts) if (h != hosts[0]) return false;
        return true;
    }

    /** This machine's name as a 31-bit number (exact in a double, so the sum of one slot is the number). */
    private static int hostId() {
        String name;
        try {
            name = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/sys/kernel/hostname")).strip();
        } catch (java.io.IOException | RuntimeException e) {
            try {
                name = java.net.InetAddress.getLocalHost().getHostName();
            } catch (java.io.IOException e2) {
                name = "";
            }
        }
        return name.hashCode() & 0x7fffffff;
    }

    /** The scheme the group runs (Ulysses or the all-gather). */
    ContextParallelScheme scheme() { return attention.scheme(); }

    /** The number of groups (the data-parallel degree). */
    int groups() { return groups; }

    /** This rank's group, in [0, groups). */
    int groupIndex() { return groupIndex; }

    /** This rank's shard of one sequence: its loss (the shard's tokens only) and gradients. */
    Backend.LossSum step(Trainer.Example e, int[] positions, float gradScale) {
        if (e.recordStarts() != null && e.recordStarts().length > 1) {
            throw new IllegalArgumentException("context parallelism does not take packed records (--packing)");
        }
        return ContextParallelStep.runShard(model, attention, group, e.ids(), e.targets(), positions, gradScale);
    }
}
