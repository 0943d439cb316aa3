package dev.tenfold.engine.cpu;

import static dev.tenfold.engine.cpu.OpTestSupport.FAST;
import static dev.tenfold.engine.cpu.OpTestSupport.REF;
import static dev.tenfold.engine.cpu.OpTestSupport.assertRejected;
import static dev.tenfold.engine.testing.TestTensors.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class ReductionsTest {

    @Test
    void fastMatchesReference() {
        SplittableRandom rng = new SplittableRandom(70);
        for (int n : new int[] {1, 7, 17, 100, 257, (1 << 14) + 3, 100_003}) {
            try (Tensor x = random(rng, DType.F32, 10f, n)) {
                double abs = 0, exact = 0;
                for (float f : x.toFloatArray()) {
                    abs += Math.abs(f);
                    exact += f;
                }
                double tol = 1e-13 * Math.max(1, abs);
                assertEquals(REF.sum(x), FAST.sum(x), tol, "sum n=" + n);
                assertEquals(exact, FAST.sum(x), tol, "sum n=" + n);
                double sq = REF.sumOfSquares(x);
                assertEquals(sq, FAST.sumOfSquares(x), 1e-13 * sq, "sumOfSquares n=" + n);
                float max = Float.NEGATIVE_INFINITY;
                for (float f : x.toFloatArray()) max = Math.max(max, f);
                assertEquals(max, REF.max(x));
                assertEquals(max, FAST.max(x));
            }
        }
    }

    @Test
    void sumsAccumulateInDouble() {
        // 2^24 + many ones: a float accumulator would lose every 1.
        int n = 40_000;
        float[] v = new float[n];
        Arrays.fill(v, 1f);
        v[0] = 1 << 24;
        try (Tensor x = Tensor.of(v)) {
            for (var be : OpTestSupport.BOTH) {
                assertEquals((1 << 24) + n - 1.0, be.sum(x), 0, be.name());
                assertEquals(Math.pow(2, 48) + n - 1.0, be.sumOfSquares(x), 0, be.name());
            }
        }
    }

    @Test
    void maxIsNaNIfAnyElementIsNaN() {
        for (int n : new int[] {1, 5, 16, 300, 40_000}) {
            for (int at : new int[] {0, n / 2, n - 1}) {
                float[] v = new float[n];
                Arrays.fill(v, -5f);
                v[at] = Float.NaN;
                if (n > 1) v[(at + 1) % n] = 7f;
                try (Tensor x = Tensor.of(v)) {
                    for (var be : OpTestSupport.BOTH) assertTrue(Float.isNaN(be.max(x)), be.name() + " n=" + n + " NaN at " + at);
                }
            }
        }
        try (Tensor x = Tensor.of(new float[] {-3f, -1f, -2f}); Tensor empty = Tensor.allocate(DType.F32, 0)) {
            for (var be : OpTestSupport.BOTH) {
                assertEquals(-1f, be.max(x));
                assertEquals(Float.NEGATIVE_INFINITY, be.max(empty));
                assertEquals(0.0, be.sum(empty));
            }
        }
    }

    @Test
    void globalNormCombinesTensors() {
        try (Tensor a = Tensor.of(new float[] {3f}); Tensor b = Tensor.of(new float[] {0f, 4f}, 1, 2)) {
            for (var be : OpTestSupport.BOTH) assertEquals(5.0, be.globalNorm(List.of(a, b)), 0);
        }
    }

    @Test
    void badInputIsRejected() {
        try (Tensor h = Tensor.allocate(DType.BF16, 3); Tensor i = Tensor.allocate(DType.I32, 3)) {
            for (var be : OpTestSupport.BOTH) {
                assertRejected("sum", () -> be.sum(h), "BF16");
                assertRejected("max", () -> be.max(i), "I32");
                assertRejected("sumOfSquares", () -> be.sumOfSquares(h));
            }
        }
    }
}
