package dev.tenfold.engine.cuda;

import static org.junit.jupiter.api.Assertions.*;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CUDA backend's host side on any machine with a C compiler: src/test/c/fake_cuda.c (driver, cuBLAS and
 * NCCL entry points over host memory, every kernel as a host loop) is compiled, put where TENFOLD_CUDA_LIBS
 * points, and {@link FakeCudaMain} runs the kernel self-check and more against it in a child JVM. This is
 * what catches a wrong FFM signature, argument packing, pointer offset or chunking without a GPU; what it
 * cannot catch is a GPU's own behaviour, which the "gpu" tests check.
 */
class FakeCudaTest {

    @Test
    void theHostSideRunsEndToEndOnAFakeCudaStack(@TempDir Path dir) throws Exception {
        String cc = compiler();
        Assumptions.assumeTrue(cc != null, "no C compiler (cc or gcc) here to build the fake CUDA stack");
        Path source = KernelAbiTest.sourceFile(Path.of("src/test/c/fake_cuda.c")).toAbsolutePath();
        Path libs = Files.createDirectories(dir.resolve("lib")), lib = libs.resolve("libfakecuda.so");
        run(List.of(cc, "-shared", "-fPIC", "-O1", "-o", lib.toString(), source.toString(), "-lm"), dir, 120);
        for (String soname : new String[] {"libcuda.so.1", "libcublas.so.13", "libnccl.so.2"}) {
            Files.createSymbolicLink(libs.resolve(soname), lib.getFileName()); // one library, one set of globals
        }
        Path resources = dir.resolve("fatbin");
        Path fatbin = resources.resolve(CudaKernels.RESOURCE);
        Files.createDirectories(fatbin.getParent());
        Files.writeString(fatbin, "not a real fatbin: the fake driver accepts any image");

        String javaBin = ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        ProcessBuilder pb = new ProcessBuilder(javaBin, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-Xss8m", "-cp", resources + File.pathSeparator + System.getProperty("java.class.path"),
                FakeCudaMain.class.getName());
        pb.environment().put(NativeLibrary.SEARCH_PATH_ENV, libs.toString());
        String out = run(pb, 600);
        System.out.println(out);
    }

    private static String compiler() {
        for (String c : new String[] {"cc", "gcc", "clang"}) {
            for (String d : System.getenv().getOrDefault("PATH", "/usr/bin").split(File.pathSeparator)) {
                if (Files.isExecutable(Path.of(d, c))) return Path.of(d, c).toString();
            }
        }
        return null;
    }

    private static void run(List<String> command, Path dir, int seconds) throws IOException, InterruptedException {
        run(new ProcessBuilder(command).directory(dir.toFile()), seconds);
    }

    private static String run(ProcessBuilder pb, int seconds) throws IOException, InterruptedException {
        Process p = pb.redirectErrorStream(true).start();
        byte[] output = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(seconds, TimeUnit.SECONDS), "timed out: " + pb.command());
        String out = new String(output, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), String.join(" ", pb.command()) + " failed:\n" + out);
        return out;
    }
}
