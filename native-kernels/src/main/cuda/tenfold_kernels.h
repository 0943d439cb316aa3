// tenfold kernel ABI: every kernel the Java CUDA backend (engine/.../cuda/CudaBackend) launches by
// name from the fatbin. This header is the contract between native-kernels/ and engine/: change a
// signature or a launch rule here and in the Java launcher in the same commit.
//
// Conventions
// - Every kernel is `extern "C" __global__`, so its name in the fatbin is the name below.
// - Tensors are dense, row-major, little-endian device pointers. bf16 is __nv_bfloat16 (raw bits
//   as in safetensors), f16 is __half. Element counts are `long long`, row/column counts `int`.
// - Elementwise kernels use grid-stride loops: any grid works; the host launches
//   TF_EW_THREADS threads per block and min(ceil(n / TF_EW_THREADS), TF_EW_MAX_BLOCKS) blocks.
// - Row kernels (one row per block) are launched with `rows` blocks of TF_ROW_THREADS threads.
// - Reductions are deterministic: fixed grid of TF_REDUCE_BLOCKS blocks x TF_EW_THREADS threads
//   writes per-block partials, then one block of TF_EW_THREADS threads folds them in a fixed order.
// - Floating point: f32 math, round to nearest even on every conversion to bf16/f16; `expf`
//   and `__expf` are both acceptable (tests use bf16 tolerances against the f64 CPU reference).
// - Where the CPU backend would throw on bad data (an embedding id out of range), the kernel
//   records the first offending index in an `int* error` word (initialised to -1 by the host)
//   and writes zeros for that element; the host reads the word after the op and throws.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#define TF_EW_THREADS 256
#define TF_EW_MAX_BLOCKS 8192
#define TF_ROW_THREADS 256
#define TF_REDUCE_BLOCKS 1024

typedef __nv_bfloat16 bf16;
typedef __half f16;

#ifdef __CUDACC__
#define TF_KERNEL extern "C" __global__
#else
#define TF_KERNEL extern "C"
#endif

// ---------------------------------------------------------------- elementwise.cu
TF_KERNEL void tf_add_f32(const float* a, const float* b, float* out, long long n);
TF_KERNEL void tf_mul_f32(const float* a, const float* b, float* out, long long n);
TF_KERNEL void tf_scale_f32(const float* a, float s, float* out, long long n);
TF_KERNEL void tf_fill_f32(float* out, float value, long long n);
TF_KERNEL void tf_cast_f32_bf16(const float* src, bf16* dst, long long n);
TF_KERNEL void tf_cast_bf16_f32(const bf16* src, float* dst, long long n);
TF_KERNEL void tf_cast_f32_f16(const float* src, f16* dst, long long n);
TF_KERNEL void tf_cast_f16_f32(const f16* src, float* dst, long long n);
TF_KERNEL void tf_cast_bf16_f16(const bf16* src, f16* dst, long long n);   // through f32
TF_KERNEL void tf_cast_f16_bf16(const f16* src, bf16* dst, long long n);   // through f32

// ---------------------------------------------------------------- reduce.cu
// partial has TF_REDUCE_BLOCKS doubles (sum, sumsq) or floats (max); result one value.
// max propagates NaN: any NaN element makes the result NaN.
TF_KERNEL void tf_sum_partial_f32(const float* x, long long n, double* partial);
TF_KERNEL void tf_sumsq_partial_f32(const float* x, long long n, double* partial);
TF_KERNEL void tf_sum_final_f64(const double* partial, int parts, double* result);     // 1 block
TF_KERNEL void tf_max_partial_f32(const float* x, long long n, float* partial);
TF_KERNEL void tf_max_final_f32(const float* partial, int parts, float* result);       // 1 block

// ---------------------------------------------------------------- embedding.cu
// out[t, :] = table[ids[t], :]; one block per token t (grid = T, TF_ROW_THREADS threads).
TF_KERNEL void tf_embedding_fwd_f32(const float* table, const int* ids, float* out, int T, int H, int V, int* error);
TF_KERNEL void tf_embedding_fwd_bf16(const bf16* table, const int* ids, float* out, int T, int H, int V, int* error);
// dTable[ids[t], :] += dOut[t, :] (atomicAdd; grid = T). Ids were checked by the forward.
TF_KERNEL void tf_embedding_bwd_f32(const float* dout, const int* ids, float* dtable, int T, int H, int V);

