package dev.tenfold.benchmarks;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** GpuReport without a GPU: options, the table and JSON it writes, and the clean skip. */
class GpuReportTest {

    static Map<String, String> env() {
        Map<String, String> env = new LinkedHashMap<>();
        env.put("date", "2026-12-01T10:00:00Z");
        env.put("gpu", "NVIDIA H100 80GB HBM3");
        env.put("cublas", "13.1.0");
        return env;
    }

    static GpuReport.Measured ms(double ms) { return new GpuReport.Measured(ms, ms * 0.9, 10, 5); }

    /** Sample rows: copy 2000 GB/s; GEMMs 500 and 400 TFLOP/s; kernels at 90% and 80% of copy; attention; a failure. */
    static List<GpuReport.Row> rows() {
        return List.of(
                GpuReport.Row.bandwidth("copy_d2d", "copy", "device-to-device copy", "1 GiB", 2e9, ms(1.0), 0, "reference"),
                GpuReport.Row.compute("gemm_bf16_square", "gemm", "cuBLAS bf16 GEMM", "M=4096 N=4096 K=4096", 500e12, ms(1000), null),
                GpuReport.Row.compute("gemm_bf16_up", "gemm", "cuBLAS bf16 GEMM", "M=16384 N=14336 K=4096", 400e12, ms(1000), null),
                GpuReport.Row.bandwidth("rmsnorm_fwd", "kernels", "RMSNorm forward (f32)", "16384x4096 f32", 1.8e9, ms(1.0), 80, "tf_rmsnorm"),
                GpuReport.Row.bandwidth("nf4_dequant_bf16", "kernels", "NF4 | dequantize", "4096x14336", 1.6e9, ms(1.0), 85, null),
                GpuReport.Row.compute("attn_fwd_s1024", "attention", "flash forward", "B=64 S=1024", 250e12, ms(1000), null),
                GpuReport.Row.failed("adamw", "kernels", "AdamW step", "CudaOutOfMemoryException: out of memory"),
                GpuReport.Row.other("qlora_step_peak_mem", "train", "peak memory", "16384 tokens", "GiB", 21.5, Double.NaN, Double.NaN, 2,
                        "allocator"));
    }

    @Test
    void referencesAndPercentOfLimit() {
        List<GpuReport.Row> rows = rows();
        assertEquals(2000.0, GpuReport.copyReference(rows), 1e-9);
        assertEquals(500.0, GpuReport.matmulReference(rows), 1e-9);
        assertEquals(90.0, GpuReport.percentOfLimit(rows.get(3), 2000, 500), 1e-9);
        assertEquals(80.0, GpuReport.percentOfLimit(rows.get(4), 2000, 500), 1e-9);
        assertEquals(50.0, GpuReport.percentOfLimit(rows.get(5), 2000, 500), 1e-9);
        assertTrue(Double.isNaN(GpuReport.percentOfLimit(rows.get(6), 2000, 500)));
        assertTrue(Double.isNaN(GpuReport.percentOfLimit(rows.get(7), 2000, 500)));
        assertTrue(Double.isNaN(GpuReport.copyReference(List.of())));
        assertTrue(Double.isNaN(GpuReport.matmulReference(rows.subList(3, 5))));
        assertEquals(2000 / 0.9, rows.get(0).bestValue(), 1e-6);
    }

    @Test
    void markdownTable() {
        String md = GpuReport.markdown(env(), rows(), null);
        assertTrue(md.startsWith("# tenfold GPU benchmarks: NVIDIA H100 80GB HBM3, 2026-12-01T10:00:00Z\n"), md);
        assertTrue(md.contains("- cublas: 13.1.0\n"), md);
        assertTrue(md.contains("Limits: copy 2,000 GB/s"), md);
        assertTrue(md.contains("matmul 500 TFLOP/s"), md);
        assertTrue(md.contains("| rmsnorm_fwd | RMSNorm forward (f32) | 16384x4096 f32 | 1.000 | 1,800 GB/s | 90.0% | >= 80%: ok |"), md);
        assertTrue(md.contains("| nf4_dequant_bf16 | NF4 \\| dequantize | 4096x14336 | 1.000 | 1,600 GB/s | 80.0% | >= 85%: below |"), md);
        assertTrue(md.contains("| attn_fwd_s1024 | flash forward | B=64 S=1024 | 1000.000 | 250 TFLOP/s | 50.0% |  |"), md);
        assertTrue(md.contains("| adamw | AdamW step | | | FAILED | | |"), md);
        assertTrue(md.contains("| qlora_step_peak_mem | peak memory | 16384 tokens |  | 21.5 GiB |  |  |"), md);
        assertTrue(md.contains("- adamw: FAILED: CudaOutOfMemoryException: out of memory"), md);
        assertTrue(md.contains("- rmsnorm_fwd: tf_rmsnorm"), md);
        assertFalse(md.contains("Stopped early"), md);
        assertTrue(GpuReport.markdown(env(), rows(), "watchdog: x").contains("**Stopped early:** watchdog: x"));
    }

