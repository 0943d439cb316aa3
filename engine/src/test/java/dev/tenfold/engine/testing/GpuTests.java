package dev.tenfold.engine.testing;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cuda.CudaBackend;
import dev.tenfold.engine.cuda.CudaUnavailableException;
import dev.tenfold.engine.cuda.Nccl;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

/**
 * Helpers for tests tagged "gpu": the CUDA backend or a cleanly skipped test that says why there is none
 * (no driver, no GPU, no kernels in this build), and host/device moves for comparing against the CPU
 * reference. Any module's tests can use them through the engine's test jar.
 *
 * <p>Where a GPU must be used ({@value CudaBackend#REQUIRE_GPU_ENV}=1, as on a GPU machine's test run) "no CUDA" is a
 * failure instead of a skip. Only "CUDA is not here" ({@link CudaUnavailableException}) is ever skipped: a CUDA
 * error from the GPU itself fails the test. A device that did not open is not opened again (CudaBackend.open keeps
 * the failure); its reason is reported in full by the first test that asks, and referred to by the others.
 */
public final class GpuTests {
    private GpuTests() {}

    private static final Set<String> reported = new HashSet<>();

    /** The backend of cuda:0, or the calling test is skipped (failed where a GPU is required) with the reason. */
    public static CudaBackend backendOrSkip() { return backendOrSkip(0); }

    /**
     * Empties the caching allocator of a GPU backend and restarts its peak; returns the bytes still in use (what
     * other tests keep), the base that {@link #peakInUseBytes} is measured from.
     */
    public static long resetPeaks(Backend gpu) {
        CudaBackend cuda = (CudaBackend) gpu;
        cuda.synchronize();
        cuda.allocator().emptyCache();
        cuda.allocator().resetPeaks();
        return cuda.allocator().stats().inUseBytes();
    }

    /** The most a GPU backend's caching allocator has had in use since {@link #resetPeaks}. */
    public static long peakInUseBytes(Backend gpu) {
        gpu.synchronize();
        return ((CudaBackend) gpu).allocator().stats().peakInUseBytes();
    }

    /** As {@link #backendOrSkip()}, typed as the op set: for the tests of modules that see no CUDA internals. */
    public static Backend deviceOrSkip() { return backendOrSkip(0); }

    /** The backend of cuda:index, or the calling test is skipped (failed where a GPU is required) with the reason. */
    public static CudaBackend backendOrSkip(int index) { return backendOr(index, CudaBackend.gpuRequired()); }

    /** NCCL, or the calling test is skipped (failed where a GPU is required) with the reason. */
    public static Nccl ncclOrSkip() {
        try {
            return Nccl.get();
        } catch (CudaUnavailableException e) {
            throw unavailable("NCCL", e, CudaBackend.gpuRequired());
        }
    }

    /** {@link #backendOrSkip(int)} with the requirement given (for its own test). */
    static CudaBackend backendOr(int index, boolean required) {
        try {
            return CudaBackend.open(index);
        } catch (CudaUnavailableException e) {
            throw unavailable("cuda:" + index, e, required);
        }
    }

    private static RuntimeException unavailable(String what, CudaUnavailableException e, boolean required) {
        boolean first;
        synchronized (reported) {
            first = reported.add(what + ": " + e.getMessage());
        }
        String reason = "no CUDA for this test (" + what + "): " + e.getMessage();
        if (!required) Assumptions.abort(reason);
        if (first) Assertions.fail(CudaBackend.REQUIRE_GPU_ENV + "=1 and " + reason, e);
        Assertions.fail(CudaBackend.REQUIRE_GPU_ENV + "=1 and " + reason + " (the first test that asked has the details)");
        throw e; // not reached
    }

    /** A copy of a host tensor on the backend's device. */
    public static Tensor toDevice(Backend backend, Tensor host) {
        Tensor t = backend.allocate(host.dtype(), host.shape());
        backend.copy(host, t);
        return t;
    }

    /** A host copy of a device tensor. */
    public static Tensor toHost(Backend backend, Tensor onDevice) {
        Tensor t = Tensor.allocate(onDevice.dtype(), onDevice.shape());
        backend.copy(onDevice, t);
        return t;
    }

    /** A device tensor full of NaN, so that an element an op forgets to write fails the comparison. */
    public static Tensor poisoned(Backend backend, DType dtype, long... shape) {
        try (Tensor host = TestTensors.poisoned(dtype, shape)) {
            return toDevice(backend, host);
        }
    }

    /** Fails unless the device tensor is close to the host expectation (see TestTensors.assertClose). */
    public static void assertClose(String what, Tensor expectedHost, Backend backend, Tensor actualOnDevice, double atol, double rtol) {
        try (Tensor actual = toHost(backend, actualOnDevice)) {
            TestTensors.assertClose(what, expectedHost, actual, atol, rtol);
        }
    }
}
