package dev.tenfold.benchmarks;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The comparison table from a tenfold report and sample JSON lines of the three peers. */
class GpuComparisonTest {
    static final ObjectMapper JSON = new ObjectMapper();

    /** What the peers print, including the lines that say why a figure is missing, and one broken line. */
    static final List<String> PEER_LINES = List.of(
            "{\"bench\": \"kernel_peers\", \"kind\": \"env\", \"torch\": \"2.9.0\", \"cuda\": \"13.0\", \"device\": \"NVIDIA H100 80GB HBM3\"}",
            "{\"bench\": \"kernel_peers\", \"id\": \"copy_d2d\", \"impl\": \"tensor.copy_ (uint8)\", \"shape\": \"1 GiB\", \"unit\": \"GB/s\","
                    + " \"value\": 2500.0, \"ms\": 0.8}",
            "{\"bench\": \"kernel_peers\", \"id\": \"gemm_bf16_square\", \"impl\": \"torch.mm bf16 (cuBLAS)\", \"shape\": \"M=4096 N=4096 K=4096\","
                    + " \"unit\": \"TFLOP/s\", \"value\": 625.0, \"note\": \"bf16 output\"}",
            "{\"bench\": \"kernel_peers\", \"id\": \"rmsnorm_fwd\", \"impl\": \"torch.nn.functional.rms_norm (f32)\", \"shape\": \"16384x4096 f32\","
                    + " \"unit\": \"GB/s\", \"value\": 1200.0}",
            "{\"bench\": \"kernel_peers\", \"id\": \"nf4_dequant_bf16\", \"skipped\": \"bitsandbytes not importable (ModuleNotFoundError)\"}",
            "{\"bench\": \"attention_peer\", \"kind\": \"env\", \"torch\": \"2.9.0\"}",
            "{\"bench\": \"attention_peer\", \"id\": \"attn_fwd_s1024\", \"impl\": \"torch SDPA flash (enable_gqa)\", \"shape\": \"B=64 S=2048\","
                    + " \"unit\": \"TFLOP/s\", \"value\": 200.0, \"pass\": \"fwd\", \"tflops\": 200.0}",
            "{\"bench\": \"qlora_step_peer\", \"skipped\": \"torch, transformers or peft is not importable (ModuleNotFoundError: peft)\"}",
            "{\"bench\": \"kernel_peers\", \"id\": \"adamw\", \"impl\": \"torch.optim.AdamW(fused=True)\", \"unit\": \"GB/s\", \"value\": 1900}",
            "{\"bench\": \"kernel_peers\", \"id\": \"softmax_fwd\", \"impl\": \"torch.softmax\", \"unit\": \"GB/s\", \"value\": 1500}",
            "Traceback (most recent call last):",
            "");

    static JsonNode report() {
        return GpuReport.json(GpuReportTest.env(), GpuReportTest.rows(), null);
    }

    @Test
    void readsRowsReasonsEnvironmentsAndProblems() {
        GpuComparison.PeerData d = GpuComparison.readPeers(PEER_LINES);
        assertEquals(List.of("copy_d2d", "gemm_bf16_square", "rmsnorm_fwd", "attn_fwd_s1024", "adamw", "softmax_fwd"),
                List.copyOf(d.rows().keySet()));
        assertEquals(2500.0, d.rows().get("copy_d2d").value());
        assertEquals("GB/s", d.rows().get("copy_d2d").unit());
        assertEquals(2, d.envs().size());
        assertEquals("skipped: bitsandbytes not importable (ModuleNotFoundError)", GpuComparison.reason(d, "nf4_dequant_bf16"));
        assertTrue(GpuComparison.reason(d, "qlora_step").startsWith("skipped: torch, transformers or peft"));
        assertNull(GpuComparison.reason(d, "rope_fwd"));
        assertEquals(1, d.problems().size());
        assertTrue(d.problems().get(0).startsWith("not JSON: Traceback"));
    }

    @Test
    void tableMatchesRowsById() {
        String t = GpuComparison.table(report(), GpuComparison.readPeers(PEER_LINES));
        assertTrue(t.startsWith("## tenfold vs PyTorch peers: NVIDIA H100 80GB HBM3, 2026-12-01T10:00:00Z\n"), t);
        assertTrue(t.contains("copy 2,000 GB/s, cuBLAS bf16 GEMM 500 TFLOP/s"), t);
        // tenfold 2000 vs peer 2500 GB/s: 0.80x
        assertTrue(t.contains("| copy_d2d | GB/s | 2,000 | 2,500 | tensor.copy_ (uint8) | 0.80x | 100.0% |  |"), t);
        assertTrue(t.contains("| gemm_bf16_square | TFLOP/s | 500 | 625 | torch.mm bf16 (cuBLAS) | 0.80x | 100.0% |  |"), t);
        assertTrue(t.contains("| rmsnorm_fwd | GB/s | 1,800 | 1,200 | torch.nn.functional.rms_norm (f32) | 1.50x | 90.0% | >= 80%: ok |"), t);
        assertTrue(t.contains("| nf4_dequant_bf16 | GB/s | 1,600 | — |  |  | 80.0% | >= 85%: below |"), t);
        assertTrue(t.contains("| attn_fwd_s1024 | TFLOP/s | 250 | 200 | torch SDPA flash (enable_gqa) | 1.25x | 50.0% |  |"), t);
        assertTrue(t.contains("| adamw | | FAILED | 1,900 | torch.optim.AdamW(fused=True) | | | |"), t);
        // memory: lower is better, so the ratio is peer / tenfold; no peer here
        assertTrue(t.contains("| qlora_step_peak_mem | GiB | 21.5 | — |  |  |  |  |"), t);
        // a peer row tenfold did not measure is listed too
        assertTrue(t.contains("| softmax_fwd | GB/s | — | 1,500 | torch.softmax | | | |"), t);
        assertTrue(t.contains("- nf4_dequant_bf16: no peer figure (skipped: bitsandbytes not importable (ModuleNotFoundError))"), t);
        assertTrue(t.contains("- qlora_step_peak_mem: no peer figure (skipped: torch, transformers or peft"), t);
        assertTrue(t.contains("- attn_fwd_s1024: shapes differ: tenfold B=64 S=1024, peer B=64 S=2048"), t);
        assertTrue(t.contains("- gemm_bf16_square (peer): bf16 output"), t);
        assertTrue(t.contains("- adamw: tenfold FAILED: CudaOutOfMemoryException: out of memory"), t);
        assertTrue(t.contains("- qlora_step_peer: skipped: torch, transformers or peft"), t);
        assertTrue(t.contains("- peer output: not JSON: Traceback"), t);
    }

