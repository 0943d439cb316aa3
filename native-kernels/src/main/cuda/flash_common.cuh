// Flash attention: what the forward (flash_attention_fwd.cu) and the backward
// (flash_attention_bwd.cu) share: warp-level tensor-core primitives (mma.sync m16n8k16 bf16,
// ldmatrix, cp.async) as inline PTX, the swizzled shared-memory tile layout and the tile loader.
//
// Everything lives in namespace tf_flash and is `static` / inline, so the build may compile all
// family files as one translation unit. With TF_FLASH_EMU defined (host build of
// native-kernels/src/test/cpp/flash_emu_test.cpp) the primitives are routed to a warp emulator
// instead of PTX, so the very same kernel code runs, lane by lane, on the CPU.
#ifndef TF_FLASH_COMMON_CUH
#define TF_FLASH_COMMON_CUH
#pragma once

#include "tenfold_kernels.h"

#ifdef TF_FLASH_EMU
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstring>
#endif

namespace tf_flash {

typedef unsigned int u32;

// ------------------------------------------------------------------------------ shared layout
// A tile of R rows x D bf16 (D = 64 or 128, or a 64-key row of P/dS) is stored row after row
// (D * 2 bytes a row), in 16-byte chunks of 8 elements. Chunk c of row r sits at chunk position
// c ^ (r & 7): the eight rows that one ldmatrix 8x8 matrix (or eight threads of a cp.async /
// 128-bit store phase) touch at the same logical chunk then fall into eight different 16-byte
// bank groups, so both the cp.async writes and the ldmatrix reads are bank-conflict free without
// padding. (With D = 128 only the low 3 bits of the chunk index are permuted, within each half row.)
template <int ROW_BYTES>
static __device__ __forceinline__ u32 swz(int r, int c) {
    return static_cast<u32>(r * ROW_BYTES + ((c ^ (r & 7)) << 4));
}

// ------------------------------------------------------------------------------ primitives
#ifndef TF_FLASH_EMU

extern __shared__ __align__(128) unsigned char tf_flash_smem[];

// Shared-window address of the dynamic shared memory: every tile address below is this plus a
// byte offset, as ldmatrix / cp.async / ld.shared want.
static __device__ __forceinline__ u32 smem_base() {
    return static_cast<u32>(__cvta_generic_to_shared(tf_flash_smem));
}

// Four 8x8 b16 matrices. Lanes 8i..8i+7 give the row addresses of matrix i; register i of lane l
// receives row l/4, elements 2(l%4), 2(l%4)+1 of matrix i (lower column in the low half).
static __device__ __forceinline__ void ldsm_x4(u32 addr, u32 (&r)[4]) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
// The same with .trans: register i of lane l receives elements (2(l%4), l/4) and (2(l%4)+1, l/4)
// of matrix i, i.e. a column of the stored matrix.
static __device__ __forceinline__ void ldsm_x4_t(u32 addr, u32 (&r)[4]) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

// D = A (16x16, row) * B (16x8, col) + D in f32. Fragments (PTX ISA, mma.m16n8k16 .bf16), with
// g = lane / 4, t = lane % 4:
//   A: a[0] = (g, 2t..2t+1), a[1] = (g+8, 2t..), a[2] = (g, 2t+8..), a[3] = (g+8, 2t+8..)
//   B: b0 = (k = 2t..2t+1, n = g), b1 = (k = 2t+8..2t+9, n = g)
//   D: d[0], d[1] = (g, 2t), (g, 2t+1); d[2], d[3] = (g+8, 2t), (g+8, 2t+1)
static __device__ __forceinline__ void mma_bf16(float (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// 16 bytes global -> shared, asynchronous, L1 bypassed. valid == false copies nothing and fills the
// 16 bytes with zeros (src-size 0); src must still be a mapped address, callers pass the tensor base.
static __device__ __forceinline__ void cp_async16(u32 dst, const void* src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0)
                 : "memory");
}
// 4 bytes (lse / delta rows, which have no 16-byte alignment); zero-filled when !valid.
static __device__ __forceinline__ void cp_async4(u32 dst, const void* src, bool valid) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 4 : 0)
                 : "memory");
}
static __device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Wait until at most N of this thread's committed groups are still in flight.
template <int N>
static __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

