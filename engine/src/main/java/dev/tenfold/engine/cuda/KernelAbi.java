package dev.tenfold.engine.cuda;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The Java side of native-kernels/src/main/cuda/tenfold_kernels.h: every kernel the backend launches,
 * with its parameter kinds, the header's launch constants and its launch rules as pure functions.
 * KernelAbiTest reads the header and fails when a name, a parameter or a constant here differs from it.
 */
public final class KernelAbi {
    private KernelAbi() {}

    // ------------------------------------------------------------------ constants (#define in the header)
    public static final int EW_THREADS = 256;        // TF_EW_THREADS
    public static final int EW_MAX_BLOCKS = 8192;    // TF_EW_MAX_BLOCKS
    public static final int ROW_THREADS = 256;       // TF_ROW_THREADS
    public static final int REDUCE_BLOCKS = 1024;    // TF_REDUCE_BLOCKS
    public static final int FLASH_FWD_BLOCK_M = 128; // TF_FLASH_FWD_BLOCK_M
    public static final int FLASH_FWD_THREADS = 256; // TF_FLASH_FWD_THREADS
    public static final int FLASH_BWD_BLOCK_N = 64;  // TF_FLASH_BWD_BLOCK_N
    public static final int FLASH_BWD_THREADS = 256; // TF_FLASH_BWD_THREADS
    /** The default dynamic shared memory limit; above it a kernel needs cuFuncSetAttribute. */
    public static final int DEFAULT_MAX_DYNAMIC_SMEM = 48 * 1024;
    /** CUDA's limit on gridDim.y and gridDim.z. */
    public static final int MAX_GRID_YZ = 65535;

    /** TF_FLASH_FWD_SMEM(D): dynamic shared memory of the flash forward kernel for head dim d. */
    public static int flashForwardSmem(int d) { return 4 * flashForwardBlockN(d) * d * 2; }

    /** TF_FLASH_FWD_BLOCK_N(D): keys per tile of the forward kernel. */
    public static int flashForwardBlockN(int d) { return 8192 / d; }

    /** TF_FLASH_BWD_BLOCK_M: query rows per inner step of the backward kernel. */
    public static final int FLASH_BWD_BLOCK_M = 64;

    /**
     * TF_FLASH_BWD_SEM_WORDS: the 4-byte semaphore words the deterministic backward needs right after
     * dq_accum (one per sequence, query head and query block), zeroed with it.
     */
    public static long flashBackwardSemaphoreWords(int batch, int hq, int maxLenK) {
        return (long) batch * hq * Math.ceilDiv(maxLenK, FLASH_BWD_BLOCK_M);
    }

    /** TF_FLASH_BWD_ERR_WAIT_TIMEOUT: the backward's error word after a deterministic-mode wait gave up. */
    public static final int FLASH_BWD_ERR_WAIT_TIMEOUT = 1;
    /** TF_FLASH_BWD_WAIT_NS in seconds: how long a deterministic-mode block waits for the key block before it. */
    public static final int FLASH_BWD_WAIT_SECONDS = 10;

    /** TF_FLASH_BWD_SMEM(D). */
    public static int flashBackwardSmem(int d) {
        return 2 * FLASH_BWD_BLOCK_N * d * 2 + 4 * FLASH_BWD_BLOCK_M * d * 2 + 2 * FLASH_BWD_BLOCK_M * FLASH_BWD_BLOCK_N * 2
                + 4 * FLASH_BWD_BLOCK_M * 4;
    }

    // ------------------------------------------------------------------ kernels

    /** A kernel parameter's C type: any pointer, int, long long or float. */
    public enum Arg { PTR, I32, I64, F32 }

    /** A kernel by its fatbin name and its parameters, in order. */
    public record Kernel(String name, List<Arg> params) {
        @Override public String toString() { return name; }
    }

    private static final List<Kernel> ALL = new ArrayList<>();

    private static Kernel k(String name, Arg... params) {
        Kernel k = new Kernel(name, List.of(params));
        ALL.add(k);
        return k;
    }

    private static final Arg P = Arg.PTR, I = Arg.I32, L = Arg.I64, F = Arg.F32;

