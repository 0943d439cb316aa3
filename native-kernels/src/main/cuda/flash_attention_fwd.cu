// Flash attention forward on tensor cores (mma.sync m16n8k16 bf16 -> f32, sm_80+).
//
// One block = BM = 128 query rows of one query head of one sequence (grid: ceil(max_len_q / 128),
// hq, batch; block x takes the query block ceil(max_len_q / 128) - 1 - x, so the heaviest causal
// blocks start first), 8 warps of 16 rows each. K and V stream through shared memory in tiles of BN keys
// (BN = 128 for D = 64, 64 for D = 128), double-buffered with cp.async; the Q tile sits in
// registers (as mma A fragments) for the whole key loop, so it borrows the V buffers to get there.
//
// Key tiles run from the last one a row of the block can see down to tile 0, so the tiles that
// straddle the causal diagonal come first and the rest need no mask. Per tile and warp:
//   S = Q K^T (16 x BN, f32), causal mask (key > position -> -inf), online softmax in the exp2
//   domain with the scale folded in: p = 2^(s * scale * log2(e) - m * scale * log2(e)), the row
//   max m and the row sum l carried across tiles, O rescaled by 2^(m_old - m_new); then
//   O += P V with P rounded to bf16 straight from the S accumulators (the C fragment of S is the
//   A fragment of P, no shared-memory round trip).
// At the end O / l goes out as bf16 (staged through shared memory for 16-byte stores) and
// lse = m * scale + ln(l). A row that sees no key (only possible when len_q > len_k) gets O = 0
// and lse = +inf, so the backward's P = exp(s - lse) is 0 for it.
//
// Pipeline per key tile n (buffers alternate; K[n] is resident when the iteration starts):
//   issue K[n-1] -> other K buffer | S = Q K[n]^T, softmax | wait V[n], barrier | O += P V[n] |
//   issue V[n-1] -> other V buffer | wait K[n-1], barrier
// so the load of K[n-1] overlaps S and softmax, and V[n-1] overlaps the next S.
#include "flash_common.cuh"

