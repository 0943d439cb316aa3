package dev.tenfold.engine.cpu;

import static dev.tenfold.engine.cpu.OpTestSupport.FAST;
import static dev.tenfold.engine.cpu.OpTestSupport.REF;
import static dev.tenfold.engine.cpu.OpTestSupport.ROWS;
import static dev.tenfold.engine.cpu.OpTestSupport.WIDTHS;
import static dev.tenfold.engine.cpu.OpTestSupport.assertRejected;
import static dev.tenfold.engine.testing.TestTensors.assertClose;
import static dev.tenfold.engine.testing.TestTensors.poisoned;
import static dev.tenfold.engine.testing.TestTensors.random;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.testing.GradCheck;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;

class RmsNormTest {
    private static final float EPS = 1e-5f;

    @Test
    void forwardFastMatchesReference() {
        SplittableRandom rng = new SplittableRandom(20);
        for (int rows : ROWS) {
            for (int h : WIDTHS) {
                try (Tensor x = random(rng, DType.F32, 3f, rows, h); Tensor w = random(rng, h);
                     Tensor r = poisoned(rows, h); Tensor f = poisoned(rows, h); Tensor rr = poisoned(rows); Tensor fr = poisoned(rows)) {
                    REF.rmsnorm(x, w, EPS, r, rr);
                    FAST.rmsnorm(x, w, EPS, f, fr);
                    assertClose("out rows=" + rows + " h=" + h, r, f, 1e-6, 1e-5);
                    assertClose("rstd rows=" + rows + " h=" + h, rr, fr, 0, 1e-6);
                }
            }
        }
    }

    @Test
    void normalizedRowsHaveUnitRms() {
        try (Tensor x = Tensor.of(new float[] {3, 4, 0, 0, -2, 2, 2, -2}, 2, 4); Tensor w = Tensor.of(new float[] {1, 1, 1, 1});
             Tensor out = poisoned(2, 4); Tensor rstd = poisoned(2)) {
            for (var be : OpTestSupport.BOTH) {
                be.rmsnorm(x, w, 0f, out, rstd);
                assertEquals(1 / 2.5f, rstd.getFloat(0), 1e-7); // mean(x^2) = 25/4
                assertEquals(0.5f, rstd.getFloat(1), 1e-7);
                assertClose(be.name(), new float[] {1.2f, 1.6f, 0, 0, -1, 1, 1, -1}, out.toFloatArray(), 1e-6, 1e-6);
            }
        }
    }

    @Test
    void outMayAliasXAndLeadingDimensionsFlatten() {
        SplittableRandom rng = new SplittableRandom(21);
        for (var be : OpTestSupport.BOTH) {
            try (Tensor x = random(rng, 2, 3, 100); Tensor w = random(rng, 100); Tensor want = poisoned(2, 3, 100); Tensor rstd = poisoned(2, 3)) {
                be.rmsnorm(x, w, EPS, want, rstd);
                be.rmsnorm(x, w, EPS, x, rstd);
                assertClose(be.name() + " in place", want, x, 0, 0);
            }
        }
    }

    @Test
    void backwardFastMatchesReference() {
        SplittableRandom rng = new SplittableRandom(22);
        for (int rows : ROWS) {
            for (int h : new int[] {1, 17, 100, 257, 600}) {
                try (Tensor x = random(rng, DType.F32, 2f, rows, h); Tensor w = random(rng, h); Tensor g = random(rng, rows, h);
                     Tensor out = poisoned(rows, h); Tensor rstd = poisoned(rows); Tensor dw0 = random(rng, h);
                     Tensor rdx = poisoned(rows, h); Tensor fdx = poisoned(rows, h); Tensor rdw = dw0.copy(); Tensor fdw = dw0.copy()) {
                    REF.rmsnorm(x, w, EPS, out, rstd);
                    REF.rmsnormBackward(g, x, w, rstd, rdx, rdw);
                    FAST.rmsnormBackward(g, x, w, rstd, fdx, fdw);
                    assertClose("dx rows=" + rows + " h=" + h, rdx, fdx, 1e-5, 1e-4);
                    assertClose("dWeight rows=" + rows + " h=" + h, rdw, fdw, 1e-5, 1e-5);
                    // Without dWeight, dx is the same.
                    try (Tensor dx2 = poisoned(rows, h)) {
                        FAST.rmsnormBackward(g, x, w, rstd, dx2, null);
                        assertClose("dx without dWeight", fdx, dx2, 0, 0);
                    }
                }
            }
        }
    }

    @Test
    void backwardMatchesFiniteDifferences() {
        SplittableRandom rng = new SplittableRandom(23);
        int rows = 5, h = 19;
        try (Tensor x = random(rng, rows, h); Tensor w = random(rng, h); Tensor wts = random(rng, rows, h);
             Tensor out = Tensor.allocate(DType.F32, rows, h); Tensor rstd = Tensor.allocate(DType.F32, rows)) {
            for (var be : OpTestSupport.BOTH) {
                try (Tensor dx = poisoned(rows, h); Tensor dw = Tensor.allocate(DType.F32, h)) {
                    be.rmsnorm(x, w, EPS, out, rstd);
                    be.rmsnormBackward(wts, x, w, rstd, dx, dw);
                    DoubleSupplier loss = () -> {
                        REF.rmsnorm(x, w, EPS, out, rstd);
                        return GradCheck.weightedSum(out, wts);
                    };
                    GradCheck.check("rmsnorm dx " + be.name(), x, dx, loss, 1e-2, 2e-3, 200, 24);
                    GradCheck.check("rmsnorm dWeight " + be.name(), w, dw, loss, 1e-2, 2e-3, 200, 25);
                }
            }
        }
    }

    @Test
    void badInputIsRejected() {
        try (Tensor x = Tensor.allocate(DType.F32, 3, 4); Tensor w = Tensor.allocate(DType.F32, 4); Tensor w5 = Tensor.allocate(DType.F32, 5);
             Tensor rstd = Tensor.allocate(DType.F32, 3); Tensor rstd2 = Tensor.allocate(DType.F32, 2); Tensor xb = Tensor.allocate(DType.F16, 3, 4);
             Tensor out = Tensor.allocate(DType.F32, 3, 4); Tensor out2 = Tensor.allocate(DType.F32, 4, 3)) {
            for (var be : OpTestSupport.BOTH) {
                assertRejected("rmsnorm", () -> be.rmsnorm(x, w5, EPS, out, rstd), "weight", "[4]", "[5]");
                assertRejected("rmsnorm", () -> be.rmsnorm(x, w, EPS, out, rstd2), "rstd");
                assertRejected("rmsnorm", () -> be.rmsnorm(xb, w, EPS, out, rstd), "F16");
                assertRejected("rmsnorm", () -> be.rmsnorm(x, w, EPS, out2, rstd), "[3, 4]", "[4, 3]");
                assertRejected("rmsnormBackward", () -> be.rmsnormBackward(out2, x, w, rstd, out, null));
                assertRejected("rmsnormBackward", () -> be.rmsnormBackward(out, x, w, rstd, out, w5), "dWeight");
                assertRejected("rmsnormBackward", () -> be.rmsnormBackward(out, x, w, rstd, null, null), "dx");
            }
        }
    }
}
