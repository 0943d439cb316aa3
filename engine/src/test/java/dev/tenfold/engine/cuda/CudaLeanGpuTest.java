package dev.tenfold.engine.cuda;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.plan.PlanningBackend;
import dev.tenfold.engine.testing.GpuTests;
import dev.tenfold.engine.testing.TestTensors;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * What the lean training step needs from the CUDA backend, against the CPU: every op on BF16 activations (the
 * f32 op rounded once, cuBLAS's bf16 products and the bf16 flash kernels in place), copies on the second stream
 * into pinned memory and back, and, per op, the memory its temporaries take from the allocator at its peak,
 * which the planning backend must know exactly.
 */
@Tag("gpu")
class CudaLeanGpuTest {
    private static final Backend CPU = CpuBackend.fast();
    private CudaBackend gpu;
    private final SplittableRandom rng = new SplittableRandom(15);
    private final List<Tensor> made = new ArrayList<>();

    @BeforeEach
    void open() { gpu = GpuTests.backendOrSkip(); }

    @AfterEach
    void close() {
        for (int i = made.size() - 1; i >= 0; i--) made.get(i).close();
        made.clear();
    }

    private Tensor host(DType dtype, float amplitude, long... shape) {
        Tensor t = TestTensors.random(rng, dtype, amplitude, shape);
        made.add(t);
        return t;
    }

    private Tensor onGpu(Tensor h) {
        Tensor t = gpu.toDevice(h);
        made.add(t);
        return t;
    }

    private Tensor hostOut(DType dtype, long... shape) {
        Tensor t = TestTensors.poisoned(dtype, shape);
        made.add(t);
        return t;
    }

    private Tensor gpuOut(DType dtype, long... shape) {
        Tensor t = gpu.allocate(dtype, shape);
        made.add(t);
        return t;
    }

    private void assertNear(String what, Tensor cpu, Tensor onGpu, double rtol) {
        assertNear(what, cpu, onGpu, 1e-6, rtol);
    }

    private void assertNear(String what, Tensor cpu, Tensor onGpu, double atol, double rtol) {
        try (Tensor back = gpu.toHost(onGpu)) {
            TestTensors.assertClose(what, cpu, back, atol, rtol);
        }
    }

    /**
     * The flash kernels round the probabilities to bf16 before P V (as FlashAttention does), so an output's error scales
     * with the values it averages, not with itself: an output near zero may be several bf16 ulps off. The tolerance is
     * therefore a fraction of the largest value, as in FlashAttentionGpuTest.
     */
    private void assertNearAttention(String what, Tensor cpu, Tensor onGpu, double fraction, double rtol) {
        double max = 0;
        for (float x : cpu.toFloatArray()) max = Math.max(max, Math.abs(x));
        assertNear(what, cpu, onGpu, fraction * max, rtol);
    }

    /** One bf16 ulp and a little: the f32 op's results differ in the last f32 bits, then round the same or one ulp apart. */
    private static final double ONE_ULP = 8e-3;

    @Test
    void bf16ActivationsGiveTheCpusResults() {
        long t = 37, h = 64;
        Tensor a = host(DType.BF16, 1f, t, h), b = host(DType.BF16, 1f, t, h), f = host(DType.F32, 1f, t, h);
        Tensor ga = onGpu(a), gb = onGpu(b), gf = onGpu(f);
        Tensor c1 = hostOut(DType.BF16, t, h), g1 = gpuOut(DType.BF16, t, h);
        CPU.add(a, f, c1);
        gpu.add(ga, gf, g1);
        assertNear("add bf16 + f32 -> bf16", c1, g1, ONE_ULP);
        CPU.mul(a, b, c1);
        gpu.mul(ga, gb, g1);
        assertNear("mul", c1, g1, ONE_ULP);
        // rmsnorm and its backward
        Tensor w = host(DType.F32, 1f, h), rstd = hostOut(DType.F32, t), grstd = gpuOut(DType.F32, t), gw = onGpu(w);
        CPU.rmsnorm(a, w, 1e-5f, c1, rstd);
        gpu.rmsnorm(ga, gw, 1e-5f, g1, grstd);
        assertNear("rmsnorm", c1, g1, ONE_ULP);
        Tensor cdx = hostOut(DType.F32, t, h), gdx = gpuOut(DType.F32, t, h);
        Tensor cdw = hostOut(DType.F32, h), gdw = gpuOut(DType.F32, h);
        cdw.fill(0f);
        CPU.rmsnormBackward(b, a, w, rstd, cdx, cdw);
        gpu.rmsnormBackward(gb, ga, gw, grstd, gdx, gdw);
        assertNear("rmsnormBackward dx", cdx, gdx, 1e-4);
        assertNear("rmsnormBackward dWeight", cdw, gdw, 1e-4);
        // rope in place, forward and backward
        Tensor inv = host(DType.F32, 0.5f, 32), pos = Tensor.ofInts(java.util.stream.IntStream.range(0, (int) t).map(i -> 3 * i).toArray());
        made.add(pos);
        Tensor ginv = onGpu(inv), gpos = onGpu(pos), q = onGpu(a), qc = TestTensors.poisoned(DType.BF16, t, 1, h);
        made.add(qc);
        CPU.cast(a.view(t, 1, h), qc);
        for (boolean backward : new boolean[] {false, true}) {
            if (backward) CPU.ropeBackward(qc, inv, pos, 1f, qc);
            else CPU.rope(qc, inv, pos, 1f, qc);
            if (backward) gpu.ropeBackward(q.view(t, 1, h), ginv, gpos, 1f, q.view(t, 1, h));
            else gpu.rope(q.view(t, 1, h), ginv, gpos, 1f, q.view(t, 1, h));
            assertNear("rope " + (backward ? "backward" : "forward") + " in place", qc.view(t, h), q, ONE_ULP);
        }
        // swiglu and its backward
        Tensor c2 = hostOut(DType.BF16, t, h), g2 = gpuOut(DType.BF16, t, h);
        CPU.swiglu(a, b, c1);
        gpu.swiglu(ga, gb, g1);
        assertNear("swiglu", c1, g1, ONE_ULP);
        CPU.swigluBackward(f, a, b, c1, c2);
        gpu.swigluBackward(gf, ga, gb, g1, g2);
        assertNear("swigluBackward dGate", c1, g1, ONE_ULP);
        assertNear("swigluBackward dUp", c2, g2, ONE_ULP);
        // embedding into bf16
        Tensor table = host(DType.F32, 1f, 50, h), ids = Tensor.ofInts(java.util.stream.IntStream.range(0, (int) t).map(i -> (7 * i) % 50).toArray());
        made.add(ids);
        CPU.embedding(table, ids, c1);
        gpu.embedding(onGpu(table), onGpu(ids), g1);
        assertNear("embedding into bf16", c1, g1, 0);
        // products into bf16: bf16 x bf16 (cuBLAS writes bf16), f32 x f32 (through f32 copies), accumulating
        Tensor wb = host(DType.BF16, 0.2f, 24, h), wf = host(DType.F32, 0.2f, 24, h);
        Tensor c3 = hostOut(DType.BF16, t, 24), g3 = gpuOut(DType.BF16, t, 24);
        CPU.matmul(a, false, wb, true, c3, false);
        gpu.matmul(ga, false, onGpu(wb), true, g3, false);
        assertNear("matmul bf16 x bf16 -> bf16", c3, g3, ONE_ULP);
        CPU.matmul(f, false, wf, true, c3, true);
        gpu.matmul(gf, false, onGpu(wf), true, g3, true);
        assertNear("matmul f32 x f32 += bf16", c3, g3, 2 * ONE_ULP);
        // the loss from bf16 hidden states
        Tensor weight = host(DType.BF16, 0.3f, 300, h), targets = Tensor.ofInts(java.util.stream.IntStream.range(0, (int) t)
                .map(i -> i % 5 == 0 ? -100 : (11 * i) % 300).toArray());
        made.add(targets);
        Tensor cdh = hostOut(DType.BF16, t, h), gdh = gpuOut(DType.BF16, t, h);
        Tensor cdW = hostOut(DType.F32, 300, h), gdW = gpuOut(DType.F32, 300, h);
        cdW.fill(0f);
        Backend.LossSum cl = CPU.crossEntropy(a, weight, targets, 0.5f, cdh, cdW);
        Backend.LossSum gl = gpu.crossEntropy(ga, onGpu(weight), onGpu(targets), 0.5f, gdh, gdW);
        assertEquals(cl.count(), gl.count());
        assertEquals(cl.sum(), gl.sum(), 1e-2 * Math.abs(cl.sum()), "loss from bf16 hidden states"); // the GPU multiplies in bf16
        try (Tensor back = gpu.toHost(gdh)) { // the GPU rounds the logits' gradient to bf16 before its product: small entries move most
            TestTensors.assertClose("crossEntropy dHidden", cdh, back, 1e-4, 3e-2);
        }
    }

    @Test
    void bf16AttentionRunsTheFlashKernelsInPlace() {
        long t = 41;
        Tensor q = host(DType.BF16, 1f, 1, t, 2, 64), k = host(DType.BF16, 1f, 1, t, 1, 64), v = host(DType.BF16, 1f, 1, t, 1, 64);
        Tensor out = hostOut(DType.BF16, 1, t, 2, 64), lse = hostOut(DType.F32, 1, 2, t);
        Tensor gq = onGpu(q), gk = onGpu(k), gv = onGpu(v), gout = gpuOut(DType.BF16, 1, t, 2, 64), glse = gpuOut(DType.F32, 1, 2, t);
        CPU.attention(q, k, v, 0.125f, out, lse);
        gpu.attention(gq, gk, gv, 0.125f, gout, glse);
        assertNearAttention("attention out (bf16)", out, gout, 2e-2, 2e-2);
        assertNear("attention lse", lse, glse, 1e-3);
        Tensor dOut = host(DType.BF16, 1f, 1, t, 2, 64);
        Tensor dq = hostOut(DType.BF16, 1, t, 2, 64), dk = hostOut(DType.BF16, 1, t, 1, 64), dv = hostOut(DType.BF16, 1, t, 1, 64);
        Tensor gdq = gpuOut(DType.BF16, 1, t, 2, 64), gdk = gpuOut(DType.BF16, 1, t, 1, 64), gdv = gpuOut(DType.BF16, 1, t, 1, 64);
        CPU.attentionBackward(dOut, q, k, v, out, lse, 0.125f, dq, dk, dv);
        gpu.attentionBackward(onGpu(dOut), gq, gk, gv, gout, glse, 0.125f, gdq, gdk, gdv);
        assertNearAttention("attention dq", dq, gdq, 3e-2, 5e-2);
        assertNearAttention("attention dk", dk, gdk, 3e-2, 5e-2);
        assertNearAttention("attention dv", dv, gdv, 3e-2, 5e-2);
    }

    @Test
    void copiesOnTheSecondStreamGoThroughPinnedMemoryAndBack() {
        Tensor values = host(DType.BF16, 1f, 300, 64);
        try (Tensor pinned = gpu.allocateHost(DType.BF16, 300, 64); Tensor d = gpu.toDevice(values); Tensor back = gpu.allocate(DType.BF16, 300, 64)) {
            assertTrue(pinned.device().isCpu());
            Backend.Pending down = gpu.copyAsync(d, pinned);
            down.await();
            Backend.Pending up = gpu.copyAsync(pinned, back);
            up.await();
            up.await(); // idempotent
            gpu.synchronize();
            assertArrayEquals(values.toFloatArray(), pinned.toFloatArray(), "device to pinned host");
            try (Tensor h = gpu.toHost(back)) {
                assertArrayEquals(values.toFloatArray(), h.toFloatArray(), "and back");
            }
        }
    }

    /** Each op's own temporaries at its peak, in allocator blocks: what the planning backend counts is what the GPU takes. */
    @Test
    void thePlanningBackendKnowsEveryOpsTemporaries() {
        PlanningBackend plan = new PlanningBackend(PlanningBackend.Target.CUDA, Device.cuda(0), Map.of());
        long t = 53, h = 128;
        Map<String, Function<Backend, Runnable>> ops = new LinkedHashMap<>();
        ops.put("matmul f32 x bf16", be -> {
            Tensor x = be.allocate(DType.F32, t, h), w = be.allocate(DType.BF16, 96, h), y = be.allocate(DType.F32, t, 96);
            return () -> be.matmul(x, false, w, true, y, false);
        });
        ops.put("matmul f32 x f32 into bf16", be -> {
            Tensor x = be.allocate(DType.F32, t, 8), w = be.allocate(DType.F32, h, 8), y = be.allocate(DType.BF16, t, h);
            return () -> be.matmul(x, false, w, true, y, true);
        });
        ops.put("add bf16", be -> {
            Tensor x = be.allocate(DType.BF16, t, h), y = be.allocate(DType.F32, t, h);
            return () -> be.add(x, y, x);
        });
        ops.put("rmsnorm bf16 and backward", be -> {
            Tensor x = be.allocate(DType.BF16, t, h), w = be.allocate(DType.F32, h), r = be.allocate(DType.F32, t), dy = be.allocate(DType.F32, t, h);
            Tensor dw = be.allocate(DType.F32, h);
            return () -> {
                be.rmsnorm(x, w, 1e-5f, x, r);
                be.rmsnormBackward(dy, x, w, r, dy, dw);
            };
        });
        ops.put("swiglu bf16 and backward", be -> {
            Tensor g = be.allocate(DType.BF16, t, h), u = be.allocate(DType.BF16, t, h), s = be.allocate(DType.BF16, t, h), d = be.allocate(DType.BF16, t, h);
            Tensor du = be.allocate(DType.BF16, t, h);
            return () -> {
                be.swiglu(g, u, s);
                be.swigluBackward(d, g, u, s, du);
            };
        });
        ops.put("embedding", be -> {
            Tensor table = be.allocate(DType.BF16, 40, h), ids = be.allocate(DType.I32, t), o = be.allocate(DType.BF16, t, h), of = be.allocate(DType.F32, t, h);
            return () -> {
                be.embedding(table, ids, o);
                be.embedding(table, ids, of);
            };
        });
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            ops.put("attention " + dt, be -> {
                Tensor q = be.allocate(dt, 1, t, 2, 64), k = be.allocate(dt, 1, t, 1, 64), out = be.allocate(dt, 1, t, 2, 64);
                Tensor lse = be.allocate(DType.F32, 1, 2, t), dq = be.allocate(dt, 1, t, 2, 64), dk = be.allocate(dt, 1, t, 1, 64);
                Tensor dv = be.allocate(dt, 1, t, 1, 64);
                return () -> {
                    be.attention(q, k, k, 0.125f, out, lse);
                    be.attentionBackward(out, q, k, k, out, lse, 0.125f, dq, dk, dv);
                };
            });
            ops.put("crossEntropy " + dt, be -> {
                Tensor hid = be.allocate(dt, t, h), w = be.allocate(DType.BF16, 300, h), y = be.allocate(DType.I32, t);
                Tensor dh = be.allocate(dt, t, h), dw = be.allocate(DType.F32, 300, h);
                return () -> be.crossEntropy(hid, w, y, 1f, dh, dw);
            });
        }
        ops.put("reductions", be -> {
            Tensor x = be.allocate(DType.F32, t, h), y = be.allocate(DType.F32, 7);
            return () -> {
                be.sum(x);
                be.max(x);
                be.sumOfSquares(y);
                be.globalNorm(List.of(x, y));
            };
        });
        List<String> differ = new ArrayList<>();
        for (var e : ops.entrySet()) {
            long measured, planned;
            Runnable onGpu = e.getValue().apply(trackedGpu()), onPlan = e.getValue().apply(plan);
            onGpu.run(); // once, so that what the backend keeps for good (cu_seqlens) is there already
            onPlan.run();
            gpu.synchronize();
            gpu.allocator().emptyCache();
            gpu.allocator().resetPeaks();
            long base = gpu.allocator().stats().inUseBytes();
            onGpu.run();
            gpu.synchronize();
            measured = gpu.allocator().stats().peakInUseBytes() - base;
            plan.emptyCache();
            plan.resetPeak();
            long planBase = plan.now().inUse();
            onPlan.run();
            planned = plan.peak().inUse() - planBase;
            if (measured != planned) differ.add(e.getKey() + ": the GPU took " + measured + " bytes, the plan says " + planned);
            assertTrue(measured > 0 || e.getKey().startsWith("attention BF16"), e.getKey() + " takes temporaries");
        }
        assertEquals(List.of(), differ);
    }

    /** The GPU backend, its tensors closed after the test. */
    private Backend trackedGpu() {
        return new Backend() {
            @Override public String name() { return gpu.name(); }
            @Override public Device device() { return gpu.device(); }
            @Override public Tensor allocate(DType dtype, long... shape) {
                Tensor x = gpu.allocate(dtype, shape);
                if (dtype == DType.I32) fillIds(x);
                made.add(x);
                return x;
            }
            @Override public void dequantizeNf4(Tensor p, Tensor a, Tensor n, Tensor c, float o, Tensor out) { gpu.dequantizeNf4(p, a, n, c, o, out); }
            @Override public void matmul(Tensor a, boolean ta, Tensor b, boolean tb, Tensor out, boolean acc) { gpu.matmul(a, ta, b, tb, out, acc); }
            @Override public void add(Tensor a, Tensor b, Tensor out) { gpu.add(a, b, out); }
            @Override public void mul(Tensor a, Tensor b, Tensor out) { gpu.mul(a, b, out); }
            @Override public void scale(Tensor a, float s, Tensor out) { gpu.scale(a, s, out); }
            @Override public void cast(Tensor s, Tensor d) { gpu.cast(s, d); }
            @Override public void embedding(Tensor t, Tensor i, Tensor o) { gpu.embedding(t, i, o); }
            @Override public void embeddingBackward(Tensor d, Tensor i, Tensor t) { gpu.embeddingBackward(d, i, t); }
            @Override public void rmsnorm(Tensor x, Tensor w, float e, Tensor o, Tensor r) { gpu.rmsnorm(x, w, e, o, r); }
            @Override public void rmsnormBackward(Tensor d, Tensor x, Tensor w, Tensor r, Tensor dx, Tensor dw) { gpu.rmsnormBackward(d, x, w, r, dx, dw); }
            @Override public void rope(Tensor x, Tensor f, Tensor p, float s, Tensor o) { gpu.rope(x, f, p, s, o); }
            @Override public void ropeBackward(Tensor d, Tensor f, Tensor p, float s, Tensor dx) { gpu.ropeBackward(d, f, p, s, dx); }
            @Override public void swiglu(Tensor g, Tensor u, Tensor o) { gpu.swiglu(g, u, o); }
            @Override public void swigluBackward(Tensor d, Tensor g, Tensor u, Tensor dg, Tensor du) { gpu.swigluBackward(d, g, u, dg, du); }
            @Override public void softmax(Tensor x, Tensor o) { gpu.softmax(x, o); }
            @Override public void softmaxBackward(Tensor d, Tensor y, Tensor dx) { gpu.softmaxBackward(d, y, dx); }
            @Override public void attention(Tensor q, Tensor k, Tensor v, float s, Tensor o, Tensor l) { gpu.attention(q, k, v, s, o, l); }
            @Override public void attentionBackward(Tensor d, Tensor q, Tensor k, Tensor v, Tensor o, Tensor l, float s, Tensor dq, Tensor dk, Tensor dv) {
                gpu.attentionBackward(d, q, k, v, o, l, s, dq, dk, dv);
            }
            @Override public LossSum crossEntropy(Tensor h, Tensor w, Tensor t, float g, Tensor dh, Tensor dw) { return gpu.crossEntropy(h, w, t, g, dh, dw); }
            @Override public void adamw(Tensor p, Tensor g, Tensor m, Tensor v, AdamW hp, long step) { gpu.adamw(p, g, m, v, hp, step); }
            @Override public double sum(Tensor x) { return gpu.sum(x); }
            @Override public float max(Tensor x) { return gpu.max(x); }
            @Override public double sumOfSquares(Tensor x) { return gpu.sumOfSquares(x); }
            @Override public double globalNorm(List<Tensor> ts) { return gpu.globalNorm(ts); }
        };
    }

    /** Ids and targets in range of every table above (the GPU reads them). */
    private void fillIds(Tensor x) {
        int[] v = new int[(int) x.numel()];
        for (int i = 0; i < v.length; i++) v[i] = (5 * i) % 40;
        try (Tensor h = Tensor.ofInts(v, x.numel())) {
            gpu.copy(h, x.view(x.numel()));
        }
    }
}