namespace tf_flash {

template <int D>
struct FwdCfg;
template <>
struct FwdCfg<64> {
    static constexpr int BN = 128;
};
template <>
struct FwdCfg<128> {
    static constexpr int BN = 64;
};

template <int D>
static __device__ __forceinline__ void flash_fwd(const bf16* __restrict__ q, const bf16* __restrict__ k,
                                                 const bf16* __restrict__ v, bf16* __restrict__ o,
                                                 float* __restrict__ lse, const int* __restrict__ cu_q,
                                                 const int* __restrict__ cu_k, int batch, int hq, int hkv,
                                                 float scale) {
    constexpr int BM = TF_FLASH_FWD_BLOCK_M;  // query rows per block (16 per warp)
    constexpr int NT = TF_FLASH_FWD_THREADS;  // 8 warps
    constexpr int BN = FwdCfg<D>::BN;         // keys per tile
    constexpr int RB = D * 2;                 // bytes per tile row
    constexpr int KT = D / 16;                // k-steps of S = Q K^T (over d)
    constexpr int SN = BN / 8;                // n-tiles of S (8 keys each)
    constexpr int PK = BN / 16;               // k-steps of O += P V (over keys)
    constexpr int ON = D / 8;                 // n-tiles of O (8 columns each)
    static_assert(BM == 16 * (NT / 32), "one warp per 16 query rows");
    static_assert(2 * BN >= BM, "the Q tile must fit in the two V buffers");

    const int b = blockIdx.z, h = blockIdx.y;
    const int q0 = cu_q[b], len_q = cu_q[b + 1] - q0;
    const int k0 = cu_k[b], len_k = cu_k[b + 1] - k0;
    // First query row (within the sequence) of this block. Causal work grows with the row index and
    // blocks are dispatched in x order: the last query blocks (the longest) go first.
    const int m_base = (gridDim.x - 1 - blockIdx.x) * BM;
    if (m_base >= len_q) return;         // block-uniform: shorter sequences than max_len_q
    const int total_q = cu_q[batch];     // lse is [hq, total_q]
    const int hk = h / (hq / hkv);       // grouped-query: kv head of query head h
    const int offset = len_k - len_q;    // query i sits at position offset + i
    const int rows = imin(BM, len_q - m_base);
    // Keys [0, n_end) are visible to at least one row of the block (the last row sees up to
    // offset + m_base + rows - 1); key tiles beyond are skipped, not masked.
    const int n_end = imin(len_k, offset + m_base + rows);
    const int nb = n_end > 0 ? (n_end + BN - 1) / BN : 0;

    const int tid = tid_x(), lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;  // mma fragment coordinates (group row, thread in group)
    const int rA = 16 * warp + g;           // this thread's tile rows: rA and rA + 8
    const long long ldq = static_cast<long long>(hq) * D, ldk = static_cast<long long>(hkv) * D;
    const bf16* qg = q + static_cast<long long>(q0 + m_base) * ldq + h * D;
    const bf16* kg = k + static_cast<long long>(k0) * ldk + hk * D;
    const bf16* vg = v + static_cast<long long>(k0) * ldk + hk * D;

    const u32 sbase = smem_base();
    const u32 sK0 = sbase, sK1 = sbase + BN * RB;
    const u32 sV0 = sbase + 2 * BN * RB, sV1 = sbase + 3 * BN * RB;
    const u32 sQ = sV0;  // Q (BM rows) borrows the V buffers until it sits in registers; O's staging too

    const float sl2 = scale * 1.4426950408889634f;  // scale * log2(e): exp(x * scale) = 2^(x * sl2)
    float acc[ON][4];
#pragma unroll
    for (int j = 0; j < ON; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
    float m_run[2] = {-INFINITY, -INFINITY};  // running raw-score max of rows rA, rA + 8
    float l_run[2] = {0.f, 0.f};              // running sum of p (this thread's columns only)

    if (nb > 0) {
        const int nlast = nb - 1;
        load_tile<D, BM, NT>(sQ, qg, ldq, rows, q, tid);
        load_tile<D, BN, NT>(sK0, kg + nlast * BN * ldk, ldk, len_k - nlast * BN, k, tid);
        cp_async_commit();
        cp_async_wait<0>();
        block_sync();
        u32 qf[KT][4];  // A fragments of this warp's 16 Q rows, all of d
#pragma unroll
        for (int kk = 0; kk < KT; ++kk) ldsm_x4(addr_rows16<RB>(sQ, 16 * warp, 2 * kk, lane), qf[kk]);
        block_sync();  // every warp holds its Q fragments: the V buffers are free
        load_tile<D, BN, NT>(sV0, vg + nlast * BN * ldk, ldk, len_k - nlast * BN, v, tid);
        cp_async_commit();

        for (int it = 0; it < nb; ++it) {
            const int n = nlast - it;
            const bool odd = it & 1;
            const u32 sKc = odd ? sK1 : sK0, sKn = odd ? sK0 : sK1;
            const u32 sVc = odd ? sV1 : sV0, sVn = odd ? sV0 : sV1;
            // Prefetch K[n-1]: its buffer was last read by the previous iteration's S, which both
            // of that iteration's barriers follow. An empty group keeps the wait counts uniform.
            if (n > 0) load_tile<D, BN, NT>(sKn, kg + (n - 1) * BN * ldk, ldk, len_k - (n - 1) * BN, k, tid);
            cp_async_commit();

            // S = Q K^T: for every 16 keys (two n-tiles) and 16 d, one ldmatrix.x4 of K stored
            // [key][d] gives b0/b1 of both n-tiles (addr_nk16), then two mma.
            float s[SN][4];
#pragma unroll
            for (int j = 0; j < SN; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < KT; ++kk) {
#pragma unroll
                for (int np = 0; np < SN / 2; ++np) {
                    u32 bk[4];
                    ldsm_x4(addr_nk16<RB>(sKc, 16 * np, 2 * kk, lane), bk);
                    mma_bf16(s[2 * np], qf[kk], bk[0], bk[1]);
                    mma_bf16(s[2 * np + 1], qf[kk], bk[2], bk[3]);
                }
            }

            // Causal mask, only where a key of the tile lies past the first position of this
            // warp's rows (warp-uniform test). s[j][e] is row rA + 8 (e >> 1), key
            // n * BN + 8 j + 2 t + (e & 1) (C fragment layout).
            const int n_base = n * BN;
            if (n_base + BN - 1 > offset + m_base + 16 * warp) {
#pragma unroll
                for (int j = 0; j < SN; ++j) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int key = n_base + 8 * j + 2 * t + (e & 1);
                        const int pos = offset + m_base + rA + 8 * (e >> 1);
                        if (key > pos) s[j][e] = -INFINITY;
                    }
                }
            }

            // Online softmax. A row's 8 * SN values of this tile are spread over the 4 threads of
            // a quad (lanes 4g .. 4g+3): reduce the max with xor-shuffles 1 and 2.
            float mx[2] = {m_run[0], m_run[1]};
#pragma unroll
            for (int j = 0; j < SN; ++j) {
                mx[0] = fmaxf(mx[0], fmaxf(s[j][0], s[j][1]));
                mx[1] = fmaxf(mx[1], fmaxf(s[j][2], s[j][3]));
            }
            float ms[2], alpha[2];
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                mx[r] = fmaxf(mx[r], shfl_xor(mx[r], 1));
                mx[r] = fmaxf(mx[r], shfl_xor(mx[r], 2));
                // A row with nothing visible yet keeps max -inf: subtract 0 instead of -inf so that
                // its p = 2^-inf = 0 rather than NaN.
                ms[r] = mx[r] == -INFINITY ? 0.f : mx[r] * sl2;
                alpha[r] = exp2_fast(m_run[r] * sl2 - ms[r]);  // 0 when m_run was -inf
                m_run[r] = mx[r];
            }
            float rs[2] = {0.f, 0.f};
#pragma unroll
            for (int j = 0; j < SN; ++j) {
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    s[j][e] = exp2_fast(fmaf(s[j][e], sl2, -ms[e >> 1]));
                    rs[e >> 1] += s[j][e];
                }
            }
#pragma unroll
            for (int r = 0; r < 2; ++r) l_run[r] = l_run[r] * alpha[r] + rs[r];
#pragma unroll
            for (int j = 0; j < ON; ++j) {
                acc[j][0] *= alpha[0];
                acc[j][1] *= alpha[0];
                acc[j][2] *= alpha[1];
                acc[j][3] *= alpha[1];
            }
            // P as A fragments: the k-step of 16 keys kk is n-tiles 2kk (cols 0-7) and 2kk+1
            // (cols 8-15); a[0] = (g, 2t..) = s[2kk][0..1], a[1] = (g+8, 2t..) = s[2kk][2..3],
            // a[2] = (g, 8+2t..) = s[2kk+1][0..1], a[3] = s[2kk+1][2..3].
            u32 pa[PK][4];
#pragma unroll
            for (int kk = 0; kk < PK; ++kk) {
                pa[kk][0] = pack_bf16(s[2 * kk][0], s[2 * kk][1]);
                pa[kk][1] = pack_bf16(s[2 * kk][2], s[2 * kk][3]);
                pa[kk][2] = pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
                pa[kk][3] = pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
            }

