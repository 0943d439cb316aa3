package dev.tenfold.engine.cpu;

import static dev.tenfold.engine.testing.TestTensors.assertClose;
import static dev.tenfold.engine.testing.TestTensors.poisoned;
import static dev.tenfold.engine.testing.TestTensors.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.testing.GradCheck;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

class AttentionTest {
    private static final Backend REF = CpuBackend.reference();
    private static final Backend FAST = CpuBackend.fast();

    /** One problem: inputs, the reference's forward outputs and a random upstream gradient. */
    private record Problem(int b, int tq, int tk, int hq, int hkv, int d, float scale,
                           Tensor q, Tensor k, Tensor v, Tensor dOut, Tensor out, Tensor lse) implements AutoCloseable {
        static Problem of(long seed, int b, int tq, int tk, int hq, int hkv, int d) {
            SplittableRandom rng = new SplittableRandom(seed);
            // q larger than k so that the softmax is far from uniform (peaky rows test the online max).
            Tensor q = random(rng, DType.F32, 3f, b, tq, hq, d);
            Tensor k = random(rng, b, tk, hkv, d);
            Tensor v = random(rng, b, tk, hkv, d);
            Tensor dOut = random(rng, b, tq, hq, d);
            Tensor out = poisoned(b, tq, hq, d);
            Tensor lse = poisoned(b, hq, tq);
            float scale = (float) (1 / Math.sqrt(d));
            REF.attention(q, k, v, scale, out, lse);
            return new Problem(b, tq, tk, hq, hkv, d, scale, q, k, v, dOut, out, lse);
        }

        @Override
        public void close() {
            for (Tensor t : new Tensor[] {q, k, v, dOut, out, lse}) t.close();
        }

        @Override
        public String toString() {
            return "B=" + b + " Tq=" + tq + " Tk=" + tk + " Hq=" + hq + " Hkv=" + hkv + " d=" + d;
        }
    }

    /** Shapes: awkward lengths (not tile multiples), GQA ratios 1, 4 and 8, decoding against a cache. */
    static Stream<Arguments> shapes() {
        return Stream.of(
                // b, tq, tk, hq, hkv, d
                Arguments.of(1, 1, 1, 4, 4, 16),
                Arguments.of(2, 17, 17, 8, 2, 64),
                Arguments.of(1, 127, 127, 8, 1, 16),
                Arguments.of(2, 127, 127, 4, 4, 128),
                Arguments.of(1, 300, 300, 8, 2, 64),
                Arguments.of(1, 300, 300, 2, 2, 128),
                Arguments.of(1, 70, 70, 4, 2, 24),      // head dim not a multiple of the vector length
                Arguments.of(1, 1, 40, 8, 2, 64),       // decoding one token
                Arguments.of(1, 1, 513, 32, 8, 128),    // decoding one token, Llama-3-8B's heads
                Arguments.of(2, Attention.FEW_QUERIES, 600, 8, 2, 64), // the most positions the decoding path takes
                Arguments.of(1, 2, 50, 4, 4, 24),       // decoding, head dim not a multiple of the vector length
                Arguments.of(3, 3, 3, 2, 1, 8),         // decoding without a cache, head dim under one vector
                Arguments.of(1, 3, 40, 6, 2, 20),       // decoding, group 3 (a partial block of heads), head dim 20 (a tail at every width)
                Arguments.of(1, 2, 30, 6, 1, 20),       // decoding, group 6: a full and a partial block of four heads
                Arguments.of(2, 5, 40, 4, 4, 16),       // decoding a few tokens
                Arguments.of(1, 33, 150, 8, 1, 128));   // a chunk of queries after a cache
    }

