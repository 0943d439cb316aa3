// Flash attention backward on tensor cores (mma.sync m16n8k16 bf16 -> f32, sm_80+).
//
// (1) tf_flash_bwd_pre: delta[h, i] = sum_d dO[i, h, d] * O[i, h, d] in f32, one warp per (i, h).
// (2) tf_flash_bwd_d{64,128}: one block owns BN = 64 keys of one kv head of one sequence (grid:
//     ceil(max_len_k / 64), hkv, batch; 8 warps). K and V of those keys stay in shared memory; the
//     block loops over the query heads of the kv group and, for each, over the query blocks of
//     BM = 64 rows that can see the keys (causal: from the first row whose position reaches the
//     first key). Q, dO, lse and delta of the next step are prefetched with cp.async into the other
//     half of a double buffer while the current step computes:
//        S  = Q K^T, dP = dO V^T            (64 x 64; warp w: rows 16 (w % 4), keys 32 (w / 4))
//        P  = 2^(S * scale * log2 e - lse * log2 e), masked to 0; dS = P (dP - delta)
//        P and dS -> shared memory as bf16 (the transposed products need them in another layout)
//        dV += P^T dO, dK += dS^T Q         (registers; warp w: keys 16 (w % 4), d half w / 4)
//        dQ  = dS K                          (warp w: rows 16 (w % 4), d half w / 4) added into
//                                            dq_accum [total_q, hq, D] f32
//     dK (times scale) and dV go out as bf16 at the end: the kv-group sum happens in registers.
//     dq_accum holds dS K without the scale; (3) applies it.
// (3) tf_flash_bwd_post: dq = bf16(dq_accum * scale).
//
// dQ accumulation. deterministic == 0: atomicAdd (on sm_90 a float2 atomicAdd, a pair of adjacent
// columns at once); the order of the additions from different key blocks varies from run
// to run. deterministic != 0: the additions into the
// rows of one (sequence, query head, query block) happen in key-block order 0, 1, 2, ...: a
// semaphore word per (sequence, query head, query block) counts the key blocks done; key block n
// waits until it reads n, adds (still with atomics, now in a fixed order, so the f32 sums are
// reproducible bit for bit), then releases n + 1. The words sit right after dq_accum's
// total_q * hq * D floats: TF_FLASH_BWD_SEM_WORDS(batch, hq, max_len_k) ints, zeroed by the host
// together with dq_accum. Every key block with keys contributes to a contiguous range of query
// blocks ending with the last, and key block n's range lies inside key block n-1's, so key block
// n-1 has always got a turn for every query block that key block n waits on; no key block waits on
// a later one, and blocks are dispatched in linear block order (x fastest), so a waiting block never
// holds up the one it waits for (the same assumption FlashAttention-3's deterministic mode makes).
// In that order every key block waits for the one before it at every query block, and the waits chain: key
// block n reaches query block m one step after key block n-1 does, so a block n places behind its first
// neighbour can wait about n steps. deterministic == 2 takes the other fixed order: the key blocks that see query
// block m add in descending order, from the last one that sees it (its diagonal block) down to 0, and the grid
// is dispatched from the last key block down (blockIdx.x 0 is the last), so every block still waits only on
// blocks dispatched before it. Key block n+1 reaches query block m one step before key block n (it starts one
// query block later, at the same time), so in steady state nothing waits. Same bits from run to run, not the
// same bits as mode 1 (another order of the additions).
// When that assumption fails (compute-sanitizer, MPS or a debugger may run blocks out of order) a
// waiting block could hold the SM slot its predecessor needs, forever. So the wait is bounded
// (TF_FLASH_BWD_WAIT_NS of wall time, far beyond any wait in launch order): the block that gives up
// sets the error word to TF_FLASH_BWD_ERR_WAIT_TIMEOUT and returns, every block that waits after
// that returns at once, and the host turns the word into an exception. The kernel never hangs;
// without a trap the context stays usable.
#include "flash_common.cuh"

