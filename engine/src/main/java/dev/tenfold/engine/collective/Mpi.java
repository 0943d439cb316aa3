package dev.tenfold.engine.collective;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Open MPI's C library (libmpi.so.40: Debian's libopenmpi3, Open MPI 4 and 5) through FFM: the few
 * calls the MPI communicator makes. Open MPI's handles (MPI_Comm, MPI_Datatype, MPI_Op) are
 * pointers to its global objects: MPI_COMM_WORLD is {@code &ompi_mpi_comm_world}, MPI_DOUBLE
 * {@code &ompi_mpi_double}; the addresses of those symbols are the handles. (MPICH's integer
 * handles differ: this binding is for Open MPI, as its library name says.)
 *
 * <p>The library is opened with RTLD_GLOBAL: Open MPI loads its components as plugins that look up
 * libmpi's symbols globally, which a plain (RTLD_LOCAL) library lookup would hide from them.
 */
final class Mpi {
    static final String LIBRARY = "libmpi.so.40";
    static final int THREAD_SERIALIZED = 2;
    static final int SUCCESS = 0;

    private static final ValueLayout PTR = ValueLayout.ADDRESS, INT = ValueLayout.JAVA_INT;
    private static final int RTLD_NOW = 0x2, RTLD_GLOBAL = 0x100;
    private static volatile Mpi instance;

    final MemorySegment commWorld, typeDouble, typeFloat, typeByte;
    private final MethodHandle initialized, initThread, finalized, finalizeMpi, commRank, commSize, gather, bcast, barrier, errorString,
            allgather, alltoall, commSplit, commFree;

    private Mpi(SymbolLookup l) {
        commWorld = symbol(l, "ompi_mpi_comm_world");
        typeDouble = symbol(l, "ompi_mpi_double");
        typeFloat = symbol(l, "ompi_mpi_float");
        typeByte = symbol(l, "ompi_mpi_byte");
        initialized = function(l, "MPI_Initialized", PTR);
        initThread = function(l, "MPI_Init_thread", PTR, PTR, INT, PTR);
        finalized = function(l, "MPI_Finalized", PTR);
        finalizeMpi = function(l, "MPI_Finalize");
        commRank = function(l, "MPI_Comm_rank", PTR, PTR);
        commSize = function(l, "MPI_Comm_size", PTR, PTR);
        // sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, root, comm
        gather = function(l, "MPI_Gather", PTR, INT, PTR, PTR, INT, PTR, INT, PTR);
        // buffer, count, datatype, root, comm
        bcast = function(l, "MPI_Bcast", PTR, INT, PTR, INT, PTR);
        barrier = function(l, "MPI_Barrier", PTR);
        // sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm
        allgather = function(l, "MPI_Allgather", PTR, INT, PTR, PTR, INT, PTR, PTR);
        alltoall = function(l, "MPI_Alltoall", PTR, INT, PTR, PTR, INT, PTR, PTR);
        // comm, color, key, newcomm (out)
        commSplit = function(l, "MPI_Comm_split", PTR, INT, INT, PTR);
        commFree = function(l, "MPI_Comm_free", PTR);
        errorString = function(l, "MPI_Error_string", INT, PTR, PTR);
    }

    /** The library, loaded once; a clear {@link CollectiveException} naming what is missing otherwise. */
    static Mpi get() {
        Mpi m = instance;
        if (m != null) return m;
        synchronized (Mpi.class) {
            if (instance == null) instance = new Mpi(open());
            return instance;
        }
    }

    private static SymbolLookup open() {
        Linker linker = Linker.nativeLinker();
        Optional<MemorySegment> dlopen = linker.defaultLookup().find("dlopen"), dlerror = linker.defaultLookup().find("dlerror");
        List<String> errors = new ArrayList<>();
        if (dlopen.isPresent()) {
            MethodHandle open = linker.downcallHandle(dlopen.get(), FunctionDescriptor.of(PTR, PTR, INT));
            try (Arena a = Arena.ofConfined()) {
                MemorySegment handle = (MemorySegment) open.invokeExact(a.allocateFrom(LIBRARY), RTLD_NOW | RTLD_GLOBAL);
                if (handle.address() == 0 && dlerror.isPresent()) {
                    MethodHandle err = linker.downcallHandle(dlerror.get(), FunctionDescriptor.of(PTR));
                    MemorySegment msg = (MemorySegment) err.invokeExact();
                    errors.add(msg.address() == 0 ? "dlopen failed" : msg.reinterpret(4096).getString(0));
                }
            } catch (Throwable t) {
                errors.add("dlopen: " + t);
            }
        }
        try {
            return SymbolLookup.libraryLookup(LIBRARY, Arena.global());
        } catch (IllegalArgumentException e) {
            if (errors.isEmpty()) errors.add(e.getMessage());
            throw new CollectiveException("Open MPI's C library (" + LIBRARY + ") could not be loaded (" + String.join("; ", errors)
                    + "): install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin) or add the folder of " + LIBRARY
                    + " to LD_LIBRARY_PATH");
        }
    }