    @ParameterizedTest(name = "B={0} Tq={1} Tk={2} Hq={3} Hkv={4} d={5}")
    @MethodSource("shapes")
    void fastMatchesReference(int b, int tq, int tk, int hq, int hkv, int d) {
        try (Problem pr = Problem.of(31L * tq + tk + d, b, tq, tk, hq, hkv, d);
             Tensor out = poisoned(b, tq, hq, d); Tensor lse = poisoned(b, hq, tq)) {
            FAST.attention(pr.q, pr.k, pr.v, pr.scale, out, lse);
            assertClose("out " + pr, pr.out, out, 2e-5, 1e-4);
            assertClose("lse " + pr, pr.lse, lse, 2e-5, 1e-5);

            try (Tensor dqR = poisoned(b, tq, hq, d); Tensor dkR = poisoned(b, tk, hkv, d); Tensor dvR = poisoned(b, tk, hkv, d);
                 Tensor dqF = poisoned(b, tq, hq, d); Tensor dkF = poisoned(b, tk, hkv, d); Tensor dvF = poisoned(b, tk, hkv, d)) {
                REF.attentionBackward(pr.dOut, pr.q, pr.k, pr.v, pr.out, pr.lse, pr.scale, dqR, dkR, dvR);
                FAST.attentionBackward(pr.dOut, pr.q, pr.k, pr.v, pr.out, pr.lse, pr.scale, dqF, dkF, dvF);
                assertClose("dq " + pr, dqR, dqF, 1e-4, 1e-3);
                assertClose("dk " + pr, dkR, dkF, 1e-4, 1e-3);
                assertClose("dv " + pr, dvR, dvF, 1e-4, 1e-3);
            }
        }
    }

    /** The one-pass backward (dq from per-stripe partials) against the two-pass one, at every stripe count that can occur. */
    @ParameterizedTest(name = "B={0} Tq={1} Tk={2} Hq={3} Hkv={4} d={5}")
    @MethodSource("shapes")
    void onePassBackwardMatchesTwoPasses(int b, int tq, int tk, int hq, int hkv, int d) {
        try (Problem pr = Problem.of(7L * tq + tk + d, b, tq, tk, hq, hkv, d)) {
            Attention.Dims g = new Attention.Dims(b, tq, tk, hq, hkv, d);
            float[][] two = backward(pr, g, 0);
            int nkt = Math.ceilDiv(tk, Attention.BC);
            for (int stripes = 1; stripes <= Math.min(Attention.MAX_DQ_STRIPES, nkt); stripes++) {
                float[][] one = backward(pr, g, stripes);
                // dk and dv come from the same sums in the same order: the same bits
                assertArrayEquals(two[1], one[1], "dk, " + stripes + " stripes, " + pr);
                assertArrayEquals(two[2], one[2], "dv, " + stripes + " stripes, " + pr);
                try (Tensor a = Tensor.of(two[0], b, tq, hq, d); Tensor c = Tensor.of(one[0], b, tq, hq, d)) {
                    assertClose("dq, " + stripes + " stripes, " + pr, a, c, 1e-5, 1e-4);
                }
            }
            assertTrue(Attention.dqStripes(g) > 0, "small shapes take the one-pass backward");
        }
    }

    /** The key and value rows packed once per call give the same bits as each query tile copying the rows it meets. */
    @ParameterizedTest(name = "B={0} Tq={1} Tk={2} Hq={3} Hkv={4} d={5}")
    @MethodSource("shapes")
    void packedKeyRowsGiveTheSameBits(int b, int tq, int tk, int hq, int hkv, int d) {
        try (Problem pr = Problem.of(13L * tq + tk + d, b, tq, tk, hq, hkv, d);
             Tensor out1 = poisoned(b, tq, hq, d); Tensor lse1 = poisoned(b, hq, tq);
             Tensor out2 = poisoned(b, tq, hq, d); Tensor lse2 = poisoned(b, hq, tq)) {
            Attention.Dims g = new Attention.Dims(b, tq, tk, hq, hkv, d);
            Attention.fastForward(g, pr.q.data(), pr.k.data(), pr.v.data(), pr.scale, out1.data(), lse1.data(), true);
            Attention.fastForward(g, pr.q.data(), pr.k.data(), pr.v.data(), pr.scale, out2.data(), lse2.data(), false);
            assertArrayEquals(out2.toFloatArray(), out1.toFloatArray(), "out, " + pr);
            assertArrayEquals(lse2.toFloatArray(), lse1.toFloatArray(), "lse, " + pr);
        }
    }