// ---------------------------------------------------------------- rmsnorm.cu
// Row kernels: grid = rows. rstd[r] = 1/sqrt(mean(x[r]^2) + eps); out = x * rstd * w.
TF_KERNEL void tf_rmsnorm_fwd_f32(const float* x, const float* w, float eps, float* out, float* rstd, int rows, int H);
// dx = rstd * (w*dout - x * rstd^2 * mean(w*dout*x)) per row; grid = rows.
TF_KERNEL void tf_rmsnorm_bwd_f32(const float* dout, const float* x, const float* w, const float* rstd, float* dx,
                                  int rows, int H);
// dw[j] += sum_r dout[r, j] * x[r, j] * rstd[r] (deterministic: one thread per column, rows in
// order). grid = ceil(H / TF_EW_THREADS), TF_EW_THREADS threads.
TF_KERNEL void tf_rmsnorm_dweight_f32(const float* dout, const float* x, const float* rstd, float* dw, int rows, int H);

// ---------------------------------------------------------------- rope.cu
// Hugging Face rotate_half: for row r (= b*T + t, position positions[r]), head h, pair (j, j+d/2):
// angle = (float)positions[r] * inv_freq[j]; c = cosf(angle) * attn_scale; s = sinf(angle) * attn_scale;
// forward (dir = +1): out[j] = x[j] c - x[j+d/2] s; out[j+d/2] = x[j+d/2] c + x[j] s.
// backward (dir = -1): the transpose (s negated). out may alias x. Grid-stride over rows*heads*(d/2).
TF_KERNEL void tf_rope_f32(const float* x, const float* inv_freq, const int* positions, float attn_scale, float* out,
                           int rows, int heads, int d, int dir);
// The same rotation applied in place to Q [rows, hq, d] and K [rows, hkv, d] in one launch
// (grid-stride over rows*(hq+hkv)*(d/2)).
TF_KERNEL void tf_rope_qk_f32(float* q, float* k, const float* inv_freq, const int* positions, float attn_scale,
                              int rows, int hq, int hkv, int d, int dir);

// ---------------------------------------------------------------- swiglu.cu
// out = silu(gate) * up; dGate = dOut * up * silu'(gate); dUp = dOut * silu(gate). Elementwise.
TF_KERNEL void tf_swiglu_fwd_f32(const float* gate, const float* up, float* out, long long n);
TF_KERNEL void tf_swiglu_bwd_f32(const float* dout, const float* gate, const float* up, float* dgate, float* dup,
                                 long long n);

// ---------------------------------------------------------------- softmax.cu (row kernels, grid = rows)
TF_KERNEL void tf_softmax_fwd_f32(const float* x, float* out, int rows, int n);
TF_KERNEL void tf_softmax_bwd_f32(const float* dout, const float* y, float* dx, int rows, int n);

// ---------------------------------------------------------------- cross_entropy.cu
// The host computes one vocabulary chunk of logits at a time with cuBLAS: logits [T, Vc] f32 for
// vocabulary ids [v0, v0 + Vc). targets [T] (-100 = ignored). Row kernels, grid = T.
// Pass 1, per chunk: running (row_max, row_sum) updated online (init -inf / 0 by the host) and
// target_logit[t] set when targets[t] falls in the chunk.
TF_KERNEL void tf_ce_stats_f32(const float* logits, const int* targets, int T, int Vc, int v0,
                               float* row_max, float* row_sum, float* target_logit);
// Pass 2, per chunk, after pass 1 covered the whole vocabulary: logits are overwritten in place by
// d(loss)/d(logits) * grad_scale = grad_scale * (softmax - onehot(target)); zero for ignored rows.
TF_KERNEL void tf_ce_grad_f32(float* logits, const int* targets, const float* row_max, const float* row_sum,
                              float grad_scale, int T, int Vc, int v0);
// loss[0] = sum over non-ignored rows of (log(row_sum) + row_max - target_logit), in double, rows in
// order; count[0] = their number. One block of TF_EW_THREADS threads.
TF_KERNEL void tf_ce_loss_f32(const float* row_max, const float* row_sum, const float* target_logit, const int* targets,
                              int T, double* loss, long long* count);

