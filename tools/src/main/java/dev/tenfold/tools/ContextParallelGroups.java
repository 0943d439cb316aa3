package dev.tenfold.tools;

import dev.tenfold.engine.collective.Communicator;
import dev.tenfold.engine.collective.MpiCommunicator;
import dev.tenfold.llama.ContextParallelScheme;

/** `tenfold train --cp N`: the world's ranks in groups of N consecutive ranks, each group sharing its sequences. */
final class ContextParallelGroups {
    private ContextParallelGroups() {}

    /**
     * The scheme of {@code --cp n --cp-scheme flag} on a model of {@code kvHeads} key/value heads (auto: Ulysses when n
     * divides them, else the all-gather); a bad name or Ulysses where it cannot run is a bad flag.
     */
    static ContextParallelScheme scheme(String flag, int n, int kvHeads) {
        ContextParallelScheme setting;
        try {
            setting = ContextParallelScheme.fromFlag(flag);
        } catch (IllegalArgumentException e) {
            throw new Flags.BadFlag("--cp-scheme " + flag + ": choose auto, ulysses or allgather");
        }
        try {
            return setting.resolve(n, kvHeads);
        } catch (IllegalArgumentException e) {
            throw new Flags.BadFlag("--cp " + n + " --cp-scheme " + flag + ": " + e.getMessage());
        }
    }

    /** This rank's group of {@code n} (every rank calls it: MPI splits its world collectively). */
    static Communicator split(Communicator world, int n) {
        if (world.size() % n != 0) {
            throw new Flags.BadFlag("--cp " + n + " must divide the " + world.size() + " ranks of the run");
        }
        if (world instanceof MpiCommunicator mpi) return mpi.split(n);
        throw new Flags.BadFlag("--cp " + n + ": context parallelism runs on CPU ranks under MPI (--nproc-per-node N --device cpu) so far,"
                + " not on " + world.describe());
    }
}
