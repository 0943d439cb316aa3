package dev.tenfold.engine.cuda;

import static dev.tenfold.engine.cuda.Native.INT;
import static dev.tenfold.engine.cuda.Native.PTR;
import static dev.tenfold.engine.cuda.Native.SIZE_T;

import dev.tenfold.engine.Check;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

/**
 * NCCL (libnccl.so.2) through FFM, for the data-parallel trainer: one communicator per rank (one rank
 * per GPU), all-reduce (sum) of gradients and broadcast of weights, on the rank's CUDA backend stream.
 * Every ncclResult_t is checked; errors name the call and the NCCL error (ncclGetErrorString). The
 * argument checks are plain Java ({@link #checkRanks}, {@link #checkCollective}) and unit-tested.
 *
 * <p>Setup, one thread per GPU: rank 0 calls {@link #uniqueId()} and hands the 128 bytes to every
 * rank (in-process, or through a file/socket between processes); each rank calls
 * {@link #initRank(CudaBackend, int, UniqueId, int)} concurrently (it blocks until all have joined),
 * or one thread initialises them all between {@link #groupStart()} and {@link #groupEnd()}.
 */
public final class Nccl {
    // ncclDataType_t
    public static final int INT8 = 0, UINT8 = 1, INT32 = 2, UINT32 = 3, INT64 = 4, UINT64 = 5, FLOAT16 = 6, FLOAT32 = 7,
            FLOAT64 = 8, BFLOAT16 = 9;
    // ncclRedOp_t
    public static final int SUM = 0;
    /** NCCL_UNIQUE_ID_BYTES. */
    public static final int UNIQUE_ID_BYTES = 128;
    /** typedef struct { char internal[128]; } ncclUniqueId — passed by value to ncclCommInitRank. */
    static final StructLayout UNIQUE_ID = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(UNIQUE_ID_BYTES, ValueLayout.JAVA_BYTE).withName("internal"));

    private static final String LIB = "NCCL";
    private static volatile Nccl instance;

    private final String loaded;
    private final MethodHandle ncclGetVersion, ncclGetUniqueId, ncclCommInitRank, ncclCommDestroy, ncclAllReduce, ncclBroadcast,
            ncclGroupStart, ncclGroupEnd, ncclAllGather, ncclReduceScatter, ncclSend, ncclRecv, ncclCommCount, ncclCommUserRank;
    private final MethodHandle ncclGetErrorString;
    private final MethodHandle ncclCommSplit; // NCCL 2.18 and newer; null before
    /** NCCL_VERSION_CODE of the first NCCL with ncclCommSplit (2.18.0). */
    static final int SPLIT_VERSION = 21800;

    private Nccl(SymbolLookup l, String loaded) {
        this.loaded = loaded;
        ncclGetVersion = Native.function(l, LIB, "ncclGetVersion", PTR);
        ncclGetUniqueId = Native.function(l, LIB, "ncclGetUniqueId", PTR);
        ncclCommInitRank = Native.function(l, LIB, "ncclCommInitRank", PTR, INT, UNIQUE_ID, INT);
        ncclCommDestroy = Native.function(l, LIB, "ncclCommDestroy", PTR);
        // comm, int* count / int* rank
        ncclCommCount = Native.function(l, LIB, "ncclCommCount", PTR, PTR);
        ncclCommUserRank = Native.function(l, LIB, "ncclCommUserRank", PTR, PTR);
        // comm, color, key, ncclComm_t* newcomm, ncclConfig_t* config (NULL: the parent's)
        ncclCommSplit = Native.optionalFunction(l, "ncclCommSplit", PTR, INT, INT, PTR, PTR).orElse(null);
        // sendbuff, recvbuff, count, datatype, op, comm, stream
        ncclAllReduce = Native.function(l, LIB, "ncclAllReduce", PTR, PTR, SIZE_T, INT, INT, PTR, PTR);
        // sendbuff, recvbuff, count, datatype, root, comm, stream
        ncclBroadcast = Native.function(l, LIB, "ncclBroadcast", PTR, PTR, SIZE_T, INT, INT, PTR, PTR);
        // sendbuff, recvbuff, sendcount, datatype, comm, stream
        ncclAllGather = Native.function(l, LIB, "ncclAllGather", PTR, PTR, SIZE_T, INT, PTR, PTR);
        // sendbuff, recvbuff, recvcount, datatype, op, comm, stream
        ncclReduceScatter = Native.function(l, LIB, "ncclReduceScatter", PTR, PTR, SIZE_T, INT, INT, PTR, PTR);
        // buff, count, datatype, peer, comm, stream
        ncclSend = Native.function(l, LIB, "ncclSend", PTR, SIZE_T, INT, INT, PTR, PTR);
        ncclRecv = Native.function(l, LIB, "ncclRecv", PTR, SIZE_T, INT, INT, PTR, PTR);
        ncclGroupStart = Native.function(l, LIB, "ncclGroupStart");
        ncclGroupEnd = Native.function(l, LIB, "ncclGroupEnd");
        ncclGetErrorString = Native.pointerFunction(l, "ncclGetErrorString", INT).orElse(null);
    }

    /** NCCL, loaded once; throws {@link CudaUnavailableException} saying where it looked. */
    public static Nccl get() {
        Nccl n = instance;
        if (n != null) return n;
        synchronized (Nccl.class) {
            if (instance == null) {
                List<String> tried = new ArrayList<>();
                Optional<NativeLibrary.Found> f = NativeLibrary.find(CudaProbe.NCCL, tried);
                if (f.isEmpty()) {
                    throw new CudaUnavailableException("NCCL not found (" + String.join("; ", tried) + "); set "
                            + NativeLibrary.SEARCH_PATH_ENV + " to the folder of libnccl.so.2 (on machines with PyTorch:"
                            + " .../site-packages/nvidia/nccl/lib)");
                }
                instance = new Nccl(f.get().lookup(), f.get().loaded());
            }
            return instance;
        }
    }

    public String loaded() { return loaded; }

    /** NCCL_VERSION_CODE of the loaded library. */
    public int version() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(INT);
            check(invoke(() -> (int) ncclGetVersion.invokeExact(out)), "ncclGetVersion");
            return out.get(INT, 0);
        }
    }

    /** "2.27.3" from NCCL_VERSION_CODE (X*1000+Y*100+Z up to 2.8, X*10000+Y*100+Z after). */
    public static String versionString(int code) {
        if (code >= 10_000) return code / 10_000 + "." + code % 10_000 / 100 + "." + code % 100;
        return code / 1_000 + "." + code % 1_000 / 100 + "." + code % 100;
    }

    /** A fresh id for a new communicator clique (call once, on rank 0). */
    public UniqueId uniqueId() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(UNIQUE_ID);
            check(invoke(() -> (int) ncclGetUniqueId.invokeExact(out)), "ncclGetUniqueId");
            return new UniqueId(out.toArray(ValueLayout.JAVA_BYTE));
        }
    }

    /**
     * Joins rank {@code rank} of {@code ranks} to the clique {@code id}, on {@code backend}'s GPU. Blocks until
     * every rank has joined (call from one thread per rank, or inside groupStart/groupEnd).
     */
    public Communicator initRank(CudaBackend backend, int ranks, UniqueId id, int rank) {
        checkRanks(ranks, rank);
        if (id == null) throw new IllegalArgumentException("ncclCommInitRank: the unique id is null");
        backend.makeCurrent();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(PTR);
            MemorySegment idValue = a.allocate(UNIQUE_ID);
            MemorySegment.copy(id.bytes(), 0, idValue, ValueLayout.JAVA_BYTE, 0, UNIQUE_ID_BYTES);
            check(invoke(() -> (int) ncclCommInitRank.invokeExact(out, ranks, idValue, rank)),
                    "ncclCommInitRank(rank " + rank + " of " + ranks + ")");
            CudaBackend.forgetCurrentContext(); // NCCL may have switched this thread's device
            return new Communicator(backend, out.get(PTR, 0), ranks, rank);
        }
    }

    /**
     * Refuses an NCCL without ncclCommSplit in one line naming the version needed and the one loaded.
     * Pure, for the test: {@code hasSplit} says whether the library exports the symbol.
     */
    static void checkSplit(boolean hasSplit, int version, String loaded) {
        if (hasSplit && version >= SPLIT_VERSION) return;
        throw new CudaUnavailableException("splitting an NCCL communicator into groups (ncclCommSplit) needs NCCL "
                + versionString(SPLIT_VERSION) + " or newer; " + loaded + " is NCCL " + versionString(version)
                + " (set " + NativeLibrary.SEARCH_PATH_ENV + " to the folder of a newer libnccl.so.2)");
    }

    public void groupStart() { check(invoke(() -> (int) ncclGroupStart.invokeExact()), "ncclGroupStart"); }

    public void groupEnd() { check(invoke(() -> (int) ncclGroupEnd.invokeExact()), "ncclGroupEnd"); }

    /** The 128 opaque bytes of an ncclUniqueId; {@link #fromBytes} checks the length. */
    public record UniqueId(byte[] bytes) {
        public UniqueId {
            if (bytes == null || bytes.length != UNIQUE_ID_BYTES) {
                throw new IllegalArgumentException("an NCCL unique id has " + UNIQUE_ID_BYTES + " bytes, got "
                        + (bytes == null ? "null" : bytes.length));
            }
            bytes = bytes.clone();
        }

        @Override public byte[] bytes() { return bytes.clone(); }

        public static UniqueId fromBytes(byte[] bytes) { return new UniqueId(bytes); }

        /** Hex, for passing on a command line or in a file. */
        public String toHex() { return HexFormat.of().formatHex(bytes); }

        public static UniqueId fromHex(String hex) {
            try {
                return new UniqueId(HexFormat.of().parseHex(hex.trim()));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("not an NCCL unique id (" + UNIQUE_ID_BYTES * 2 + " hex digits): "
                        + e.getMessage(), e);
            }
        }

        @Override public boolean equals(Object o) { return o instanceof UniqueId u && Arrays.equals(bytes, u.bytes); }

        @Override public int hashCode() { return Arrays.hashCode(bytes); }

        @Override public String toString() { return "UniqueId[" + toHex().substring(0, 16) + "...]"; }
    }

    /** One rank's communicator: collectives are queued on its backend's stream. */
    public final class Communicator implements AutoCloseable {
        private final CudaBackend backend;
        private final MemorySegment comm;
        private final int ranks, rank;
        private boolean closed;

        private Communicator(CudaBackend backend, MemorySegment comm, int ranks, int rank) {
            this.backend = backend;
            this.comm = comm;
            this.ranks = ranks;
            this.rank = rank;
        }

        public int ranks() { return ranks; }

        public int rank() { return rank; }

        /** recv = the sum over ranks of send (F32; recv may be send: in place). Queued on the backend's stream. */
        public void allReduceSum(Tensor send, Tensor recv) {
            int type = checkCollective("allReduceSum", send, recv, backend.device(), true);
            long count = send.numel();
            if (count == 0) return;
            backend.makeCurrent();
            MemorySegment s = Native.pointer(send.data().address()), r = Native.pointer(recv.data().address());
            MemorySegment stream = backend.stream();
            check(invoke(() -> (int) ncclAllReduce.invokeExact(s, r, count, type, SUM, comm, stream)),
                    "ncclAllReduce(" + count + " elements, rank " + rank + ")");
        }

        /** recv on every rank = send of rank {@code root} (any dtype NCCL knows; in place when recv is send). */
        public void broadcast(Tensor send, Tensor recv, int root) {
            int type = checkCollective("broadcast", send, recv, backend.device(), false);
            checkRoot(root, ranks);
            long count = send.numel();
            if (count == 0) return;
            backend.makeCurrent();
            MemorySegment s = Native.pointer(send.data().address()), r = Native.pointer(recv.data().address());
            MemorySegment stream = backend.stream();
            check(invoke(() -> (int) ncclBroadcast.invokeExact(s, r, count, type, root, comm, stream)),
                    "ncclBroadcast(" + count + " elements, root " + root + ", rank " + rank + ")");
        }

        /** recv = every rank's send side by side, rank 0's first (bytes: recv holds ranks x send's bytes). Queued on the stream. */
        public void allGather(Tensor send, Tensor recv) {
            checkMove("allGather", send, recv, backend.device(), ranks, true);
            long count = send.byteSize();
            if (count == 0) return;
            backend.makeCurrent();
            MemorySegment s = Native.pointer(send.data().address()), r = Native.pointer(recv.data().address());
            MemorySegment stream = backend.stream();
            check(invoke(() -> (int) ncclAllGather.invokeExact(s, r, count, UINT8, comm, stream)),
                    "ncclAllGather(" + count + " bytes, rank " + rank + ")");
        }

        /**
         * send cut into ranks equal blocks, block j for rank j; recv (one block) = the sum over the ranks of
         * their block for this rank (F32). Queued on the stream.
         */
        public void reduceScatterSum(Tensor send, Tensor recv) {
            Check.notNull("reduceScatter", "send", send);
            Check.notNull("reduceScatter", "recv", recv);
            Check.dtype("reduceScatter", "send", send, DType.F32);
            if (recv.dtype() != DType.F32 || send.numel() != recv.numel() * ranks) {
                throw Check.fail("reduceScatter", "recv must be F32 and hold send's elements / " + ranks, send, recv);
            }
            for (Tensor t : new Tensor[] {send, recv}) {
                if (!t.device().equals(backend.device())) throw Check.fail("reduceScatter", "buffers must be on " + backend.device(), t);
            }
            long count = recv.numel();
            if (count == 0) return;
            backend.makeCurrent();
            MemorySegment s = Native.pointer(send.data().address()), r = Native.pointer(recv.data().address());
            MemorySegment stream = backend.stream();
            check(invoke(() -> (int) ncclReduceScatter.invokeExact(s, r, count, FLOAT32, SUM, comm, stream)),
                    "ncclReduceScatter(" + count + " elements per rank, rank " + rank + ")");
        }

        /**
         * send cut into ranks equal blocks, block j to rank j; recv's block i from rank i: one ncclSend and
         * one ncclRecv per peer inside one NCCL group (NCCL has no all-to-all call). Queued on the stream.
         */
        public void allToAll(Tensor send, Tensor recv) {
            checkMove("allToAll", send, recv, backend.device(), ranks, false);
            long block = send.byteSize() / ranks;
            if (block == 0) return;
            backend.makeCurrent();
            long s = send.data().address(), r = recv.data().address();
            MemorySegment stream = backend.stream();
            groupStart();
            try {
                for (int peer = 0; peer < ranks; peer++) {
                    int p = peer;
                    MemorySegment out = Native.pointer(s + p * block), in = Native.pointer(r + p * block);
                    check(invoke(() -> (int) ncclSend.invokeExact(out, block, UINT8, p, comm, stream)), "ncclSend(" + block + " bytes to " + p + ")");
                    check(invoke(() -> (int) ncclRecv.invokeExact(in, block, UINT8, p, comm, stream)), "ncclRecv(" + block + " bytes from " + p + ")");
                }
            } finally {
                groupEnd();
            }
        }

        /**
         * ncclCommSplit: the ranks that pass the same {@code color} (>= 0) form a new communicator on the same
         * GPUs, ranked by {@code key} (ties by their rank here). A collective: every rank of this communicator
         * calls it, and it blocks until they have. The new communicator takes this one's configuration; closing
         * it leaves this one open. Needs NCCL 2.18 or newer (refused in one line before).
         */
        public Communicator split(int color, int key) {
            if (color < 0) throw new IllegalArgumentException("ncclCommSplit: color must be >= 0, got " + color);
            checkSplit(ncclCommSplit != null, version(), loaded);
            backend.makeCurrent();
            try (Arena a = Arena.ofConfined()) {
                MemorySegment out = a.allocate(PTR), count = a.allocate(INT), me = a.allocate(INT);
                check(invoke(() -> (int) ncclCommSplit.invokeExact(comm, color, key, out, MemorySegment.NULL)),
                        "ncclCommSplit(color " + color + ", key " + key + ", rank " + rank + ")");
                CudaBackend.forgetCurrentContext(); // NCCL may have switched this thread's device
                MemorySegment newComm = out.get(PTR, 0);
                check(invoke(() -> (int) ncclCommCount.invokeExact(newComm, count)), "ncclCommCount");
                check(invoke(() -> (int) ncclCommUserRank.invokeExact(newComm, me)), "ncclCommUserRank");
                return new Communicator(backend, newComm, count.get(INT, 0), me.get(INT, 0));
            }
        }

        @Override
        public void close() {
            if (closed) return;
            closed = true;
            check(invoke(() -> (int) ncclCommDestroy.invokeExact(comm)), "ncclCommDestroy");
        }
    }

    // ------------------------------------------------------------------ argument checks (pure)

    /** rank in [0, ranks), ranks >= 1. */
    static void checkRanks(int ranks, int rank) {
        if (ranks < 1) throw new IllegalArgumentException("ncclCommInitRank: ranks must be >= 1, got " + ranks);
        if (rank < 0 || rank >= ranks) {
            throw new IllegalArgumentException("ncclCommInitRank: rank " + rank + " is not in [0, " + ranks + ")");
        }
    }

    static void checkRoot(int root, int ranks) {
        if (root < 0 || root >= ranks) throw new IllegalArgumentException("broadcast: root " + root + " is not in [0, " + ranks + ")");
    }

    /** An all-gather's (recv = ranks x send) or all-to-all's (recv = send, cut in ranks blocks) buffers, in bytes, on device. */
    static void checkMove(String op, Tensor send, Tensor recv, dev.tenfold.engine.Device device, int ranks, boolean gather) {
        Check.notNull(op, "send", send);
        Check.notNull(op, "recv", recv);
        for (Tensor t : new Tensor[] {send, recv}) {
            if (!t.device().equals(device)) throw Check.fail(op, "buffers must be on " + device, t);
        }
        long expect = gather ? send.byteSize() * ranks : send.byteSize();
        if (send.dtype() != recv.dtype() || recv.byteSize() != expect) {
            throw Check.fail(op, "recv must be of send's dtype and hold " + (gather ? ranks + " x " : "") + "send's bytes", send, recv);
        }
        if (!gather && send.numel() % ranks != 0) throw Check.fail(op, "send does not cut into " + ranks + " equal blocks", send);
    }

    /**
     * Checks a collective's buffers: both on {@code device}, same dtype and element count; F32 only for a
     * sum. Returns the ncclDataType_t.
     */
    static int checkCollective(String op, Tensor send, Tensor recv, dev.tenfold.engine.Device device, boolean sum) {
        Check.notNull(op, "send", send);
        Check.notNull(op, "recv", recv);
        if (sum) {
            Check.dtype(op, "send", send, DType.F32);
        }
        if (send.dtype() != recv.dtype() || send.numel() != recv.numel()) {
            throw Check.fail(op, "send and recv need the same dtype and element count", send, recv);
        }
        for (Tensor t : new Tensor[] {send, recv}) {
            if (!t.device().equals(device)) throw Check.fail(op, "buffers must be on " + device, t);
        }
        return dataType(op, send);
    }

    /** The ncclDataType_t of a tensor's dtype. */
    static int dataType(String op, Tensor t) {
        return switch (t.dtype()) {
            case I8 -> INT8;
            case U8, BOOL -> UINT8;
            case I32 -> INT32;
            case U32 -> UINT32;
            case I64 -> INT64;
            case U64 -> UINT64;
            case F16 -> FLOAT16;
            case F32 -> FLOAT32;
            case F64 -> FLOAT64;
            case BF16 -> BFLOAT16;
            default -> throw Check.fail(op, "NCCL cannot move " + t.dtype(), t);
        };
    }

    // ------------------------------------------------------------------ status

    private void check(int status, String call) {
        if (status == CudaStatus.NCCL_SUCCESS) return;
        String name = CudaStatus.ncclName(status), detail = null;
        if (ncclGetErrorString != null) {
            try {
                detail = Native.cString((MemorySegment) ncclGetErrorString.invokeExact(status));
            } catch (Throwable t) {
                // the table's name alone
            }
        }
        throw new CudaException(call, CudaException.Library.NCCL, status, name, detail);
    }

    @FunctionalInterface
    private interface IntCall { int call() throws Throwable; }

    private static int invoke(IntCall c) {
        try {
            return c.call();
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }
}
