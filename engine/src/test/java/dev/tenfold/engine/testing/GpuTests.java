package dev.tenfold.engine.testing;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cuda.CudaBackend;
import dev.tenfold.engine.cuda.CudaUnavailableException;
import org.junit.jupiter.api.Assumptions;

/**
 * Helpers for tests tagged "gpu": the CUDA backend or a cleanly skipped test that says why there is none
 * (no driver, no GPU, no kernels in this build), and host/device moves for comparing against the CPU
 * reference. Any module's tests can use them through the engine's test jar.
 */
public final class GpuTests {
    private GpuTests() {}

    /** The backend of cuda:0, or the calling test is skipped with the reason. */
    public static CudaBackend backendOrSkip() { return backendOrSkip(0); }

    /** The backend of cuda:index, or the calling test is skipped with the reason. */
    public static CudaBackend backendOrSkip(int index) {
        try {
            return CudaBackend.open(index);
        } catch (CudaUnavailableException e) {
            Assumptions.abort("no CUDA for this test (cuda:" + index + "): " + e.getMessage());
            throw e; // not reached
        }
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
