package dev.tenfold.engine.cuda;

import static org.junit.jupiter.api.Assertions.*;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The row-major to column-major mapping of {@link GemmPlan}, executed by a plain column-major
 * (strided-batched) GEMM written here the way the cuBLAS documentation defines it, and compared with
 * the row-major product computed directly.
 */
class GemmPlanTest {

    /** C = alpha op(A) op(B) + beta C, column-major, for each of {@code batch} strided matrices (cuBLAS's definition). */
    static void columnMajorGemm(boolean opA, boolean opB, int m, int n, int k, float alpha, float[] A, int lda, long strideA,
                                float[] B, int ldb, long strideB, float beta, float[] C, int ldc, long strideC, int batch) {
        // cuBLAS's argument rules: the leading dimensions must cover the stored rows
        assertTrue(lda >= Math.max(1, opA ? k : m), "lda " + lda);
        assertTrue(ldb >= Math.max(1, opB ? n : k), "ldb " + ldb);
        assertTrue(ldc >= Math.max(1, m), "ldc " + ldc);
        for (int bt = 0; bt < batch; bt++) {
            long a0 = bt * strideA, b0 = bt * strideB, c0 = bt * strideC;
            for (int j = 0; j < n; j++) {
                for (int i = 0; i < m; i++) {
                    double s = 0;
                    for (int p = 0; p < k; p++) {
                        float a = opA ? A[(int) (a0 + p + (long) i * lda)] : A[(int) (a0 + i + (long) p * lda)];
                        float b = opB ? B[(int) (b0 + j + (long) p * ldb)] : B[(int) (b0 + p + (long) j * ldb)];
                        s += (double) a * b;
                    }
                    int c = (int) (c0 + i + (long) j * ldc);
                    C[c] = (float) (alpha * s + (beta == 0 ? 0 : beta * C[c]));
                }
            }
        }
    }

    /** out[bt] = op(a[bt]) op(b[bt]) row-major, directly. */
    static float[] rowMajor(int batch, int M, int N, int K, boolean transA, boolean transB, boolean bBatched, float[] a, float[] b) {
        float[] out = new float[batch * M * N];
        for (int bt = 0; bt < batch; bt++) {
            int a0 = bt * M * K, b0 = bBatched ? bt * K * N : 0;
            for (int i = 0; i < M; i++) {
                for (int j = 0; j < N; j++) {
                    double s = 0;
                    for (int p = 0; p < K; p++) {
                        float x = transA ? a[a0 + p * M + i] : a[a0 + i * K + p];
                        float y = transB ? b[b0 + j * K + p] : b[b0 + p * N + j];
                        s += (double) x * y;
                    }
                    out[bt * M * N + i * N + j] = (float) s;
                }
            }
        }
        return out;
    }

    @Test
    void everyLayoutMatchesTheRowMajorProduct() {
        SplittableRandom rng = new SplittableRandom(5);
        int[] sizes = {1, 2, 3, 7, 13};
        int checked = 0;
        for (int batch : new int[] {1, 2, 3}) {
            for (boolean bBatched : new boolean[] {false, true}) {
                if (bBatched && batch == 1) continue;
                for (boolean transA : new boolean[] {false, true}) {
                    for (boolean transB : new boolean[] {false, true}) {
                        for (int M : sizes) {
                            for (int N : sizes) {
                                for (int K : sizes) {
                                    float[] a = random(rng, batch * M * K), b = random(rng, (bBatched ? batch : 1) * K * N);
                                    float[] expected = rowMajor(batch, M, N, K, transA, transB, bBatched, a, b);
                                    GemmPlan p = GemmPlan.rowMajor(batch, M, N, K, transA, transB, bBatched);
                                    float[] out = new float[batch * M * N];
                                    java.util.Arrays.fill(out, Float.NaN); // beta = 0 must not read C
                                    columnMajorGemm(p.opA(), p.opB(), p.m(), p.n(), p.k(), 1f, b, p.lda(), p.strideA(), a, p.ldb(),
                                            p.strideB(), 0f, out, p.ldc(), p.strideC(), p.batch());
                                    String what = "batch " + batch + (bBatched ? " (b batched)" : "") + ", M " + M + ", N " + N + ", K " + K
                                            + ", transA " + transA + ", transB " + transB + ": " + p;
                                    assertArrayEquals(expected, out, 1e-5f, what);
                                    checked++;
                                }
                            }
                        }
                    }
                }
            }
        }
        assertTrue(checked > 1000);
    }