static __device__ __forceinline__ void sts32(u32 addr, u32 v) {
    asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(v) : "memory");
}
static __device__ __forceinline__ uint4 lds128(u32 addr) {
    uint4 v;
    asm volatile("ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "r"(addr)
                 : "memory");
    return v;
}
static __device__ __forceinline__ float lds_f32(u32 addr) {
    float v;
    asm volatile("ld.shared.f32 %0, [%1];\n" : "=f"(v) : "r"(addr) : "memory");
    return v;
}

static __device__ __forceinline__ float shfl_xor(float v, int mask) { return __shfl_xor_sync(0xffffffffu, v, mask); }

// 2^x on the SFU (ex2.approx.ftz: relative error ~2^-22; 2^-inf = +0), whatever the compile flags.
static __device__ __forceinline__ float exp2_fast(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

// Two f32 -> bf16x2 (round to nearest even), lo in the low half: the element with the lower
// column index, as the mma A/B fragments and memory order want.
static __device__ __forceinline__ u32 pack_bf16(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<u32*>(&h);
}

static __device__ __forceinline__ void block_sync() { __syncthreads(); }
// A barrier that also tells every thread whether any thread passed a non-zero flag.
static __device__ __forceinline__ bool block_sync_or(int flag) { return __syncthreads_or(flag) != 0; }
static __device__ __forceinline__ void atomic_add_f32(float* p, float v) { atomicAdd(p, v); }
// p[0] += a, p[1] += b, p 8-byte aligned. On sm_90 one float2 atomicAdd (atom.global.add.v2.f32): half the
// instructions and L2 requests of two scalar ones; each element still gets its additions one at a time.
static __device__ __forceinline__ void atomic_add_f32x2(float* p, float a, float b) {
#if __CUDA_ARCH__ >= 900
    atomicAdd(reinterpret_cast<float2*>(p), make_float2(a, b));
#else
    atomicAdd(p, a);
    atomicAdd(p + 1, b);
#endif
}

// Wall-clock nanoseconds (%globaltimer): unlike clock64() it does not depend on the SM clock.
static __device__ __forceinline__ unsigned long long now_ns() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(t));
    return t;
}

// Deterministic-mode ordering (see flash_attention_bwd.cu). One thread spins until *sem == value
// (acquire at gpu scope) and returns true. It gives up and returns false when another block has
// already set *error, or when TF_FLASH_BWD_WAIT_NS have passed, setting *error to
// TF_FLASH_BWD_ERR_WAIT_TIMEOUT first (the first cause stays). The release adds 1 after the
// block's writes (fenced by every writer).
static __device__ __forceinline__ bool sem_wait(const int* sem, int value, int* error) {
    const unsigned long long start = now_ns();
    for (;;) {
        int v, e;
        asm volatile("ld.acquire.gpu.global.b32 %0, [%1];\n" : "=r"(v) : "l"(sem) : "memory");
        if (v == value) return true;
        asm volatile("ld.relaxed.gpu.global.b32 %0, [%1];\n" : "=r"(e) : "l"(error) : "memory");
        if (e != 0) return false;
        if (now_ns() - start > TF_FLASH_BWD_WAIT_NS) {
            atomicCAS(error, 0, TF_FLASH_BWD_ERR_WAIT_TIMEOUT);
            return false;
        }
    }
}
static __device__ __forceinline__ void sem_release(int* sem) {
    asm volatile("red.release.gpu.global.add.s32 [%0], 1;\n" ::"l"(sem) : "memory");
}
static __device__ __forceinline__ void fence_gpu() { __threadfence(); }

static __device__ __forceinline__ int tid_x() { return static_cast<int>(threadIdx.x); }

#else  // TF_FLASH_EMU: the same primitives on the host warp emulator (flash_emu.h)