    /** The query tiles packed once per call give the same bits as each key tile packing the rows it meets, in both passes. */
    @ParameterizedTest(name = "B={0} Tq={1} Tk={2} Hq={3} Hkv={4} d={5}")
    @MethodSource("shapes")
    void packedQueryTilesGiveTheSameBits(int b, int tq, int tk, int hq, int hkv, int d) {
        try (Problem pr = Problem.of(11L * tq + tk + d, b, tq, tk, hq, hkv, d)) {
            Attention.Dims g = new Attention.Dims(b, tq, tk, hq, hkv, d);
            for (int stripes : new int[] {0, Attention.dqStripes(g)}) {
                float[][] packed = backward(pr, g, stripes, true), perTile = backward(pr, g, stripes, false);
                for (int i = 0; i < 3; i++) assertArrayEquals(perTile[i], packed[i], "d" + "qkv".charAt(i) + ", " + stripes + " stripes, " + pr);
            }
        }
    }

    /**
     * The packed key rows, query tiles and dq partials come from {@link FloatPool}: arrays of exactly their lengths,
     * handed back dirty (NaN) by an earlier user, must give the same bits as fresh ones.
     */
    @Test
    void pooledBuffersGiveTheSameBitsAsFreshOnes() {
        int b = 1, tq = 300, tk = 300, hq = 8, hkv = 2, d = 64;
        try (Problem pr = Problem.of(5, b, tq, tk, hq, hkv, d);
             Tensor out1 = poisoned(b, tq, hq, d); Tensor lse1 = poisoned(b, hq, tq);
             Tensor out2 = poisoned(b, tq, hq, d); Tensor lse2 = poisoned(b, hq, tq)) {
            Attention.Dims g = new Attention.Dims(b, tq, tk, hq, hkv, d);
            Attention.fastForward(g, pr.q.data(), pr.k.data(), pr.v.data(), pr.scale, out1.data(), lse1.data(), true);
            float[][] fresh = backward(pr, g, Attention.dqStripes(g));
            int grp = hq / hkv, br = Attention.queryTile(grp), dp = d; // d is a multiple of every vector length
            int[] lengths = {tk * dp, Math.ceilDiv(tq, br) * grp * br * dp, grp * tq * dp}; // key rows, query tiles, a dq partial
            for (int n : lengths) {
                for (int i = 0; i < 2 * Attention.MAX_DQ_STRIPES; i++) {
                    float[] dirty = new float[n];
                    Arrays.fill(dirty, Float.NaN);
                    FloatPool.giveBack(dirty);
                }
            }
            Attention.fastForward(g, pr.q.data(), pr.k.data(), pr.v.data(), pr.scale, out2.data(), lse2.data(), true);
            assertArrayEquals(out1.toFloatArray(), out2.toFloatArray(), "out");
            assertArrayEquals(lse1.toFloatArray(), lse2.toFloatArray(), "lse");
            float[][] reused = backward(pr, g, Attention.dqStripes(g));
            for (int i = 0; i < 3; i++) assertArrayEquals(fresh[i], reused[i], "d" + "qkv".charAt(i));
            for (int n : lengths) {
                for (int i = 0; i < 2 * Attention.MAX_DQ_STRIPES; i++) FloatPool.zeroed(n); // leave the pool as it was
            }
        }
    }

    private static float[][] backward(Problem pr, Attention.Dims g, int stripes) {
        return backward(pr, g, stripes, true);
    }

    private static float[][] backward(Problem pr, Attention.Dims g, int stripes, boolean packQueries) {
        try (Tensor dq = poisoned(pr.b, pr.tq, pr.hq, pr.d); Tensor dk = poisoned(pr.b, pr.tk, pr.hkv, pr.d);
             Tensor dv = poisoned(pr.b, pr.tk, pr.hkv, pr.d)) {
            Attention.fastBackward(g, pr.dOut.data(), pr.q.data(), pr.k.data(), pr.v.data(), pr.out.data(), pr.lse.data(), pr.scale,
                    dq.data(), dk.data(), dv.data(), stripes, packQueries);
            return new float[][] {dq.toFloatArray(), dk.toFloatArray(), dv.toFloatArray()};
        }
    }

