package dev.tenfold.engine.cpu;

import static dev.tenfold.engine.cpu.OpTestSupport.FAST;
import static dev.tenfold.engine.cpu.OpTestSupport.REF;
import static dev.tenfold.engine.cpu.OpTestSupport.assertRejected;
import static dev.tenfold.engine.cpu.OpTestSupport.bytes;
import static dev.tenfold.engine.testing.TestTensors.assertClose;
import static dev.tenfold.engine.testing.TestTensors.poisoned;
import static dev.tenfold.engine.testing.TestTensors.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.tenfold.engine.DType;
import dev.tenfold.engine.Numerics;
import dev.tenfold.engine.Tensor;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class ElementwiseTest {
    // 70001 spans several parallel tasks; the others are awkward vector tails.
    private static final int[] SIZES = {1, 7, 17, 100, 257, 3301, 70001};

    @Test
    void addMulScaleFastMatchesReference() {
        SplittableRandom rng = new SplittableRandom(1);
        for (int n : SIZES) {
            try (Tensor a = random(rng, n, 1); Tensor b = random(rng, n, 1)) {
                for (String op : new String[] {"add", "mul", "scale"}) {
                    try (Tensor r = poisoned(n, 1); Tensor f = poisoned(n, 1)) {
                        run(REF, op, a, b, r);
                        run(FAST, op, a, b, f);
                        assertClose(op + " n=" + n, r, f, 0, 0);
                        float[] x = a.toFloatArray(), y = b.toFloatArray(), got = r.toFloatArray();
                        for (int i = 0; i < n; i++) {
                            float want = switch (op) {
                                case "add" -> x[i] + y[i];
                                case "mul" -> x[i] * y[i];
                                default -> x[i] * -1.75f;
                            };
                            assertEquals(want, got[i], op + " at " + i);
                        }
                    }
                }
            }
        }
    }

    @Test
    void outMayAliasAnInput() {
        SplittableRandom rng = new SplittableRandom(2);
        for (var be : OpTestSupport.BOTH) {
            try (Tensor a = random(rng, 3, 257); Tensor b = random(rng, 3, 257); Tensor want = poisoned(3, 257)) {
                be.add(a, b, want);
                be.add(a, b, a);
                assertClose("add into a", want, a, 0, 0);
                be.mul(a, b, want);
                be.mul(a, b, b);
                assertClose("mul into b", want, b, 0, 0);
                be.scale(a, 3f, want);
                be.scale(a, 3f, a);
                assertClose("scale in place", want, a, 0, 0);
            }
        }
    }

    @Test
    void castFastMatchesReferenceBitForBit() {
        SplittableRandom rng = new SplittableRandom(3);
        DType[] types = {DType.F32, DType.BF16, DType.F16};
        for (int n : SIZES) {
            try (Tensor src32 = random(rng, DType.F32, 70000f, n)) {
                // Awkward values: NaN, infinities, signed zero, subnormals, f16 overflow.
                float[] special = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, -0f, 1e-40f, -3e-39f, 1e-6f, 1f + 1f / 256, 1e30f};
                for (int i = 0; i < Math.min(n, special.length); i++) src32.setFloat((i * 7L) % n, special[i]);
                for (DType from : types) {
                    try (Tensor src = Tensor.allocate(from, n)) {
                        REF.cast(src32, src);
                        for (DType to : types) {
                            try (Tensor r = poisoned(to, n); Tensor f = poisoned(to, n)) {
                                REF.cast(src, r);
                                FAST.cast(src, f);
                                assertArrayEquals(bytes(r), bytes(f), "cast " + from + " -> " + to + " n=" + n);
                                if (to == DType.F32 || from == to) {
                                    // Widening (or copying) is exact.
                                    assertArrayEquals(bytes(src), bytes(to == from ? r : narrowBack(r, from)), from + " -> " + to);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    private static Tensor narrowBack(Tensor f32, DType to) {
        Tensor t = Tensor.allocate(to, f32.shape());
        REF.cast(f32, t);
        return t;
    }

    @Test
    void bf16CastRoundsToNearestEven() {
        // Halfway cases go to the neighbour with an even last mantissa bit; just above halfway goes up.
        float ulp = 1f / 128; // bf16 spacing in [1, 2)
        float[] in = {1f + ulp / 2, 1f + 3 * ulp / 2, 1f + ulp / 2 + 1f / (1 << 20), 1f + ulp / 2 - 1f / (1 << 20), -(1f + 3 * ulp / 2)};
        float[] want = {1f, 1f + 2 * ulp, 1f + ulp, 1f, -(1f + 2 * ulp)};
        int reps = 8; // 40 values: the fast path's vector loop handles most of them, its scalar tail the rest
        float[] src = new float[in.length * reps], expected = new float[src.length];
        for (int i = 0; i < src.length; i++) {
            src[i] = in[i % in.length];
            expected[i] = want[i % in.length];
        }
        for (var be : OpTestSupport.BOTH) {
            try (Tensor s = Tensor.of(src); Tensor d = poisoned(DType.BF16, src.length)) {
                be.cast(s, d);
                assertArrayEquals(expected, d.toFloatArray(), be.name());
            }
        }
        assertEquals(1f + 2 * ulp, Numerics.roundToBf16(1f + 3 * ulp / 2));
    }

    @Test
    void badInputIsRejected() {
        try (Tensor a = Tensor.allocate(DType.F32, 2, 3); Tensor b = Tensor.allocate(DType.F32, 3, 2);
             Tensor h = Tensor.allocate(DType.F16, 2, 3); Tensor i = Tensor.allocate(DType.I32, 2, 3)) {
            for (var be : OpTestSupport.BOTH) {
                assertRejected("add", () -> be.add(a, b, a), "[2, 3]", "[3, 2]");
                assertRejected("mul", () -> be.mul(a, a, b));
                assertRejected("mul", () -> be.mul(a, h, a), "F16");
                assertRejected("scale", () -> be.scale(h, 2f, h));
                assertRejected("cast", () -> be.cast(a, i), "I32");
                assertRejected("cast", () -> be.cast(a, b.view(2, 3).slice(0, 1)));
            }
        }
    }

    private static void run(CpuBackend be, String op, Tensor a, Tensor b, Tensor out) {
        switch (op) {
            case "add" -> be.add(a, b, out);
            case "mul" -> be.mul(a, b, out);
            default -> be.scale(a, -1.75f, out);
        }
    }
}
