package dev.tenfold.engine.cuda;

/**
 * How a row-major product becomes one column-major cuBLAS call.
 *
 * <p>tenfold's tensors are row-major; cuBLAS is column-major. A row-major matrix X [r, c] is, byte for
 * byte, the column-major matrix X^T [c, r] with leading dimension c. So instead of C = op(A) op(B) we
 * ask cuBLAS for C^T = op(B)^T op(A)^T, which it writes column-major as [N, M] with ldc = N — exactly
 * the row-major C [M, N]. cuBLAS's first operand is therefore our {@code b} and its second our
 * {@code a}, with m = N, n = M, k = K:
 * <ul>
 *   <li>b stored [K, N] (no transB) is column-major N x K with ld N: op N, lda = N; b stored [N, K]
 *       (transB) is column-major K x N with ld K, which cuBLAS transposes: op T, lda = K;</li>
 *   <li>a stored [M, K] (no transA) is column-major K x M with ld K: op N, ldb = K; a stored [K, M]
 *       (transA) is M x K with ld M: op T, ldb = M.</li>
 * </ul>
 * A batch is a strided batch (stride 0 for a {@code b} shared by every batch); when {@code b} is shared
 * and {@code a} is not transposed, the batch folds into M and the call is one plain GEMM.
 * This is the only place the swap is done.
 *
 * @param opA       cuBLAS op of its first operand (our b): true = CUBLAS_OP_T
 * @param opB       cuBLAS op of its second operand (our a)
 * @param m         rows of cuBLAS's C (our N)
 * @param n         columns of cuBLAS's C (our M, times the batch when folded)
 * @param k         the inner dimension
 * @param lda       leading dimension of our b's memory
 * @param ldb       leading dimension of our a's memory
 * @param ldc       leading dimension of out (N)
 * @param strideA   elements between batches of our b (0 when shared)
 * @param strideB   elements between batches of our a
 * @param strideC   elements between batches of out
 * @param batch     batch count (1: a plain GEMM)
 */
public record GemmPlan(boolean opA, boolean opB, int m, int n, int k, int lda, int ldb, int ldc,
                       long strideA, long strideB, long strideC, int batch) {

    /**
     * The plan for out[bt] (M x N) = op(a[bt]) (M x K) · op(b[bt]) (K x N), bt < batch, all row-major;
     * {@code bBatched} false when one b [K, N] (or [N, K]) serves every batch.
     */
    public static GemmPlan rowMajor(int batch, int M, int N, int K, boolean transA, boolean transB, boolean bBatched) {
        if (batch < 0 || M < 0 || N < 0 || K < 0) {
            throw new IllegalArgumentException("negative GEMM size: batch " + batch + ", M " + M + ", N " + N + ", K " + K);
        }
        int rows = M;
        int count = batch;
        if (batch > 1 && !bBatched && !transA) { // a [batch, M, K] is one [batch*M, K] matrix
            rows = Math.multiplyExact(batch, M);
            count = 1;
        }
        int lda = Math.max(1, transB ? K : N);
        int ldb = Math.max(1, transA ? rows : K);
        int ldc = Math.max(1, N);
        long strideA = bBatched ? (long) K * N : 0;
        long strideB = (long) M * K;
        long strideC = (long) M * N;
        return new GemmPlan(transB, transA, N, rows, K, lda, ldb, ldc, strideA, strideB, strideC, count);
    }

    /** True when there is nothing to compute (an empty output). */
    public boolean empty() { return m == 0 || n == 0 || batch == 0; }
}
