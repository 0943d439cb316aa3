package dev.tenfold.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.tenfold.engine.Backend;
import dev.tenfold.engine.DType;
import dev.tenfold.engine.Tensor;
import dev.tenfold.engine.testing.TestTensors;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * The fast matmul against the reference on random inputs of awkward sizes (not multiples of the
 * micro-tile, the K-block or the vector length), every transpose combination, batched and shared
 * b, BF16 operands, and accumulation into a random start; outputs that are overwritten start as
 * NaN so that an unwritten element fails.
 */
class MatmulTest {
    private static final Backend REF = CpuBackend.reference();
    private static final Backend FAST = CpuBackend.fast();

    /** {m, n, k}: single elements, single rows/columns, edges of every tile, several K-blocks. */
    private static final int[][] SHAPES = {
        {1, 1, 1}, {1, 300, 77}, {37, 53, 129}, {130, 67, 257}, {4, 129, 33}, {3, 20, 1},
        {7, 1, 300}, {5, 17, 40}, {64, 64, 64}, {13, 97, 600}, {200, 33, 45}, {70, 45, 1100},
    };

    @Test
    void everyLayoutAndShape() {
        SplittableRandom rng = new SplittableRandom(1);
        for (int[] s : SHAPES) {
            for (int t = 0; t < 4; t++) {
                for (boolean acc : new boolean[] {false, true}) {
                    compare(rng, 0, false, s[0], s[1], s[2], (t & 1) != 0, (t & 2) != 0, DType.F32, DType.F32, acc);
                }
            }
        }
    }

    @Test
    void bf16Operands() {
        SplittableRandom rng = new SplittableRandom(2);
        int[][] shapes = {{1, 300, 77}, {37, 53, 129}, {3, 45, 70}, {70, 90, 300}};
        DType[][] types = {{DType.BF16, DType.F32}, {DType.F32, DType.BF16}, {DType.BF16, DType.BF16}};
        for (int[] s : shapes) {
            for (DType[] ty : types) {
                for (int t = 0; t < 4; t++) {
                    compare(rng, 0, false, s[0], s[1], s[2], (t & 1) != 0, (t & 2) != 0, ty[0], ty[1], t == 3);
                }
            }
        }
    }

    @Test
    void batchedWithBatchedAndSharedB() {
        SplittableRandom rng = new SplittableRandom(3);
        int[][] shapes = {{1, 70, 33}, {3, 19, 40}, {29, 35, 70}, {9, 1, 18}};
        for (int[] s : shapes) {
            for (int t = 0; t < 4; t++) {
                boolean ta = (t & 1) != 0, tb = (t & 2) != 0;
                compare(rng, 3, true, s[0], s[1], s[2], ta, tb, DType.F32, DType.F32, false);
                compare(rng, 3, false, s[0], s[1], s[2], ta, tb, DType.F32, DType.F32, false);
                compare(rng, 2, true, s[0], s[1], s[2], ta, tb, DType.BF16, DType.F32, true);
                compare(rng, 2, false, s[0], s[1], s[2], ta, tb, DType.F32, DType.BF16, true);
            }
        }
    }

    @Test
    void largerProductsRunInParallel() {
        SplittableRandom rng = new SplittableRandom(4);
        // few row blocks: the columns are split among threads; two K-blocks
        compare(rng, 0, false, 250, 300, 260, false, false, DType.F32, DType.F32, false);
        compare(rng, 0, false, 250, 300, 260, true, true, DType.F32, DType.BF16, true);
        // many row blocks
        compare(rng, 0, false, 800, 50, 40, false, true, DType.F32, DType.F32, false);
        // several chunks of B panels (B_CHUNK_BYTES: 7 panels of 32 columns at a K-block of 550), the last one
        // partial and ragged, under both micro-kernels
        compare(rng, 0, false, 130, 1000, 1100, false, true, DType.F32, DType.F32, false);
        compare(rng, 0, false, 130, 1000, 1100, true, false, DType.F32, DType.BF16, true, 4, Matmul.Path.PACKED);
        // wider than one packed B block (NC columns)
        compare(rng, 0, false, 7, 4200, 5, false, true, DType.F32, DType.BF16, false);
        compare(rng, 0, false, 7, 4200, 5, true, false, DType.BF16, DType.F32, true);
        // decoding: one row against a transposed BF16 weight, and a few rows against a plain b
        compare(rng, 0, false, 1, 1100, 1000, false, true, DType.F32, DType.BF16, false);
        compare(rng, 0, false, 1, 1100, 1000, false, false, DType.F32, DType.F32, true);
        compare(rng, 0, false, 3, 1001, 700, true, true, DType.BF16, DType.F32, false);
        compare(rng, 0, false, 4, 999, 700, false, false, DType.F32, DType.BF16, false);
    }

