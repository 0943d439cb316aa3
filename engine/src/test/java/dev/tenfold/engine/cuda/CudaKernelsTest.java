package dev.tenfold.engine.cuda;

import static org.junit.jupiter.api.Assertions.*;

import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Finding the fatbin on the classpath, and the error of a build without one. */
class CudaKernelsTest {

    @Test
    void aBuildWithoutKernelsSaysSo() {
        ClassLoader empty = new URLClassLoader(new URL[0], null);
        CudaUnavailableException e = assertThrows(CudaUnavailableException.class, () -> CudaKernels.readFatbin(empty));
        assertTrue(e.getMessage().startsWith("this build has no CUDA kernels: nvcc was missing when it was built"), e.getMessage());
        assertTrue(e.getMessage().contains("dev/tenfold/kernels/tenfold.fatbin"), e.getMessage());
    }

    @Test
    void readsTheResourceWhereItIs(@TempDir Path dir) throws Exception {
        Path f = dir.resolve(CudaKernels.RESOURCE);
        Files.createDirectories(f.getParent());
        Files.write(f, new byte[] {0x50, (byte) 0xed, 0x55, (byte) 0xba});
        try (URLClassLoader l = new URLClassLoader(new URL[] {dir.toUri().toURL()}, null)) {
            assertArrayEquals(new byte[] {0x50, (byte) 0xed, 0x55, (byte) 0xba}, CudaKernels.readFatbin(l));
        }
        Files.write(f, new byte[0]);
        try (URLClassLoader l = new URLClassLoader(new URL[] {dir.toUri().toURL()}, null)) {
            CudaUnavailableException e = assertThrows(CudaUnavailableException.class, () -> CudaKernels.readFatbin(l));
            assertTrue(e.getMessage().contains("empty"), e.getMessage());
        }
    }
}