    @Test
    void jsonHasReferencesRowsAndNullsForNonFiniteNumbers() throws Exception {
        ObjectNode json = GpuReport.json(env(), rows(), null);
        JsonNode back = new ObjectMapper().readTree(new ObjectMapper().writeValueAsString(json)); // valid JSON
        assertEquals("tenfold gpu-report", back.path("tool").asText());
        assertEquals("NVIDIA H100 80GB HBM3", back.path("env").path("gpu").asText());
        assertEquals(2000.0, back.path("reference").path("copy_gbps").asDouble(), 1e-9);
        assertEquals(500.0, back.path("reference").path("matmul_tflops").asDouble(), 1e-9);
        assertTrue(back.path("aborted").isNull());
        JsonNode rms = back.path("rows").get(3);
        assertEquals("rmsnorm_fwd", rms.path("id").asText());
        assertEquals("GB/s", rms.path("unit").asText());
        assertEquals(1800.0, rms.path("value").asDouble(), 1e-9);
        assertEquals(1.8e9, rms.path("bytes").asDouble(), 1);
        assertEquals(90.0, rms.path("pct_of_limit").asDouble(), 1e-9);
        assertEquals(80.0, rms.path("target_pct").asDouble());
        assertEquals(10, rms.path("samples").asInt());
        assertEquals(5, rms.path("runs_per_sample").asInt());
        assertEquals(500e12, back.path("rows").get(1).path("flops").asDouble(), 1);
        JsonNode failed = back.path("rows").get(6);
        assertEquals("CudaOutOfMemoryException: out of memory", failed.path("error").asText());
        assertFalse(failed.has("value"));
        JsonNode mem = back.path("rows").get(7);
        assertTrue(mem.path("ms").isNull(), "NaN is written as null");
        assertTrue(mem.path("pct_of_limit").isNull());
        assertEquals(21.5, mem.path("value").asDouble());
        // no GEMM measured: the reference is null, not NaN
        JsonNode none = new ObjectMapper().readTree(GpuReport.json(env(), List.of(), "why").toString());
        assertTrue(none.path("reference").path("matmul_tflops").isNull());
        assertEquals("why", none.path("aborted").asText());
    }

    @Test
    void rateAndTargetFormatting() {
        assertEquals("2,684", GpuReport.rate(2684.4));
        assertEquals("93.4", GpuReport.rate(93.44));
        assertEquals("7.52", GpuReport.rate(7.523));
        assertEquals("n/a", GpuReport.rate(Double.NaN));
        assertEquals("", GpuReport.target(0, 50));
        assertEquals(">= 80%", GpuReport.target(80, Double.NaN));
        assertEquals(">= 80%: ok", GpuReport.target(80, 80));
        assertEquals(">= 85%: below", GpuReport.target(85, 84.9));
        assertEquals("1 GiB", GpuReport.gib(1L << 30));
        assertEquals("64 KiB", GpuReport.gib(64 << 10));
        assertEquals("3 MiB", GpuReport.gib(3L << 20));
    }

    @Test
    void nvidiaDriverVersionFromProc() {
        assertEquals("580.82.07", GpuReport.parseNvidiaDriverVersion(
                "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.82.07  Fri Aug 22 21:05:44 UTC 2025\nGCC version:  gcc 12\n"));
        assertEquals("550.54.15", GpuReport.parseNvidiaDriverVersion(
                "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build  (dvs-builder@U16)"));
        assertEquals("unknown", GpuReport.parseNvidiaDriverVersion("nothing here"));
    }

