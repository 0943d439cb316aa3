package dev.tenfold.tools;

import dev.tenfold.engine.collective.Communicator;
import dev.tenfold.engine.collective.MpiCommunicator;
import dev.tenfold.engine.collective.NcclCommunicator;
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

    /**
     * --cp n on GPUs, where NCCL takes one rank per GPU: the {@code world} ranks must be a multiple of n, and the
     * {@code ranksHere} that this machine starts (0: not counted here, a rank) need as many of its {@code gpus}. A
     * clear error here, rather than two ranks on one GPU, which NCCL refuses or hangs on.
     */
    static void checkGpuRanks(int n, int world, int ranksHere, int gpus) {
        String has = "this machine has " + gpus + " GPU" + (gpus == 1 ? "" : "s");
        if (world % n != 0) {
            throw new Flags.BadFlag("--cp " + n + " must divide the ranks (" + world + "): on GPUs each rank has its own GPU (NCCL takes"
                    + " one rank per GPU), so --cp " + n + " needs --nproc-per-node " + n + " (or a multiple) and as many GPUs; " + has);
        }
        if (ranksHere > gpus) {
            throw new Flags.BadFlag("--nproc-per-node " + ranksHere + " --device cuda: NCCL takes one rank per GPU, but " + has
                    + (gpus < n ? "; --cp " + n + " needs " + n + " GPUs, or CPU ranks (--device cpu)" : ""));
        }
    }

    /** This rank's group of {@code n} (every rank calls it: MPI or NCCL splits its world collectively). */
    static Communicator split(Communicator world, int n) {
        if (world.size() % n != 0) {
            throw new Flags.BadFlag("--cp " + n + " must divide the " + world.size() + " ranks of the run");
        }
        if (world instanceof MpiCommunicator mpi) return mpi.split(n);
        if (world instanceof NcclCommunicator nccl) return nccl.split(n);
        throw new Flags.BadFlag("--cp " + n + ": context parallelism runs on CPU ranks under MPI or GPU ranks under NCCL"
                + " (--nproc-per-node N), not on " + world.describe());
    }
}
