package dev.tenfold.benchmarks;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * GpuReport end to end on the engine's fake CUDA stack (engine/src/test/c/fake_cuda.c: the driver, cuBLAS and
 * every kernel as host loops), at toy sizes ({@code --smoke}), in a child JVM: every section runs — the events,
 * the direct flash and cross-entropy launches with their argument lists, the NF4 rotation, the Llama training
 * step on an NF4 base with LoRA — and writes a report with every row and no failure. Then GpuComparison reads
 * that report. What this cannot show is speed or the GPU's own behaviour.
 */
class GpuReportFakeCudaTest {

    static Path fakeSource() {
        for (Path p : new Path[] {Path.of("..", "engine", "src", "test", "c", "fake_cuda.c"), Path.of("engine", "src", "test", "c", "fake_cuda.c")}) {
            if (Files.isRegularFile(p)) return p.toAbsolutePath();
        }
        throw new IllegalStateException("engine/src/test/c/fake_cuda.c not found from " + Path.of("").toAbsolutePath());
    }

    static String compiler() {
        for (String c : new String[] {"cc", "gcc", "clang"}) {
            for (String d : System.getenv().getOrDefault("PATH", "/usr/bin").split(File.pathSeparator)) {
                if (Files.isExecutable(Path.of(d, c))) return Path.of(d, c).toString();
            }
        }
        return null;
    }

    @Test
    void everySectionRunsOnTheFakeStack(@TempDir Path dir) throws Exception {
        String cc = compiler();
        Assumptions.assumeTrue(cc != null, "no C compiler (cc or gcc) here to build the fake CUDA stack");
        Path libs = Files.createDirectories(dir.resolve("lib")), lib = libs.resolve("libfakecuda.so");
        String build = run(new ProcessBuilder(cc, "-shared", "-fPIC", "-O1", "-o", lib.toString(), fakeSource().toString(), "-lm"), 120);
        for (String soname : new String[] {"libcuda.so.1", "libcublas.so.13", "libnccl.so.2"}) {
            Files.createSymbolicLink(libs.resolve(soname), lib.getFileName());
        }
        Path resources = dir.resolve("fatbin");
        Path fatbin = resources.resolve("dev/tenfold/kernels/tenfold.fatbin");
        Files.createDirectories(fatbin.getParent());
        Files.writeString(fatbin, "not a real fatbin: the fake driver accepts any image");
        Path out = dir.resolve("report");

        String javaBin = ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        ProcessBuilder pb = new ProcessBuilder(javaBin, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-Xss8m", "-cp", resources + File.pathSeparator + System.getProperty("java.class.path"), GpuReport.class.getName(),
                "--smoke", "--out", out.toString(), "--case-timeout", "120");
        pb.environment().put("TENFOLD_CUDA_LIBS", libs.toString());
        String log = build + run(pb, 600);

        JsonNode report = new ObjectMapper().readTree(Files.readString(out.resolve(GpuReport.REPORT_JSON)));
        assertEquals("Fake GPU 0", report.path("env").path("gpu").asText(), log);
        assertEquals("13.1.0", report.path("env").path("cublas").asText(), log);
        assertEquals("13.0", report.path("env").path("cuda_driver_api").asText(), log);
        assertTrue(report.path("aborted").isNull(), log);
        Set<String> expected = new TreeSet<>(GpuReport.plan(GpuReport.Sizes.smoke()).keySet());
        expected.add("qlora_step");
        expected.add("qlora_step_peak_mem");
        Set<String> got = new TreeSet<>();
        List<String> failures = new ArrayList<>();
        for (JsonNode r : report.path("rows")) {
            got.add(r.path("id").asText());
            if (r.has("error")) failures.add(r.path("id").asText() + ": " + r.path("error").asText());
            else assertTrue(r.path("ms").isNull() || r.path("ms").asDouble() >= 0, r.toString());
        }
        assertEquals(List.of(), failures, log);
        assertEquals(expected, got, log);
        for (JsonNode r : report.path("rows")) {
            if (r.path("id").asText().equals("qlora_step")) {
                assertTrue(r.path("value").asDouble() > 0, "tokens/s: " + r);
                assertTrue(r.path("note").asText().contains("loss "), r.toString());
                assertFalse(r.path("note").asText().contains("loss NaN"), r.toString());
            }
            if (r.path("id").asText().equals("qlora_step_peak_mem")) assertTrue(r.path("value").asDouble() > 0, r.toString());
            if (r.path("id").asText().equals("embedding_fwd_bf16")) assertFalse(r.path("note").asText().contains("not -1"), r.toString());
        }
        String md = Files.readString(out.resolve(GpuReport.REPORT_MD));
        assertTrue(md.contains("| rmsnorm_fwd | RMSNorm forward (f32) | 16x64 f32 |"), md);

        // the last step of run.sh on this output, with peers that did not run
        java.io.ByteArrayOutputStream o = new java.io.ByteArrayOutputStream(), e = new java.io.ByteArrayOutputStream();
        int rc = GpuComparison.run(new String[] {"--report", out.resolve(GpuReport.REPORT_JSON).toString(), "--peers",
                out.resolve("kernel_peers.jsonl").toString(), "--out", out.toString()}, new java.io.PrintStream(o), new java.io.PrintStream(e));
        assertEquals(0, rc, e.toString(StandardCharsets.UTF_8));
        assertTrue(o.toString(StandardCharsets.UTF_8).contains("| qlora_step | tokens/s |"), o.toString(StandardCharsets.UTF_8));
        assertTrue(Files.exists(out.resolve(GpuComparison.resultsFileName(report))));
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
