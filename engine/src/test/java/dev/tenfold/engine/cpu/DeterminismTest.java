package dev.tenfold.engine.cpu;

import static org.junit.jupiter.api.Assertions.*;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.testing.TestTensors;
import java.util.SplittableRandom;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/**
 * The fast backend gives the same bits every time, also while the JIT moves the code from the
 * interpreter to C1 and C2: a resumed training run must end bit-identical to an uninterrupted one.
 * (The Vector API's own EXP and ADD reductions failed this: see VectorMath.)
 */
class DeterminismTest {
    private static final Backend FAST = CpuBackend.fast();
    private static final int RUNS = 40;

    private static void sameEveryTime(String what, Supplier<float[]> op) {
        float[] first = op.get();
        for (int r = 1; r < RUNS; r++) assertArrayEquals(first, op.get(), what + ": run " + r + " differs");
    }

    @Test
    void opsAreBitReproducible() {
        SplittableRandom rng = new SplittableRandom(3);
        try (Tensor x1 = TestTensors.random(rng, 1, 700); Tensor w = TestTensors.random(rng, DType.BF16, 1f, 300, 700);
             Tensor x5 = TestTensors.random(rng, 5, 700); Tensor x40 = TestTensors.random(rng, 40, 700);
             Tensor o1 = Tensor.allocate(DType.F32, 1, 300); Tensor o5 = Tensor.allocate(DType.F32, 5, 300);
             Tensor o40 = Tensor.allocate(DType.F32, 40, 300)) {
            sameEveryTime("matmul decode", () -> { FAST.matmul(x1, false, w, true, o1, false); return o1.toFloatArray(); });
            sameEveryTime("matmul skinny", () -> { FAST.matmul(x5, false, w, true, o5, false); return o5.toFloatArray(); });
            sameEveryTime("matmul packed", () -> { FAST.matmul(x40, false, w, true, o40, false); return o40.toFloatArray(); });
        }
        try (Tensor x = TestTensors.random(rng, DType.F32, 5f, 33, 257); Tensor y = Tensor.allocate(DType.F32, 33, 257);
             Tensor nw = TestTensors.random(rng, 257); Tensor rstd = Tensor.allocate(DType.F32, 33)) {
            sameEveryTime("softmax", () -> { FAST.softmax(x, y); return y.toFloatArray(); });
            sameEveryTime("rmsnorm", () -> { FAST.rmsnorm(x, nw, 1e-5f, y, rstd); return y.toFloatArray(); });
            sameEveryTime("swiglu", () -> { FAST.swiglu(x, x, y); return y.toFloatArray(); });
        }
        try (Tensor h = TestTensors.random(rng, 19, 40); Tensor w = TestTensors.random(rng, 1000, 40);
             Tensor t = TestTensors.randomInts(rng, 1000, 19); Tensor dh = Tensor.allocate(DType.F32, 19, 40)) {
            sameEveryTime("cross-entropy", () -> {
                double loss = FAST.crossEntropy(h, w, t, 0.1f, dh, null).sum();
                float[] g = dh.toFloatArray();
                float[] out = java.util.Arrays.copyOf(g, g.length + 1);
                out[g.length] = (float) loss;
                return out;
            });
        }
        try (Tensor q = TestTensors.random(rng, 1, 70, 4, 16); Tensor k = TestTensors.random(rng, 1, 70, 2, 16);
             Tensor v = TestTensors.random(rng, 1, 70, 2, 16); Tensor o = Tensor.allocate(DType.F32, 1, 70, 4, 16);
             Tensor lse = Tensor.allocate(DType.F32, 1, 4, 70)) {
            sameEveryTime("attention", () -> { FAST.attention(q, k, v, 0.25f, o, lse); return o.toFloatArray(); });
        }
    }
}
