package dev.tenfold.engine;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.cuda.CudaDriver;
import dev.tenfold.engine.cuda.CudaUnavailableException;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

class BackendsTest {

    @Test
    void cpuIsTheFastCpuBackend() {
        assertSame(CpuBackend.fast(), Backends.forDevice(Device.CPU));
        assertSame(CpuBackend.fast(), Backends.forDevice(Device.parse("cpu")));
        assertThrows(IllegalArgumentException.class, () -> Backends.forDevice(null));
    }

    @Test
    void cudaWithoutADriverSaysSoPlainly() {
        Assumptions.assumeTrue(CudaDriver.tryGet().isEmpty(), "this machine has a CUDA driver");
        CudaUnavailableException e = assertThrows(CudaUnavailableException.class, () -> Backends.forDevice(Device.parse("cuda")));
        assertTrue(e.getMessage().startsWith("cuda:0: no CUDA driver found (libcuda.so.1"), e.getMessage());
        assertFalse(e.getMessage().contains("--device"), "the library speaks of devices, the command line of flags: " + e.getMessage());
        // asked again: the same answer, without reloading anything
        CudaUnavailableException again = assertThrows(CudaUnavailableException.class, () -> Backends.forDevice(Device.cuda(1)));
        assertTrue(again.getMessage().startsWith("cuda:1: no CUDA driver found"), again.getMessage());
    }
}
