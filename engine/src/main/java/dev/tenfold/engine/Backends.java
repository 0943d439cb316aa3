package dev.tenfold.engine;

import dev.tenfold.engine.cpu.CpuBackend;

/**
 * The backend for a device: the fast CPU backend for {@code cpu}; the CUDA backend for
 * {@code cuda:N} (not in this build: a clear error until it is).
 */
public final class Backends {
    private Backends() {}

    public static Backend forDevice(Device d) {
        if (d.isCpu()) return CpuBackend.fast();
        throw new IllegalStateException("--device " + d + ": the CUDA backend is not in this build");
    }
}
