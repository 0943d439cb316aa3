package dev.tenfold.engine.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.testing.GpuTests;
import dev.tenfold.engine.testing.TestTensors;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.TestFactory;

/**
 * The flash attention kernels (through CudaBackend.attention / attentionBackward) against the CPU
 * backend, for the lengths, group ratios and head dims of the flash-attention issue: lengths 1, 17,
 * 127, 1000, 4097 (not multiples of any tile), query heads per kv head 1, 4 and 8, d 64 and 128,
 * and a query block shorter than the keys (decoding against a cache). Inputs are rounded to bf16
 * first on both sides, so the comparison measures the kernel, not the input rounding; device
 * outputs are poisoned (NaN) first. Each case runs twice and must give the same bits both times (a
 * moving result is a race). The CPU oracle is the reference backend up to 127 tokens and the fast
 * backend (itself tested against the reference) beyond.
 */
@Tag("gpu")
class FlashAttentionGpuTest {
    /** A system property that limits the lengths tested (the fake CUDA stack's host-loop kernels are slow). */
    static final String MAX_LENGTH_PROPERTY = "tenfold.flash.test.max.length";
    private CudaBackend gpu;
    private final List<Tensor> made = new ArrayList<>();

    @BeforeEach
    void open() { gpu = GpuTests.backendOrSkip(); }

    @AfterEach
    void free() {
        made.forEach(Tensor::close);
        made.clear();
    }

    @TestFactory
    Stream<DynamicTest> forwardAndBackwardMatchTheCpu() {
        return cases(new int[] {1, 4, 8}, new int[] {1, 17, 127, 1000, 4097}, false);
    }

    /** The backward's descending order (TENFOLD_FLASH_BWD_ORDER=descending) against the CPU at the lengths with several key blocks. */
    @TestFactory
    Stream<DynamicTest> theDescendingOrderMatchesTheCpuToo() {
        return cases(new int[] {4}, new int[] {127, 1000, 4097}, true);
    }

    /** Each head dim, group ratio and length up to the property's limit, and a short query block against many keys. */
    private Stream<DynamicTest> cases(int[] ratios, int[] lengths, boolean descending) {
        List<DynamicTest> tests = new ArrayList<>();
        int maxLength = Integer.getInteger(MAX_LENGTH_PROPERTY, Integer.MAX_VALUE);
        for (int d : new int[] {64, 128}) {
            for (int ratio : ratios) {
                for (int t : lengths) {
                    if (t > maxLength) continue;
                    tests.add(DynamicTest.dynamicTest("d" + d + " ratio " + ratio + " T " + t, () -> inOrder(descending, () -> check(1, t, t, 8, ratio, d))));
                }
            }
            int keys = Math.min(1000, maxLength);
            tests.add(DynamicTest.dynamicTest("d" + d + " batch 2, 33 queries against " + keys + " keys",
                    () -> inOrder(descending, () -> check(2, 33, keys, 8, 4, d))));
        }
        return tests.stream();
    }

    /** Runs check with the backward's deterministic order set, then restores the backend's. */
    private void inOrder(boolean descending, Runnable check) {
        boolean before = gpu.isDescendingOrder();
        gpu.setDescendingOrder(descending);
        try {
            check.run();
        } finally {
            gpu.setDescendingOrder(before);
        }
    }

    private void check(int batch, int tq, int tk, int hq, int ratio, int d) {
        int hkv = hq / ratio;
        SplittableRandom rng = new SplittableRandom(31L * tq + 7L * d + ratio);
        float scale = (float) (1 / Math.sqrt(d));
        long[] qs = {batch, tq, hq, d}, ks = {batch, tk, hkv, d};
        Tensor q = bf16Rounded(rng, qs), k = bf16Rounded(rng, ks), v = bf16Rounded(rng, ks), dOut = bf16Rounded(rng, qs);
        Backend cpu = tk <= 127 ? CpuBackend.reference() : CpuBackend.fast();
        Tensor o = keep(Tensor.allocate(DType.F32, qs)), lse = keep(Tensor.allocate(DType.F32, batch, hq, tq));
        cpu.attention(q, k, v, scale, o, lse);
        Tensor dq = keep(Tensor.allocate(DType.F32, qs)), dk = keep(Tensor.allocate(DType.F32, ks)), dv = keep(Tensor.allocate(DType.F32, ks));
        cpu.attentionBackward(dOut, q, k, v, o, lse, scale, dq, dk, dv);

        Tensor gq = up(q), gk = up(k), gv = up(v), gdOut = up(dOut);
        byte[][] first = null;
        for (int run = 0; run < 2; run++) {
            Tensor go = keep(GpuTests.poisoned(gpu, DType.F32, qs)), glse = keep(GpuTests.poisoned(gpu, DType.F32, batch, hq, tq));
            Tensor gdq = keep(GpuTests.poisoned(gpu, DType.F32, qs)), gdk = keep(GpuTests.poisoned(gpu, DType.F32, ks));
            Tensor gdv = keep(GpuTests.poisoned(gpu, DType.F32, ks));
            gpu.attention(gq, gk, gv, scale, go, glse);
            gpu.attentionBackward(gdOut, gq, gk, gv, go, glse, scale, gdq, gdk, gdv);
            // O and the gradients come back through bf16: errors relative to each tensor's largest value
            GpuTests.assertClose("out", o, gpu, go, 2e-2 * maxAbs(o), 2e-2);
            GpuTests.assertClose("lse", lse, gpu, glse, 1e-2, 1e-3);
            GpuTests.assertClose("dq", dq, gpu, gdq, 3e-2 * maxAbs(dq), 5e-2);
            GpuTests.assertClose("dk", dk, gpu, gdk, 3e-2 * maxAbs(dk), 5e-2);
            GpuTests.assertClose("dv", dv, gpu, gdv, 3e-2 * maxAbs(dv), 5e-2);
            byte[][] now = {bytes(go), bytes(glse), bytes(gdq), bytes(gdk), bytes(gdv)};
            if (first == null) first = now;
            else for (int i = 0; i < now.length; i++) assertArrayEquals(first[i], now[i], "output " + i + " moved between two identical runs");
        }
    }

    /** Random values in [-1, 1], rounded to bf16 (what the kernels read), as an F32 host tensor. */
    private Tensor bf16Rounded(SplittableRandom rng, long... shape) {
        Tensor t = keep(TestTensors.random(rng, shape));
        float[] v = t.toFloatArray();
        for (int i = 0; i < v.length; i++) v[i] = dev.tenfold.engine.Numerics.roundToBf16(v[i]);
        t.copyFrom(v);
        return t;
    }

    private static double maxAbs(Tensor t) {
        double m = 1e-2; // a floor: where a gradient is exactly zero in theory (one key), rounding leaves ~1e-8
        for (float x : t.toFloatArray()) m = Math.max(m, Math.abs(x));
        return m;
    }

    private Tensor up(Tensor host) { return keep(gpu.toDevice(host)); }

    private byte[] bytes(Tensor onDevice) {
        try (Tensor h = gpu.toHost(onDevice)) {
            return h.data().toArray(ValueLayout.JAVA_BYTE);
        }
    }

    private Tensor keep(Tensor t) {
        made.add(t);
        return t;
    }
}
