package dev.tenfold.engine.collective;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.List;

/**
 * The ranks of MPI_COMM_WORLD (processes started by mpirun, or srun with Open MPI's PMIx), summing
 * host tensors through Open MPI's C library ({@link Mpi}). A sum is computed in rank order, the
 * same on every run: MPI_Gather to rank 0, the ranks' values added 0, 1, 2, ... there, MPI_Bcast of
 * the result (MPI_Allreduce would let the library choose the order). One process has one MPI
 * world: {@link #world} initialises it on first use and {@link #close} finalises it.
 */
public final class MpiCommunicator implements Communicator {
    private static final long CHUNK_BYTES = 32L << 20; // per rank and per gather: bounds rank 0's scratch
    private static MpiCommunicator world;

    private final Mpi mpi;
    private final MemorySegment comm; // MPI_COMM_WORLD, or a group split from it
    private final boolean isWorld;
    private final Duration timeout;
    private final int rank, size;
    private final Watchdog watchdog;
    private final Arena arena = Arena.ofShared();
    private MemorySegment scratch; // rank 0: the gathered chunks
    private boolean closed;

    private MpiCommunicator(Mpi mpi, MemorySegment comm, boolean world, Duration timeout) {
        this.mpi = mpi;
        this.comm = comm;
        this.isWorld = world;
        this.timeout = timeout;
        this.rank = mpi.rank(comm);
        this.size = mpi.size(comm);
        this.watchdog = new Watchdog((world ? "" : "group ") + "rank " + rank + " of " + size, timeout);
    }

    /**
     * The world's ranks in groups of {@code groupSize} consecutive ranks (MPI_Comm_split): this rank's
     * group, ranked as in the world. Context parallelism's group. Every rank must call it (a collective);
     * closing the group frees it and leaves the world open.
     */
    public synchronized MpiCommunicator split(int groupSize) {
        if (groupSize < 1 || size % groupSize != 0) {
            throw new IllegalArgumentException("split: groups of " + groupSize + " ranks do not divide the " + size + " ranks");
        }
        watchdog.begin("MPI_Comm_split");
        try {
            return new MpiCommunicator(mpi, mpi.split(comm, rank / groupSize, rank), false, timeout);
        } finally {
            watchdog.end();
        }
    }

    /**
     * This process's MPI world, initialised on the first call; a collective that takes longer than
     * {@code timeout} ends the process ({@link Watchdog}).
     *
     * @throws CollectiveException when Open MPI's library is missing or MPI was already finalised
     */
    public static synchronized MpiCommunicator world(Duration timeout) {
        if (world != null && !world.closed) return world;
        Mpi mpi = Mpi.get();
        if (mpi.isFinalized()) throw new CollectiveException("MPI was finalised in this process: its world cannot start again");
        if (!mpi.isInitialized()) {
            int provided = mpi.initThread();
            if (provided < Mpi.THREAD_SERIALIZED) {
                throw new CollectiveException("MPI provides thread level " + provided + "; tenfold needs MPI_THREAD_SERIALIZED ("
                        + Mpi.THREAD_SERIALIZED + ")");
            }
        }
        world = new MpiCommunicator(mpi, mpi.commWorld, true, timeout);
        return world;
    }