    @Test
    void everyPathAndKernel() {
        // The shape picks the path (packed, or skinny for a few rows) and the CPU picks the
        // micro-kernel (12 rows with 32 vector registers, 4 with 16): force each of them here on
        // shapes that would normally go elsewhere.
        SplittableRandom rng = new SplittableRandom(5);
        int[][] shapes = {{1, 300, 77}, {3, 20, 1}, {37, 53, 129}, {130, 67, 300}, {19, 33, 7}, {14, 40, 1030}};
        for (int[] s : shapes) {
            for (int t = 0; t < 4; t++) {
                boolean ta = (t & 1) != 0, tb = (t & 2) != 0, acc = t == 2;
                DType da = ta ? DType.BF16 : DType.F32, db = t == 1 ? DType.BF16 : DType.F32;
                compare(rng, 0, false, s[0], s[1], s[2], ta, tb, da, db, acc, 12, Matmul.Path.PACKED);
                compare(rng, 0, false, s[0], s[1], s[2], ta, tb, da, db, acc, 4, Matmul.Path.PACKED);
                compare(rng, 0, false, s[0], s[1], s[2], ta, tb, da, db, acc, Matmul.MR, Matmul.Path.SKINNY);
                compare(rng, 0, false, s[0], s[1], s[2], ta, tb, da, db, acc, Matmul.MR, Matmul.Path.FEW_COLUMNS);
                if (ta) compare(rng, 0, false, s[0], s[1], s[2], ta, tb, da, db, acc, Matmul.MR, Matmul.Path.TRANSPOSED);
            }
        }
        compare(rng, 3, true, 29, 35, 70, false, true, DType.F32, DType.BF16, false, 4, Matmul.Path.PACKED);
        compare(rng, 3, false, 29, 35, 70, true, false, DType.F32, DType.F32, true, Matmul.MR, Matmul.Path.SKINNY);
    }

    @Test
    void fewColumnsAtEveryRankAndEdge() {
        // a LoRA adapter's products: N up to 16 (ranks, and sizes that are not multiples of 4), rows past the
        // skinny path's 64, depths around a vector, op(b) both ways, BF16 operands, accumulate
        SplittableRandom rng = new SplittableRandom(11);
        for (int n = 1; n <= 16; n++) {
            int m = 65 + rng.nextInt(80), k = new int[] {1, 15, 16, 17, 100, 512}[n % 6];
            boolean tb = n % 2 == 0, acc = n % 3 == 0;
            DType da = n % 5 == 0 ? DType.BF16 : DType.F32, db = n % 4 == 1 ? DType.BF16 : DType.F32;
            compare(rng, 0, false, m, n, k, false, tb, da, db, acc); // the shape picks the path
        }
        compare(rng, 2, true, 70, 8, 96, false, true, DType.F32, DType.F32, false, Matmul.MR, Matmul.Path.FEW_COLUMNS); // b batched
        compare(rng, 0, false, 1024, 8, 512, false, true, DType.F32, DType.F32, false);
        compare(rng, 0, false, 1024, 8, 512, false, false, DType.F32, DType.F32, true);
        // a transposed a (LoRA's dB = dy^T u, K the tokens): C^T through the skinny path
        for (int n : new int[] {1, 5, 8, 16}) {
            compare(rng, 0, false, 37 + 20 * n, n, 300, true, n % 2 == 0, DType.F32, n == 5 ? DType.BF16 : DType.F32, n < 8);
        }
        compare(rng, 0, false, 512, 8, 1024, true, false, DType.F32, DType.F32, true, Matmul.MR, Matmul.Path.TRANSPOSED);
        assertThrows(IllegalArgumentException.class, () -> compare(rng, 2, false, 30, 8, 20, true, false, DType.F32, DType.F32, false,
                Matmul.MR, Matmul.Path.TRANSPOSED));
    }