    // elementwise.cu
    public static final Kernel ADD_F32 = k("tf_add_f32", P, P, P, L);
    public static final Kernel MUL_F32 = k("tf_mul_f32", P, P, P, L);
    public static final Kernel SCALE_F32 = k("tf_scale_f32", P, F, P, L);
    public static final Kernel FILL_F32 = k("tf_fill_f32", P, F, L);
    public static final Kernel CAST_F32_BF16 = k("tf_cast_f32_bf16", P, P, L);
    public static final Kernel CAST_BF16_F32 = k("tf_cast_bf16_f32", P, P, L);
    public static final Kernel CAST_F32_F16 = k("tf_cast_f32_f16", P, P, L);
    public static final Kernel CAST_F16_F32 = k("tf_cast_f16_f32", P, P, L);
    public static final Kernel CAST_BF16_F16 = k("tf_cast_bf16_f16", P, P, L);
    public static final Kernel CAST_F16_BF16 = k("tf_cast_f16_bf16", P, P, L);
    // reduce.cu
    public static final Kernel SUM_PARTIAL_F32 = k("tf_sum_partial_f32", P, L, P);
    public static final Kernel SUMSQ_PARTIAL_F32 = k("tf_sumsq_partial_f32", P, L, P);
    public static final Kernel SUM_FINAL_F64 = k("tf_sum_final_f64", P, I, P);
    public static final Kernel MAX_PARTIAL_F32 = k("tf_max_partial_f32", P, L, P);
    public static final Kernel MAX_FINAL_F32 = k("tf_max_final_f32", P, I, P);
    // embedding.cu: (table, ids, out, T, H, V, error) and (dout, ids, dtable, T, H, V)
    public static final Kernel EMBEDDING_FWD_F32 = k("tf_embedding_fwd_f32", P, P, P, I, I, I, P);
    public static final Kernel EMBEDDING_FWD_BF16 = k("tf_embedding_fwd_bf16", P, P, P, I, I, I, P);
    public static final Kernel EMBEDDING_BWD_F32 = k("tf_embedding_bwd_f32", P, P, P, I, I, I);
    // rmsnorm.cu
    public static final Kernel RMSNORM_FWD_F32 = k("tf_rmsnorm_fwd_f32", P, P, F, P, P, I, I);
    public static final Kernel RMSNORM_BWD_F32 = k("tf_rmsnorm_bwd_f32", P, P, P, P, P, I, I);
    public static final Kernel RMSNORM_DWEIGHT_F32 = k("tf_rmsnorm_dweight_f32", P, P, P, P, I, I);
    // rope.cu: (x, inv_freq, positions, attn_scale, out, rows, heads, d, dir); (q, k, inv_freq, positions, attn_scale, rows, hq, hkv, d, dir)
    public static final Kernel ROPE_F32 = k("tf_rope_f32", P, P, P, F, P, I, I, I, I);
    public static final Kernel ROPE_QK_F32 = k("tf_rope_qk_f32", P, P, P, P, F, I, I, I, I, I);
    // swiglu.cu
    public static final Kernel SWIGLU_FWD_F32 = k("tf_swiglu_fwd_f32", P, P, P, L);
    public static final Kernel SWIGLU_BWD_F32 = k("tf_swiglu_bwd_f32", P, P, P, P, P, L);
    // softmax.cu
    public static final Kernel SOFTMAX_FWD_F32 = k("tf_softmax_fwd_f32", P, P, I, I);
    public static final Kernel SOFTMAX_BWD_F32 = k("tf_softmax_bwd_f32", P, P, P, I, I);
    // cross_entropy.cu
    public static final Kernel CE_STATS_F32 = k("tf_ce_stats_f32", P, P, I, I, I, P, P, P);
    public static final Kernel CE_GRAD_F32 = k("tf_ce_grad_f32", P, P, P, P, F, I, I, I);
    public static final Kernel CE_LOSS_F32 = k("tf_ce_loss_f32", P, P, P, P, I, P, P);
    // adamw.cu: (p, g, m, v, lr, b1, b2, eps, wd, bc1, bc2, n)
    public static final Kernel ADAMW_F32 = k("tf_adamw_f32", P, P, P, P, F, F, F, F, F, F, F, L);
    // nf4.cu: (packed, absmax_f32, absmax_u8, nested_absmax, nested_code, offset, out, n)
    public static final Kernel NF4_DEQUANT_BF16 = k("tf_nf4_dequant_bf16", P, P, P, P, P, F, P, L);
    public static final Kernel NF4_DEQUANT_F32 = k("tf_nf4_dequant_f32", P, P, P, P, P, F, P, L);
    // flash_attention_fwd.cu: (q, k, v, o, lse, cu_q, cu_k, batch, max_len_q, hq, hkv, scale)
    public static final Kernel FLASH_FWD_D64 = k("tf_flash_fwd_d64", P, P, P, P, P, P, P, I, I, I, I, F);
    public static final Kernel FLASH_FWD_D128 = k("tf_flash_fwd_d128", P, P, P, P, P, P, P, I, I, I, I, F);
    // flash_attention_bwd.cu
    public static final Kernel FLASH_BWD_PRE = k("tf_flash_bwd_pre", P, P, P, I, I, I);
    // (q, k, v, dout, lse, delta, dq_accum, dk, dv, cu_q, cu_k, batch, max_len_k, hq, hkv, scale, deterministic, error)
    public static final Kernel FLASH_BWD_D64 = k("tf_flash_bwd_d64", P, P, P, P, P, P, P, P, P, P, P, I, I, I, I, F, I, P);
    public static final Kernel FLASH_BWD_D128 = k("tf_flash_bwd_d128", P, P, P, P, P, P, P, P, P, P, P, I, I, I, I, F, I, P);
    public static final Kernel FLASH_BWD_POST = k("tf_flash_bwd_post", P, F, P, L);