static inline u32 smem_base() { return 0; }
static inline void ldsm_x4(u32 addr, u32 (&r)[4]) { tf_emu::ldmatrix_x4(addr, r, false); }
static inline void ldsm_x4_t(u32 addr, u32 (&r)[4]) { tf_emu::ldmatrix_x4(addr, r, true); }
static inline void mma_bf16(float (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) { tf_emu::mma_m16n8k16(d, a, b0, b1); }
static inline void cp_async16(u32 dst, const void* src, bool valid) { tf_emu::cp_async(dst, src, valid ? 16 : 0, 16); }
static inline void cp_async4(u32 dst, const void* src, bool valid) { tf_emu::cp_async(dst, src, valid ? 4 : 0, 4); }
static inline void cp_async_commit() { tf_emu::cp_async_commit(); }
template <int N>
static inline void cp_async_wait() {
    tf_emu::cp_async_wait(N);
}
static inline void sts32(u32 addr, u32 v) { tf_emu::sts(addr, &v, 4); }
static inline uint4 lds128(u32 addr) {
    uint4 v;
    tf_emu::lds(addr, &v, 16);
    return v;
}
static inline float lds_f32(u32 addr) {
    float v;
    tf_emu::lds(addr, &v, 4);
    return v;
}
static inline float shfl_xor(float v, int mask) { return tf_emu::shfl_xor(v, mask); }
static inline float exp2_fast(float x) { return std::exp2(x); }
static inline u32 pack_bf16(float lo, float hi) { return tf_emu::bf16_rn(lo) | (tf_emu::bf16_rn(hi) << 16); }
static inline void block_sync() { tf_emu::syncthreads(); }
static inline bool block_sync_or(int flag) { return tf_emu::syncthreads_or(flag); }
static inline void atomic_add_f32(float* p, float v) { tf_emu::atomic_add(p, v); }
static inline void atomic_add_f32x2(float* p, float a, float b) {
    assert((reinterpret_cast<uintptr_t>(p) & 7) == 0 && "atomic_add_f32x2 needs 8-byte alignment (sm_90's float2 atomicAdd)");
    tf_emu::atomic_add(p, a);
    tf_emu::atomic_add(p + 1, b);
}
static inline unsigned long long now_ns() { return tf_emu::now_ns(); }
static inline bool sem_wait(const int* sem, int value, int* error) {
    const unsigned long long start = now_ns();
    for (;;) {
        if (*reinterpret_cast<const volatile int*>(sem) == value) return true;
        if (*reinterpret_cast<const volatile int*>(error) != 0) return false;
        if (now_ns() - start > TF_FLASH_BWD_WAIT_NS) {
            if (*error == 0) *error = TF_FLASH_BWD_ERR_WAIT_TIMEOUT;
            return false;
        }
        tf_emu::bounded_wait_yield();
    }
}
static inline void sem_release(int* sem) { tf_emu::atomic_add_int(sem, 1); }
static inline void fence_gpu() {}
static inline int tid_x() { return static_cast<int>(threadIdx.x); }

#endif

static __device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }
static __device__ __forceinline__ int imax(int a, int b) { return a > b ? a : b; }

// One f32 -> bf16 bits, round to nearest even.
#ifndef TF_FLASH_EMU
static __device__ __forceinline__ unsigned short bf16_bits(float x) {
    return __bfloat16_as_ushort(__float2bfloat16_rn(x));
}
#else
static inline unsigned short bf16_bits(float x) { return static_cast<unsigned short>(tf_emu::bf16_rn(x)); }
#endif

// bf16 bits -> f32 (exact).
static __device__ __forceinline__ float bf16_lo(u32 v) { return __uint_as_float(v << 16); }
static __device__ __forceinline__ float bf16_hi(u32 v) { return __uint_as_float(v & 0xffff0000u); }

