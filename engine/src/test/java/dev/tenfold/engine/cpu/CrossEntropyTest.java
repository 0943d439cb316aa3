package dev.tenfold.engine.cpu;

import static dev.tenfold.engine.cpu.OpTestSupport.REF;
import static dev.tenfold.engine.cpu.OpTestSupport.assertRejected;
import static dev.tenfold.engine.testing.TestTensors.assertClose;
import static dev.tenfold.engine.testing.TestTensors.poisoned;
import static dev.tenfold.engine.testing.TestTensors.random;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.testing.GradCheck;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;

class CrossEntropyTest {
    /**
     * Token x vocabulary chunk sizes for the fast path (the defaults, and sizes that divide neither T nor V), and
     * the kept-logits limit (0: pass 2 recomputes the logits).
     */
    private static final long[][] CHUNKS = {{CrossEntropy.TOKEN_CHUNK, CrossEntropy.VOCAB_CHUNK, CrossEntropy.KEPT_LOGITS},
            {CrossEntropy.TOKEN_CHUNK, CrossEntropy.VOCAB_CHUNK, 0}, {3, 5, CrossEntropy.KEPT_LOGITS}, {3, 5, 0}, {4, 7, 0}, {1, 1, 0},
            {20, 40, CrossEntropy.KEPT_LOGITS}};

    private static Backend.LossSum fast(Tensor hidden, Tensor weight, Tensor targets, float gradScale, Tensor dHidden, Tensor dWeight, long[] chunks) {
        return CrossEntropy.compute(true, hidden, weight, targets, gradScale, dHidden, dWeight, (int) chunks[0], (int) chunks[1], chunks[2]);
    }

    /** Random targets in [0, v), about a quarter of them ignored (-100). */
    private static Tensor targets(SplittableRandom rng, int t, int v) {
        int[] y = new int[t];
        for (int i = 0; i < t; i++) y[i] = rng.nextInt(4) == 0 ? -100 : rng.nextInt(v);
        return Tensor.ofInts(y);
    }