// ---------------------------------------------------------------- adamw.cu
// PyTorch AdamW; bias corrections computed on the host: bc1 = 1 - b1^step, bc2 = 1 - b2^step.
// p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * (m / bc1) / (sqrt(v / bc2) + eps).
TF_KERNEL void tf_adamw_f32(float* p, const float* g, float* m, float* v, float lr, float b1, float b2, float eps,
                            float wd, float bc1, float bc2, long long n);

// ---------------------------------------------------------------- nf4.cu
// bitsandbytes NF4, blocksize 64, element 2j in the high nibble of packed[j]. Double-quantized
// absmax: absmax(i) = nested_code[absmax_u8[i]] * nested_absmax[i / 256] + offset (this order of
// float ops). Single-quantized: pass absmax_f32 and nulls for the nested parts. Grid-stride over bytes.
TF_KERNEL void tf_nf4_dequant_bf16(const uint8_t* packed, const float* absmax_f32, const uint8_t* absmax_u8,
                                   const float* nested_absmax, const float* nested_code, float offset, bf16* out,
                                   long long n);
TF_KERNEL void tf_nf4_dequant_f32(const uint8_t* packed, const float* absmax_f32, const uint8_t* absmax_u8,
                                  const float* nested_absmax, const float* nested_code, float offset, float* out,
                                  long long n);

// ---------------------------------------------------------------- flash_attention_fwd.cu / _bwd.cu
// Causal attention with grouped-query heads on tensor cores (mma.sync, sm_80+), head dim D = 64 or
// 128 (one kernel per D). Layout: q [total_q, hq, D], k/v [total_k, hkv, D] bf16, o like q (bf16),
// lse [hq, total_q] f32 (natural log of the sum of exp of the scaled scores). Sequences are packed:
// sequence b owns query rows [cu_q[b], cu_q[b+1]) and key rows [cu_k[b], cu_k[b+1]); with
// len_q <= len_k, query i sits at position len_k - len_q + i and sees keys j <= that position.
// Query head h reads kv head h / (hq / hkv) (hq a multiple of hkv). scale multiplies q.k.
// Alignment: q, k, v, o, dout 16-byte aligned (cp.async and 16-byte stores; true for allocator
// buffers, a view at an odd element offset must be copied first); dq_accum 8-byte; lse, delta 4-byte;
// dk, dv 4-byte. A row that sees no key (only if len_q > len_k) gets o = 0 and lse = +inf.
// Launch (forward): grid (ceil(max_len_q / TF_FLASH_FWD_BLOCK_M), hq, batch), TF_FLASH_FWD_THREADS
// threads, dynamic shared memory TF_FLASH_FWD_SMEM(D) bytes (the host raises the limit with
// cuFuncSetAttribute when above 48 KB: it is, for every D, for both the forward and the backward).
#define TF_FLASH_FWD_BLOCK_M 128
#define TF_FLASH_FWD_THREADS 256
#define TF_FLASH_FWD_BLOCK_N(D) (8192 / (D))  /* keys per tile (inside the kernel): 128 for D = 64, 64 for D = 128 */
#define TF_FLASH_FWD_SMEM(D) (4 * (8192 / (D)) * (D) * 2)  /* 65536 for D = 64 and 128 */
TF_KERNEL void tf_flash_fwd_d64(const bf16* q, const bf16* k, const bf16* v, bf16* o, float* lse, const int* cu_q,
                                const int* cu_k, int batch, int max_len_q, int hq, int hkv, float scale);
TF_KERNEL void tf_flash_fwd_d128(const bf16* q, const bf16* k, const bf16* v, bf16* o, float* lse, const int* cu_q,
                                 const int* cu_k, int batch, int max_len_q, int hq, int hkv, float scale);