// ------------------------------------------------------------------------------ tile loader
// cp.async of rows [0, R) x D bf16 of a row-major global matrix (row r at g + r * ld) into a
// swizzled tile at shared address s. Rows >= rows_valid are zero-filled without any global read
// (the tails of sequences: a zero K/V/Q/dO row can never turn into a NaN through 0 * garbage).
// Thread tid of NT takes chunks tid, tid + NT, ...: consecutive threads read consecutive 16-byte
// chunks of a row (coalesced), and each 8 consecutive threads hit 8 distinct bank groups.
template <int D, int R, int NT>
static __device__ __forceinline__ void load_tile(u32 s, const bf16* g, long long ld, int rows_valid,
                                                 const bf16* mapped, int tid) {
    constexpr int CPR = D / 8;  // 16-byte chunks per row
    constexpr int TOTAL = R * CPR;
    static_assert(TOTAL % NT == 0, "tile chunks must divide among the threads");
#pragma unroll
    for (int i = 0; i < TOTAL / NT; ++i) {
        const int idx = tid + i * NT;
        const int r = idx / CPR, c = idx % CPR;
        const bool ok = r < rows_valid;
        cp_async16(s + swz<D * 2>(r, c), ok ? static_cast<const void*>(g + r * ld + c * 8) : mapped, ok);
    }
}

// Lane address for an ldmatrix.x4 over 16 rows (r0 .. r0+15) x 2 chunks (chunk0, chunk0+1) of a
// swizzled tile, in the matrix order 0 = rows 0-7 / chunk 0, 1 = rows 8-15 / chunk 0,
// 2 = rows 0-7 / chunk 1, 3 = rows 8-15 / chunk 1. Lane l gives row l % 8 of matrix l / 8:
// row r0 + (l & 15), chunk chunk0 + (l >> 4).
//  - without .trans on a tile stored [m][k] this is the A operand (rows m, columns k = 16kk..):
//    registers 0..3 = a[0..3] of the fragment;
//  - with .trans on a tile stored [k][n] (V in O = P V, dO in dV = P^T dO, K in dQ = dS K) it is
//    the B operand of two n-tiles: registers 0, 1 = b0, b1 of n-tile chunk0 and 2, 3 = b0, b1 of
//    n-tile chunk0 + 1 (rows k 0-7 give b0, rows k 8-15 give b1; .trans hands lane l the
//    elements (k = 2(l%4), 2(l%4)+1; n = l/4)).
template <int ROW_BYTES>
static __device__ __forceinline__ u32 addr_rows16(u32 tile, int r0, int chunk0, int lane) {
    return tile + swz<ROW_BYTES>(r0 + (lane & 15), chunk0 + (lane >> 4));
}
// B operand (two n-tiles of 8 = rows n0..n0+15 of a tile stored [n][k], k chunk pair 2kk, 2kk+1)
// without .trans: matrices 0 = rows 0-7 / k 0-7 (b0 of n-tile 0), 1 = rows 0-7 / k 8-15 (b1 of
// n-tile 0), 2 = rows 8-15 / k 0-7 (b0 of n-tile 1), 3 = rows 8-15 / k 8-15 (b1 of n-tile 1).
// Lane l: matrix l >> 3, so row n0 + (l & 7) + 8 * (l >> 4), chunk 2kk + ((l >> 3) & 1).
template <int ROW_BYTES>
static __device__ __forceinline__ u32 addr_nk16(u32 tile, int n0, int chunk0, int lane) {
    return tile + swz<ROW_BYTES>(n0 + (lane & 7) + ((lane >> 4) << 3), chunk0 + ((lane >> 3) & 1));
}
// A operand of a transposed product (A = X^T with X stored [k][m] in the tile: P^T, dS^T) with
// .trans: matrices 0 = m 0-7 / k 0-7, 1 = m 8-15 / k 0-7, 2 = m 0-7 / k 8-15, 3 = m 8-15 / k 8-15
// are the stored blocks (k 0-7, m 0-7), (k 0-7, m 8-15), (k 8-15, m 0-7), (k 8-15, m 8-15).
// Lane l: stored row k0 + (l & 7) + 8 * (l >> 4), chunk (m0 / 8) + ((l >> 3) & 1) — the addr_nk16
// pattern with the roles of rows and chunks as stored.
template <int ROW_BYTES>
static __device__ __forceinline__ u32 addr_kt16(u32 tile, int k0, int chunk0, int lane) {
    return addr_nk16<ROW_BYTES>(tile, k0, chunk0, lane);
}

}  // namespace tf_flash

#endif  // TF_FLASH_COMMON_CUH