    private static MemorySegment symbol(SymbolLookup l, String name) {
        return l.find(name).orElseThrow(() -> new CollectiveException(LIBRARY + " has no symbol " + name
                + ": the MPI communicator needs Open MPI (4 or 5), whose handles are its global objects"));
    }

    private static MethodHandle function(SymbolLookup l, String name, MemoryLayout... args) {
        MemorySegment f = symbol(l, name);
        return Linker.nativeLinker().downcallHandle(f, FunctionDescriptor.of(INT, args));
    }

    // ------------------------------------------------------------------ calls (each checked)

    boolean isInitialized() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment flag = a.allocate(INT);
            check((int) initialized.invokeExact(flag), "MPI_Initialized");
            return flag.get(ValueLayout.JAVA_INT, 0) != 0;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    boolean isFinalized() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment flag = a.allocate(INT);
            check((int) finalized.invokeExact(flag), "MPI_Finalized");
            return flag.get(ValueLayout.JAVA_INT, 0) != 0;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** MPI_Init_thread(NULL, NULL, SERIALIZED): returns the thread level provided. */
    int initThread() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment provided = a.allocate(INT);
            check((int) initThread.invokeExact(MemorySegment.NULL, MemorySegment.NULL, THREAD_SERIALIZED, provided), "MPI_Init_thread");
            return provided.get(ValueLayout.JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void finalizeMpi() {
        try {
            check((int) finalizeMpi.invokeExact(), "MPI_Finalize");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    int rank(MemorySegment comm) { return intOut(commRank, comm, "MPI_Comm_rank"); }

    int size(MemorySegment comm) { return intOut(commSize, comm, "MPI_Comm_size"); }

    private int intOut(MethodHandle h, MemorySegment comm, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(INT);
            check((int) h.invokeExact(comm, out), name);
            return out.get(ValueLayout.JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** MPI_Gather on {@code comm}: {@code count} elements of every rank into root's {@code recv}, in rank order. */
    void gather(MemorySegment comm, MemorySegment send, int count, MemorySegment type, MemorySegment recv, int root) {
        try {
            check((int) gather.invokeExact(send, count, type, recv, count, type, root, comm), "MPI_Gather(" + count + " elements)");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void bcast(MemorySegment comm, MemorySegment buffer, int count, MemorySegment type, int root) {
        try {
            check((int) bcast.invokeExact(buffer, count, type, root, comm), "MPI_Bcast(" + count + " elements)");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** MPI_Allgather of {@code count} bytes per rank on {@code comm}. */
    void allgatherBytes(MemorySegment comm, MemorySegment send, int count, MemorySegment recv) {
        try {
            check((int) allgather.invokeExact(send, count, typeByte, recv, count, typeByte, comm), "MPI_Allgather(" + count + " bytes)");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** MPI_Alltoall of {@code count} bytes per pair of ranks on {@code comm}. */
    void alltoallBytes(MemorySegment comm, MemorySegment send, int count, MemorySegment recv) {
        try {
            check((int) alltoall.invokeExact(send, count, typeByte, recv, count, typeByte, comm), "MPI_Alltoall(" + count + " bytes)");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void barrier(MemorySegment comm) {
        try {
            check((int) barrier.invokeExact(comm), "MPI_Barrier");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** MPI_Comm_split of {@code comm}: the ranks of one {@code color}, ordered by {@code key}; returns the new handle. */
    MemorySegment split(MemorySegment comm, int color, int key) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(PTR);
            check((int) commSplit.invokeExact(comm, color, key, out), "MPI_Comm_split(color " + color + ")");
            return out.get(ValueLayout.ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** MPI_Comm_free of a communicator made by {@link #split}. */
    void free(MemorySegment comm) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment handle = a.allocate(PTR);
            handle.set(ValueLayout.ADDRESS, 0, comm);
            check((int) commFree.invokeExact(handle), "MPI_Comm_free");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private void check(int status, String call) throws Throwable {
        if (status == SUCCESS) return;
        String detail = "error " + status;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment text = a.allocate(1024), len = a.allocate(INT);
            if ((int) errorString.invokeExact(status, text, len) == SUCCESS) detail = text.getString(0);
        }
        throw new CollectiveException(call + " failed: " + detail);
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new CollectiveException("MPI call failed: " + t, t);
    }
}