namespace tf_flash {

template <int D>
static __device__ __forceinline__ void flash_bwd(const bf16* __restrict__ q, const bf16* __restrict__ k,
                                                 const bf16* __restrict__ v, const bf16* __restrict__ dout,
                                                 const float* __restrict__ lse, const float* __restrict__ delta,
                                                 float* __restrict__ dq_accum, bf16* __restrict__ dk,
                                                 bf16* __restrict__ dv, const int* __restrict__ cu_q,
                                                 const int* __restrict__ cu_k, int batch, int max_len_k, int hq,
                                                 int hkv, float scale, int deterministic, int* error) {
    constexpr int BN = TF_FLASH_BWD_BLOCK_N;  // keys per block
    constexpr int BM = TF_FLASH_BWD_BLOCK_M;  // query rows per step
    constexpr int NT = TF_FLASH_BWD_THREADS;  // 8 warps
    constexpr int RB = D * 2;                 // bytes per Q/dO/K/V tile row
    constexpr int PB = BN * 2;                // bytes per P/dS tile row
    constexpr int KT = D / 16;                // k-steps over d (S, dP)
    constexpr int HN = D / 16;                // n-tiles of 8 in half of d (dK, dV, dQ per warp)
    static_assert(BN == 64 && BM == 64 && NT == 256, "warp roles below assume 64 x 64 tiles and 8 warps");
    static_assert(2 * BM <= NT, "lse and delta rows are copied by one thread each");

    // deterministic == 2: key blocks are dispatched from the last one down (see the header comment)
    const int b = blockIdx.z, hk = blockIdx.y;
    const int nblk = deterministic == 2 ? static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x) : blockIdx.x;
    const int q0 = cu_q[b], len_q = cu_q[b + 1] - q0;
    const int k0 = cu_k[b], len_k = cu_k[b + 1] - k0;
    const int n_base = nblk * BN;  // first key (within the sequence) of this block
    if (n_base >= len_k) return;   // block-uniform
    const int total_q = cu_q[batch];
    const int G = hq / hkv;            // query heads per kv head: hk * G .. hk * G + G - 1
    const int offset = len_k - len_q;  // query i sits at position offset + i
    const int keys = imin(BN, len_k - n_base);
    // The first query that sees key n_base is i = n_base - offset; its query block comes first.
    const int m_first = imax(0, n_base - offset) / BM;
    const int m_count = (len_q + BM - 1) / BM - m_first;  // query blocks per head (>= 1 if len_q > 0)
    const int nsteps = m_count > 0 ? G * m_count : 0;

    const int tid = tid_x(), lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int w4 = warp & 3, w2 = warp >> 2;  // row / key slab of 16 and column half of the warp
    const long long ldq = static_cast<long long>(hq) * D, ldk = static_cast<long long>(hkv) * D;

    const u32 sbase = smem_base();
    const u32 sK = sbase, sV = sK + BN * RB;
    const u32 sQ0 = sV + BN * RB, sQ1 = sQ0 + BM * RB;
    const u32 sO0 = sQ1 + BM * RB, sO1 = sO0 + BM * RB;  // dO
    const u32 sP = sO1 + BM * RB, sS = sP + BM * PB;     // P, dS
    const u32 sL0 = sS + BM * PB, sL1 = sL0 + BM * 4;    // lse
    const u32 sD0 = sL1 + BM * 4, sD1 = sD0 + BM * 4;    // delta

    int* const sem = reinterpret_cast<int*>(dq_accum + static_cast<long long>(total_q) * hq * D);
    const int sem_blocks = (max_len_k + BM - 1) / BM;

    // Step s -> (query head, query block). Heads outer, query blocks inner: the same order in every
    // key block (the deterministic mode relies on it).
    auto load_step = [&](int s, bool odd) {
        const int h = hk * G + s / m_count;
        const int m_base = (m_first + s % m_count) * BM;
        const int rows_valid = len_q - m_base;
        const long long row0 = static_cast<long long>(q0 + m_base);
        load_tile<D, BM, NT>(odd ? sQ1 : sQ0, q + row0 * ldq + h * D, ldq, rows_valid, q, tid);
        load_tile<D, BM, NT>(odd ? sO1 : sO0, dout + row0 * ldq + h * D, ldq, rows_valid, dout, tid);
        const long long stat = static_cast<long long>(h) * total_q + row0;  // [hq, total_q] layout
        if (tid < BM)
            cp_async4((odd ? sL1 : sL0) + 4 * tid, tid < rows_valid ? lse + stat + tid : lse, tid < rows_valid);
        else if (tid < 2 * BM)
            cp_async4((odd ? sD1 : sD0) + 4 * (tid - BM), tid - BM < rows_valid ? delta + stat + (tid - BM) : delta,
                      tid - BM < rows_valid);
    };

