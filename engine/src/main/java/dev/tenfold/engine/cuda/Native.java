package dev.tenfold.engine.cuda;

import java.lang.foreign.AddressLayout;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * The C types of the CUDA, cuBLAS and NCCL prototypes as FFM layouts, declared once (Linux x86-64 and
 * aarch64: int is 32 bits, size_t, long long and pointers 64), and downcall handles made from them.
 */
final class Native {
    private Native() {}

    /** int, unsigned int, enums (CUresult, cublasStatus_t, ncclResult_t, cudaDataType ...), CUdevice. */
    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    /** size_t. */
    static final ValueLayout.OfLong SIZE_T = ValueLayout.JAVA_LONG;
    /** long long. */
    static final ValueLayout.OfLong LONG_LONG = ValueLayout.JAVA_LONG;
    /** CUdeviceptr (unsigned long long on 64-bit hosts). */
    static final ValueLayout.OfLong DEVICE_PTR = ValueLayout.JAVA_LONG;
    /** float. */
    static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT;
    /** unsigned char. */
    static final ValueLayout.OfByte UCHAR = ValueLayout.JAVA_BYTE;
    /** Any pointer or opaque handle (CUcontext, CUstream, cublasHandle_t, ncclComm_t, void*, char*). */
    static final AddressLayout PTR = ValueLayout.ADDRESS;

    private static final Linker LINKER = Linker.nativeLinker();

    /** A handle for {@code name} returning int with the given argument layouts; fails naming the symbol. */
    static MethodHandle function(SymbolLookup lookup, String library, String name, MemoryLayout... args) {
        return optionalFunction(lookup, name, args).orElseThrow(() -> new CudaUnavailableException(
                library + " has no symbol " + name + " (too old a version?)"));
    }

    static Optional<MethodHandle> optionalFunction(SymbolLookup lookup, String name, MemoryLayout... args) {
        return lookup.find(name).map(s -> LINKER.downcallHandle(s, FunctionDescriptor.of(INT, args)));
    }

    /** A handle for a function returning a pointer (const char* ...). */
    static Optional<MethodHandle> pointerFunction(SymbolLookup lookup, String name, MemoryLayout... args) {
        return lookup.find(name).map(s -> LINKER.downcallHandle(s, FunctionDescriptor.of(PTR, args)));
    }

    /** The NUL-terminated string at {@code p}, or null for NULL. */
    static String cString(MemorySegment p) {
        if (p == null || p.address() == 0) return null;
        return p.reinterpret(Long.MAX_VALUE).getString(0);
    }

    /** The device pointer a tensor's segment carries (0 for NULL). */
    static MemorySegment pointer(long address) { return MemorySegment.ofAddress(address); }

    /** Rethrows what a downcall threw (they declare Throwable) as an unchecked exception. */
    static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }
}
