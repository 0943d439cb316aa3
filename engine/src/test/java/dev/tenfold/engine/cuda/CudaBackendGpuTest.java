package dev.tenfold.engine.cuda;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Backends;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Device;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.testing.GpuTests;
import dev.tenfold.engine.testing.TestTensors;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * The CUDA backend against the CPU reference on a real GPU: every op through {@link KernelSelfCheck} at
 * awkward sizes (outputs poisoned, random inputs, bf16 tolerances where bf16 is involved), and the
 * behaviour around the ops: copies, errors, memory. Skipped, saying why, where there is no GPU.
 */
@Tag("gpu")
class CudaBackendGpuTest {
    private CudaBackend gpu;
    private final SplittableRandom rng = new SplittableRandom(11);

    @BeforeEach
    void open() { gpu = GpuTests.backendOrSkip(); }

    @TestFactory
    Stream<DynamicTest> everyOpMatchesTheCpuReferenceAtAwkwardSizes() {
        return KernelSelfCheck.cases().stream().map(op -> DynamicTest.dynamicTest(op, () -> {
            KernelSelfCheck.Result r = KernelSelfCheck.run(op, gpu, KernelSelfCheck.Sizes.AWKWARD, 2024);
            assertTrue(r.passed(), KernelSelfCheck.table(List.of(r)));
        }));
    }

    @Test
    void quickSizesPassToo() {
        List<KernelSelfCheck.Result> results = KernelSelfCheck.run(gpu, KernelSelfCheck.Sizes.QUICK, 7);
        assertTrue(results.stream().allMatch(KernelSelfCheck.Result::passed), KernelSelfCheck.table(results));
    }

    @Test
    void copiesRoundTripEveryWay() {
        for (DType dt : new DType[] {DType.F32, DType.BF16, DType.I32, DType.U8}) {
            try (Tensor host = Tensor.allocate(dt, 3, 37)) {
                for (long i = 0; i < host.byteSize(); i++) host.data().set(ValueLayout.JAVA_BYTE, i, (byte) rng.nextInt(256));
                try (Tensor d1 = gpu.toDevice(host); Tensor d2 = gpu.allocate(dt, 111); Tensor back = Tensor.allocate(dt, 111)) {
                    gpu.copy(d1, d2); // device to device, another shape of the same count
                    gpu.copy(d2, back);
                    assertArrayEquals(host.data().toArray(ValueLayout.JAVA_BYTE), back.data().toArray(ValueLayout.JAVA_BYTE), dt.toString());
                }
            }
        }
        // a heap segment on either side
        float[] values = {1, 2, 3, 4, 5};
        try (Tensor heap = Tensor.wrap(MemorySegment.ofArray(values), DType.F32, 5); Tensor d = gpu.allocate(DType.F32, 5)) {
            gpu.copy(heap, d);
            float[] out = new float[5];
            gpu.copy(d, Tensor.wrap(MemorySegment.ofArray(out), DType.F32, 5));
            assertArrayEquals(values, out);
        }
        try (Tensor empty = Tensor.allocate(DType.F32, 0); Tensor d = gpu.allocate(DType.F32, 0)) {
            gpu.copy(empty, d);
        }
    }