    @Test
    void fastMatchesReference() {
        SplittableRandom rng = new SplittableRandom(80);
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            for (int[] thv : new int[][] {{1, 1, 1}, {7, 5, 11}, {13, 17, 37}}) {
                int t = thv[0], h = thv[1], v = thv[2];
                try (Tensor hidden = random(rng, DType.F32, 2f, t, h); Tensor weight = random(rng, dt, 1f, v, h); Tensor y = targets(rng, t, v);
                     Tensor dw0 = random(rng, v, h); Tensor rdh = poisoned(t, h); Tensor rdw = dw0.copy()) {
                    Backend.LossSum want = REF.crossEntropy(hidden, weight, y, 0.37f, rdh, rdw);
                    for (long[] c : CHUNKS) {
                        String what = dt + " T=" + t + " H=" + h + " V=" + v + " chunks " + c[0] + "x" + c[1] + " kept " + c[2];
                        try (Tensor fdh = poisoned(t, h); Tensor fdw = dw0.copy()) {
                            Backend.LossSum got = fast(hidden, weight, y, 0.37f, fdh, fdw, c);
                            assertEquals(want.count(), got.count(), what);
                            assertEquals(want.sum(), got.sum(), 1e-5 * Math.max(1, Math.abs(want.sum())), what);
                            assertClose("dHidden " + what, rdh, fdh, 1e-6, 1e-4);
                            assertClose("dWeight " + what, rdw, fdw, 1e-6, 1e-4);
                            Backend.LossSum lossOnly = fast(hidden, weight, y, 0.37f, null, null, c);
                            assertEquals(got.sum(), lossOnly.sum(), 1e-9, what);
                            // Each gradient alone is the same as with the other.
                            try (Tensor dh2 = poisoned(t, h); Tensor dw2 = dw0.copy()) {
                                fast(hidden, weight, y, 0.37f, dh2, null, c);
                                fast(hidden, weight, y, 0.37f, null, dw2, c);
                                assertClose("dHidden alone " + what, fdh, dh2, 0, 0);
                                assertClose("dWeight alone " + what, fdw, dw2, 0, 0);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void defaultChunksTakeTheWholeVocabularyWhenItsLogitsAreKept() {
        // with gradients: as many tokens as KEPT_LOGITS holds over the whole vocabulary, in equal chunks
        long fit = CrossEntropy.KEPT_LOGITS / 8192;
        assertEquals(List.of(1024, 8192), chunks(1024, 8192, true));
        assertEquals(List.of((int) fit, 8192), chunks(4 * fit, 8192, true));
        assertEquals(List.of((int) Math.ceilDiv(fit + 3, 2), 8192), chunks(fit + 3, 8192, true));
        assertEquals(List.of(1, 8192), chunks(0, 8192, true));
        // Llama-3's vocabulary: about 261 tokens fit, so 1,024 tokens make 4 chunks of 256
        assertEquals(List.of(256, 128256), chunks(1024, 128256, true));
        // too large a vocabulary to keep even TOKEN_CHUNK tokens, or no gradients: the fixed chunks
        long tooLarge = CrossEntropy.KEPT_LOGITS / CrossEntropy.TOKEN_CHUNK + 1;
        assertEquals(List.of(CrossEntropy.TOKEN_CHUNK, CrossEntropy.VOCAB_CHUNK), chunks(1024, tooLarge, true));
        assertEquals(List.of(CrossEntropy.TOKEN_CHUNK, CrossEntropy.VOCAB_CHUNK), chunks(1024, 8192, false));
        // what the plan counts is what the loss allocates
        assertEquals(1024L * 8192, CpuBackend.crossEntropyScratchElements(1024, 8192, true));
        assertEquals(256L * 4096, CpuBackend.crossEntropyScratchElements(1024, 8192, false));
    }

    private static List<Integer> chunks(long t, long v, boolean grads) {
        int[] c = CrossEntropy.defaultChunks(t, v, grads);
        return List.of(c[0], c[1]);
    }

    @Test
    void defaultChunksMatchTheReference() {
        // 600 tokens over a vocabulary of 2^16 + 5: KEPT_LOGITS holds 511 tokens, so two token chunks of 300
        SplittableRandom rng = new SplittableRandom(86);
        int t = 600, h = 8, v = (1 << 16) + 5;
        assertEquals(List.of(300, v), chunks(t, v, true));
        try (Tensor hidden = random(rng, DType.F32, 2f, t, h); Tensor weight = random(rng, v, h); Tensor y = targets(rng, t, v);
             Tensor rdh = poisoned(t, h); Tensor fdh = poisoned(t, h)) {
            Backend.LossSum want = REF.crossEntropy(hidden, weight, y, 0.5f, rdh, null);
            Backend.LossSum got = CrossEntropy.compute(true, hidden, weight, y, 0.5f, fdh, null);
            assertEquals(want.count(), got.count());
            assertEquals(want.sum(), got.sum(), 1e-6 * Math.abs(want.sum()));
            assertClose("dHidden", rdh, fdh, 1e-5, 1e-4); // an f32 sum over 65,541 logits
            // without gradients the chunks are 256 x 4096: the same loss up to the logits' rounding
            assertEquals(got.sum(), CrossEntropy.compute(true, hidden, weight, y, 0.5f, null, null).sum(), 1e-7 * Math.abs(got.sum()));
        }
    }

    @Test
    void gradientsMatchFiniteDifferences() {
        SplittableRandom rng = new SplittableRandom(81);
        int t = 6, h = 4, v = 23;
        try (Tensor hidden = random(rng, DType.F32, 2f, t, h); Tensor weight = random(rng, v, h);
             Tensor y = Tensor.ofInts(new int[] {3, -100, 22, 0, 9, 9})) {
            DoubleSupplier loss = () -> REF.crossEntropy(hidden, weight, y, 1f, null, null).sum();
            for (long[] c : new long[][] {{4, 5, CrossEntropy.KEPT_LOGITS}, {4, 5, 0}, {1, 3, 0}, null}) {
                try (Tensor dh = poisoned(t, h); Tensor dw = Tensor.allocate(DType.F32, v, h)) {
                    String what = c == null ? "reference" : "fast " + c[0] + "x" + c[1] + " kept " + c[2];
                    if (c == null) REF.crossEntropy(hidden, weight, y, 1f, dh, dw); else fast(hidden, weight, y, 1f, dh, dw, c);
                    GradCheck.check("crossEntropy dHidden " + what, hidden, dh, loss, 1e-2, 1e-3, 100, 82);
                    GradCheck.check("crossEntropy dWeight " + what, weight, dw, loss, 1e-2, 1e-3, 100, 83);
                }
            }
        }
    }

    @Test
    void zeroHiddenGivesLogV() {
        SplittableRandom rng = new SplittableRandom(84);
        int t = 5, h = 3, v = 37;
        try (Tensor hidden = Tensor.allocate(DType.F32, t, h); Tensor weight = random(rng, v, h); Tensor y = Tensor.ofInts(new int[] {0, 36, 5, 5, 20})) {
            assertEquals(Math.log(v), REF.crossEntropy(hidden, weight, y, 1f, null, null).mean(), 1e-12);
            for (long[] c : CHUNKS) {
                Backend.LossSum got = fast(hidden, weight, y, 1f, null, null, c);
                assertEquals(t, got.count());
                assertEquals(Math.log(v), got.mean(), 1e-6, c[0] + "x" + c[1]);
            }
        }
    }

    @Test
    void tinyCaseByHand() {
        // Logits (1, 0), target 0: loss = ln(e + 1) - 1; dHidden = p0 * 1 + p1 * 0 - 1 = -1 / (e + 1).
        try (Tensor hidden = Tensor.of(new float[] {1}, 1, 1); Tensor weight = Tensor.of(new float[] {1, 0}, 2, 1);
             Tensor y = Tensor.ofInts(new int[] {0}); Tensor dh = poisoned(1, 1); Tensor dw = Tensor.allocate(DType.F32, 2, 1)) {
            for (long[] c : new long[][] {{1, 1, 0}, {1, 1, CrossEntropy.KEPT_LOGITS}, null}) {
                dw.fill(0f);
                Backend.LossSum l = c == null ? REF.crossEntropy(hidden, weight, y, 1f, dh, dw) : fast(hidden, weight, y, 1f, dh, dw, c);
                assertEquals(Math.log(Math.E + 1) - 1, l.sum(), 1e-6);
                assertEquals(-1 / (Math.E + 1), dh.getFloat(0), 1e-6);
                assertEquals(-1 / (Math.E + 1), dw.getFloat(0), 1e-6); // (p0 - 1) * hidden
                assertEquals(1 / (Math.E + 1), dw.getFloat(1), 1e-6); // p1 * hidden
            }
        }
    }

    @Test
    void ignoredTargetsAreExcludedFromLossCountAndGradients() {
        SplittableRandom rng = new SplittableRandom(85);
        int h = 6, v = 19;
        try (Tensor hidden = random(rng, 4, h); Tensor weight = random(rng, v, h); Tensor y = Tensor.ofInts(new int[] {-100, 3, -100, 0});
             Tensor sub = Tensor.allocate(DType.F32, 2, h); Tensor ySub = Tensor.ofInts(new int[] {3, 0})) {
            for (int k = 0; k < h; k++) {
                sub.setFloat(k, hidden.getFloat(h + k));
                sub.setFloat(h + k, hidden.getFloat(3L * h + k));
            }
            try (Tensor dwSub = Tensor.allocate(DType.F32, v, h); Tensor dhSub = poisoned(2, h)) {
                Backend.LossSum want = REF.crossEntropy(sub, weight, ySub, 1f, dhSub, dwSub);
                for (long[] c : new long[][] {{3, 4, 0}, {3, 4, CrossEntropy.KEPT_LOGITS}, {256, 4096, CrossEntropy.KEPT_LOGITS}, null}) {
                    try (Tensor dh = poisoned(4, h); Tensor dw = Tensor.allocate(DType.F32, v, h)) {
                        Backend.LossSum got = c == null ? REF.crossEntropy(hidden, weight, y, 1f, dh, dw) : fast(hidden, weight, y, 1f, dh, dw, c);
                        assertEquals(2, got.count());
                        assertEquals(want.sum(), got.sum(), 1e-5);
                        for (int k = 0; k < h; k++) {
                            assertEquals(0f, dh.getFloat(k));
                            assertEquals(0f, dh.getFloat(2L * h + k));
                            assertEquals(dhSub.getFloat(k), dh.getFloat(h + k), 1e-6);
                        }
                        assertClose("dWeight", dwSub, dw, 1e-6, 1e-5);
                    }
                }
            }
        }
        try (Tensor hidden = random(rng, 3, h); Tensor weight = random(rng, v, h); Tensor y = Tensor.ofInts(new int[] {-100, -100, -100});
             Tensor dh = poisoned(3, h); Tensor dw = Tensor.allocate(DType.F32, v, h)) {
            for (long[] c : new long[][] {{2, 4, 0}, {2, 4, CrossEntropy.KEPT_LOGITS}, null}) {
                Backend.LossSum got = c == null ? REF.crossEntropy(hidden, weight, y, 1f, dh, dw) : fast(hidden, weight, y, 1f, dh, dw, c);
                assertEquals(0, got.count());
                assertEquals(0.0, got.sum());
                assertTrue(Double.isNaN(got.mean()));
                for (float f : dh.toFloatArray()) assertEquals(0f, f);
                for (float f : dw.toFloatArray()) assertEquals(0f, f);
            }
        }
    }

    @Test
    void badInputIsRejected() {
        try (Tensor hidden = Tensor.allocate(DType.F32, 3, 4); Tensor weight = Tensor.allocate(DType.BF16, 5, 4); Tensor w3 = Tensor.allocate(DType.F32, 5, 3);
             Tensor y = Tensor.ofInts(new int[] {0, 4, -100}); Tensor yHigh = Tensor.ofInts(new int[] {0, 1, 5}); Tensor yNeg = Tensor.ofInts(new int[] {0, -1, 2});
             Tensor y2 = Tensor.ofInts(new int[] {0, 1}); Tensor dwBf = Tensor.allocate(DType.BF16, 5, 4); Tensor dh = Tensor.allocate(DType.F32, 4, 3);
             Tensor hb = Tensor.allocate(DType.F16, 3, 4)) {
            for (var be : OpTestSupport.BOTH) {
                assertRejected("crossEntropy", () -> be.crossEntropy(hidden, weight, yHigh, 1f, null, null), "position 2", "target 5");
                assertRejected("crossEntropy", () -> be.crossEntropy(hidden, weight, yNeg, 1f, null, null), "position 1", "target -1");
                assertRejected("crossEntropy", () -> be.crossEntropy(hidden, w3, y, 1f, null, null), "weight");
                assertRejected("crossEntropy", () -> be.crossEntropy(hidden, weight, y2, 1f, null, null), "targets");
                assertRejected("crossEntropy", () -> be.crossEntropy(hidden, weight, y, 1f, null, dwBf), "dWeight");
                assertRejected("crossEntropy", () -> be.crossEntropy(hidden, weight, y, 1f, dh, null), "dHidden", "[3, 4]");
                assertRejected("crossEntropy", () -> be.crossEntropy(hb, weight, y, 1f, null, null), "hidden");
            }
        }
    }
}
