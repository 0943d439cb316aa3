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
import org.junit.jupiter.api.Test;

class SoftmaxTest {

    @Test
    void fastMatchesReferenceAndRowsSumToOne() {
        SplittableRandom rng = new SplittableRandom(50);
        for (int rows : ROWS) {
            for (int w : WIDTHS) {
                // Large logits: without the max subtracted, exp would overflow.
                try (Tensor x = random(rng, DType.F32, 100f, rows, w); Tensor dOut = random(rng, rows, w);
                     Tensor r = poisoned(rows, w); Tensor f = poisoned(rows, w); Tensor rdx = poisoned(rows, w); Tensor fdx = poisoned(rows, w)) {
                    REF.softmax(x, r);
                    FAST.softmax(x, f);
                    assertClose("softmax " + rows + "x" + w, r, f, 1e-7, 1e-5);
                    for (int i = 0; i < rows; i++) {
                        double s = 0;
                        for (int j = 0; j < w; j++) s += f.getFloat((long) i * w + j);
                        assertEquals(1.0, s, 1e-5);
                    }
                    REF.softmaxBackward(dOut, r, rdx);
                    FAST.softmaxBackward(dOut, r, fdx);
                    assertClose("softmaxBackward " + rows + "x" + w, rdx, fdx, 1e-6, 1e-5);
                }
            }
        }
    }

    @Test
    void outMayAliasX() {
        SplittableRandom rng = new SplittableRandom(51);
        for (var be : OpTestSupport.BOTH) {
            try (Tensor x = random(rng, 2, 3, 45); Tensor want = poisoned(2, 3, 45)) {
                be.softmax(x, want);
                be.softmax(x, x);
                assertClose(be.name(), want, x, 0, 0);
            }
        }
    }

    @Test
    void backwardMatchesFiniteDifferences() {
        SplittableRandom rng = new SplittableRandom(52);
        try (Tensor x = random(rng, DType.F32, 3f, 4, 13); Tensor w = random(rng, 4, 13); Tensor y = Tensor.allocate(DType.F32, 4, 13)) {
            for (var be : OpTestSupport.BOTH) {
                try (Tensor dx = poisoned(4, 13)) {
                    be.softmax(x, y);
                    be.softmaxBackward(w, y, dx);
                    GradCheck.check("softmax dx " + be.name(), x, dx, () -> {
                        REF.softmax(x, y);
                        return GradCheck.weightedSum(y, w);
                    }, 1e-2, 1e-3, 100, 53);
                }
            }
        }
    }

    @Test
    void badInputIsRejected() {
        try (Tensor a = Tensor.allocate(DType.F32, 2, 3); Tensor b = Tensor.allocate(DType.F32, 3, 2); Tensor h = Tensor.allocate(DType.BF16, 2, 3)) {
            for (var be : OpTestSupport.BOTH) {
                assertRejected("softmax", () -> be.softmax(a, b), "out");
                assertRejected("softmax", () -> be.softmax(h, h), "x", "BF16");
                assertRejected("softmaxBackward", () -> be.softmaxBackward(a, b, a), "y");
                assertRejected("softmaxBackward", () -> be.softmaxBackward(a, a, h), "dx");
            }
        }
    }
}