    /** copy2d within the GPU (cuMemcpy2DAsync, or one plain copy where the blocks are contiguous) gives the CPU's bytes. */
    @Test
    void copy2dMatchesTheCpuOne() {
        dev.tenfold.engine.Backend cpu = dev.tenfold.engine.cpu.CpuBackend.reference();
        // {srcOffset, srcPitch, dstOffset, dstPitch, width, rows}: Ulysses' head groups, zigzag's chunks, odd sizes,
        // one row, contiguous blocks, nothing
        long[][] cases = {{0, 64, 0, 16, 16, 12}, {16, 64, 4 * 16 * 3, 16, 16, 12}, {0, 12, 8, 40, 12, 9}, {3, 17, 1, 5, 5, 20},
                {0, 96, 0, 48, 48, 4}, {7, 33, 0, 33, 33, 1}, {0, 24, 0, 24, 24, 10}, {5, 9, 2, 9, 0, 7}, {0, 8, 0, 8, 8, 0}};
        for (long[] c : cases) {
            try (Tensor srcHost = Tensor.allocate(DType.U8, 1000); Tensor expected = Tensor.allocate(DType.U8, 700);
                 Tensor before = Tensor.allocate(DType.U8, 700)) {
                for (long i = 0; i < 1000; i++) srcHost.data().set(ValueLayout.JAVA_BYTE, i, (byte) rng.nextInt(256));
                for (long i = 0; i < 700; i++) before.data().set(ValueLayout.JAVA_BYTE, i, (byte) rng.nextInt(256));
                cpu.copy(before, expected);
                cpu.copy2d(srcHost, c[0], c[1], expected, c[2], c[3], c[4], c[5]);
                try (Tensor src = gpu.toDevice(srcHost); Tensor dst = gpu.toDevice(before); Tensor back = Tensor.allocate(DType.U8, 700)) {
                    gpu.copy2d(src, c[0], c[1], dst, c[2], c[3], c[4], c[5]);
                    gpu.copy(dst, back);
                    assertArrayEquals(expected.data().toArray(ValueLayout.JAVA_BYTE), back.data().toArray(ValueLayout.JAVA_BYTE),
                            "copy2d " + java.util.Arrays.toString(c));
                }
            }
        }
        assertFalse(gpu.copiesRowByRow(), "the driver refused cuMemcpy2DAsync's parameters: is CUDA_MEMCPY2D laid out as cuda.h's?");
        // bf16 rows of a [4, 8, 2] tensor's heads: the same bytes as on the CPU
        try (Tensor x = TestTensors.random(rng, 4, 8, 2); Tensor xb = Tensor.allocate(DType.BF16, 4, 8, 2); Tensor want = Tensor.allocate(DType.BF16, 4, 8)) {
            cpu.cast(x, xb);
            cpu.copy2d(xb, 2, 4, want, 0, 2, 2, 32);
            try (Tensor d = gpu.toDevice(xb); Tensor out = gpu.allocate(DType.BF16, 4, 8); Tensor back = Tensor.allocate(DType.BF16, 4, 8)) {
                gpu.copy2d(d, 2, 4, out, 0, 2, 2, 32);
                gpu.copy(out, back);
                assertArrayEquals(want.data().toArray(ValueLayout.JAVA_BYTE), back.data().toArray(ValueLayout.JAVA_BYTE));
            }
        }
        // within the host it is the CPU's loop; between the host and the GPU it is refused, naming the op
        try (Tensor h = Tensor.allocate(DType.U8, 64); Tensor d = gpu.allocate(DType.U8, 64)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> gpu.copy2d(h, 0, 8, d, 0, 8, 8, 8));
            assertTrue(e.getMessage().startsWith("copy2d: " + gpu.name() + " copies within the host or within cuda:0"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> gpu.copy2d(d, 0, 8, d, 4, 8, 4, 7));
            assertTrue(e.getMessage().startsWith("copy2d: the source bytes [0, 52) of U8[64]@cuda:0 and the destination bytes [4, 56)"), e.getMessage());
        }
    }

    @Test
    void allocateIsZeroFilled() {
        Tensor junk = up(TestTensors.random(rng, 4096));
        junk.close(); // its block goes back to the cache, full of values
        try (Tensor t = gpu.allocate(DType.F32, 4096); Tensor h = gpu.toHost(t)) {
            for (float f : h.toFloatArray()) assertEquals(0f, f);
        }
    }

