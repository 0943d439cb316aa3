package dev.tenfold.benchmarks;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `.gpu/run.sh memory` (GpuMemoryCheck) on the engine's fake CUDA stack, at toy sizes ({@code --smoke}), in a child
 * JVM: the recipe's step is built, planned and run for each length without and with offloaded checkpoints, and the
 * caching allocator's measured peak is the plan's to the byte. What it cannot show is a GPU's time, or its driver's own
 * memory.
 */
class GpuMemoryCheckFakeCudaTest {

    @Test
    void thePlanIsTheAllocatorsPeakOnTheFakeStack(@TempDir Path dir) throws Exception {
        String cc = GpuReportFakeCudaTest.compiler();
        Assumptions.assumeTrue(cc != null, "no C compiler (cc or gcc) here to build the fake CUDA stack");
        Path libs = Files.createDirectories(dir.resolve("lib")), lib = libs.resolve("libfakecuda.so");
        Process build = new ProcessBuilder(cc, "-shared", "-fPIC", "-O1", "-o", lib.toString(), GpuReportFakeCudaTest.fakeSource().toString(), "-lm")
                .redirectErrorStream(true).start();
        String buildLog = new String(build.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(build.waitFor(120, TimeUnit.SECONDS) && build.exitValue() == 0, buildLog);
        for (String soname : new String[] {"libcuda.so.1", "libcublas.so.13", "libnccl.so.2"}) {
            Files.createSymbolicLink(libs.resolve(soname), lib.getFileName());
        }
        Path fatbin = dir.resolve("fatbin/dev/tenfold/kernels/tenfold.fatbin");
        Files.createDirectories(fatbin.getParent());
        Files.writeString(fatbin, "not a real fatbin: the fake driver accepts any image");
        Path out = dir.resolve("out");
        String javaBin = ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        ProcessBuilder pb = new ProcessBuilder(javaBin, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-Xss8m", "-cp", dir.resolve("fatbin") + File.pathSeparator + System.getProperty("java.class.path"),
                GpuMemoryCheck.class.getName(), "--smoke", "--out", out.toString());
        pb.environment().put("TENFOLD_CUDA_LIBS", libs.toString());
        Process p = pb.redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(600, TimeUnit.SECONDS), "timed out:\n" + log);
        assertEquals(0, p.exitValue(), log);
        assertTrue(log.contains("| tokens | offload | planned GiB | measured GiB |"), log);
        JsonNode cases = new ObjectMapper().readTree(Files.readString(out.resolve(GpuMemoryCheck.JSON))).path("cases");
        assertEquals(4, cases.size(), log);
        for (JsonNode c : cases) {
            assertEquals(0, c.path("difference_bytes").asLong(), c + "\n" + log);
            assertTrue(c.path("measured_bytes").asLong() > 0 && c.path("step_seconds").asDouble() > 0, c.toString());
        }
        assertTrue(cases.get(1).path("measured_bytes").asLong() < cases.get(0).path("measured_bytes").asLong(),
                "offloaded checkpoints hold less on the device:\n" + log);
    }
}