// Backward: (1) tf_flash_bwd_pre: delta[h, i] = sum_d dO*O (f32), delta [hq, total_q]; one warp per (i, h),
//     warp-grid-stride: any grid of whole warps, e.g. TF_EW_THREADS threads x
//     min(ceil(total_q * hq * 32 / TF_EW_THREADS), TF_EW_MAX_BLOCKS) blocks; dq_accum zeroed by the host.
// (2) tf_flash_bwd_d{64,128}: grid (ceil(max_len_k / TF_FLASH_BWD_BLOCK_N), hkv, batch) — one block owns a
//     block of keys of one kv head and loops over its query heads and query blocks, accumulating dK, dV
//     in registers (so the kv-group sum needs no atomics) and adding dQ into dq_accum [total_q, hq, D] f32
//     with atomicAdd — or, when deterministic != 0, in a fixed order (deterministic == 1: key block 0, 1, 2, ...
//     per query block; == 2: from the last key block that sees the query block down to 0, the grid dispatched
//     from the last key block: no chained waits), through semaphore words stored right after dq_accum's
//     total_q * hq * D floats: allocate and zero TF_FLASH_BWD_SEM_WORDS(batch, hq, max_len_k) more 4-byte
//     words; needs len_q <= len_k).
//     The ordering waits are bounded: a block that waits longer than TF_FLASH_BWD_WAIT_NS for the key block
//     before it (the blocks were not run in launch order: compute-sanitizer, MPS, a debugger) sets the error
//     word `error` (one int, zeroed by the host) to TF_FLASH_BWD_ERR_WAIT_TIMEOUT and stops, and so does every
//     block that waits after that: the kernel always ends, dQ is then incomplete and the host must throw.
//     `error` is not touched (it may be null) when deterministic == 0.
//     Dynamic shared memory TF_FLASH_BWD_SMEM(D) bytes.
// (3) tf_flash_bwd_post: dq = dq_accum * scale converted to bf16 (grid-stride). dk, dv written as bf16.
#define TF_FLASH_BWD_BLOCK_N 64
#define TF_FLASH_BWD_THREADS 256
#define TF_FLASH_BWD_BLOCK_M 64  /* query rows per inner step (inside the kernel) */
/* K, V (64 rows each), Q and dO double-buffered (64 rows each), P and dS (64 x 64 bf16), lse and
   delta double-buffered (64 floats each): 66560 bytes for D = 64, 115712 for D = 128. */
#define TF_FLASH_BWD_SMEM(D) \
    (2 * TF_FLASH_BWD_BLOCK_N * (D) * 2 + 4 * TF_FLASH_BWD_BLOCK_M * (D) * 2 + \
     2 * TF_FLASH_BWD_BLOCK_M * TF_FLASH_BWD_BLOCK_N * 2 + 4 * TF_FLASH_BWD_BLOCK_M * 4)
/* deterministic != 0: dq_accum must have this many extra 4-byte words (int semaphores) right after
   its total_q * hq * D floats, zeroed with it; unused (need not exist) when deterministic == 0. */
#define TF_FLASH_BWD_SEM_WORDS(batch, hq, max_len_k) \
    ((long long)(batch) * (hq) * (((max_len_k) + TF_FLASH_BWD_BLOCK_M - 1) / TF_FLASH_BWD_BLOCK_M))
/* error word codes of the backward (0: no error) */
#define TF_FLASH_BWD_ERR_WAIT_TIMEOUT 1
/* how long (wall-clock ns, %globaltimer) a deterministic-mode block waits for the key block before it: in launch
   order a wait lasts about one step of that block (microseconds), so 10 s is only reached when the order is broken */
#ifndef TF_FLASH_BWD_WAIT_NS
#define TF_FLASH_BWD_WAIT_NS 10000000000ull
#endif
TF_KERNEL void tf_flash_bwd_pre(const bf16* o, const bf16* dout, float* delta, int total_q, int hq, int D);
TF_KERNEL void tf_flash_bwd_d64(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, const float* lse,
                                const float* delta, float* dq_accum, bf16* dk, bf16* dv, const int* cu_q,
                                const int* cu_k, int batch, int max_len_k, int hq, int hkv, float scale,
                                int deterministic, int* error);
TF_KERNEL void tf_flash_bwd_d128(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, const float* lse,
                                 const float* delta, float* dq_accum, bf16* dk, bf16* dv, const int* cu_q,
                                 const int* cu_k, int batch, int max_len_k, int hq, int hkv, float scale,
                                 int deterministic, int* error);
TF_KERNEL void tf_flash_bwd_post(const float* dq_accum, float scale, bf16* dq, long long n);