    @Test
    void fewColumnsKernelsGiveTheSameBitsEitherWay() {
        // Each machine runs one of dot4x4's two kernels (whole with 32 vector registers, in 4 x 2 halves with 16) and one
        // of laneSums' two (gathers, or scalars where gathers are not instructions): here both run on any machine, and
        // must agree to the bit and with a double reference.
        int vl = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length();
        SplittableRandom rng = new SplittableRandom(12);
        for (int k : new int[] {1, vl - 1, vl, 3 * vl + 5, 512}) {
            float[] x = new float[4 * k + 3], w = new float[4 * k + 5];
            for (int i = 0; i < x.length; i++) x[i] = (float) rng.nextDouble(-1, 1);
            for (int i = 0; i < w.length; i++) w[i] = (float) rng.nextDouble(-1, 1);
            float[] whole = new float[4 * 6], halves = new float[4 * 6];
            Matmul.dot4x4(x, 3, w, 5, k, whole, 1, 6, new float[Matmul.REDUCED], false);
            Matmul.dot4x4(x, 3, w, 5, k, halves, 1, 6, new float[Matmul.REDUCED], true);
            for (int r = 0; r < 4; r++) {
                for (int q = 0; q < 4; q++) {
                    int at = 1 + r * 6 + q;
                    double want = 0;
                    for (int p = 0; p < k; p++) want += (double) x[3 + r * k + p] * w[5 + q * k + p];
                    assertEquals(Float.floatToIntBits(whole[at]), Float.floatToIntBits(halves[at]), "k " + k + ", row " + r + ", column " + q);
                    assertEquals(want, whole[at], 1e-5 * Math.max(1, k), "k " + k + ", row " + r + ", column " + q);
                }
            }
        }
        for (int count : new int[] {1, 8, 16}) {
            float[] byGathers = new float[Matmul.REDUCED];
            for (int i = 0; i < count * vl; i++) byGathers[i] = (float) rng.nextDouble(-1, 1);
            float[] byScalars = byGathers.clone();
            Matmul.laneSums(byGathers, count, true);
            Matmul.laneSums(byScalars, count, false);
            for (int a = 0; a < count; a++) {
                float[] tree = java.util.Arrays.copyOfRange(byScalars, a * vl, (a + 1) * vl); // the balanced tree, spelled out
                for (int n = vl; n > 1; n /= 2) for (int i = 0; i < n / 2; i++) tree[i] = tree[2 * i] + tree[2 * i + 1];
                assertEquals(Float.floatToIntBits(tree[0]), Float.floatToIntBits(byScalars[Matmul.SUMS + a]), "scalars, accumulator " + a);
                assertEquals(Float.floatToIntBits(tree[0]), Float.floatToIntBits(byGathers[Matmul.SUMS + a]), "gathers, accumulator " + a);
            }
        }
    }

    @Test
    void fewRowsAgainstAPlainBSplitAlongK() {
        // a few rows times a b whose rows run along N (LoRA's dA = (dy B)^T x: K is the tokens): work units
        // split K, and their partial sums meet at the end; batched, a b per entry or shared, BF16, a short last range
        SplittableRandom rng = new SplittableRandom(13);
        compare(rng, 2, true, 8, 40, 1000, true, false, DType.F32, DType.F32, true, Matmul.MR, Matmul.Path.SKINNY);
        compare(rng, 2, true, 8, 40, 1000, false, false, DType.F32, DType.BF16, false, Matmul.MR, Matmul.Path.SKINNY);
        compare(rng, 0, false, 5, 300, 4099, true, false, DType.F32, DType.F32, false); // the shape picks the path
        compare(rng, 0, false, 8, 1100, 700, true, false, DType.BF16, DType.F32, true);  // columns in several ranges too
    }

    @Test
    void decodingAgainstBf16WeightsAtEveryRowLength() {
        // one to three rows against a transposed BF16 weight: dotBf16 below SHORT_ROW (2048),
        // dot1x4 from it; lengths around the 2 and 4 vector blocks of dotBf16 and its scalar tail
        SplittableRandom rng = new SplittableRandom(9);
        for (int k : new int[] {1, 7, 16, 31, 32, 33, 64, 65, 96, 100, 512, 2047, 2048, 2050}) {
            for (int m = 1; m <= 3; m++) {
                compare(rng, 0, false, m, 37, k, false, true, DType.F32, DType.BF16, m == 2, Matmul.MR, Matmul.Path.SKINNY);
            }
        }
        compare(rng, 0, false, 1, 1000, 512, false, true, DType.F32, DType.BF16, false); // the shape picks the path
        compare(rng, 2, true, 1, 45, 300, false, true, DType.BF16, DType.BF16, false); // b batched: a base past 0
        compare(rng, 3, false, 2, 45, 300, false, true, DType.F32, DType.BF16, true);
    }

    @Test
    void emptyInnerDimensionGivesZeros() {
        try (Tensor a = Tensor.allocate(DType.F32, 3, 0); Tensor b = Tensor.allocate(DType.F32, 0, 4);
             Tensor out = TestTensors.poisoned(3, 4)) {
            FAST.matmul(a, false, b, false, out, false);
            for (float v : out.toFloatArray()) assertEquals(0f, v);
            out.fill(2f);
            FAST.matmul(a, false, b, false, out, true);
            for (float v : out.toFloatArray()) assertEquals(2f, v);
        }
    }