    /** Every kernel the Java side may launch. */
    public static List<Kernel> all() { return Collections.unmodifiableList(ALL); }

    // ------------------------------------------------------------------ launch rules

    /** A launch configuration: grid (x, y, z), threads per block, dynamic shared memory bytes. */
    public record Launch(int gridX, int gridY, int gridZ, int block, int smem) {
        public Launch {
            if (gridX < 1 || gridY < 1 || gridZ < 1 || block < 1 || smem < 0) {
                throw new IllegalArgumentException("bad launch: grid " + gridX + "x" + gridY + "x" + gridZ + ", block " + block
                        + ", smem " + smem);
            }
            if (gridY > MAX_GRID_YZ || gridZ > MAX_GRID_YZ) {
                throw new IllegalArgumentException("grid " + gridX + "x" + gridY + "x" + gridZ + " exceeds CUDA's limit of "
                        + MAX_GRID_YZ + " in y and z");
            }
        }
    }

    /** Grid-stride elementwise kernels: min(ceil(n / EW_THREADS), EW_MAX_BLOCKS) blocks (n >= 1). */
    public static Launch elementwise(long n) {
        if (n < 1) throw new IllegalArgumentException("elementwise launch over " + n + " elements");
        long blocks = Math.min(Math.ceilDiv(n, EW_THREADS), EW_MAX_BLOCKS);
        return new Launch((int) blocks, 1, 1, EW_THREADS, 0);
    }

    /** Row kernels: one block of ROW_THREADS per row. */
    public static Launch rows(int rows) { return new Launch(rows, 1, 1, ROW_THREADS, 0); }

    /** One thread per column: ceil(columns / EW_THREADS) blocks (tf_rmsnorm_dweight_f32). */
    public static Launch columns(int columns) { return new Launch(Math.ceilDiv(columns, EW_THREADS), 1, 1, EW_THREADS, 0); }

    /** First stage of a deterministic reduction: the fixed grid of REDUCE_BLOCKS blocks. */
    public static Launch reducePartial() { return new Launch(REDUCE_BLOCKS, 1, 1, EW_THREADS, 0); }

    /** Second stage (and tf_ce_loss_f32): one block of EW_THREADS threads. */
    public static Launch singleBlock() { return new Launch(1, 1, 1, EW_THREADS, 0); }

    /** Flash forward: (ceil(maxLenQ / BLOCK_M), hq, batch) blocks of FLASH_FWD_THREADS. */
    public static Launch flashForward(int maxLenQ, int hq, int batch, int d) {
        return new Launch(Math.ceilDiv(maxLenQ, FLASH_FWD_BLOCK_M), hq, batch, FLASH_FWD_THREADS, flashForwardSmem(d));
    }

    /** Flash backward: (ceil(maxLenK / BLOCK_N), hkv, batch) blocks of FLASH_BWD_THREADS. */
    public static Launch flashBackward(int maxLenK, int hkv, int batch, int d) {
        return new Launch(Math.ceilDiv(maxLenK, FLASH_BWD_BLOCK_N), hkv, batch, FLASH_BWD_THREADS, flashBackwardSmem(d));
    }
}