    @Test
    void optionsDefaultsAndChecks() {
        GpuReport.Options o = GpuReport.Options.parse();
        assertEquals(0, o.device());
        assertEquals(Path.of("target", "gpu-report"), o.out());
        assertEquals(GpuReport.SECTIONS, o.sections());
        assertEquals(3, o.warmup());
        assertEquals(10, o.reps());
        assertEquals(25.0, o.targetMs());
        assertEquals(16384, o.trainTokens());
        assertEquals(2, o.trainSteps());
        assertEquals(300, o.caseTimeoutSeconds());
        GpuReport.Options q = GpuReport.Options.parse("--quick", "--device", "cuda:1", "--sections", "train, copy,copy", "--out", "x");
        assertEquals(1, q.warmup());
        assertEquals(3, q.reps());
        assertEquals(1, q.trainSteps());
        assertEquals(1, q.device());
        assertEquals(List.of("copy", "train"), q.sections(), "canonical order, no duplicates");
        assertEquals(Path.of("x"), q.out());
        GpuReport.Options n = GpuReport.Options.parse("--no-train", "--reps", "4", "--warmup", "0", "--target-ms", "0", "--train-tokens", "8192");
        assertEquals(List.of("copy", "gemm", "kernels", "attention"), n.sections());
        assertEquals(4, n.reps());
        assertEquals(0, n.warmup());
        assertEquals(0.0, n.targetMs());
        assertEquals(8192, n.trainTokens());
        GpuReport.Options s = GpuReport.Options.parse("--smoke");
        assertEquals(0, s.warmup());
        assertEquals(1, s.reps());
        assertEquals(1, s.maxRuns());
        assertEquals(64, s.trainTokens());
        assertEquals(0, GpuReport.Options.parse("--device", "cuda").device());
        assertTrue(GpuReport.Options.parse("--help").help());

        assertBad("unknown argument '--fast'", "--fast");
        assertBad("--out needs a value", "--out");
        assertBad("unknown section 'flash' (sections: copy,gemm,kernels,attention,train)", "--sections", "copy,flash");
        assertBad("--sections needs at least one of", "--sections", ",");
        assertBad("--reps takes an integer >= 1, got '0'", "--reps", "0");
        assertBad("--warmup takes an integer >= 0, got 'x'", "--warmup", "x");
        assertBad("--target-ms takes a number >= 0, got '-1'", "--target-ms", "-1");
        assertBad("--device takes a GPU index (0, cuda:0), got 'gpu'", "--device", "gpu");
        assertBad("--device takes a GPU index (0, cuda:0), got 'cuda:-1'", "--device", "cuda:-1");
    }

    private static void assertBad(String message, String... args) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GpuReport.Options.parse(args));
        assertTrue(e.getMessage().startsWith(message), e.getMessage());
    }

    @Test
    void badArgumentsExitTwoWithTheUsage() {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int rc = GpuReport.run(new String[] {"--reps", "zero"}, new PrintStream(out), new PrintStream(err), false);
        assertEquals(2, rc);
        String e = err.toString(StandardCharsets.UTF_8);
        assertTrue(e.startsWith("gpu-report: --reps takes an integer >= 1, got 'zero'\nusage: gpu-report"), e);
        assertEquals("", out.toString(StandardCharsets.UTF_8));
        ByteArrayOutputStream help = new ByteArrayOutputStream();
        assertEquals(0, GpuReport.run(new String[] {"--help"}, new PrintStream(help), new PrintStream(err), false));
        assertTrue(help.toString(StandardCharsets.UTF_8).startsWith("usage: gpu-report"));
    }

    // cuda:99 is on no machine: without a driver, or with one, it does not open

    @Test
    void withoutAGpuItSaysWhyAndExitsZero(@TempDir Path dir) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int rc = GpuReport.run(new String[] {"--out", dir.toString(), "--device", "99"}, new PrintStream(out), new PrintStream(err), false);
        assertEquals(0, rc);
        JsonNode line = new ObjectMapper().readTree(out.toString(StandardCharsets.UTF_8));
        assertTrue(line.path("skipped").asText().startsWith("no usable GPU: "), line.toString());
        assertTrue(err.toString(StandardCharsets.UTF_8).startsWith("gpu-report: skipped, no usable GPU: "), err.toString());
        JsonNode file = new ObjectMapper().readTree(Files.readString(dir.resolve(GpuReport.REPORT_JSON)));
        assertEquals(line.path("skipped").asText(), file.path("skipped").asText());
    }

    @Test
    void whereAGpuIsRequiredHavingNoneIsAFailure(@TempDir Path dir) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int rc = GpuReport.run(new String[] {"--out", dir.toString(), "--device", "99"}, new PrintStream(out), new PrintStream(err), true);
        assertEquals(1, rc);
        assertTrue(err.toString(StandardCharsets.UTF_8).startsWith("gpu-report: FAILED (TENFOLD_REQUIRE_GPU=1), no usable GPU: "),
                err.toString());
        JsonNode file = new ObjectMapper().readTree(Files.readString(dir.resolve(GpuReport.REPORT_JSON)));
        assertTrue(file.path("failed").asText().startsWith("no usable GPU: "), file.toString());
        assertTrue(file.path("skipped").isMissingNode(), file.toString());
    }

    @Test
    void theSummaryLineCountsRowsAndNamesTheFirstFailure() {
        GpuReport.Row ok = GpuReport.Row.failed("copy", "copy", "copy", null);
        GpuReport.Row bad = GpuReport.Row.failed("rmsnorm_fwd", "kernels", "RMSNorm", "CudaException: boom");
        assertEquals("gpu-report: 3 rows, 1 measured, 2 failed; first failure: rmsnorm_fwd: CudaException: boom",
                GpuReport.summary(List.of(ok, bad, bad), null));
        assertEquals("gpu-report: 1 rows, 1 measured, 0 failed, stopped; first failure: watchdog",
                GpuReport.summary(List.of(ok), "watchdog"));
    }
}
