package dev.tenfold.engine.cuda;

import static dev.tenfold.engine.cuda.Native.DEVICE_PTR;
import static dev.tenfold.engine.cuda.Native.INT;
import static dev.tenfold.engine.cuda.Native.PTR;
import static dev.tenfold.engine.cuda.Native.SIZE_T;
import static dev.tenfold.engine.cuda.Native.UCHAR;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The CUDA driver API (libcuda.so.1) through hand-written FFM downcalls: one handle per function,
 * made once, every CUresult checked and turned into a {@link CudaException} that names the call and
 * the error (cuGetErrorName). Symbols are the ones cuda.h's macros resolve to (cuMemAlloc ->
 * cuMemAlloc_v2, cuStreamDestroy -> cuStreamDestroy_v2, ...), without per-thread default streams.
 *
 * <p>Handles (CUcontext, CUmodule, CUfunction, CUstream, CUevent, host pointers) are
 * {@link MemorySegment}s of size zero; device pointers (CUdeviceptr) are {@code long}s. One instance per
 * process: {@link #get()}.
 */
public final class CudaDriver {
    // CUdevice_attribute values (cuda.h)
    public static final int ATTR_MAX_THREADS_PER_BLOCK = 1;
    public static final int ATTR_MAX_PITCH = 11;
    public static final int ATTR_MAX_SHARED_MEMORY_PER_BLOCK = 8;
    public static final int ATTR_MULTIPROCESSOR_COUNT = 16;
    public static final int ATTR_PCI_BUS_ID = 33;
    public static final int ATTR_L2_CACHE_SIZE = 38;
    public static final int ATTR_COMPUTE_CAPABILITY_MAJOR = 75;
    public static final int ATTR_COMPUTE_CAPABILITY_MINOR = 76;
    public static final int ATTR_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;
    // CUfunction_attribute
    public static final int FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
    // flags
    public static final int STREAM_NON_BLOCKING = 0x1;
    public static final int EVENT_DEFAULT = 0x0;
    public static final int EVENT_DISABLE_TIMING = 0x2;
    public static final int MEMHOSTALLOC_PORTABLE = 0x1;
    public static final int MEMHOSTREGISTER_PORTABLE = 0x1;

    private static final String LIB = "the CUDA driver";
    private static final Object LOCK = new Object();
    private static volatile CudaDriver instance;
    private static volatile CudaUnavailableException failure;

    private final String loaded;
    private final MethodHandle cuInit, cuDriverGetVersion, cuDeviceGetCount, cuDeviceGet, cuDeviceGetName,
            cuDeviceTotalMem, cuDeviceGetAttribute, cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRelease,
            cuCtxSetCurrent, cuCtxSynchronize, cuModuleLoadData, cuModuleGetFunction, cuModuleUnload,
            cuFuncSetAttribute, cuLaunchKernel, cuMemAlloc, cuMemFree, cuMemGetInfo, cuMemcpyHtoDAsync,
            cuMemcpyDtoHAsync, cuMemcpyDtoDAsync, cuMemcpy2DAsync, cuMemsetD8Async, cuMemsetD32Async, cuMemHostAlloc, cuMemFreeHost,
            cuMemHostRegister, cuMemHostUnregister, cuStreamCreate, cuStreamSynchronize, cuStreamWaitEvent,
            cuStreamDestroy, cuEventCreate, cuEventRecord, cuEventSynchronize, cuEventElapsedTime, cuEventDestroy;
    private final MethodHandle cuGetErrorName; // may be null on a very odd driver: the table names the error then

    private CudaDriver(SymbolLookup l, String loaded) {
        this.loaded = loaded;
        cuInit = fn(l, "cuInit", INT);
        cuDriverGetVersion = fn(l, "cuDriverGetVersion", PTR);
        cuDeviceGetCount = fn(l, "cuDeviceGetCount", PTR);
        cuDeviceGet = fn(l, "cuDeviceGet", PTR, INT);
        cuDeviceGetName = fn(l, "cuDeviceGetName", PTR, INT, INT);
        cuDeviceTotalMem = fn(l, "cuDeviceTotalMem_v2", PTR, INT);
        cuDeviceGetAttribute = fn(l, "cuDeviceGetAttribute", PTR, INT, INT);
        cuDevicePrimaryCtxRetain = fn(l, "cuDevicePrimaryCtxRetain", PTR, INT);
        cuDevicePrimaryCtxRelease = fn(l, "cuDevicePrimaryCtxRelease_v2", INT);
        cuCtxSetCurrent = fn(l, "cuCtxSetCurrent", PTR);
        cuCtxSynchronize = fn(l, "cuCtxSynchronize");
        cuModuleLoadData = fn(l, "cuModuleLoadData", PTR, PTR);
        cuModuleGetFunction = fn(l, "cuModuleGetFunction", PTR, PTR, PTR);
        cuModuleUnload = fn(l, "cuModuleUnload", PTR);
        cuFuncSetAttribute = fn(l, "cuFuncSetAttribute", PTR, INT, INT);
        // f, gridDimX/Y/Z, blockDimX/Y/Z, sharedMemBytes (unsigned int each), hStream, void** kernelParams, void** extra
        cuLaunchKernel = fn(l, "cuLaunchKernel", PTR, INT, INT, INT, INT, INT, INT, INT, PTR, PTR, PTR);
        cuMemAlloc = fn(l, "cuMemAlloc_v2", PTR, SIZE_T);
        cuMemFree = fn(l, "cuMemFree_v2", DEVICE_PTR);
        cuMemGetInfo = fn(l, "cuMemGetInfo_v2", PTR, PTR);
        cuMemcpyHtoDAsync = fn(l, "cuMemcpyHtoDAsync_v2", DEVICE_PTR, PTR, SIZE_T, PTR);
        cuMemcpyDtoHAsync = fn(l, "cuMemcpyDtoHAsync_v2", PTR, DEVICE_PTR, SIZE_T, PTR);
        cuMemcpyDtoDAsync = fn(l, "cuMemcpyDtoDAsync_v2", DEVICE_PTR, DEVICE_PTR, SIZE_T, PTR);
        cuMemcpy2DAsync = fn(l, "cuMemcpy2DAsync_v2", PTR, PTR);
        cuMemsetD8Async = fn(l, "cuMemsetD8Async", DEVICE_PTR, UCHAR, SIZE_T, PTR);
        cuMemsetD32Async = fn(l, "cuMemsetD32Async", DEVICE_PTR, INT, SIZE_T, PTR);
        cuMemHostAlloc = fn(l, "cuMemHostAlloc", PTR, SIZE_T, INT);
        cuMemFreeHost = fn(l, "cuMemFreeHost", PTR);
        cuMemHostRegister = fn(l, "cuMemHostRegister_v2", PTR, SIZE_T, INT);
        cuMemHostUnregister = fn(l, "cuMemHostUnregister", PTR);
        cuStreamCreate = fn(l, "cuStreamCreate", PTR, INT);
        cuStreamSynchronize = fn(l, "cuStreamSynchronize", PTR);
        cuStreamWaitEvent = fn(l, "cuStreamWaitEvent", PTR, PTR, INT);
        cuStreamDestroy = fn(l, "cuStreamDestroy_v2", PTR);
        cuEventCreate = fn(l, "cuEventCreate", PTR, INT);
        cuEventRecord = fn(l, "cuEventRecord", PTR, PTR);
        cuEventSynchronize = fn(l, "cuEventSynchronize", PTR);
        // CUDA 13's cuda.h maps cuEventElapsedTime to _v2 (same prototype); older drivers have only the plain one.
        cuEventElapsedTime = Native.optionalFunction(l, "cuEventElapsedTime_v2", PTR, PTR, PTR)
                .orElseGet(() -> fn(l, "cuEventElapsedTime", PTR, PTR, PTR));
        cuEventDestroy = fn(l, "cuEventDestroy_v2", PTR);
        cuGetErrorName = Native.optionalFunction(l, "cuGetErrorName", INT, PTR).orElse(null);
    }

    private static MethodHandle fn(SymbolLookup l, String name, java.lang.foreign.MemoryLayout... args) {
        return Native.function(l, LIB, name, args);
    }

    // ------------------------------------------------------------------ loading

    /** The driver, loaded and initialised (cuInit) once; throws {@link CudaUnavailableException} saying why not. */
    public static CudaDriver get() {
        CudaDriver d = instance;
        if (d != null) return d;
        synchronized (LOCK) {
            if (instance != null) return instance;
            if (failure != null) throw failure;
            try {
                instance = load();
                return instance;
            } catch (CudaUnavailableException e) {
                failure = e;
                throw e;
            }
        }
    }

    /** The driver if this machine has a usable one. */
    public static Optional<CudaDriver> tryGet() {
        try {
            return Optional.of(get());
        } catch (CudaUnavailableException e) {
            return Optional.empty();
        }
    }

    private static CudaDriver load() {
        List<String> tried = new ArrayList<>();
        Optional<NativeLibrary.Found> lib = NativeLibrary.find(CudaProbe.DRIVER, tried);
        if (lib.isEmpty()) {
            throw new CudaUnavailableException("no CUDA driver found (libcuda.so.1; tried " + String.join("; ", tried)
                    + "): it comes with the NVIDIA driver; if it is installed somewhere unusual, set "
                    + NativeLibrary.SEARCH_PATH_ENV + " to its folder");
        }
        CudaDriver d = new CudaDriver(lib.get().lookup(), lib.get().loaded());
        try {
            d.check(call(() -> (int) d.cuInit.invokeExact(0)), "cuInit");
        } catch (CudaException e) {
            throw new CudaUnavailableException("the CUDA driver (" + d.loaded + ") did not initialise: " + e.getMessage()
                    + " (no usable GPU, or the driver and its kernel module differ)", e);
        }
        return d;
    }

    /** What was loaded (the soname or path). */
    public String loaded() { return loaded; }

    // ------------------------------------------------------------------ status

    /** Throws a {@link CudaException} naming {@code call} unless {@code rc} is CUDA_SUCCESS. */
    void check(int rc, String call) {
        if (rc == CudaStatus.CUDA_SUCCESS) return;
        throw new CudaException(call, CudaException.Library.DRIVER, rc, errorName(rc), CudaStatus.hint(rc));
    }

    /** The CUresult's name as the driver spells it (cuGetErrorName), else from the table. */
    public String errorName(int rc) {
        if (cuGetErrorName != null) {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment out = a.allocate(PTR);
                if ((int) cuGetErrorName.invokeExact(rc, out) == CudaStatus.CUDA_SUCCESS) {
                    String s = Native.cString(out.get(PTR, 0));
                    if (s != null) return s;
                }
            } catch (Throwable t) {
                // fall back to the table
            }
        }
        return CudaStatus.driverName(rc);
    }

    @FunctionalInterface
    private interface IntCall { int call() throws Throwable; }

    private static int call(IntCall c) {
        try {
            return c.call();
        } catch (Throwable t) {
            throw Native.rethrow(t);
        }
    }

    // ------------------------------------------------------------------ devices

    /** The driver's CUDA version, e.g. 13000 for 13.0. */
    public int driverVersion() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(INT);
            check(call(() -> (int) cuDriverGetVersion.invokeExact(out)), "cuDriverGetVersion");
            return out.get(INT, 0);
        }
    }

    public int deviceCount() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(INT);
            check(call(() -> (int) cuDeviceGetCount.invokeExact(out)), "cuDeviceGetCount");
            return out.get(INT, 0);
        }
    }

    /** The CUdevice of ordinal {@code ordinal}. */
    public int device(int ordinal) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(INT);
            check(call(() -> (int) cuDeviceGet.invokeExact(out, ordinal)), "cuDeviceGet(" + ordinal + ")");
            return out.get(INT, 0);
        }
    }

    public String deviceName(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(256);
            check(call(() -> (int) cuDeviceGetName.invokeExact(out, 256, device)), "cuDeviceGetName");
            return out.getString(0);
        }
    }

    public long totalMemory(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(SIZE_T);
            check(call(() -> (int) cuDeviceTotalMem.invokeExact(out, device)), "cuDeviceTotalMem_v2");
            return out.get(SIZE_T, 0);
        }
    }

    /** A CUdevice_attribute (the ATTR_ constants). */
    public int attribute(int attribute, int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(INT);
            check(call(() -> (int) cuDeviceGetAttribute.invokeExact(out, attribute, device)),
                    "cuDeviceGetAttribute(" + attribute + ")");
            return out.get(INT, 0);
        }
    }

    // ------------------------------------------------------------------ contexts

    /** Retains the device's primary context (the one the CUDA runtime, cuBLAS and NCCL use too). */
    public MemorySegment primaryContextRetain(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(PTR);
            check(call(() -> (int) cuDevicePrimaryCtxRetain.invokeExact(out, device)), "cuDevicePrimaryCtxRetain");
            return out.get(PTR, 0);
        }
    }

    public void primaryContextRelease(int device) {
        check(call(() -> (int) cuDevicePrimaryCtxRelease.invokeExact(device)), "cuDevicePrimaryCtxRelease_v2");
    }

    /** Binds {@code context} to the calling thread. */
    public void setCurrent(MemorySegment context) {
        check(call(() -> (int) cuCtxSetCurrent.invokeExact(context)), "cuCtxSetCurrent");
    }

    /** Waits for all work of the current context. */
    public void contextSynchronize() {
        check(call(() -> (int) cuCtxSynchronize.invokeExact()), "cuCtxSynchronize");
    }

    // ------------------------------------------------------------------ modules and launches

    /** Loads a fatbin/cubin/PTX image (copied into native memory for the call) into the current context. */
    public MemorySegment moduleLoadData(byte[] image) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment img = a.allocate(image.length + 1L, 16); // +1: PTX must end with NUL
            MemorySegment.copy(image, 0, img, ValueLayout.JAVA_BYTE, 0, image.length);
            MemorySegment out = a.allocate(PTR);
            check(call(() -> (int) cuModuleLoadData.invokeExact(out, img)), "cuModuleLoadData");
            return out.get(PTR, 0);
        }
    }

    /** The kernel {@code name} of a module; CUDA_ERROR_NOT_FOUND when the module has no such kernel. */
    public MemorySegment moduleGetFunction(MemorySegment module, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(PTR);
            MemorySegment cname = a.allocateFrom(name);
            check(call(() -> (int) cuModuleGetFunction.invokeExact(out, module, cname)), "cuModuleGetFunction(" + name + ")");
            return out.get(PTR, 0);
        }
    }

    public void moduleUnload(MemorySegment module) {
        check(call(() -> (int) cuModuleUnload.invokeExact(module)), "cuModuleUnload");
    }

    /** A CUfunction_attribute, e.g. FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES. */
    public void functionSetAttribute(MemorySegment function, int attribute, int value) {
        check(call(() -> (int) cuFuncSetAttribute.invokeExact(function, attribute, value)),
                "cuFuncSetAttribute(" + attribute + ", " + value + ")");
    }

    /**
     * Launches {@code function}; {@code params} is the void** array of pointers to each argument's value
     * (the driver copies the values before returning). {@code name} only labels errors.
     */
    public void launch(MemorySegment function, String name, int gridX, int gridY, int gridZ, int blockX, int blockY,
                       int blockZ, int sharedMemBytes, MemorySegment stream, MemorySegment params) {
        int rc = call(() -> (int) cuLaunchKernel.invokeExact(function, gridX, gridY, gridZ, blockX, blockY, blockZ,
                sharedMemBytes, stream, params, MemorySegment.NULL));
        if (rc != CudaStatus.CUDA_SUCCESS) {
            check(rc, "cuLaunchKernel(" + name + ", grid " + gridX + "x" + gridY + "x" + gridZ + ", block " + blockX
                    + ", smem " + sharedMemBytes + ")");
        }
    }

    // ------------------------------------------------------------------ memory

    /** cuMemAlloc: a device pointer to {@code bytes} bytes (256-byte aligned); OOM is a CudaException with status 2. */
    public long memAlloc(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(DEVICE_PTR);
            check(call(() -> (int) cuMemAlloc.invokeExact(out, bytes)), "cuMemAlloc_v2(" + bytes + " bytes)");
            return out.get(DEVICE_PTR, 0);
        }
    }

    public void memFree(long pointer) {
        check(call(() -> (int) cuMemFree.invokeExact(pointer)), "cuMemFree_v2");
    }

    /** Free and total device memory of the current context's device, in bytes. */
    public MemoryInfo memInfo() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment free = a.allocate(SIZE_T), total = a.allocate(SIZE_T);
            check(call(() -> (int) cuMemGetInfo.invokeExact(free, total)), "cuMemGetInfo_v2");
            return new MemoryInfo(free.get(SIZE_T, 0), total.get(SIZE_T, 0));
        }
    }

    /** Free and total bytes of a device. */
    public record MemoryInfo(long free, long total) {}

    public void copyHostToDeviceAsync(long dst, MemorySegment src, long bytes, MemorySegment stream) {
        check(call(() -> (int) cuMemcpyHtoDAsync.invokeExact(dst, src, bytes, stream)), "cuMemcpyHtoDAsync_v2(" + bytes + " bytes)");
    }

    public void copyDeviceToHostAsync(MemorySegment dst, long src, long bytes, MemorySegment stream) {
        check(call(() -> (int) cuMemcpyDtoHAsync.invokeExact(dst, src, bytes, stream)), "cuMemcpyDtoHAsync_v2(" + bytes + " bytes)");
    }

    public void copyDeviceToDeviceAsync(long dst, long src, long bytes, MemorySegment stream) {
        check(call(() -> (int) cuMemcpyDtoDAsync.invokeExact(dst, src, bytes, stream)), "cuMemcpyDtoDAsync_v2(" + bytes + " bytes)");
    }

    /**
     * CUDA_MEMCPY2D (cuda.h's CUDA_MEMCPY2D_st, the _v2 one of size_t fields), field for field: the two
     * CUmemorytype enums are 32-bit ints followed by 4 bytes of padding, so that the pointer after each sits
     * on 8 bytes (128 bytes in all on a 64-bit host).
     */
    static final StructLayout MEMCPY2D = MemoryLayout.structLayout(
            SIZE_T.withName("srcXInBytes"), SIZE_T.withName("srcY"),
            INT.withName("srcMemoryType"), MemoryLayout.paddingLayout(4),
            PTR.withName("srcHost"), DEVICE_PTR.withName("srcDevice"), PTR.withName("srcArray"), SIZE_T.withName("srcPitch"),
            SIZE_T.withName("dstXInBytes"), SIZE_T.withName("dstY"),
            INT.withName("dstMemoryType"), MemoryLayout.paddingLayout(4),
            PTR.withName("dstHost"), DEVICE_PTR.withName("dstDevice"), PTR.withName("dstArray"), SIZE_T.withName("dstPitch"),
            SIZE_T.withName("WidthInBytes"), SIZE_T.withName("Height"));
    /** CUmemorytype's CU_MEMORYTYPE_DEVICE. */
    static final int MEMORYTYPE_DEVICE = 2;

    private static long field(String name) { return MEMCPY2D.byteOffset(MemoryLayout.PathElement.groupElement(name)); }

    /**
     * cuMemcpy2DAsync_v2 from device memory to device memory: {@code rows} rows of {@code widthBytes} bytes, row i
     * from {@code src + i * srcPitch} to {@code dst + i * dstPitch}. The driver reads the parameters during the
     * call, so the struct lives only as long as it. Pitches above {@link #ATTR_MAX_PITCH} are refused by the
     * driver (CUDA_ERROR_INVALID_VALUE), as may be device-to-device pitches it does not like.
     */
    public void copy2dDeviceToDeviceAsync(long dst, long dstPitch, long src, long srcPitch, long widthBytes, long rows, MemorySegment stream) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(MEMCPY2D); // zeroed: X and Y offsets 0, no host pointers, no arrays
            p.set(INT, field("srcMemoryType"), MEMORYTYPE_DEVICE);
            p.set(DEVICE_PTR, field("srcDevice"), src);
            p.set(SIZE_T, field("srcPitch"), srcPitch);
            p.set(INT, field("dstMemoryType"), MEMORYTYPE_DEVICE);
            p.set(DEVICE_PTR, field("dstDevice"), dst);
            p.set(SIZE_T, field("dstPitch"), dstPitch);
            p.set(SIZE_T, field("WidthInBytes"), widthBytes);
            p.set(SIZE_T, field("Height"), rows);
            check(call(() -> (int) cuMemcpy2DAsync.invokeExact(p, stream)),
                    "cuMemcpy2DAsync_v2(" + rows + " rows of " + widthBytes + " bytes, pitches " + srcPitch + " -> " + dstPitch + ")");
        }
    }

    /** Sets {@code count} bytes to {@code value}. */
    public void memsetD8Async(long dst, byte value, long count, MemorySegment stream) {
        check(call(() -> (int) cuMemsetD8Async.invokeExact(dst, value, count, stream)), "cuMemsetD8Async(" + count + " bytes)");
    }

    /** Sets {@code count} 32-bit words to {@code value} (dst 4-byte aligned). */
    public void memsetD32Async(long dst, int value, long count, MemorySegment stream) {
        check(call(() -> (int) cuMemsetD32Async.invokeExact(dst, value, count, stream)), "cuMemsetD32Async(" + count + " words)");
    }

    /** Page-locked host memory (fast, truly asynchronous copies); free with {@link #freeHost}. */
    public MemorySegment hostAlloc(long bytes, int flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(PTR);
            check(call(() -> (int) cuMemHostAlloc.invokeExact(out, bytes, flags)), "cuMemHostAlloc(" + bytes + " bytes)");
            return out.get(PTR, 0).reinterpret(bytes);
        }
    }

    public void freeHost(MemorySegment pointer) {
        check(call(() -> (int) cuMemFreeHost.invokeExact(pointer)), "cuMemFreeHost");
    }

    /** Page-locks existing host memory (for example a memory-mapped checkpoint) until {@link #hostUnregister}. */
    public void hostRegister(MemorySegment memory, int flags) {
        long bytes = memory.byteSize();
        check(call(() -> (int) cuMemHostRegister.invokeExact(memory, bytes, flags)), "cuMemHostRegister_v2(" + bytes + " bytes)");
    }

    public void hostUnregister(MemorySegment memory) {
        check(call(() -> (int) cuMemHostUnregister.invokeExact(memory)), "cuMemHostUnregister");
    }

    // ------------------------------------------------------------------ streams and events

    public MemorySegment streamCreate(int flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(PTR);
            check(call(() -> (int) cuStreamCreate.invokeExact(out, flags)), "cuStreamCreate");
            return out.get(PTR, 0);
        }
    }

    public void streamSynchronize(MemorySegment stream) {
        check(call(() -> (int) cuStreamSynchronize.invokeExact(stream)), "cuStreamSynchronize");
    }

    /** Work queued on {@code stream} after this call waits for {@code event}. */
    public void streamWaitEvent(MemorySegment stream, MemorySegment event) {
        check(call(() -> (int) cuStreamWaitEvent.invokeExact(stream, event, 0)), "cuStreamWaitEvent");
    }

    public void streamDestroy(MemorySegment stream) {
        check(call(() -> (int) cuStreamDestroy.invokeExact(stream)), "cuStreamDestroy_v2");
    }

    public MemorySegment eventCreate(int flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(PTR);
            check(call(() -> (int) cuEventCreate.invokeExact(out, flags)), "cuEventCreate");
            return out.get(PTR, 0);
        }
    }

    public void eventRecord(MemorySegment event, MemorySegment stream) {
        check(call(() -> (int) cuEventRecord.invokeExact(event, stream)), "cuEventRecord");
    }

    public void eventSynchronize(MemorySegment event) {
        check(call(() -> (int) cuEventSynchronize.invokeExact(event)), "cuEventSynchronize");
    }

    /** Milliseconds between two recorded events (both created without EVENT_DISABLE_TIMING). */
    public float eventElapsedMillis(MemorySegment start, MemorySegment end) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(Native.FLOAT);
            check(call(() -> (int) cuEventElapsedTime.invokeExact(out, start, end)), "cuEventElapsedTime");
            return out.get(Native.FLOAT, 0);
        }
    }

    public void eventDestroy(MemorySegment event) {
        check(call(() -> (int) cuEventDestroy.invokeExact(event)), "cuEventDestroy_v2");
    }
}