    /** The oracle's backward against finite differences of loss = sum(out * w), for q, k and v. */
    @ParameterizedTest(name = "Tq={0} Tk={1}")
    @MethodSource("gradShapes")
    void referenceBackwardMatchesFiniteDifferences(int tq, int tk) {
        int b = 1, hq = 2, hkv = 1, d = 4;
        SplittableRandom rng = new SplittableRandom(7);
        try (Tensor q = random(rng, DType.F32, 2f, b, tq, hq, d); Tensor k = random(rng, b, tk, hkv, d);
             Tensor v = random(rng, b, tk, hkv, d); Tensor w = random(rng, b, tq, hq, d);
             Tensor out = poisoned(b, tq, hq, d); Tensor lse = poisoned(b, hq, tq);
             Tensor dq = poisoned(b, tq, hq, d); Tensor dk = poisoned(b, tk, hkv, d); Tensor dv = poisoned(b, tk, hkv, d)) {
            float scale = 0.5f;
            REF.attention(q, k, v, scale, out, lse);
            REF.attentionBackward(w, q, k, v, out, lse, scale, dq, dk, dv);
            java.util.function.DoubleSupplier loss = () -> {
                try (Tensor o = poisoned(b, tq, hq, d); Tensor l = poisoned(b, hq, tq)) {
                    REF.attention(q, k, v, scale, o, l);
                    return GradCheck.weightedSum(o, w);
                }
            };
            GradCheck.check("dq", q, dq, loss, 1e-3, 2e-3, 1000, 1);
            GradCheck.check("dk", k, dk, loss, 1e-3, 2e-3, 1000, 2);
            GradCheck.check("dv", v, dv, loss, 1e-3, 2e-3, 1000, 3);
        }
    }

    static Stream<Arguments> gradShapes() {
        return Stream.of(Arguments.of(5, 5), Arguments.of(3, 6));
    }

    /** Changing k and v at position t leaves every query before t bit-for-bit unchanged, and changes query t. */
    @Test
    void futureKeysDoNotLeak() {
        int b = 1, t = 90, hq = 4, hkv = 2, d = 32, changed = 71;
        for (Backend be : new Backend[] {REF, FAST}) {
            try (Problem pr = Problem.of(11, b, t, t, hq, hkv, d);
                 Tensor out1 = poisoned(b, t, hq, d); Tensor lse1 = poisoned(b, hq, t);
                 Tensor out2 = poisoned(b, t, hq, d); Tensor lse2 = poisoned(b, hq, t)) {
                be.attention(pr.q, pr.k, pr.v, pr.scale, out1, lse1);
                for (int kvh = 0; kvh < hkv; kvh++) {
                    for (int p = 0; p < d; p++) {
                        long i = ((long) changed * hkv + kvh) * d + p;
                        pr.k.setFloat(i, pr.k.getFloat(i) + 5f);
                        pr.v.setFloat(i, -pr.v.getFloat(i) + 1f);
                    }
                }
                be.attention(pr.q, pr.k, pr.v, pr.scale, out2, lse2);
                float[] o1 = out1.toFloatArray(), o2 = out2.toFloatArray();
                int before = changed * hq * d;
                assertArrayEquals(Arrays.copyOf(o1, before), Arrays.copyOf(o2, before), be.name() + ": earlier outputs changed");
                assertFalse(Arrays.equals(Arrays.copyOfRange(o1, before, before + hq * d),
                        Arrays.copyOfRange(o2, before, before + hq * d)), be.name() + ": output at the changed position did not change");
                float[] l1 = lse1.toFloatArray(), l2 = lse2.toFloatArray();
                for (int h = 0; h < hq; h++) {
                    assertArrayEquals(Arrays.copyOfRange(l1, h * t, h * t + changed), Arrays.copyOfRange(l2, h * t, h * t + changed),
                            be.name() + ": earlier lse changed");
                }
            }
        }
    }

