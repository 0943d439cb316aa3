package dev.tenfold.engine;

import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.cuda.CudaBackend;
import dev.tenfold.engine.cuda.CudaUnavailableException;

/** The backend that computes on a device: what `--device cpu|cuda[:N]` selects. */
public final class Backends {
    private Backends() {}

    /**
     * The fast CPU backend for {@code cpu}; for {@code cuda:N} the CUDA backend of GPU N (one per device,
     * created on first use and shared). Throws {@link CudaUnavailableException} with a message that starts
     * with "cuda:N: " and says what is missing (driver, GPU, cuBLAS or this build's kernels).
     */
    public static Backend forDevice(Device device) {
        if (device == null) throw new IllegalArgumentException("device is null");
        if (device.isCpu()) return CpuBackend.fast();
        try {
            return CudaBackend.open(device.index());
        } catch (CudaUnavailableException e) {
            throw new CudaUnavailableException(device + ": " + e.getMessage(), e);
        }
    }
}
