package dev.tenfold.engine.cuda;

import static dev.tenfold.engine.cuda.Native.INT;
import static dev.tenfold.engine.cuda.Native.LONG_LONG;
import static dev.tenfold.engine.cuda.Native.PTR;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * cuBLAS (libcublas.so.13, then .12) through FFM: a handle bound to one device's primary context and
 * one stream, and the two products the CUDA backend needs, {@code cublasGemmEx} and
 * {@code cublasGemmStridedBatchedEx}, with f32 accumulation (CUBLAS_COMPUTE_32F) and f32 output.
 * Row-major operands are mapped onto cuBLAS's column-major convention by {@link GemmPlan}.
 * Every status is checked; errors name the call and cuBLAS's status name.
 */
public final class Cublas implements AutoCloseable {
    // cudaDataType (library_types.h)
    public static final int R_32F = 0;
    public static final int R_16F = 2;
    public static final int R_16BF = 14;
    // cublasComputeType_t, cublasGemmAlgo_t, cublasOperation_t, cublasMath_t (cublas_api.h)
    public static final int COMPUTE_32F = 68;
    public static final int GEMM_DEFAULT = -1;
    public static final int OP_N = 0;
    public static final int OP_T = 1;
    public static final int DEFAULT_MATH = 0;
    public static final int PEDANTIC_MATH = 2;

    private static final String LIB = "cuBLAS";

    /** The loaded library and its handles, shared by every {@link Cublas} instance. */
    private static final class Library {
        final String loaded;
        final MethodHandle create, destroy, setStream, setMathMode, getVersion, gemmEx, gemmStridedBatchedEx;
        final MethodHandle statusName; // cublasGetStatusName (cuBLAS 11.4+); the table otherwise

        Library(SymbolLookup l, String loaded) {
            this.loaded = loaded;
            create = Native.function(l, LIB, "cublasCreate_v2", PTR);
            destroy = Native.function(l, LIB, "cublasDestroy_v2", PTR);
            setStream = Native.function(l, LIB, "cublasSetStream_v2", PTR, PTR);
            setMathMode = Native.function(l, LIB, "cublasSetMathMode", PTR, INT);
            getVersion = Native.function(l, LIB, "cublasGetVersion_v2", PTR, PTR);
            // handle, transa, transb, m, n, k, alpha*, A, Atype, lda, B, Btype, ldb, beta*, C, Ctype, ldc, computeType, algo
            gemmEx = Native.function(l, LIB, "cublasGemmEx", PTR, INT, INT, INT, INT, INT, PTR,
                    PTR, INT, INT, PTR, INT, INT, PTR, PTR, INT, INT, INT, INT);
            // as gemmEx with long long strideA after lda, strideB after ldb, strideC after ldc, int batchCount before computeType
            gemmStridedBatchedEx = Native.function(l, LIB, "cublasGemmStridedBatchedEx", PTR, INT, INT, INT, INT, INT, PTR,
                    PTR, INT, INT, LONG_LONG, PTR, INT, INT, LONG_LONG, PTR, PTR, INT, INT, LONG_LONG, INT, INT, INT);
            statusName = Native.pointerFunction(l, "cublasGetStatusName", INT).orElse(null);
        }
    }

    private static volatile Library library;

    private static Library library() {
        Library l = library;
        if (l != null) return l;
        synchronized (Cublas.class) {
            if (library == null) {
                List<String> tried = new ArrayList<>();
                Optional<NativeLibrary.Found> f = NativeLibrary.find(CudaProbe.CUBLAS, tried);
                if (f.isEmpty()) {
                    throw new CudaUnavailableException("cuBLAS not found (" + String.join("; ", tried) + "); set "
                            + NativeLibrary.SEARCH_PATH_ENV + " to the folder of libcublas.so.13 or .12 (on machines with"
                            + " PyTorch: .../site-packages/nvidia/cublas/lib)");
                }
                library = new Library(f.get().lookup(), f.get().loaded());
            }
            return library;
        }
    }

    private final Library lib;
    private final MemorySegment handle;
    private boolean closed;

    private Cublas(Library lib, MemorySegment handle) {
        this.lib = lib;
        this.handle = handle;
    }

    /** Loads cuBLAS (once) without touching a GPU; throws {@link CudaUnavailableException} saying why it cannot. */
    static void load() { library(); }

