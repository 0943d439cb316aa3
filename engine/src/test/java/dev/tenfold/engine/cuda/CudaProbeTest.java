package dev.tenfold.engine.cuda;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CudaProbeTest {

    @Test
    void findsASystemLibraryAndReportsWhatItTried() {
        List<String> tried = new ArrayList<>();
        var found = NativeLibrary.find(List.of("libtenfold-does-not-exist.so.9", "libc.so.6"), tried);
        assertTrue(found.isPresent(), "libc through the fallback: " + tried);
        assertEquals("libc.so.6", found.get().loaded());
        assertEquals(1, tried.size());
        assertTrue(tried.get(0).startsWith("libtenfold-does-not-exist.so.9"), tried.toString());
        // a downcall through the same machinery: strlen from libc
        try (var arena = java.lang.foreign.Arena.ofConfined()) {
            var strlen = java.lang.foreign.Linker.nativeLinker().downcallHandle(found.get().lookup().find("strlen").orElseThrow(),
                    java.lang.foreign.FunctionDescriptor.of(java.lang.foreign.ValueLayout.JAVA_LONG, java.lang.foreign.ValueLayout.ADDRESS));
            assertEquals(7L, (long) strlen.invokeExact(arena.allocateFrom("tenfold")));
        } catch (Throwable e) {
            fail(e);
        }
    }

    @Test
    void aLibraryThatDoesNotLoadIsReportedWithTheLoadersOwnReason(@TempDir Path dir) throws Exception {
        Path broken = dir.resolve("libcublas.so.13");
        Files.writeString(broken, "not a shared library, only text that is longer than an ELF header. ".repeat(4));
        List<String> tried = new ArrayList<>();
        assertTrue(NativeLibrary.find(List.of("libtenfold-does-not-exist.so.9", broken.toString()), tried).isEmpty());
        assertEquals(List.of("libtenfold-does-not-exist.so.9: cannot open shared object file: No such file or directory",
                broken + ": invalid ELF header"), tried);
    }

    @Test
    void probeNeverThrowsAndExplainsWhatIsMissing() {
        CudaProbe.Report r = CudaProbe.probe();
        if (r.driver() == null) {
            assertNotNull(r.driverProblem());
            assertFalse(r.hasGpu());
        } else {
            System.out.println("CUDA driver " + r.driver() + ", GPUs " + r.gpus());
        }
        assertTrue(r.cublas() != null || r.cublasProblem().contains(NativeLibrary.SEARCH_PATH_ENV));
        assertTrue(r.nccl() != null || r.ncclProblem().contains(NativeLibrary.SEARCH_PATH_ENV));
    }
}
