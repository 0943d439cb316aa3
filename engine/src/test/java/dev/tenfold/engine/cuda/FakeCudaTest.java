package dev.tenfold.engine.cuda;

import static org.junit.jupiter.api.Assertions.*;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CUDA backend's host side on any machine with a C compiler: src/test/c/fake_cuda.c (driver, cuBLAS and
 * NCCL entry points over host memory, every kernel as a host loop) is compiled, put where TENFOLD_CUDA_LIBS
 * points, and {@link FakeCudaMain} runs the kernel self-check and more against it in a child JVM. This is
 * what catches a wrong FFM signature, argument packing, pointer offset or chunking without a GPU; what it
 * cannot catch is a GPU's own behaviour, which the "gpu" tests check. {@link FakeCudaScenarios} then breaks the
 * fake on purpose (a failing open, an old driver, a faulting kernel), one child JVM each.
 */
class FakeCudaTest {
    @TempDir static Path dir;
    private static Path libs, resources;

    /** Builds the fake stack once: the library under its three sonames, and a stand-in fatbin on a classpath folder. */
    @BeforeAll
    static void buildTheFakeStack() throws Exception {
        String cc = compiler();
        Assumptions.assumeTrue(cc != null, "no C compiler (cc or gcc) here to build the fake CUDA stack");
        Path source = KernelAbiTest.sourceFile(Path.of("src/test/c/fake_cuda.c")).toAbsolutePath();
        libs = Files.createDirectories(dir.resolve("lib"));
        Path lib = libs.resolve("libfakecuda.so");
        run(List.of(cc, "-shared", "-fPIC", "-O1", "-o", lib.toString(), source.toString(), "-lm"), dir, 120);
        for (String soname : new String[] {"libcuda.so.1", "libcublas.so.13", "libnccl.so.2"}) {
            Files.createSymbolicLink(libs.resolve(soname), lib.getFileName()); // one library, one set of globals
        }
        resources = dir.resolve("fatbin");
        Path fatbin = resources.resolve(CudaKernels.RESOURCE);
        Files.createDirectories(fatbin.getParent());
        Files.writeString(fatbin, "not a real fatbin: the fake driver accepts any image");
    }

    @Test
    void theHostSideRunsEndToEndOnAFakeCudaStack() throws Exception {
        System.out.println(child(FakeCudaMain.class, Map.of()));
    }

    @Test
    void aFailedOpenGivesTheContextBackAndIsNotRetried() throws Exception {
        child(FakeCudaScenarios.class, Map.of("FAKE_CUDA_MODULE_LOAD_ERROR", "209"), "open-fails");
    }

    @Test
    void aDriverOlderThanCuda13IsRefusedInOneLine() throws Exception {
        child(FakeCudaScenarios.class, Map.of("FAKE_CUDA_DRIVER_VERSION", "12080"), "old-driver");
    }

    @Test
    void theSelfCheckStopsAtTheFirstStickyErrorAndNamesItsKernel() throws Exception {
        System.out.println(child(FakeCudaScenarios.class, Map.of("FAKE_CUDA_FAULT_KERNEL", "tf_softmax_fwd_f32"), "sticky-error"));
    }

    @Test
    void theAtomicAttentionBackwardIsASettingAndNeverWaits() throws Exception {
        child(FakeCudaScenarios.class, Map.of(CudaBackend.DETERMINISTIC_ENV, "0", "FAKE_CUDA_FLASH_ORDER_TIMEOUT", "1"), "atomic-attention");
    }

    /** Runs {@code main} in a JVM whose TENFOLD_CUDA_LIBS is the fake stack; fails unless it exits 0. */
    private static String child(Class<?> main, Map<String, String> env, String... args) throws Exception {
        String javaBin = ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        List<String> command = new ArrayList<>(List.of(javaBin, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-Xss8m", "-cp", resources + File.pathSeparator + System.getProperty("java.class.path"), main.getName()));
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().put(NativeLibrary.SEARCH_PATH_ENV, libs.toString());
        pb.environment().putAll(env);
        return run(pb, 600);
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