    load_tile<D, BN, NT>(sK, k + static_cast<long long>(k0 + n_base) * ldk + hk * D, ldk, keys, k, tid);
    load_tile<D, BN, NT>(sV, v + static_cast<long long>(k0 + n_base) * ldk + hk * D, ldk, keys, v, tid);
    if (nsteps > 0) load_step(0, false);
    cp_async_commit();

    const float sl2 = scale * 1.4426950408889634f;  // scale * log2(e)
    float dk_acc[HN][4], dv_acc[HN][4];
#pragma unroll
    for (int j = 0; j < HN; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) dk_acc[j][e] = dv_acc[j][e] = 0.f;

    for (int s = 0; s < nsteps; ++s) {
        const bool odd = s & 1;
        // Prefetch step s+1 into the other buffers, last read in step s-1 (before its final barrier).
        if (s + 1 < nsteps) load_step(s + 1, !odd);
        cp_async_commit();
        cp_async_wait<1>();  // all but the newest group: step s's tiles (and K, V) have landed
        block_sync();

        const int h = hk * G + s / m_count;
        const int m = m_first + s % m_count;
        const int m_base = m * BM;
        const u32 sQ = odd ? sQ1 : sQ0, sO = odd ? sO1 : sO0;
        const u32 sL = odd ? sL1 : sL0, sD = odd ? sD1 : sD0;

        // S = Q K^T and dP = dO V^T for rows 16 w4 .. +15, keys 32 w2 .. +31 (four n-tiles).
        float sa[4][4], pa[4][4];
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) sa[j][e] = pa[j][e] = 0.f;
#pragma unroll
        for (int kk = 0; kk < KT; ++kk) {
            u32 aq[4], ao[4];
            ldsm_x4(addr_rows16<RB>(sQ, 16 * w4, 2 * kk, lane), aq);
            ldsm_x4(addr_rows16<RB>(sO, 16 * w4, 2 * kk, lane), ao);
#pragma unroll
            for (int np = 0; np < 2; ++np) {
                u32 bk[4], bv[4];
                ldsm_x4(addr_nk16<RB>(sK, 32 * w2 + 16 * np, 2 * kk, lane), bk);
                mma_bf16(sa[2 * np], aq, bk[0], bk[1]);
                mma_bf16(sa[2 * np + 1], aq, bk[2], bk[3]);
                ldsm_x4(addr_nk16<RB>(sV, 32 * w2 + 16 * np, 2 * kk, lane), bv);
                mma_bf16(pa[2 * np], ao, bv[0], bv[1]);
                mma_bf16(pa[2 * np + 1], ao, bv[2], bv[3]);
            }
        }

        // P and dS. Element [j][e] is tile row r = 16 w4 + g + 8 (e >> 1), tile key
        // c = 32 w2 + 8 j + 2 t + (e & 1). Masked (P = 0): rows past the sequence, keys past it,
        // keys after the row's position. Rows past the sequence hold zeros (Q, dO, lse, delta).
        const int rA = 16 * w4 + g;
        float l2[2], dl[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            l2[r] = lds_f32(sL + 4 * (rA + 8 * r)) * 1.4426950408889634f;  // lse in log2 units
            dl[r] = lds_f32(sD + 4 * (rA + 8 * r));
        }
        const bool need_mask = m_base + BM > len_q || n_base + BN > len_k || n_base + BN - 1 > offset + m_base;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                float p = exp2_fast(fmaf(sa[j][e], sl2, -l2[e >> 1]));
                if (need_mask) {
                    const int i = m_base + rA + 8 * (e >> 1);
                    const int key = n_base + 32 * w2 + 8 * j + 2 * t + (e & 1);
                    if (i >= len_q || key >= len_k || key > offset + i) p = 0.f;
                }
                sa[j][e] = p;
                pa[j][e] = p * (pa[j][e] - dl[e >> 1]);
            }
        }
        // To shared memory as bf16 [query row][key]: element [j][e] is chunk 4 w2 + j (8 keys),
        // byte 4 t (the pair 2t, 2t+1) of row rA + 8 (e >> 1). The previous step's readers of
        // sP / sS finished before its final barrier.
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            sts32(sP + swz<PB>(rA, 4 * w2 + j) + 4 * t, pack_bf16(sa[j][0], sa[j][1]));
            sts32(sP + swz<PB>(rA + 8, 4 * w2 + j) + 4 * t, pack_bf16(sa[j][2], sa[j][3]));
            sts32(sS + swz<PB>(rA, 4 * w2 + j) + 4 * t, pack_bf16(pa[j][0], pa[j][1]));
            sts32(sS + swz<PB>(rA + 8, 4 * w2 + j) + 4 * t, pack_bf16(pa[j][2], pa[j][3]));
        }
        block_sync();

        // dV += P^T dO and dK += dS^T Q for keys 16 w4 .. +15, d columns w2 * D/2 .. +D/2-1.
        // A = P^T (keys x queries) from P stored [query][key] with ldmatrix.trans (addr_kt16);
        // B = dO / Q stored [query][d] = [k][n] with ldmatrix.trans (addr_rows16).