    /**
     * The real path of the first {@code mpirun} on the PATH, or null. The real file, because Open MPI takes
     * its install prefix from the path it was started by, and on a merged-/usr system /bin/mpirun gives the
     * prefix "/", which it refuses ("a prefix ... that only contained slashes").
     */
    public static String mpirun() {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(java.io.File.pathSeparator)) {
            java.nio.file.Path p = java.nio.file.Path.of(dir.isEmpty() ? "." : dir, "mpirun");
            if (java.nio.file.Files.isExecutable(p)) {
                try {
                    return p.toRealPath().toString();
                } catch (java.io.IOException e) {
                    return p.toString();
                }
            }
        }
        return null;
    }

    /** Why MPI cannot be used here (its library is missing), or null when it can be loaded. */
    public static String unavailableReason() {
        try {
            Mpi.get();
            return null;
        } catch (CollectiveException e) {
            return e.getMessage();
        }
    }

    @Override public int rank() { return rank; }

    @Override public int size() { return size; }

    @Override
    public synchronized void allReduceSum(List<Tensor> tensors) {
        HostSums.checkSum("allReduceSum", tensors);
        watchdog.begin("allReduceSum");
        try {
            for (Tensor t : tensors) sum(t.data(), t.dtype());
        } finally {
            watchdog.end();
        }
    }

    @Override
    public synchronized void allReduceSum(double[] values) {
        watchdog.begin("allReduceSum");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(8L * Math.max(1, values.length), 8).asSlice(0, 8L * values.length);
            MemorySegment.copy(values, 0, buf, Tensor.F64, 0, values.length);
            sum(buf, DType.F64);
            MemorySegment.copy(buf, Tensor.F64, 0, values, 0, values.length);
        } finally {
            watchdog.end();
        }
    }

    /** data = the sum over the ranks, chunk by chunk: gather to rank 0, add in rank order there, broadcast. */
    private void sum(MemorySegment data, DType dtype) {
        long elem = dtype.byteSize(1), n = data.byteSize() / elem, chunk = CHUNK_BYTES / elem;
        MemorySegment type = dtype == DType.F64 ? mpi.typeDouble : mpi.typeFloat;
        for (long start = 0; start < n; start += chunk) {
            int count = (int) Math.min(chunk, n - start);
            MemorySegment part = data.asSlice(start * elem, count * elem);
            MemorySegment gathered = rank == 0 ? scratch(size * part.byteSize()) : MemorySegment.NULL;
            mpi.gather(comm, part, count, type, gathered, 0);
            if (rank == 0) {
                MemorySegment.copy(gathered, 0, part, 0, part.byteSize()); // rank 0's own values first
                for (int r = 1; r < size; r++) HostSums.add(part, gathered.asSlice(r * part.byteSize(), part.byteSize()), dtype, count);
            }
            mpi.bcast(comm, part, count, type, 0);
        }
    }

    private MemorySegment scratch(long bytes) {
        if (scratch == null || scratch.byteSize() < bytes) scratch = arena.allocate(bytes, 8);
        return scratch.asSlice(0, bytes);
    }

    @Override
    public synchronized void broadcast(Tensor tensor, int root) {
        HostSums.checkRoot("broadcast", root, size);
        if (!tensor.device().isCpu()) throw new IllegalArgumentException("broadcast: host tensors only, got " + tensor.describe());
        watchdog.begin("broadcast");
        try {
            MemorySegment data = tensor.data();
            for (long start = 0; start < data.byteSize(); start += 1L << 30) {
                int count = (int) Math.min(1L << 30, data.byteSize() - start);
                mpi.bcast(comm, data.asSlice(start, count), count, mpi.typeByte, root);
            }
        } finally {
            watchdog.end();
        }
    }

    @Override
    public synchronized void barrier() {
        watchdog.begin("barrier");
        try {
            mpi.barrier(comm);
        } finally {
            watchdog.end();
        }
    }

    @Override
    public synchronized void allGather(Tensor mine, Tensor all) {
        long block = HostSums.checkMove("allGather", mine, all, size, true);
        watchdog.begin("allGather");
        try {
            mpi.allgatherBytes(comm, mine.data(), blockCount("allGather", block), all.data());
        } finally {
            watchdog.end();
        }
    }

    @Override
    public synchronized void allToAll(Tensor send, Tensor recv) {
        long block = HostSums.checkMove("allToAll", send, recv, size, false);
        watchdog.begin("allToAll");
        try {
            mpi.alltoallBytes(comm, send.data(), blockCount("allToAll", block), recv.data());
        } finally {
            watchdog.end();
        }
    }

    /**
     * recv = the sum of the ranks' blocks for this rank, in rank order: an all-to-all brings every rank's block
     * here (MPI_Reduce_scatter_block would let the library choose the order), then they are added 0, 1, 2, ...
     */
    @Override
    public synchronized void reduceScatter(Tensor send, Tensor recv) {
        long block = HostSums.checkScatter("reduceScatter", send, recv, size);
        watchdog.begin("reduceScatter");
        try {
            MemorySegment blocks = scratch(send.byteSize());
            mpi.alltoallBytes(comm, send.data(), blockCount("reduceScatter", block), blocks);
            MemorySegment out = recv.data();
            MemorySegment.copy(blocks, 0, out, 0, block);
            for (int r = 1; r < size; r++) HostSums.add(out, blocks.asSlice(r * block, block), recv.dtype(), recv.numel());
        } finally {
            watchdog.end();
        }
    }

    /** MPI counts are ints: one block (a rank's share) of at most 2^31 - 1 bytes. */
    private static int blockCount(String op, long bytes) {
        if (bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(op + ": " + bytes + " bytes per rank; MPI moves at most " + Integer.MAX_VALUE
                    + " per call (use more ranks or a shorter sequence)");
        }
        return (int) bytes;
    }

    @Override public String describe() { return size + " MPI ranks (Open MPI), sums in rank order on rank 0"; }

    /** The world: finalises MPI (once per process; every rank must close). A group: frees it. */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        if (!isWorld) {
            if (!mpi.isFinalized()) mpi.free(comm);
        } else if (!mpi.isFinalized()) mpi.finalizeMpi();
        arena.close();
    }
}