            cp_async_wait<1>();  // all but the newest group (K[n-1]) done: V[n] has landed
            block_sync();        // ... for every thread's chunks; and all warps are done with K[n]

            // O += P V: V stored [key][d] is the B operand [k][n]; ldmatrix.trans over 16 keys x
            // 16 d gives b0/b1 of two d n-tiles (addr_rows16).
#pragma unroll
            for (int kk = 0; kk < PK; ++kk) {
#pragma unroll
                for (int dp = 0; dp < ON / 2; ++dp) {
                    u32 bv[4];
                    ldsm_x4_t(addr_rows16<RB>(sVc, 16 * kk, 2 * dp, lane), bv);
                    mma_bf16(acc[2 * dp], pa[kk], bv[0], bv[1]);
                    mma_bf16(acc[2 * dp + 1], pa[kk], bv[2], bv[3]);
                }
            }
            // Prefetch V[n-1]: its buffer was last read by the previous iteration's O += P V,
            // which the barrier above follows.
            if (n > 0) load_tile<D, BN, NT>(sVn, vg + (n - 1) * BN * ldk, ldk, len_k - (n - 1) * BN, v, tid);
            cp_async_commit();
            cp_async_wait<1>();  // all but V[n-1]: K[n-1] has landed
            block_sync();        // ... for all threads; and every warp is done with V[n]
        }
    }

    // Epilogue. Complete the row sums over the quad; O / l, and lse = m * scale + ln(l).
    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        l_run[r] += shfl_xor(l_run[r], 1);
        l_run[r] += shfl_xor(l_run[r], 2);
        inv[r] = l_run[r] > 0.f ? 1.f / l_run[r] : 0.f;
    }
    // Stage O as bf16 in the (now idle) Q/V area: acc[j][e] is row rA + 8 (e >> 1), column
    // 8 j + 2 t + (e & 1), i.e. chunk j, byte 4 t of that chunk. The loop's last barrier ordered
    // every read of the area before these writes.
