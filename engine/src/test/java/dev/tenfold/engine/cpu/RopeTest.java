package dev.tenfold.engine.cpu;

import static dev.tenfold.engine.cpu.OpTestSupport.FAST;
import static dev.tenfold.engine.cpu.OpTestSupport.REF;
import static dev.tenfold.engine.cpu.OpTestSupport.assertRejected;
import static dev.tenfold.engine.testing.TestTensors.assertClose;
import static dev.tenfold.engine.testing.TestTensors.poisoned;
import static dev.tenfold.engine.testing.TestTensors.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.testing.GradCheck;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class RopeTest {

    /** inv_freq_i = 1 / theta^(2i/d), in f32 as Hugging Face stores it. */
    static Tensor invFreq(int d, double theta) {
        float[] f = new float[d / 2];
        for (int i = 0; i < f.length; i++) f[i] = (float) (1.0 / Math.pow(theta, 2.0 * i / d));
        return Tensor.of(f, d / 2);
    }

    static Tensor positions(SplittableRandom rng, int n, int bound) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i % 3 == 2 && i > 0 ? p[i - 1] : rng.nextInt(bound); // some repeats
        return Tensor.ofInts(p);
    }

    @Test
    void fastMatchesReference() {
        SplittableRandom rng = new SplittableRandom(30);
        for (long[] shape : new long[][] {{1, 1, 2}, {7, 3, 8}, {33, 2, 34}, {5, 4, 128}, {2, 7, 3, 64}, {3, 1, 2, 98}}) {
            int d = (int) shape[shape.length - 1];
            long rows = shape.length == 3 ? shape[0] : shape[0] * shape[1];
            for (float scale : new float[] {1f, 1.3f}) {
                try (Tensor x = random(rng, shape); Tensor inv = invFreq(d, 500_000); Tensor pos = positions(rng, (int) rows, 90_000);
                     Tensor r = poisoned(shape); Tensor f = poisoned(shape); Tensor rb = poisoned(shape); Tensor fb = poisoned(shape)) {
                    String what = Arrays.toString(shape) + " scale " + scale;
                    REF.rope(x, inv, pos, scale, r);
                    FAST.rope(x, inv, pos, scale, f);
                    assertClose("rope " + what, r, f, 1e-6, 1e-5);
                    REF.ropeBackward(x, inv, pos, scale, rb);
                    FAST.ropeBackward(x, inv, pos, scale, fb);
                    assertClose("ropeBackward " + what, rb, fb, 1e-6, 1e-5);
                }
            }
        }
    }

    @Test
    void outMayAliasX() {
        SplittableRandom rng = new SplittableRandom(31);
        for (var be : OpTestSupport.BOTH) {
            try (Tensor x = random(rng, 9, 2, 40); Tensor inv = invFreq(40, 10_000); Tensor pos = positions(rng, 9, 1000);
                 Tensor want = poisoned(9, 2, 40); Tensor wantB = poisoned(9, 2, 40)) {
                be.rope(x, inv, pos, 1f, want);
                be.ropeBackward(want, inv, pos, 1f, wantB);
                be.rope(x, inv, pos, 1f, x);
                assertClose(be.name() + " rope in place", want, x, 0, 0);
                be.ropeBackward(x, inv, pos, 1f, x);
                assertClose(be.name() + " ropeBackward in place", wantB, x, 0, 0);
            }
        }
    }

    @Test
    void angleIsRoundedToF32AsHuggingFaceComputesIt() {
        // x = e_j (first half) gives out[j] = cos(angle_j), out[j + d/2] = sin(angle_j).
        int d = 4, p = 81_919;
        float[] invs = {0.1f, 0.0123f};
        try (Tensor inv = Tensor.of(invs, 2); Tensor pos = Tensor.ofInts(new int[] {p});
             Tensor x = Tensor.of(new float[] {1, 1, 0, 0}, 1, 1, 4); Tensor out = poisoned(1, 1, 4)) {
            for (var be : OpTestSupport.BOTH) {
                be.rope(x, inv, pos, 1f, out);
                for (int j = 0; j < 2; j++) {
                    float angle = (float) p * invs[j];
                    assertEquals((float) Math.cos(angle), out.getFloat(j), 1e-7, be.name() + " cos " + j);
                    assertEquals((float) Math.sin(angle), out.getFloat(j + 2), 1e-7, be.name() + " sin " + j);
                    // The double angle is measurably different: the test would catch it.
                    assertNotEquals((float) Math.cos((double) p * invs[j]), out.getFloat(j), 1e-6);
                }
            }
        }
    }

    @Test
    void positionZeroIsTheIdentity() {
        SplittableRandom rng = new SplittableRandom(32);
        for (var be : OpTestSupport.BOTH) {
            try (Tensor x = random(rng, 2, 3, 4, 64); Tensor inv = invFreq(64, 500_000); Tensor pos = Tensor.ofInts(new int[6]);
                 Tensor out = poisoned(2, 3, 4, 64)) {
                be.rope(x, inv, pos, 1f, out);
                assertClose(be.name(), x, out, 0, 0);
            }
        }
    }

    @Test
    void rotationPreservesEachPairsNorm() {
        SplittableRandom rng = new SplittableRandom(33);
        int d = 34, half = d / 2;
        for (var be : OpTestSupport.BOTH) {
            try (Tensor x = random(rng, 7, 3, d); Tensor inv = invFreq(d, 200_000_000); Tensor pos = positions(rng, 7, 80_000);
                 Tensor out = poisoned(7, 3, d)) {
                be.rope(x, inv, pos, 1f, out);
                for (long base = 0; base < x.numel(); base += d) {
                    for (int j = 0; j < half; j++) {
                        double a = sq(x.getFloat(base + j)) + sq(x.getFloat(base + j + half));
                        double b = sq(out.getFloat(base + j)) + sq(out.getFloat(base + j + half));
                        assertEquals(a, b, 1e-6 * Math.max(1, a), be.name() + " pair " + j + " of row at " + base);
                    }
                }
            }
        }
    }

    private static double sq(double v) { return v * v; }

    @Test
    void qDotKDependsOnlyOnThePositionDifference() {
        SplittableRandom rng = new SplittableRandom(34);
        int d = 64, delta = 7;
        try (Tensor q = random(rng, 1, 1, d); Tensor k = random(rng, 1, 1, d); Tensor inv = invFreq(d, 500_000);
             Tensor rq = poisoned(1, 1, d); Tensor rk = poisoned(1, 1, d)) {
            for (var be : OpTestSupport.BOTH) {
                double first = Double.NaN;
                for (int p : new int[] {0, 3, 100, 1234, 5000}) {
                    try (Tensor pq = Tensor.ofInts(new int[] {p + delta}); Tensor pk = Tensor.ofInts(new int[] {p})) {
                        be.rope(q, inv, pq, 1f, rq);
                        be.rope(k, inv, pk, 1f, rk);
                        double dot = 0;
                        for (int i = 0; i < d; i++) dot += (double) rq.getFloat(i) * rk.getFloat(i);
                        if (Double.isNaN(first)) first = dot;
                        // f32 angles at position p carry about p * 2^-24 radians of rounding.
                        assertEquals(first, dot, 1e-4, be.name() + " p=" + p);
                    }
                }
            }
        }
    }

    @Test
    void backwardMatchesFiniteDifferences() {
        SplittableRandom rng = new SplittableRandom(35);
        long[] shape = {2, 3, 2, 10};
        try (Tensor x = random(rng, shape); Tensor inv = invFreq(10, 10_000); Tensor pos = positions(rng, 6, 500);
             Tensor w = random(rng, shape); Tensor out = Tensor.allocate(DType.F32, shape)) {
            for (var be : OpTestSupport.BOTH) {
                try (Tensor dx = poisoned(shape)) {
                    be.ropeBackward(w, inv, pos, 1.25f, dx);
                    GradCheck.check("rope dx " + be.name(), x, dx, () -> {
                        REF.rope(x, inv, pos, 1.25f, out);
                        return GradCheck.weightedSum(out, w);
                    }, 1e-2, 1e-3, 200, 36);
                }
            }
        }
    }

    @Test
    void badInputIsRejected() {
        try (Tensor x = Tensor.allocate(DType.F32, 3, 2, 8); Tensor odd = Tensor.allocate(DType.F32, 3, 2, 7);
             Tensor inv = invFreq(8, 10_000); Tensor inv3 = invFreq(6, 10_000); Tensor pos = Tensor.ofInts(new int[3]);
             Tensor pos2 = Tensor.ofInts(new int[2]); Tensor posF = Tensor.allocate(DType.F32, 3);
             Tensor out = Tensor.allocate(DType.F32, 3, 2, 8); Tensor flat = Tensor.allocate(DType.F32, 6, 8)) {
            for (var be : OpTestSupport.BOTH) {
                assertRejected("rope", () -> be.rope(odd, inv, pos, 1f, odd), "even");
                assertRejected("rope", () -> be.rope(x, inv3, pos, 1f, out), "invFreq");
                assertRejected("rope", () -> be.rope(x, inv, pos2, 1f, out), "positions");
                assertRejected("rope", () -> be.rope(x, inv, posF, 1f, out), "positions");
                assertRejected("rope", () -> be.rope(flat, inv, pos, 1f, flat), "rank");
                assertRejected("ropeBackward", () -> be.ropeBackward(x, inv, pos, 1f, flat), "dx");
            }
        }
    }
}
