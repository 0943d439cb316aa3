package dev.tenfold.engine.collective;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cuda.CudaBackend;
import dev.tenfold.engine.cuda.Nccl;
import java.time.Duration;
import java.util.List;

/**
 * One rank per GPU over NCCL: sums and broadcasts of device tensors on the rank's CUDA backend
 * stream (the thread that owns the backend makes every call). NCCL chooses the order of a sum (its
 * rings and trees), so a multi-GPU run is not bit-identical to a one-GPU run: the sums agree to
 * f32 rounding. Each collective waits for the stream before it returns, under the {@link Watchdog}:
 * a rank whose peer died ends its process after the timeout instead of waiting in NCCL for ever.
 *
 * <p>Setup: rank 0 makes the id ({@link #newUniqueId}), every rank receives its 128 bytes (the
 * launcher's rendezvous) and calls {@link #join}; join blocks until all ranks have joined.
 */
public final class NcclCommunicator implements Communicator {
    private final CudaBackend backend;
    private final Nccl.Communicator comm;
    private final Watchdog watchdog;

    private NcclCommunicator(CudaBackend backend, Nccl.Communicator comm, Watchdog watchdog) {
        this.backend = backend;
        this.comm = comm;
        this.watchdog = watchdog;
    }

    /** A fresh NCCL unique id (128 bytes), made once by rank 0 and handed to every rank. */
    public static byte[] newUniqueId() {
        return Nccl.get().uniqueId().bytes();
    }

    /**
     * Joins rank {@code rank} of {@code size} to the clique of {@code uniqueId}, on {@code backend}'s GPU
     * (a CUDA backend). Collectives (and this join) running past {@code timeout} end the process.
     */
    public static NcclCommunicator join(Backend backend, int size, int rank, byte[] uniqueId, Duration timeout) {
        if (!(backend instanceof CudaBackend cuda)) {
            throw new IllegalArgumentException("the NCCL communicator needs a CUDA backend, got " + backend.name());
        }
        Watchdog w = new Watchdog("rank " + rank + " of " + size + " (" + cuda.device() + ")", timeout);
        w.begin("ncclCommInitRank");
        try {
            Nccl nccl = Nccl.get();
            return new NcclCommunicator(cuda, nccl.initRank(cuda, size, Nccl.UniqueId.fromBytes(uniqueId), rank), w);
        } finally {
            w.end();
        }
    }

    /**
     * The world's ranks in groups of {@code groupSize} consecutive ranks (ncclCommSplit, NCCL 2.18 or newer):
     * this rank's group on the same GPU, ranked as in the world. Context parallelism's group, as
     * {@link MpiCommunicator#split} on CPU ranks. Every rank must call it (a collective); closing the group
     * destroys it and leaves the world open.
     */
    public NcclCommunicator split(int groupSize) {
        int size = size(), rank = rank();
        if (groupSize < 1 || size % groupSize != 0) {
            throw new IllegalArgumentException("split: groups of " + groupSize + " ranks do not divide the " + size + " ranks");
        }
        watchdog.begin("ncclCommSplit");
        try {
            Nccl.Communicator group = comm.split(rank / groupSize, rank);
            return new NcclCommunicator(backend, group, new Watchdog("group rank " + group.rank() + " of " + group.ranks()
                    + " (" + backend.device() + ")", watchdog.timeout()));
        } finally {
            watchdog.end();
        }
    }

    @Override public int rank() { return comm.rank(); }

    @Override public int size() { return comm.ranks(); }

    /** Its backend's GPU: the collectives take tensors there only. */
    @Override public dev.tenfold.engine.Device device() { return backend.device(); }

    /** Device F32 tensors, summed in place (one NCCL group). */
    @Override
    public void allReduceSum(List<Tensor> tensors) {
        watchdog.begin("allReduceSum");
        try {
            Nccl nccl = Nccl.get();
            nccl.groupStart();
            try {
                for (Tensor t : tensors) comm.allReduceSum(t, t);
            } finally {
                nccl.groupEnd();
            }
            backend.synchronize();
        } finally {
            watchdog.end();
        }
    }

    /**
     * Summed as two F32 parts per value (the value rounded to f32 and what that rounding left), NCCL
     * summing F32 only here: about 48 bits of the sum, enough for the loss that uses it.
     */
    @Override
    public void allReduceSum(double[] values) {
        if (values.length == 0) return;
        float[] parts = new float[2 * values.length];
        for (int i = 0; i < values.length; i++) {
            parts[2 * i] = (float) values[i];
            parts[2 * i + 1] = (float) (values[i] - parts[2 * i]);
        }
        try (Tensor host = Tensor.of(parts); Tensor dev = backend.toDevice(host)) {
            allReduceSum(List.of(dev));
            try (Tensor back = backend.toHost(dev)) {
                for (int i = 0; i < values.length; i++) values[i] = (double) back.getFloat(2 * i) + back.getFloat(2 * i + 1);
            }
        }
    }

    @Override
    public void broadcast(Tensor tensor, int root) {
        watchdog.begin("broadcast");
        try {
            comm.broadcast(tensor, tensor, root);
            backend.synchronize();
        } finally {
            watchdog.end();
        }
    }

    @Override
    public void barrier() {
        try (Tensor one = backend.allocate(DType.F32, 1)) {
            allReduceSum(List.of(one));
        }
    }

    /** Device tensors (any dtype: bytes). */
    @Override
    public void allGather(Tensor mine, Tensor all) {
        watchdog.begin("allGather");
        try {
            comm.allGather(mine, all);
            backend.synchronize();
        } finally {
            watchdog.end();
        }
    }

    /** Device tensors (any dtype: bytes), one ncclSend and ncclRecv per peer in one group. */
    @Override
    public void allToAll(Tensor send, Tensor recv) {
        watchdog.begin("allToAll");
        try {
            comm.allToAll(send, recv);
            backend.synchronize();
        } finally {
            watchdog.end();
        }
    }

    /** Device F32 tensors: ncclReduceScatter (NCCL's order of the sum). */
    @Override
    public void reduceScatter(Tensor send, Tensor recv) {
        watchdog.begin("reduceScatter");
        try {
            comm.reduceScatterSum(send, recv);
            backend.synchronize();
        } finally {
            watchdog.end();
        }
    }

    @Override public String describe() { return size() + " NCCL ranks (GPU), sums in NCCL's order"; }

    @Override public void close() { comm.close(); }
}
