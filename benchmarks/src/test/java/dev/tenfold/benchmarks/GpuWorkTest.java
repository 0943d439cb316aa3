package dev.tenfold.benchmarks;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** The byte and FLOP accounting of the GPU benchmarks, on numbers worked out by hand. */
class GpuWorkTest {

    @Test
    void copyCountsReadAndWrite() {
        assertEquals(2L << 30, GpuWork.copyBytes(1L << 30));
    }

    @Test
    void nf4DequantCountsCodesStatisticsAndOutput() {
        long n = 4096L * 14336; // 58,720,256 elements, 917,504 blocks, 3,584 nested blocks
        // double quantization to bf16: 29,360,128 packed + 917,504 u8 absmax + 14,336 nested f32 + 1,024 code table + 117,440,512 out
        assertEquals(29_360_128L + 917_504 + 14_336 + 1_024 + 117_440_512, GpuWork.nf4DequantBytes(n, true, 2));
        // single quantization to f32: f32 absmax per block
        assertEquals(29_360_128L + 4 * 917_504 + 4 * n, GpuWork.nf4DequantBytes(n, false, 4));
        // a block count that is not a multiple of 256 still has its last nested absmax
        assertEquals(64 / 2 + 1 + 4 + 1024 + 2 * 64, GpuWork.nf4DequantBytes(64, true, 2));
    }

    @Test
    void elementwiseAndRowKernels() {
        assertEquals(4L * (2 * 16384 * 4096 + 4096 + 16384), GpuWork.rmsnormFwdBytes(16384, 4096));
        assertEquals(536_952_832L, GpuWork.rmsnormFwdBytes(16384, 4096));
        assertEquals(4L * (2L * 16384 * 32 * 128 + 16384 + 64), GpuWork.ropeBytes(16384, 32, 128));
        assertEquals(12L * 16384 * 14336, GpuWork.swigluFwdBytes(16384L * 14336));
        assertEquals(2_800_000_000L, GpuWork.adamwBytes(100_000_000L)); // 7 f32 streams
        assertEquals(6L * 1000, GpuWork.castBytes(1000, 4, 2));
        assertEquals(6L * 1000, GpuWork.castBytes(1000, 2, 4));
        assertEquals(16384L * 4096 * 6 + 4 * 16384, GpuWork.embeddingFwdBytes(16384, 4096, 2));
        assertEquals(4L * 4096 * 8192 + 24 * 4096, GpuWork.ceStatsBytes(4096, 8192));
        assertEquals(8L * 4096 * 8192 + 12 * 4096, GpuWork.ceGradBytes(4096, 8192));
        assertEquals(8L * 16384 * 4096, GpuWork.softmaxFwdBytes(16384, 4096));
    }

    @Test
    void flopsFollowReference() {
        assertEquals(2.0 * 4096 * 4096 * 4096, GpuWork.gemmFlops(4096, 4096, 4096));
        assertEquals(1.37438953472e11, GpuWork.gemmFlops(4096, 4096, 4096));
        // REFERENCE.md: forward 4 B S^2 H d, halved for causal; backward 2.5 x forward
        double fwd = 4.0 * 4 * 16384.0 * 16384 * 32 * 128 / 2;
        assertEquals(8.796093022208e12, fwd);
        assertEquals(fwd, GpuWork.attentionFwdFlops(4, 16384, 32, 128, true));
        assertEquals(2 * fwd, GpuWork.attentionFwdFlops(4, 16384, 32, 128, false));
        assertEquals(2.5 * fwd, GpuWork.attentionBwdFlops(4, 16384, 32, 128, true));
        assertEquals(3.5 * fwd, GpuWork.attentionFwdBwdFlops(4, 16384, 32, 128, true));
    }

    @Test
    void ratesAndPercent() {
        assertEquals(2000.0, GpuWork.gbPerSecond(2e9, 1.0), 1e-9);
        assertEquals(1.0, GpuWork.tflopPerSecond(1e12, 1000.0), 1e-12);
        assertEquals(50.0, GpuWork.percent(1, 2), 1e-12);
        assertTrue(Double.isNaN(GpuWork.percent(1, 0)));
        assertTrue(Double.isNaN(GpuWork.percent(1, Double.NaN)));
    }

    @Test
    void samples() {
        assertEquals(3.0, GpuWork.median(new double[] {5, 1, 3}));
        assertEquals(2.5, GpuWork.median(new double[] {4, 1, 2, 3}));
        double[] s = {3, 1, 2};
        GpuWork.median(s);
        assertArrayEquals(new double[] {3, 1, 2}, s, "the samples are not reordered");
        assertEquals(1.0, GpuWork.min(new double[] {3, 1, 2}));
        assertThrows(IllegalArgumentException.class, () -> GpuWork.median(new double[0]));
        assertThrows(IllegalArgumentException.class, () -> GpuWork.min(new double[0]));
    }

    @Test
    void runsPerSampleFillTheTargetWithinBounds() {
        assertEquals(250, GpuWork.runsPerSample(0.1, 25, 1000));
        assertEquals(1, GpuWork.runsPerSample(40, 25, 1000));
        assertEquals(1000, GpuWork.runsPerSample(0.001, 25, 1000));
        assertEquals(1, GpuWork.runsPerSample(0, 25, 1000), "a zero reading (coarse timer) means one run");
        assertEquals(1, GpuWork.runsPerSample(Double.NaN, 25, 1000));
        assertEquals(1, GpuWork.runsPerSample(0.1, 0, 1000), "target 0: one run per sample");
        assertThrows(IllegalArgumentException.class, () -> GpuWork.runsPerSample(1, 25, 0));
    }

    @Test
    void thePlanNamesEveryBenchmarkWithItsWork() {
        Map<String, GpuReport.Planned> plan = GpuReport.plan(GpuReport.Sizes.full());
        assertEquals("1 GiB", plan.get("copy_d2d").shape());
        assertEquals(2.0 * (1L << 30), plan.get("copy_d2d").work());
        assertEquals("M=16384 N=14336 K=4096", plan.get("gemm_bf16_up").shape());
        assertEquals("4096x14336", plan.get("nf4_dequant_bf16").shape());
        assertEquals(147_733_504.0, plan.get("nf4_dequant_bf16").work());
        assertEquals("100,000,000 params", plan.get("adamw").shape());
        assertEquals("B=4 S=16384 Hq=32 Hkv=8 d=128 causal", plan.get("attn_fwd_s16384").shape());
        assertEquals(3.5 * plan.get("attn_fwd_s65536").work(), plan.get("attn_fwd_bwd_s65536").work());
        assertEquals("B=1 S=65536 Hq=32 Hkv=8 d=128 causal", plan.get("attn_fwd_s65536").shape());
        assertEquals("B=4 S=16384 Hq=32 Hkv=8 d=128 causal, f32 tensors", plan.get("attn_backend_fwd_s16384").shape());
        for (GpuReport.Planned p : plan.values()) {
            assertTrue(p.work() > 0, p.toString());
            assertTrue(p.workKind().equals("bytes") || p.workKind().equals("flops"), p.toString());
        }
        // every attention sequence length keeps 64K tokens a batch
        for (int seq : GpuReport.Sizes.full().attnSeqs()) {
            assertTrue(plan.get("attn_fwd_s" + seq).shape().startsWith("B=" + 65536 / seq + " S=" + seq + " "));
        }
    }
}
