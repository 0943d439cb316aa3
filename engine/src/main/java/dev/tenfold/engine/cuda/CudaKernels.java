package dev.tenfold.engine.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * tenfold's kernels on one device: the fatbin from the classpath (the native-kernels jar), loaded into
 * the device's context, its functions looked up by name once and cached, and launched by the rules of
 * tenfold_kernels.h ({@link KernelAbi}), raising a kernel's dynamic shared memory limit when a launch
 * needs more than 48 KB.
 */
public final class CudaKernels {
    /** Where the fatbin lives on the classpath. */
    public static final String RESOURCE = "dev/tenfold/kernels/tenfold.fatbin";
    /** Said when the resource is missing. */
    public static final String NO_KERNELS = "this build has no CUDA kernels: nvcc was missing when it was built (the"
            + " classpath has no " + RESOURCE + "; it comes in the tenfold-native-kernels jar, built where the CUDA toolkit"
            + " is installed)";

    private final CudaDriver driver;
    private final MemorySegment module;
    private final int maxSharedOptin;
    private final Map<String, MemorySegment> functions = new ConcurrentHashMap<>();
    private final Map<String, Integer> smemRaisedTo = new ConcurrentHashMap<>();

    /** Loads {@code fatbin} into the context current on this thread (of device {@code cuDevice}). */
    CudaKernels(CudaDriver driver, int cuDevice, byte[] fatbin) {
        this.driver = driver;
        this.module = driver.moduleLoadData(fatbin);
        this.maxSharedOptin = driver.attribute(CudaDriver.ATTR_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, cuDevice);
    }

    /** The fatbin's bytes from {@code loader} (or this class's loader when null); a clear error when absent. */
    public static byte[] readFatbin(ClassLoader loader) {
        ClassLoader l = loader != null ? loader : CudaKernels.class.getClassLoader();
        try (InputStream in = l.getResourceAsStream(RESOURCE)) {
            if (in == null) throw new CudaUnavailableException(NO_KERNELS);
            byte[] bytes = in.readAllBytes();
            if (bytes.length == 0) throw new CudaUnavailableException(NO_KERNELS + " (the resource is empty)");
            return bytes;
        } catch (IOException e) {
            throw new CudaUnavailableException("cannot read " + RESOURCE + ": " + e.getMessage(), e);
        }
    }

    /** The fatbin from the thread's context class loader, else from tenfold's own. */
    static byte[] readFatbin() {
        ClassLoader context = Thread.currentThread().getContextClassLoader();
        if (context != null && context.getResource(RESOURCE) != null) return readFatbin(context);
        return readFatbin(CudaKernels.class.getClassLoader());
    }

    /** The kernel's CUfunction (looked up once); names the kernel when the fatbin lacks it. */
    MemorySegment function(KernelAbi.Kernel kernel) {
        MemorySegment f = functions.get(kernel.name());
        if (f != null) return f;
        try {
            f = driver.moduleGetFunction(module, kernel.name());
        } catch (CudaException e) {
            if (e.status() == CudaStatus.CUDA_ERROR_NOT_FOUND) {
                throw new CudaUnavailableException("the kernels fatbin has no kernel " + kernel.name()
                        + " (it was built from an older tenfold_kernels.h than this engine)", e);
            }
            throw e;
        }
        functions.put(kernel.name(), f);
        return f;
    }

    /**
     * Launches {@code kernel} on {@code stream} with {@code args} (checked against its parameters, see
     * {@link KernelArgs}). The caller has made the device's context current.
     */
    void launch(KernelAbi.Kernel kernel, KernelAbi.Launch l, MemorySegment stream, Object... args) {
        MemorySegment f = function(kernel);
        if (l.smem() > KernelAbi.DEFAULT_MAX_DYNAMIC_SMEM) raiseSharedMemory(kernel, f, l.smem());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment params = KernelArgs.pack(arena, kernel, args);
            driver.launch(f, kernel.name(), l.gridX(), l.gridY(), l.gridZ(), l.block(), 1, 1, l.smem(), stream, params);
        }
    }

    private void raiseSharedMemory(KernelAbi.Kernel kernel, MemorySegment f, int bytes) {
        Integer done = smemRaisedTo.get(kernel.name());
        if (done != null && done >= bytes) return;
        if (bytes > maxSharedOptin) {
            throw new CudaUnavailableException(kernel.name() + " needs " + bytes + " bytes of shared memory per block; this GPU"
                    + " allows " + maxSharedOptin);
        }
        driver.functionSetAttribute(f, CudaDriver.FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes);
        smemRaisedTo.put(kernel.name(), bytes);
    }

    /** The largest dynamic shared memory a block may opt in to on this GPU. */
    public int maxSharedMemoryOptin() { return maxSharedOptin; }
}
