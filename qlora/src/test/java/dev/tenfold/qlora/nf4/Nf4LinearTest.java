package dev.tenfold.qlora.nf4;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.cpu.CpuBackend;
import dev.tenfold.engine.testing.TestTensors;
import dev.tenfold.llama.DenseLinear;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The chunked NF4 layer against a dense layer over the dequantized weight. */
class Nf4LinearTest {

    /** out, in, tokens, rows per chunk: one chunk, several with a short last one, rows straddling blocks. */
    private static final int[][] CASES = {
        {300, 96, 7, 64},   // 5 chunks, the last of 44 rows
        {300, 96, 7, 300},  // one chunk: no column copies
        {48, 32, 5, 7},     // 7 chunks of 7 rows (the last of 6); 32-element rows, so chunks start mid-block
        {13, 64, 1, 4},     // decoding-sized input
        {130, 448, 33, 50},
    };

    @Test
    void forwardAndBackwardMatchDense() {
        SplittableRandom rng = new SplittableRandom(21);
        for (Backend backend : new Backend[] {CpuBackend.reference(), CpuBackend.fast()}) {
            for (int[] c : CASES) {
                int out = c[0], in = c[1], t = c[2], chunk = c[3];
                try (Tensor w = TestTensors.random(rng, DType.BF16, 0.5f, out, in);
                     Nf4Tensor q = Nf4Tensor.quantize(w, true);
                     Tensor deq = q.dequantize();
                     Tensor x = TestTensors.random(rng, t, in);
                     Tensor dy = TestTensors.random(rng, t, out);
                     Tensor y = TestTensors.poisoned(t, out);
                     Tensor yRef = TestTensors.poisoned(t, out);
                     Tensor dx = TestTensors.poisoned(t, in);
                     Tensor dxRef = TestTensors.poisoned(t, in)) {
                    Nf4Linear nf4 = new Nf4Linear(q, DType.F32, chunk);
                    DenseLinear dense = new DenseLinear(deq);
                    assertEquals(in, nf4.inFeatures());
                    assertEquals(out, nf4.outFeatures());
                    String what = backend.name() + " " + java.util.Arrays.toString(c);
                    nf4.forward(backend, x, y);
                    dense.forward(backend, x, yRef);
                    TestTensors.assertClose(what + " forward", yRef, y, 1e-5, 1e-5);
                    nf4.backward(backend, x, dy, dx);
                    dense.backward(backend, x, dy, dxRef);
                    TestTensors.assertClose(what + " backward", dxRef, dx, 1e-5, 1e-5);
                }
            }
        }
    }

    @Test
    void bf16ComputeMatchesDenseOverBf16Weights() {
        SplittableRandom rng = new SplittableRandom(22);
        Backend backend = CpuBackend.fast();
        try (Tensor w = TestTensors.random(rng, DType.F32, 0.5f, 200, 128);
             Nf4Tensor q = Nf4Tensor.quantize(w, true);
             Tensor deq = Tensor.allocate(DType.BF16, 200, 128);
             Tensor x = TestTensors.random(rng, 9, 128);
             Tensor y = TestTensors.poisoned(9, 200);
             Tensor yRef = TestTensors.poisoned(9, 200)) {
            q.dequantize(deq);
            new Nf4Linear(q, DType.BF16, 48).forward(backend, x, y);
            new DenseLinear(deq).forward(backend, x, yRef);
            TestTensors.assertClose("bf16 compute", yRef, y, 1e-5, 1e-5);
        }
    }

    @Test
    void defaultChunksAreBoundedAndAligned() {
        assertEquals(512, Nf4Linear.defaultChunkRows(4096, 4096));
        assertEquals(144, Nf4Linear.defaultChunkRows(4096, 14336));
        assertEquals(1024, Nf4Linear.defaultChunkRows(1024, 64), "never more rows than the layer has");
        assertEquals(16, Nf4Linear.defaultChunkRows(100, 1 << 20), "at least 16 rows");
    }

    @Test
    void shapeErrorsNameTheOperands() {
        try (Tensor w = Tensor.allocate(DType.F32, 64, 64); Nf4Tensor q = Nf4Tensor.quantize(w, false);
             Tensor x = Tensor.allocate(DType.F32, 3, 32); Tensor y = Tensor.allocate(DType.F32, 3, 64)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new Nf4Linear(q).forward(CpuBackend.fast(), x, y));
            assertTrue(e.getMessage().contains("nf4 linear") && e.getMessage().contains("[3, 32]"), e.getMessage());
        }
    }
}