    @Test
    void memoryRatioIsPeerOverTenfold() {
        List<String> lines = List.of("{\"bench\": \"qlora_step_peer\", \"id\": \"qlora_step_peak_mem\", \"unit\": \"GiB\", \"value\": 43.0,"
                + " \"impl\": \"transformers\"}");
        String t = GpuComparison.table(report(), GpuComparison.readPeers(lines));
        assertTrue(t.contains("| qlora_step_peak_mem | GiB | 21.5 | 43.0 | transformers | 2.00x |  |  |"), t);
    }

    @Test
    void aSkippedTenfoldReportStillGivesATable() throws Exception {
        JsonNode skipped = JSON.readTree("{\"tool\": \"tenfold gpu-report\", \"skipped\": \"no usable GPU: no CUDA driver found\"}");
        String t = GpuComparison.table(skipped, GpuComparison.readPeers(PEER_LINES));
        assertTrue(t.contains("tenfold's report was skipped: no usable GPU: no CUDA driver found"), t);
        assertTrue(t.contains("copy n/a GB/s"), t);
        assertTrue(t.contains("| copy_d2d | GB/s | — | 2,500 |"), t);
    }

    @Test
    void resultsFileNames() throws Exception {
        assertEquals("h100-80gb-hbm3", GpuComparison.gpuSlug("NVIDIA H100 80GB HBM3"));
        assertEquals("h200", GpuComparison.gpuSlug("NVIDIA H200"));
        assertEquals("gpu", GpuComparison.gpuSlug("  "));
        assertEquals("2026-12-01-h100-80gb-hbm3.md", GpuComparison.resultsFileName(report()));
        String draft = GpuComparison.resultsDraft(report(), GpuComparison.readPeers(PEER_LINES), "TABLE", "# title\nBODY\n", "commit abc");
        assertTrue(draft.startsWith("# GPU benchmarks: NVIDIA H100 80GB HBM3, 2026-12-01T10:00:00Z\n"), draft);
        assertTrue(draft.contains("Bundle: commit abc"), draft);
        assertTrue(draft.contains("- cublas: 13.1.0"), draft);
        assertTrue(draft.contains("Environment (peers):"), draft);
        assertTrue(draft.contains("\nTABLE\n"), draft);
        assertTrue(draft.contains("## Every tenfold figure (gpu-report.md)\n\nBODY\n"), draft);
        assertFalse(draft.contains("# title"), draft);
    }

    @Test
    void commandLineWritesTheTableAndTheDraft(@TempDir Path dir) throws Exception {
        Path report = dir.resolve("gpu-report.json");
        Files.writeString(report, report().toString());
        Files.writeString(dir.resolve("gpu-report.md"), "# tenfold GPU benchmarks\nFULL TABLE\n");
        Path kernels = dir.resolve("kernel_peers.jsonl");
        Files.write(kernels, PEER_LINES);
        Path build = dir.resolve("BUILD");
        Files.writeString(build, "commit 0123abc\nbuilt 2026-11-30\n");
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int rc = GpuComparison.run(new String[] {"--report", report.toString(), "--peers", kernels.toString(),
                dir.resolve("attention_peer.jsonl").toString(), "--build", build.toString(), "--out", dir.toString()},
                new PrintStream(out), new PrintStream(err));
        assertEquals(0, rc, err.toString(StandardCharsets.UTF_8));
        String table = out.toString(StandardCharsets.UTF_8);
        assertTrue(table.contains("| rmsnorm_fwd | GB/s | 1,800 | 1,200 |"), table);
        assertTrue(table.contains("- attention_peer: skipped: no " + dir.resolve("attention_peer.jsonl") + " (that peer did not run)"), table);
        assertEquals(table.strip(), Files.readString(dir.resolve("comparison.md")).strip());
        String draft = Files.readString(dir.resolve("2026-12-01-h100-80gb-hbm3.md"));
        assertTrue(draft.contains("Bundle: commit 0123abc; built 2026-11-30"), draft);
        assertTrue(draft.contains("FULL TABLE"), draft);

        assertEquals(2, GpuComparison.run(new String[] {"--peers", "x"}, new PrintStream(out), new PrintStream(err)));
        assertEquals(2, GpuComparison.run(new String[] {"--report"}, new PrintStream(out), new PrintStream(err)));
    }
}