#pragma unroll
        for (int kk = 0; kk < BM / 16; ++kk) {
            u32 ap[4], as[4];
            ldsm_x4_t(addr_kt16<PB>(sP, 16 * kk, 2 * w4, lane), ap);
            ldsm_x4_t(addr_kt16<PB>(sS, 16 * kk, 2 * w4, lane), as);
#pragma unroll
            for (int dp = 0; dp < HN / 2; ++dp) {
                u32 bo[4], bq[4];
                ldsm_x4_t(addr_rows16<RB>(sO, 16 * kk, w2 * HN + 2 * dp, lane), bo);
                mma_bf16(dv_acc[2 * dp], ap, bo[0], bo[1]);
                mma_bf16(dv_acc[2 * dp + 1], ap, bo[2], bo[3]);
                ldsm_x4_t(addr_rows16<RB>(sQ, 16 * kk, w2 * HN + 2 * dp, lane), bq);
                mma_bf16(dk_acc[2 * dp], as, bq[0], bq[1]);
                mma_bf16(dk_acc[2 * dp + 1], as, bq[2], bq[3]);
            }
        }

        // dQ (unscaled) = dS K for rows 16 w4 .. +15, d columns w2 * D/2 ..: A = dS stored
        // [query][key] (plain ldmatrix), B = K stored [key][d] = [k][n] (ldmatrix.trans).
        float dq[HN][4];
#pragma unroll
        for (int j = 0; j < HN; ++j) dq[j][0] = dq[j][1] = dq[j][2] = dq[j][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < BN / 16; ++kk) {
            u32 a[4];
            ldsm_x4(addr_rows16<PB>(sS, 16 * w4, 2 * kk, lane), a);
#pragma unroll
            for (int dp = 0; dp < HN / 2; ++dp) {
                u32 bk[4];
                ldsm_x4_t(addr_rows16<RB>(sK, 16 * kk, w2 * HN + 2 * dp, lane), bk);
                mma_bf16(dq[2 * dp], a, bk[0], bk[1]);
                mma_bf16(dq[2 * dp + 1], a, bk[2], bk[3]);
            }
        }

        int* const my_sem = sem + (static_cast<long long>(b) * hq + h) * sem_blocks + m;
        if (deterministic) {
            // Key blocks 0 .. nblk-1 (mode 1), or nblk+1 .. the last that sees query block m (mode 2), have
            // added theirs, unless thread 0 gave up waiting: then the whole block stops (the error word says why).
            const int before = deterministic == 2 ? imin(offset + m_base + BM - 1, len_k - 1) / BN - nblk : nblk;
            const bool gave_up = block_sync_or(tid == 0 && !sem_wait(my_sem, before, error));
            if (gave_up) {
                cp_async_wait<0>();  // the prefetch of step s + 1
                return;
            }
        }
        // dq[j][e] is row rA + 8 (e >> 1), column w2 * D/2 + 8 j + 2 t + (e & 1).
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int i = m_base + rA + 8 * r;
            if (i < len_q) {
                float* dst = dq_accum + (static_cast<long long>(q0 + i) * hq + h) * D + w2 * (D / 2) + 2 * t;
#pragma unroll
                for (int j = 0; j < HN; ++j) atomic_add_f32x2(dst + 8 * j, dq[j][2 * r], dq[j][2 * r + 1]);
            }
        }
        if (deterministic) fence_gpu();  // this thread's additions before the release below
        // Every warp is done with this step's buffers (the next prefetch overwrites them) and, in
        // deterministic mode, every thread's additions are fenced before thread 0 releases.
        block_sync();
        if (deterministic && tid == 0) sem_release(my_sem);
    }

    cp_async_wait<0>();  // only matters when there was no step (len_q == 0): K/V copies in flight

    // dK = scale * sum dS^T Q, dV = sum P^T dO over the group's heads. dk_acc[j][e] is key
    // 16 w4 + g + 8 (e >> 1), column w2 * D/2 + 8 j + 2 t + (e & 1).
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int key = 16 * w4 + g + 8 * r;
        if (key < keys) {
            const long long off = static_cast<long long>(k0 + n_base + key) * ldk + hk * D + w2 * (D / 2) + 2 * t;
#pragma unroll
            for (int j = 0; j < HN; ++j) {
                *reinterpret_cast<u32*>(dk + off + 8 * j) =
                    pack_bf16(dk_acc[j][2 * r] * scale, dk_acc[j][2 * r + 1] * scale);
                *reinterpret_cast<u32*>(dv + off + 8 * j) = pack_bf16(dv_acc[j][2 * r], dv_acc[j][2 * r + 1]);
            }
        }
    }
}

}  // namespace tf_flash