#pragma unroll
    for (int j = 0; j < ON; ++j) {
        sts32(sQ + swz<RB>(rA, j) + 4 * t, pack_bf16(acc[j][0] * inv[0], acc[j][1] * inv[0]));
        sts32(sQ + swz<RB>(rA + 8, j) + 4 * t, pack_bf16(acc[j][2] * inv[1], acc[j][3] * inv[1]));
    }
    if (t == 0) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int row = rA + 8 * r;
            if (row < rows)
                lse[static_cast<long long>(h) * total_q + q0 + m_base + row] =
                    l_run[r] > 0.f ? m_run[r] * scale + logf(l_run[r]) : INFINITY;
        }
    }
    block_sync();
    // Coalesced 16-byte stores of the valid rows.
    constexpr int CPR = D / 8;
#pragma unroll
    for (int i = 0; i < BM * CPR / NT; ++i) {
        const int idx = tid + i * NT;
        const int r = idx / CPR, c = idx % CPR;
        if (r < rows) {
            const uint4 val = lds128(sQ + swz<RB>(r, c));
            *reinterpret_cast<uint4*>(o + static_cast<long long>(q0 + m_base + r) * ldq + h * D + c * 8) = val;
        }
    }
}

}  // namespace tf_flash

TF_KERNEL void __launch_bounds__(TF_FLASH_FWD_THREADS, 1)
    tf_flash_fwd_d64(const bf16* q, const bf16* k, const bf16* v, bf16* o, float* lse, const int* cu_q,
                     const int* cu_k, int batch, int max_len_q, int hq, int hkv, float scale) {
    (void)max_len_q;  // only sizes the grid
    tf_flash::flash_fwd<64>(q, k, v, o, lse, cu_q, cu_k, batch, hq, hkv, scale);
}

TF_KERNEL void __launch_bounds__(TF_FLASH_FWD_THREADS, 1)
    tf_flash_fwd_d128(const bf16* q, const bf16* k, const bf16* v, bf16* o, float* lse, const int* cu_q,
                      const int* cu_k, int batch, int max_len_q, int hq, int hkv, float scale) {
    (void)max_len_q;
    tf_flash::flash_fwd<128>(q, k, v, o, lse, cu_q, cu_k, batch, hq, hkv, scale);
}