    @Test
    void badInputIsRejectedWithShapes() {
        try (Tensor a = Tensor.allocate(DType.F32, 3, 4); Tensor b = Tensor.allocate(DType.F32, 5, 6);
             Tensor b46 = Tensor.allocate(DType.F32, 4, 6); Tensor out = Tensor.allocate(DType.F32, 3, 6);
             Tensor out37 = Tensor.allocate(DType.F32, 3, 7); Tensor outBf = Tensor.allocate(DType.F16, 3, 6);
             Tensor aInt = Tensor.allocate(DType.I32, 3, 4); Tensor a3 = Tensor.allocate(DType.F32, 2, 3, 4);
             Tensor b3 = Tensor.allocate(DType.F32, 3, 4, 6); Tensor out3 = Tensor.allocate(DType.F32, 2, 3, 6)) {
            assertBad(() -> FAST.matmul(a, false, b, false, out, false), "[3, 4]", "[5, 6]");
            assertBad(() -> FAST.matmul(a, true, b46, false, out, false), "[3, 4]", "[4, 6]");
            assertBad(() -> FAST.matmul(a, false, b46, false, out37, false), "[3, 7]", "[3, 6]");
            assertBad(() -> FAST.matmul(a, false, b46, false, outBf, false), "F16[3, 6]");
            assertBad(() -> FAST.matmul(aInt, false, b46, false, out, false), "I32[3, 4]");
            assertBad(() -> FAST.matmul(a3, false, b3, false, out3, false), "[2, 3, 4]", "[3, 4, 6]");
            assertBad(() -> FAST.matmul(a, false, b3, false, out, false), "[3, 4]", "[3, 4, 6]");
        }
    }

    private static void assertBad(Executable call, String... mentions) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains("matmul"), e.getMessage());
        for (String s : mentions) assertTrue(e.getMessage().contains(s), "'" + s + "' missing from: " + e.getMessage());
    }

    /**
     * Runs fast and reference on the same random inputs and compares. batch 0 means rank 2;
     * otherwise a is [batch, ...] and b is batched when bBatched, else shared.
     */
    private static void compare(SplittableRandom rng, int batch, boolean bBatched, int m, int n, int k,
                                boolean ta, boolean tb, DType da, DType db, boolean acc) {
        compare(rng, batch, bBatched, m, n, k, ta, tb, da, db, acc, Matmul.MR, Matmul.Path.AUTO);
    }

    /** As above, through the given micro-kernel height and path (AUTO: what the shape picks, via the backend). */
    private static void compare(SplittableRandom rng, int batch, boolean bBatched, int m, int n, int k,
                                boolean ta, boolean tb, DType da, DType db, boolean acc, int mr, Matmul.Path path) {
        long[] aShape = ta ? new long[] {k, m} : new long[] {m, k};
        long[] bShape = tb ? new long[] {n, k} : new long[] {k, n};
        long[] oShape = {m, n};
        if (batch > 0) {
            aShape = prepend(batch, aShape);
            oShape = prepend(batch, oShape);
            if (bBatched) bShape = prepend(batch, bShape);
        }
        String what = (path == Matmul.Path.AUTO ? "" : path + " mr=" + mr + " ") + "matmul " + da + (ta ? "^T" : "") + java.util.Arrays.toString(aShape) + " x " + db + (tb ? "^T" : "")
                + java.util.Arrays.toString(bShape) + (acc ? " accumulate" : "");
        try (Tensor a = TestTensors.random(rng, da, 1f, aShape); Tensor b = TestTensors.random(rng, db, 1f, bShape);
             Tensor expected = acc ? TestTensors.random(rng, oShape) : TestTensors.poisoned(oShape);
             Tensor actual = acc ? expected.copy() : TestTensors.poisoned(oShape)) {
            REF.matmul(a, ta, b, tb, expected, acc);
            if (path == Matmul.Path.AUTO) FAST.matmul(a, ta, b, tb, actual, acc);
            else Matmul.fast(Matmul.check(a, ta, b, tb, actual), a, ta, b, tb, actual, acc, mr, path);
            // f32 accumulation against the reference's double: error grows with the length of the sum
            TestTensors.assertClose(what, expected, actual, 1e-6 * (k + 4), 1e-5);
        }
    }

    private static long[] prepend(long first, long[] rest) {
        long[] s = new long[rest.length + 1];
        s[0] = first;
        System.arraycopy(rest, 0, s, 1, rest.length);
        return s;
    }
}
