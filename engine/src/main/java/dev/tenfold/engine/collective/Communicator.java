package dev.tenfold.engine.collective;

import dev.tenfold.engine.Device;
import dev.tenfold.engine.Tensor;
import java.util.List;

/**
 * The ranks of a data-parallel or context-parallel run and the collectives the trainer needs: a sum
 * over the ranks, a broadcast from one rank, a barrier, and the moves of context parallelism
 * (all-gather, all-to-all, reduce-scatter). Every rank calls the same collectives in the same order with
 * tensors of the same shapes.
 *
 * <p>Implementations: {@link #solo()} (one rank, nothing to do), {@link InProcessCommunicator}
 * (threads as ranks, for tests), {@link MpiCommunicator} (processes under mpirun, host tensors) and
 * {@link NcclCommunicator} (one process per GPU, device tensors). The host ones sum in rank order
 * (rank 0's value plus rank 1's plus ...) so that a run is reproducible; NCCL chooses its own order.
 *
 * <p>A collective that does not complete within the communicator's timeout (a rank died) ends with
 * a {@link CollectiveException}, or, where the library cannot be interrupted (MPI, NCCL), ends the
 * process with a message ({@link Watchdog}).
 */
public interface Communicator extends AutoCloseable {

    /** This process's (or thread's) rank, in [0, size). */
    int rank();

    /** The number of ranks. */
    int size();

    /**
     * Where the tensors of its collectives live: the host for the in-process and MPI communicators (and one
     * rank's), the rank's GPU for NCCL's.
     */
    default Device device() { return Device.CPU; }

    /** Each tensor becomes the sum over the ranks of its values, in place (F32 or F64). */
    void allReduceSum(List<Tensor> tensors);

    /** {@code values} becomes the sum over the ranks, in place. */
    void allReduceSum(double[] values);

    /** {@code tensor} on every rank becomes rank {@code root}'s. */
    void broadcast(Tensor tensor, int root);

    /** Returns until every rank has called it. */
    void barrier();

    /**
     * {@code all} becomes every rank's {@code mine} side by side, rank 0's first ({@code all} holds
     * size x mine's bytes, same dtype; any dtype: bytes are moved, not summed). Context parallelism.
     */
    void allGather(Tensor mine, Tensor all);

    /**
     * {@code send} is cut into size equal blocks, block j for rank j; {@code recv}'s block i becomes
     * what rank i sent to this rank (same dtype and size as send, a different buffer; any dtype).
     * Ulysses attention's exchange of sequence shards for head shards.
     */
    void allToAll(Tensor send, Tensor recv);

    /**
     * {@code send} is cut into size equal blocks, block j for rank j; {@code recv} (one block, a different
     * buffer) becomes the sum over the ranks of the block each sent to this rank (F32 or F64). The
     * all-gather context parallelism's return of the key/value gradients to the ranks that own them.
     */
    void reduceScatter(Tensor send, Tensor recv);

    /** Where the sums are computed, for the docs and the metrics ("in rank order on the host", "NCCL"). */
    String describe();

    @Override
    void close();

    /** One rank: every collective leaves its arguments as they are. */
    static Communicator solo() {
        return Solo.INSTANCE;
    }

    /** The one-rank communicator. */
    final class Solo implements Communicator {
        static final Solo INSTANCE = new Solo();

        private Solo() {}

        @Override public int rank() { return 0; }

        @Override public int size() { return 1; }

        @Override public void allReduceSum(List<Tensor> tensors) {}

        @Override public void allReduceSum(double[] values) {}

        @Override public void broadcast(Tensor tensor, int root) {
            if (root != 0) throw new IllegalArgumentException("broadcast: root " + root + " is not in [0, 1)");
        }

        @Override public void barrier() {}

        @Override public void allGather(Tensor mine, Tensor all) { HostSums.copyOneBlock("allGather", mine, all); }

        @Override public void allToAll(Tensor send, Tensor recv) { HostSums.copyOneBlock("allToAll", send, recv); }

        @Override public void reduceScatter(Tensor send, Tensor recv) {
            HostSums.checkScatter("reduceScatter", send, recv, 1);
            java.lang.foreign.MemorySegment.copy(send.data(), 0, recv.data(), 0, recv.byteSize());
        }

        @Override public String describe() { return "one rank"; }

        @Override public void close() {}
    }
}