// delta[h, i] = sum_d dO[i, h, d] * O[i, h, d]. One warp per (i, h) row (D contiguous elements,
// read as bf16 pairs when D is even), a fixed shuffle tree: deterministic. Any grid of whole warps.
TF_KERNEL void tf_flash_bwd_pre(const bf16* o, const bf16* dout, float* delta, int total_q, int hq, int D) {
    const long long rows = static_cast<long long>(total_q) * hq;
    const int lane = tf_flash::tid_x() & 31;
    const long long first = (static_cast<long long>(blockIdx.x) * blockDim.x + tf_flash::tid_x()) >> 5;
    const long long stride = (static_cast<long long>(gridDim.x) * blockDim.x) >> 5;
    for (long long w = first; w < rows; w += stride) {  // w = i * hq + h
        float acc = 0.f;
        if ((D & 1) == 0) {
            const unsigned* orow = reinterpret_cast<const unsigned*>(o + w * D);
            const unsigned* drow = reinterpret_cast<const unsigned*>(dout + w * D);
            for (int c = lane; c < D / 2; c += 32) {
                const unsigned a = orow[c], d = drow[c];
                acc += tf_flash::bf16_lo(a) * tf_flash::bf16_lo(d) + tf_flash::bf16_hi(a) * tf_flash::bf16_hi(d);
            }
        } else {
            const unsigned short* orow = reinterpret_cast<const unsigned short*>(o + w * D);
            const unsigned short* drow = reinterpret_cast<const unsigned short*>(dout + w * D);
            for (int c = lane; c < D; c += 32) acc += tf_flash::bf16_lo(orow[c]) * tf_flash::bf16_lo(drow[c]);
        }
#pragma unroll
        for (int m = 16; m > 0; m >>= 1) acc += tf_flash::shfl_xor(acc, m);
        if (lane == 0) delta[(w % hq) * total_q + w / hq] = acc;
    }
}

// D = 64 fits 128 registers without spills: two blocks (16 warps) per SM.
TF_KERNEL void __launch_bounds__(TF_FLASH_BWD_THREADS, 2)
    tf_flash_bwd_d64(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, const float* lse,
                     const float* delta, float* dq_accum, bf16* dk, bf16* dv, const int* cu_q, const int* cu_k,
                     int batch, int max_len_k, int hq, int hkv, float scale, int deterministic, int* error) {
    tf_flash::flash_bwd<64>(q, k, v, dout, lse, delta, dq_accum, dk, dv, cu_q, cu_k, batch, max_len_k, hq, hkv,
                            scale, deterministic, error);
}

TF_KERNEL void __launch_bounds__(TF_FLASH_BWD_THREADS, 1)
    tf_flash_bwd_d128(const bf16* q, const bf16* k, const bf16* v, const bf16* dout, const float* lse,
                      const float* delta, float* dq_accum, bf16* dk, bf16* dv, const int* cu_q, const int* cu_k,
                      int batch, int max_len_k, int hq, int hkv, float scale, int deterministic, int* error) {
    tf_flash::flash_bwd<128>(q, k, v, dout, lse, delta, dq_accum, dk, dv, cu_q, cu_k, batch, max_len_k, hq, hkv,
                             scale, deterministic, error);
}

// dq = bf16(dq_accum * scale), grid-stride (any grid); n = total_q * hq * D (the deterministic
// mode's semaphore words after it are not touched).
TF_KERNEL void tf_flash_bwd_post(const float* dq_accum, float scale, bf16* dq, long long n) {
    unsigned short* out = reinterpret_cast<unsigned short*>(dq);
    const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
    for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + tf_flash::tid_x(); i < n; i += stride)
        out[i] = tf_flash::bf16_bits(dq_accum[i] * scale);
}