    /**
     * The tile kernel (the micro-tiles for 32 registers: 6 x 4, 4 x 4 and 8 x 2 vectors; for 16: 6 x 2 and 4 x 2) against a plain
     * triple loop, with a strided (transposed) a, rows that are not a multiple of 4 and widths that
     * leave every column remainder, storing and accumulating.
     */
    @Test
    void tileKernelMatchesPlainLoop() {
        int l = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length();
        SplittableRandom rng = new SplittableRandom(9);
        for (boolean wide : new boolean[] {true, false}) {
            for (int n : new int[] {1, 4, 6, 7, 10, 13, 14, 17, 19, 40}) { // 6-row tiles where n allows, 4-row and single rows after
                for (int w : new int[] {l, 2 * l, 3 * l, 4 * l, 7 * l, 8 * l}) {
                    for (boolean acc : new boolean[] {false, true}) {
                        int k = 19, ldc = w + l, ldb = w + 2 * l;
                        boolean trans = n % 2 == 1; // a as [k][n] (ars 1, acs n) or [n][k]
                        int ars = trans ? 1 : k, acs = trans ? n : 1;
                        float[] a = new float[n * k], b = new float[k * ldb], c = new float[n * ldc];
                        for (int i = 0; i < a.length; i++) a[i] = (float) rng.nextDouble(-1, 1);
                        for (int i = 0; i < b.length; i++) b[i] = (float) rng.nextDouble(-1, 1);
                        for (int i = 0; i < c.length; i++) c[i] = (float) rng.nextDouble(-1, 1);
                        float[] expect = c.clone();
                        for (int i = 0; i < n; i++) {
                            for (int j = 0; j < w; j++) {
                                double s = acc ? c[i * ldc + j] : 0;
                                for (int p = 0; p < k; p++) s += (double) a[i * ars + p * acs] * b[p * ldb + j];
                                expect[i * ldc + j] = (float) s;
                            }
                        }
                        Attention.gemm(c, ldc, a, ars, acs, b, ldb, n, k, w, acc, wide);
                        for (int i = 0; i < c.length; i++) {
                            if (Math.abs(c[i] - expect[i]) > 1e-4f) {
                                throw new AssertionError("wide " + wide + " n " + n + " w " + w + " acc " + acc + " at " + i + ": "
                                        + c[i] + " != " + expect[i]);
                            }
                        }
                    }
                }
            }
        }
    }