    /** A new handle for the device whose context is current on the calling thread. */
    public static Cublas create() {
        Library lib = library();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(PTR);
            check(lib, invoke(() -> (int) lib.create.invokeExact(out)), "cublasCreate_v2");
            return new Cublas(lib, out.get(PTR, 0));
        }
    }

    /** What was loaded (soname or path). */
    public String loaded() { return lib.loaded; }

    /** Queues this handle's work on {@code stream}. */
    public void setStream(MemorySegment stream) {
        check(lib, invoke(() -> (int) lib.setStream.invokeExact(handle, stream)), "cublasSetStream_v2");
    }

    /** DEFAULT_MATH keeps f32 products in f32 (no TF32); PEDANTIC_MATH forbids any reduced-precision shortcut. */
    public void setMathMode(int mode) {
        check(lib, invoke(() -> (int) lib.setMathMode.invokeExact(handle, mode)), "cublasSetMathMode");
    }

    /** cuBLAS's version number (CUBLAS_VERSION: major*10000 + minor*100 + patch since 12). */
    public int version() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(INT);
            check(lib, invoke(() -> (int) lib.getVersion.invokeExact(handle, out)), "cublasGetVersion_v2");
            return out.get(INT, 0);
        }
    }

    /** "13.1.0" from a CUBLAS_VERSION number (major*1000 + ... before cuBLAS 12, *10000 since). */
    public static String versionString(int v) {
        int major = v >= 100_000 ? v / 10_000 : v / 1_000;
        int rest = v >= 100_000 ? v % 10_000 : v % 1_000;
        return major + "." + rest / 100 + "." + rest % 100;
    }

    /**
     * Runs a planned product: C = alpha * op(A) op(B) + beta * C in cuBLAS's terms, where A is our b
     * ({@code bPtr}, {@code bType}) and B our a ({@code aPtr}, {@code aType}) — see {@link GemmPlan}.
     * Both inputs must have the same type (R_32F or R_16BF); out is R_32F; compute CUBLAS_COMPUTE_32F.
     */
    public void gemm(GemmPlan p, long aPtr, int aType, long bPtr, int bType, long outPtr, float alpha, float beta) {
        gemm(p, aPtr, aType, bPtr, bType, outPtr, R_32F, alpha, beta);
    }

    /**
     * As above with out of {@code outType}: R_32F, or R_16BF for R_16BF inputs (accumulated in f32, then
     * alpha * product + beta * out rounded once to bf16).
     */
    public void gemm(GemmPlan p, long aPtr, int aType, long bPtr, int bType, long outPtr, int outType, float alpha, float beta) {
        if (p.empty()) return;
        if (outType != R_32F && !(outType == R_16BF && aType == R_16BF)) {
            throw new IllegalArgumentException("cublasGemmEx: a bf16 out needs bf16 operands, got " + aType + " into " + outType);
        }
        if (aType != bType) throw new IllegalArgumentException("cublasGemmEx needs operands of one type, got " + aType + " and " + bType);
        int opA = p.opA() ? OP_T : OP_N, opB = p.opB() ? OP_T : OP_N;
        MemorySegment A = Native.pointer(bPtr), B = Native.pointer(aPtr), C = Native.pointer(outPtr);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment al = a.allocateFrom(Native.FLOAT, alpha), be = a.allocateFrom(Native.FLOAT, beta);
            if (p.batch() == 1) {
                check(lib, invoke(() -> (int) lib.gemmEx.invokeExact(handle, opA, opB, p.m(), p.n(), p.k(), al,
                        A, bType, p.lda(), B, aType, p.ldb(), be, C, outType, p.ldc(), COMPUTE_32F, GEMM_DEFAULT)), describe("cublasGemmEx", p));
            } else {
                check(lib, invoke(() -> (int) lib.gemmStridedBatchedEx.invokeExact(handle, opA, opB, p.m(), p.n(), p.k(), al,
                        A, bType, p.lda(), p.strideA(), B, aType, p.ldb(), p.strideB(), be, C, outType, p.ldc(), p.strideC(),
                        p.batch(), COMPUTE_32F, GEMM_DEFAULT)), describe("cublasGemmStridedBatchedEx", p));
            }
        }
    }

    private static String describe(String call, GemmPlan p) {
        return call + "(" + (p.opA() ? "T" : "N") + (p.opB() ? "T" : "N") + ", m=" + p.m() + ", n=" + p.n() + ", k=" + p.k()
                + ", lda=" + p.lda() + ", ldb=" + p.ldb() + ", ldc=" + p.ldc() + (p.batch() > 1 ? ", batch=" + p.batch() : "") + ")";
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        check(lib, invoke(() -> (int) lib.destroy.invokeExact(handle)), "cublasDestroy_v2");
    }

    // ------------------------------------------------------------------ status

    private static void check(Library lib, int status, String call) {
        if (status == 0) return;
        String name = CudaStatus.cublasName(status);
        if (lib.statusName != null && name.startsWith("cublasStatus_t(")) {
            try {
                String s = Native.cString((MemorySegment) lib.statusName.invokeExact(status));
                if (s != null) name = s;
            } catch (Throwable t) {
                // keep the table's name
            }
        }
        String hint = status == CudaStatus.CUBLAS_STATUS_ALLOC_FAILED ? "cuBLAS could not allocate its workspace: the GPU is out of memory"
                : status == 1 ? "no CUDA context was current when cuBLAS was called" : null;
        throw new CudaException(call, CudaException.Library.CUBLAS, status, name, hint);
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