    @Test
    void accumulatesWithBetaOne() {
        SplittableRandom rng = new SplittableRandom(6);
        int batch = 2, M = 5, N = 3, K = 4;
        float[] a = random(rng, batch * K * M), b = random(rng, N * K), start = random(rng, batch * M * N);
        float[] expected = rowMajor(batch, M, N, K, true, true, false, a, b);
        for (int i = 0; i < expected.length; i++) expected[i] += start[i];
        GemmPlan p = GemmPlan.rowMajor(batch, M, N, K, true, true, false);
        float[] out = start.clone();
        columnMajorGemm(p.opA(), p.opB(), p.m(), p.n(), p.k(), 1f, b, p.lda(), p.strideA(), a, p.ldb(), p.strideB(), 1f, out,
                p.ldc(), p.strideC(), p.batch());
        assertArrayEquals(expected, out, 1e-5f);
    }

    @Test
    void theSwapAsTheDocumentationStatesIt() {
        // out [M, N] = a [M, K] · b [K, N]: cuBLAS computes the column-major [N, M] = b^T a^T with b first
        GemmPlan p = GemmPlan.rowMajor(1, 4, 6, 5, false, false, false);
        assertEquals(new GemmPlan(false, false, 6, 4, 5, 6, 5, 6, 0, 20, 24, 1), p);
        // a Linear layer: y [T, out] = x [T, in] · W [out, in]^T -> W is cuBLAS's transposed first operand, lda = in
        GemmPlan linear = GemmPlan.rowMajor(1, 7, 3, 8, false, true, false);
        assertTrue(linear.opA());
        assertFalse(linear.opB());
        assertEquals(8, linear.lda());
        assertEquals(8, linear.ldb());
        assertEquals(3, linear.ldc());
    }

    @Test
    void aSharedBFoldsTheBatchIntoOneProductUnlessATransposes() {
        GemmPlan folded = GemmPlan.rowMajor(4, 5, 3, 2, false, true, false);
        assertEquals(1, folded.batch());
        assertEquals(20, folded.n());
        GemmPlan strided = GemmPlan.rowMajor(4, 5, 3, 2, true, true, false);
        assertEquals(4, strided.batch());
        assertEquals(0, strided.strideA());
        GemmPlan bothBatched = GemmPlan.rowMajor(4, 5, 3, 2, false, false, true);
        assertEquals(4, bothBatched.batch());
        assertEquals(6, bothBatched.strideA());
        assertEquals(10, bothBatched.strideB());
        assertEquals(15, bothBatched.strideC());
    }

    @Test
    void emptyProblemsAreEmptyAndLeadingDimensionsStayPositive() {
        assertTrue(GemmPlan.rowMajor(1, 0, 3, 2, false, false, false).empty());
        assertTrue(GemmPlan.rowMajor(1, 3, 0, 2, false, false, false).empty());
        assertTrue(GemmPlan.rowMajor(0, 3, 3, 2, false, false, true).empty());
        GemmPlan k0 = GemmPlan.rowMajor(1, 3, 3, 0, true, true, false);
        assertFalse(k0.empty());
        assertTrue(k0.lda() >= 1 && k0.ldb() >= 1 && k0.ldc() >= 1, k0.toString());
        assertThrows(IllegalArgumentException.class, () -> GemmPlan.rowMajor(1, -1, 3, 2, false, false, false));
    }

    @Test
    void cublasVersionNumbersDecode() {
        assertEquals("13.1.0", Cublas.versionString(130100));
        assertEquals("12.8.4", Cublas.versionString(120804));
        assertEquals("11.2.1", Cublas.versionString(11_201)); // major*1000 + minor*100 + patch before 12
    }

    private static float[] random(SplittableRandom rng, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (rng.nextDouble() * 2 - 1);
        return x;
    }
}