    /** Every caller has a's rows or its columns contiguous; the kernels index only those two ways. */
    @Test
    void gemmRefusesStridesThatAreNeitherUnit() {
        float[] a = new float[64], b = new float[64], c = new float[64];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Attention.gemm(c, 8, a, 2, 3, b, 8, 2, 2, 8, false, true));
        assertTrue(e.getMessage().contains("ars 2, acs 3"), e.getMessage());
    }

    /** The fast forward and backward give identical bits on every run (no order depends on scheduling). */
    @ParameterizedTest(name = "Tq={0}")
    @ValueSource(ints = {260, 1})
    void fastIsDeterministic(int t) {
        int b = 1, hq = 8, hkv = 2, d = 64, tk = 260;
        try (Problem pr = Problem.of(5, b, t, tk, hq, hkv, d)) {
            float[][] first = null;
            for (int run = 0; run < 3; run++) {
                try (Tensor out = poisoned(b, t, hq, d); Tensor lse = poisoned(b, hq, t);
                     Tensor dq = poisoned(b, t, hq, d); Tensor dk = poisoned(b, tk, hkv, d); Tensor dv = poisoned(b, tk, hkv, d)) {
                    FAST.attention(pr.q, pr.k, pr.v, pr.scale, out, lse);
                    FAST.attentionBackward(pr.dOut, pr.q, pr.k, pr.v, out, lse, pr.scale, dq, dk, dv);
                    float[][] now = {out.toFloatArray(), lse.toFloatArray(), dq.toFloatArray(), dk.toFloatArray(), dv.toFloatArray()};
                    if (first == null) {
                        first = now;
                    } else {
                        for (int i = 0; i < now.length; i++) assertArrayEquals(first[i], now[i], "run " + run + " differs");
                    }
                }
            }
        }
    }

    /** Keys no query sees (never, with Tq <= Tk, but a zero-size problem) get zero gradients, not stale memory. */
    @Test
    void emptyProblemWritesZeroGradients() {
        try (Tensor q = Tensor.allocate(DType.F32, 1, 0, 2, 8); Tensor k = Tensor.allocate(DType.F32, 1, 3, 1, 8);
             Tensor v = Tensor.allocate(DType.F32, 1, 3, 1, 8); Tensor out = Tensor.allocate(DType.F32, 1, 0, 2, 8);
             Tensor lse = Tensor.allocate(DType.F32, 1, 2, 0);
             Tensor dk = poisoned(1, 3, 1, 8); Tensor dv = poisoned(1, 3, 1, 8); Tensor dq = Tensor.allocate(DType.F32, 1, 0, 2, 8)) {
            for (Backend be : new Backend[] {REF, FAST}) {
                be.attention(q, k, v, 1f, out, lse);
                be.attentionBackward(out, q, k, v, out, lse, 1f, dq, dk, dv);
                for (float x : dk.toFloatArray()) assertTrue(x == 0f);
                for (float x : dv.toFloatArray()) assertTrue(x == 0f);
                dk.fill(Float.NaN);
                dv.fill(Float.NaN);
            }
        }
    }

    @Test
    void badInputsNameTheOpAndShapes() {
        try (Tensor q = Tensor.allocate(DType.F32, 1, 4, 6, 8); Tensor k = Tensor.allocate(DType.F32, 1, 4, 4, 8);
             Tensor v = Tensor.allocate(DType.F32, 1, 4, 4, 8); Tensor out = Tensor.allocate(DType.F32, 1, 4, 6, 8);
             Tensor lse = Tensor.allocate(DType.F32, 1, 6, 4)) {
            // 6 query heads do not divide into 4 kv heads.
            expectFailure(() -> FAST.attention(q, k, v, 1f, out, lse), "multiple", "[1, 4, 6, 8]", "[1, 4, 4, 8]");
        }
        try (Tensor q = Tensor.allocate(DType.F32, 1, 5, 4, 8); Tensor k = Tensor.allocate(DType.F32, 1, 3, 2, 8);
             Tensor v = Tensor.allocate(DType.F32, 1, 3, 2, 8); Tensor out = Tensor.allocate(DType.F32, 1, 5, 4, 8);
             Tensor lse = Tensor.allocate(DType.F32, 1, 4, 5)) {
            // Fewer keys than queries.
            expectFailure(() -> REF.attention(q, k, v, 1f, out, lse), "Tk >= Tq", "[1, 5, 4, 8]", "[1, 3, 2, 8]");
        }
        try (Tensor q = Tensor.allocate(DType.F32, 1, 4, 4, 8); Tensor k = Tensor.allocate(DType.F32, 1, 4, 2, 8);
             Tensor v = Tensor.allocate(DType.F32, 1, 4, 2, 8); Tensor out = Tensor.allocate(DType.F32, 1, 4, 4, 8);
             Tensor badLse = Tensor.allocate(DType.F32, 1, 4, 4, 1); Tensor lse = Tensor.allocate(DType.F32, 1, 4, 4);
             Tensor bf = Tensor.allocate(DType.F16, 1, 4, 4, 8); Tensor dk = Tensor.allocate(DType.F32, 1, 4, 2, 8);
             Tensor dv = Tensor.allocate(DType.F32, 1, 4, 2, 8); Tensor badDk = Tensor.allocate(DType.F32, 1, 4, 4, 8);
             Tensor vOther = Tensor.allocate(DType.F32, 1, 4, 2, 4)) {
            expectFailure(() -> FAST.attention(q, k, v, 1f, out, badLse), "lse", "[1, 4, 4, 1]");
            expectFailure(() -> FAST.attention(bf, k, v, 1f, out, lse), "q", "F16[1, 4, 4, 8]");
            expectFailure(() -> FAST.attention(q, k, v, 1f, bf, lse), "out", "F16[1, 4, 4, 8]");
            expectFailure(() -> FAST.attention(q, k, vOther, 1f, out, lse), "v", "[1, 4, 2, 4]");
            expectFailure(() -> FAST.attentionBackward(out, q, k, v, out, lse, 1f, out, badDk, dv), "dk", "[1, 4, 4, 8]");
            expectFailure(() -> REF.attentionBackward(bf, q, k, v, out, lse, 1f, out, dk, dv), "dOut", "F16");
            expectFailure(() -> REF.attentionBackward(out, q, k, v, out, badLse, 1f, out, dk, dv), "lse", "[1, 4, 4, 1]");
        }
    }

    private static void expectFailure(org.junit.jupiter.api.function.Executable call, String... parts) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().startsWith("attention"), e.getMessage());
        for (String p : parts) assertTrue(e.getMessage().contains(p), "'" + p + "' missing from: " + e.getMessage());
    }
}