    @Test
    void badIdsAndTargetsAreRefusedAsOnTheCpu() {
        try (Tensor table = up(TestTensors.random(rng, 10, 4)); Tensor ids = up(Tensor.ofInts(new int[] {1, 10, 2}));
             Tensor out = gpu.allocate(DType.F32, 3, 4)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> gpu.embedding(table, ids, out));
            assertTrue(e.getMessage().startsWith("embedding: id 10 at position 1 is out of range [0, 10)"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> gpu.embeddingBackward(out, ids, table));
            assertTrue(e.getMessage().startsWith("embeddingBackward: id 10 at position 1 is out of range [0, 10)"), e.getMessage());
        }
        try (Tensor hidden = up(TestTensors.random(rng, 3, 4)); Tensor w = up(TestTensors.random(rng, 10, 4));
             Tensor targets = up(Tensor.ofInts(new int[] {-100, 3, 11}))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> gpu.crossEntropy(hidden, w, targets, 1f, null, null));
            assertTrue(e.getMessage().startsWith("crossEntropy: target 11 at position 2 is out of range [0, 10)"), e.getMessage());
        }
    }

    @Test
    void hostTensorsAndUnsupportedHeadDimsAreRefused() {
        try (Tensor host = TestTensors.random(rng, 8); Tensor d = gpu.allocate(DType.F32, 8)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> gpu.add(host, d, d));
            assertTrue(e.getMessage().startsWith("add: a must be on cuda:0"), e.getMessage());
        }
        try (Tensor q = gpu.allocate(DType.F32, 1, 4, 2, 96); Tensor k = gpu.allocate(DType.F32, 1, 4, 2, 96);
             Tensor o = gpu.allocate(DType.F32, 1, 4, 2, 96); Tensor lse = gpu.allocate(DType.F32, 1, 2, 4)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> gpu.attention(q, k, k, 0.1f, o, lse));
            assertTrue(e.getMessage().startsWith("attention: head dim 96 is not supported on CUDA"), e.getMessage());
        }
    }

    @Test
    void aStepAtFixedShapesAllocatesNothingAfterTheFirst() {
        Runnable step = () -> {
            try (Tensor a = up(TestTensors.random(rng, 33, 70)); Tensor b = up(TestTensors.random(rng, 70, 45));
                 Tensor out = gpu.allocate(DType.F32, 33, 45); Tensor s = gpu.allocate(DType.F32, 33, 45)) {
                gpu.matmul(a, false, b, false, out, false);
                gpu.softmax(out, s);
                gpu.sum(s);
            }
        };
        step.run();
        long before = gpu.allocator().stats().deviceAllocations();
        for (int i = 0; i < 3; i++) step.run();
        assertEquals(before, gpu.allocator().stats().deviceAllocations(), gpu.allocator().stats().toString());
    }

    @Test
    void tooLargeAnAllocationIsExplained() {
        long total = gpu.memoryInfo().total();
        CudaOutOfMemoryException e = assertThrows(CudaOutOfMemoryException.class, () -> gpu.allocateUninitialized(DType.U8, 2 * total));
        assertTrue(e.getMessage().startsWith("cuda:0 is out of memory: asked for"), e.getMessage());
        assertTrue(e.getMessage().contains("larger than the whole GPU"), e.getMessage());
    }

    @Test
    void edgeCasesMatchTheCpu() {
        // K = 0: the product is zero (or unchanged when accumulating)
        try (Tensor a = gpu.allocate(DType.F32, 3, 0); Tensor b = gpu.allocate(DType.F32, 0, 2); Tensor out = GpuTests.poisoned(gpu, DType.F32, 3, 2);
             Tensor h = Tensor.allocate(DType.F32, 3, 2)) {
            gpu.matmul(a, false, b, false, out, false);
            GpuTests.assertClose("K = 0", h, gpu, out, 0, 0);
        }
        // a loss whose targets are all ignored: nothing counted, dHidden zero
        try (Tensor hidden = up(TestTensors.random(rng, 4, 8)); Tensor w = up(TestTensors.random(rng, 5, 8));
             Tensor targets = up(Tensor.ofInts(new int[] {-100, -100, -100, -100})); Tensor dh = GpuTests.poisoned(gpu, DType.F32, 4, 8);
             Tensor zeros = Tensor.allocate(DType.F32, 4, 8)) {
            var loss = gpu.crossEntropy(hidden, w, targets, 1f, dh, null);
            assertEquals(0, loss.count());
            assertEquals(0.0, loss.sum());
            GpuTests.assertClose("dHidden of ignored rows", zeros, gpu, dh, 0, 0);
        }
        // max propagates NaN; empty reductions
        try (Tensor x = TestTensors.random(rng, 5000)) {
            x.setFloat(4321, Float.NaN);
            try (Tensor d = gpu.toDevice(x); Tensor empty = gpu.allocate(DType.F32, 0)) {
                assertTrue(Float.isNaN(gpu.max(d)));
                assertEquals(Float.NEGATIVE_INFINITY, gpu.max(empty));
                assertEquals(0.0, gpu.sum(empty));
            }
        }
    }

    @Test
    void attentionBackwardIsReproducible() {
        assertTrue(gpu.isDeterministic());
        List<Tensor> made = new ArrayList<>();
        try {
            reproducible(made, attentionInputs(made, 70));
        } finally {
            made.forEach(Tensor::close);
        }
    }

    /**
     * The descending order: reproducible too, and the ascending order's gradients (4 key blocks) up to one bf16 ulp: dq
     * is summed in f32 in another order, then rounded to bf16, so a sum at a rounding boundary may land one ulp away.
     */
    @Test
    void theDescendingOrderIsReproducibleAndGivesTheSameGradients() {
        assertTrue(gpu.isDeterministic());
        boolean before = gpu.isDescendingOrder();
        List<Tensor> made = new ArrayList<>();
        try {
            Tensor[] in = attentionInputs(made, 230);
            gpu.setDescendingOrder(false);
            float[][] ascending = reproducible(made, in);
            gpu.setDescendingOrder(true);
            float[][] descending = reproducible(made, in);
            for (int i = 0; i < 3; i++) {
                for (int j = 0; j < ascending[i].length; j++) {
                    assertEquals(ascending[i][j], descending[i][j], 1e-5f + 8e-3f * Math.abs(ascending[i][j]), "gradient " + i + " at " + j);
                }
            }
        } finally {
            gpu.setDescendingOrder(before);
            made.forEach(Tensor::close);
        }
    }

    /** q, k, v, dOut (4 query heads on 2 kv heads of 64, t tokens), and the forward's o and lse. */
    private Tensor[] attentionInputs(List<Tensor> made, int t) {
        long[] qs = {1, t, 4, 64}, ks = {1, t, 2, 64};
        Tensor q = keep(made, up(TestTensors.random(rng, qs))), k = keep(made, up(TestTensors.random(rng, ks)));
        Tensor v = keep(made, up(TestTensors.random(rng, ks))), dOut = keep(made, up(TestTensors.random(rng, qs)));
        Tensor o = keep(made, gpu.allocate(DType.F32, qs)), lse = keep(made, gpu.allocate(DType.F32, 1, 4, t));
        gpu.attention(q, k, v, 0.125f, o, lse);
        return new Tensor[] {q, k, v, dOut, o, lse};
    }

    /** Two backward runs: the same bytes; returns dq, dk, dv. */
    private float[][] reproducible(List<Tensor> made, Tensor[] in) {
        Tensor q = in[0], k = in[1], v = in[2], dOut = in[3], o = in[4], lse = in[5];
        byte[][] first = null;
        float[][] values = null;
        for (int run = 0; run < 2; run++) {
            Tensor dq = keep(made, gpu.allocate(DType.F32, q.shape())), dk = keep(made, gpu.allocate(DType.F32, k.shape()));
            Tensor dv = keep(made, gpu.allocate(DType.F32, k.shape()));
            gpu.attentionBackward(dOut, q, k, v, o, lse, 0.125f, dq, dk, dv);
            byte[][] now = {bytes(dq), bytes(dk), bytes(dv)};
            if (first == null) {
                first = now;
                values = new float[][] {floats(dq), floats(dk), floats(dv)};
            } else {
                for (int i = 0; i < 3; i++) assertArrayEquals(first[i], now[i], "gradient " + i + " differs between runs");
            }
        }
        return values;
    }

    @Test
    void backendsHandsOutOneBackendPerDevice() {
        assertSame(gpu, Backends.forDevice(Device.cuda(0)));
        assertSame(gpu, CudaBackend.open(0));
        assertEquals(Device.cuda(0), gpu.device());
        System.out.println(gpu + ", cuBLAS " + gpu.cublasVersion() + ", " + gpu.allocator().stats());
    }

    /** A device copy of a host tensor, which is closed. */
    private Tensor up(Tensor host) {
        try (host) {
            return gpu.toDevice(host);
        }
    }

    private static Tensor keep(List<Tensor> made, Tensor t) {
        made.add(t);
        return t;
    }

    private float[] floats(Tensor onDevice) {
        try (Tensor h = gpu.toHost(onDevice)) {
            return h.toFloatArray();
        }
    }

    private byte[] bytes(Tensor onDevice) {
        try (Tensor h = gpu.toHost(onDevice)) {
            return h.data().toArray(ValueLayout.JAVA_BYTE);
        }
    }
}
