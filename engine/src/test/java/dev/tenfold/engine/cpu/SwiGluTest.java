package dev.tenfold.engine.cpu;

import static dev.tenfold.engine.cpu.OpTestSupport.FAST;
import static dev.tenfold.engine.cpu.OpTestSupport.REF;
import static dev.tenfold.engine.cpu.OpTestSupport.assertRejected;
import static dev.tenfold.engine.testing.TestTensors.assertClose;
import static dev.tenfold.engine.testing.TestTensors.poisoned;
import static dev.tenfold.engine.testing.TestTensors.random;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.testing.GradCheck;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;

class SwiGluTest {

    @Test
    void fastMatchesReference() {
        SplittableRandom rng = new SplittableRandom(40);
        for (long[] shape : new long[][] {{1, 1}, {7, 17}, {33, 100}, {3, 257}, {2, 20001}}) {
            // Gates up to +-120 reach the saturated ends of exp without producing NaN.
            try (Tensor g = random(rng, DType.F32, 120f, shape); Tensor u = random(rng, DType.F32, 2f, shape); Tensor dOut = random(rng, shape);
                 Tensor r = poisoned(shape); Tensor f = poisoned(shape);
                 Tensor rdg = poisoned(shape); Tensor rdu = poisoned(shape); Tensor fdg = poisoned(shape); Tensor fdu = poisoned(shape)) {
                // Plenty of moderate gates too, where silu is not nearly linear or zero.
                for (long i = 0; i < g.numel(); i += 2) g.setFloat(i, g.getFloat(i) / 20);
                String what = Arrays.toString(shape);
                REF.swiglu(g, u, r);
                FAST.swiglu(g, u, f);
                assertClose("swiglu " + what, r, f, 1e-6, 1e-5);
                REF.swigluBackward(dOut, g, u, rdg, rdu);
                FAST.swigluBackward(dOut, g, u, fdg, fdu);
                assertClose("dGate " + what, rdg, fdg, 1e-6, 1e-5);
                assertClose("dUp " + what, rdu, fdu, 1e-6, 1e-5);
            }
        }
    }

    @Test
    void knownValues() {
        try (Tensor g = Tensor.of(new float[] {0, 1, -1, 30}); Tensor u = Tensor.of(new float[] {5, 2, 2, 1}); Tensor out = poisoned(4)) {
            for (var be : OpTestSupport.BOTH) {
                be.swiglu(g, u, out);
                double s1 = 1 / (1 + Math.exp(-1));
                assertClose(be.name(), new float[] {0, (float) (2 * s1), (float) (-2 * (1 - s1)), 30}, out.toFloatArray(), 1e-6, 1e-6);
            }
        }
    }

    @Test
    void outMayAliasAnInput() {
        SplittableRandom rng = new SplittableRandom(41);
        for (var be : OpTestSupport.BOTH) {
            try (Tensor g = random(rng, 5, 37); Tensor u = random(rng, 5, 37); Tensor want = poisoned(5, 37)) {
                be.swiglu(g, u, want);
                be.swiglu(g, u, g);
                assertClose(be.name(), want, g, 0, 0);
            }
        }
    }

    @Test
    void backwardMatchesFiniteDifferences() {
        SplittableRandom rng = new SplittableRandom(42);
        try (Tensor g = random(rng, DType.F32, 4f, 6, 11); Tensor u = random(rng, 6, 11); Tensor w = random(rng, 6, 11);
             Tensor out = Tensor.allocate(DType.F32, 6, 11)) {
            for (var be : OpTestSupport.BOTH) {
                try (Tensor dg = poisoned(6, 11); Tensor du = poisoned(6, 11)) {
                    be.swigluBackward(w, g, u, dg, du);
                    DoubleSupplier loss = () -> {
                        REF.swiglu(g, u, out);
                        return GradCheck.weightedSum(out, w);
                    };
                    GradCheck.check("swiglu dGate " + be.name(), g, dg, loss, 1e-2, 1e-3, 100, 43);
                    GradCheck.check("swiglu dUp " + be.name(), u, du, loss, 1e-2, 1e-3, 100, 44);
                }
            }
        }
    }

    @Test
    void badInputIsRejected() {
        try (Tensor a = Tensor.allocate(DType.F32, 2, 3); Tensor b = Tensor.allocate(DType.F32, 3, 2); Tensor h = Tensor.allocate(DType.F16, 2, 3)) {
            for (var be : OpTestSupport.BOTH) {
                assertRejected("swiglu", () -> be.swiglu(a, b, a), "up");
                assertRejected("swiglu", () -> be.swiglu(a, a, h), "out", "F16");
                assertRejected("swigluBackward", () -> be.swigluBackward(a, a, a, a, b), "dUp");
                assertRejected("swigluBackward", () -> be.swigluBackward(h, a, a, a, a), "dOut");
            }
        }
    }
}
