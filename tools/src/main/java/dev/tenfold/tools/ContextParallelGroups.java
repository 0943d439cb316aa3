package dev.tenfold.tools;

import dev.tenfold.engine.collective.Communicator;
import dev.tenfold.engine.collective.MpiCommunicator;

/** `tenfold train --cp N`: the world's ranks in groups of N consecutive ranks, each group sharing its sequences. */
final class ContextParallelGroups {
    private ContextParallelGroups() {}

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
