package dev.tenfold.engine.cpu;

import static dev.tenfold.engine.cpu.OpTestSupport.FAST;
import static dev.tenfold.engine.cpu.OpTestSupport.REF;
import static dev.tenfold.engine.cpu.OpTestSupport.assertRejected;
import static dev.tenfold.engine.testing.TestTensors.assertClose;
import static dev.tenfold.engine.testing.TestTensors.random;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class AdamWStepTest {
    private static final Backend.AdamW HP = new Backend.AdamW(1e-3f, 0.9f, 0.999f, 1e-8f, 0f);

    @Test
    void fastMatchesReferenceOverSeveralSteps() {
        SplittableRandom rng = new SplittableRandom(60);
        Backend.AdamW hp = new Backend.AdamW(3e-3f, 0.9f, 0.95f, 1e-6f, 0.1f);
        for (int n : new int[] {1, 7, 17, 100, 257, 70001}) {
            try (Tensor p0 = random(rng, n); Tensor rp = p0.copy(); Tensor fp = p0.copy();
                 Tensor rm = Tensor.allocate(DType.F32, n); Tensor fm = Tensor.allocate(DType.F32, n);
                 Tensor rv = Tensor.allocate(DType.F32, n); Tensor fv = Tensor.allocate(DType.F32, n)) {
                for (int step = 1; step <= 5; step++) {
                    try (Tensor g = random(rng, DType.F32, 0.5f, n)) {
                        REF.adamw(rp, g, rm, rv, hp, step);
                        FAST.adamw(fp, g, fm, fv, hp, step);
                    }
                    assertClose("param n=" + n + " step " + step, rp, fp, 1e-6, 1e-6);
                    assertClose("m n=" + n + " step " + step, rm, fm, 1e-7, 1e-6);
                    assertClose("v n=" + n + " step " + step, rv, fv, 1e-9, 1e-6);
                }
            }
        }
    }

    @Test
    void firstStepMovesEachParamByAboutLrTimesSignOfGradient() {
        // Step 1: m_hat = g and v_hat = g^2, so the update is lr * g / (|g| + eps).
        float[] g = {0.2f, -3f, 1e-3f, 0f};
        float[] p = {0.5f, -0.25f, 2f, 1f};
        for (var be : OpTestSupport.BOTH) {
            try (Tensor param = Tensor.of(p); Tensor grad = Tensor.of(g); Tensor m = Tensor.allocate(DType.F32, 4); Tensor v = Tensor.allocate(DType.F32, 4)) {
                be.adamw(param, grad, m, v, HP, 1);
                assertEquals(0.499f, param.getFloat(0), 1e-7, be.name());
                assertEquals(-0.249f, param.getFloat(1), 1e-7, be.name());
                assertEquals(1.999f, param.getFloat(2), 1e-6, be.name());
                assertEquals(1f, param.getFloat(3), 0, be.name()); // zero gradient, no decay: unchanged
                assertEquals(0.02f, m.getFloat(0), 1e-8);
                assertEquals(4e-5f, v.getFloat(0), 1e-10); // tight enough to see a float 1 - 0.999f (1.3e-5 off)
            }
        }
    }

    @Test
    void twoStepsMatchHandComputedValues() {
        // p=0.5; g=0.2 then g=-0.1; lr 1e-3, betas (0.9, 0.999), eps 1e-8 (computed by hand in double).
        for (var be : OpTestSupport.BOTH) {
            try (Tensor param = Tensor.of(new float[] {0.5f}, 1); Tensor m = Tensor.allocate(DType.F32, 1); Tensor v = Tensor.allocate(DType.F32, 1);
                 Tensor g1 = Tensor.of(new float[] {0.2f}, 1); Tensor g2 = Tensor.of(new float[] {-0.1f}, 1)) {
                be.adamw(param, g1, m, v, HP, 1);
                be.adamw(param, g2, m, v, HP, 2);
                assertEquals(0.49873366302718675, param.getFloat(0), 2e-7, be.name());
                assertEquals(0.008, m.getFloat(0), 1e-9);
                assertEquals(4.996e-5, v.getFloat(0), 1e-10); // tight enough to see a float 1 - 0.999f (1.3e-5 off)
            }
        }
    }

    @Test
    void weightDecayIsDecoupledAndAppliedFirst() {
        Backend.AdamW hp = new Backend.AdamW(1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f);
        for (var be : OpTestSupport.BOTH) {
            try (Tensor param = Tensor.of(new float[] {0.5f, 2f}); Tensor grad = Tensor.of(new float[] {0.2f, 0f});
                 Tensor m = Tensor.allocate(DType.F32, 2); Tensor v = Tensor.allocate(DType.F32, 2)) {
                be.adamw(param, grad, m, v, hp, 1);
                assertEquals(0.5 * (1 - 1e-4) - 1e-3, param.getFloat(0), 1e-7, be.name());
                assertEquals(2 * (1 - 1e-4), param.getFloat(1), 1e-7, be.name()); // decay acts even with no gradient
            }
        }
    }

    @Test
    void badInputIsRejected() {
        try (Tensor a = Tensor.allocate(DType.F32, 3); Tensor b = Tensor.allocate(DType.F32, 4); Tensor h = Tensor.allocate(DType.BF16, 3)) {
            for (var be : OpTestSupport.BOTH) {
                assertRejected("adamw", () -> be.adamw(a, a, a, b, HP, 1), "v", "[3]", "[4]");
                assertRejected("adamw", () -> be.adamw(a, h, a, a, HP, 1), "grad", "BF16");
                assertRejected("adamw", () -> be.adamw(a, a, a, a, HP, 0), "step");
            }
        }
    }
}
