// Helpers shared by the kernel family files: vectorised element loops, warp and block reductions,
// bf16/f16 bit conversions. Every family file includes this; the build compiles all family files
// as one translation unit (see build-kernels.sh), so everything here is `inline` and lives in
// namespace tf, and family-local helpers live in their own namespace (tf_rope, tf_nf4, ...).
#pragma once
#include "tenfold_kernels.h"

namespace tf {

constexpr unsigned FULL_MASK = 0xffffffffu;

// ------------------------------------------------------------------------------ vectorised loops
// Tensors handed to a kernel may be views at any element offset, so 16-byte alignment is checked
// at run time. A loop over [0, n) of several arrays runs in 4-element vectors when every array is
// at the same position modulo 4 elements ("phase"): a scalar head brings them all to a vector
// boundary, a scalar tail finishes. When phases differ the whole loop is scalar (still coalesced).

// Phase of a pointer: its element index modulo 4 (elem_bytes = 4 for f32, 2 for bf16/f16).
__device__ __forceinline__ int phase(const void* p, int elem_bytes) {
    return static_cast<int>((reinterpret_cast<uintptr_t>(p) / elem_bytes) & 3);
}

// Elements of scalar head before the first vector when all pointers share one phase; -1 when they
// don't (then the loop runs scalar).
template <class... P>
__device__ __forceinline__ int common_head(int p0, P... ps) {
    return ((ps == p0) && ...) ? (4 - p0) & 3 : -1;
}

// Runs scalar(i) or vec4(i) (which handles elements i..i+3) over [0, n), split among the threads
// `first, first + stride, ...`. head < 0: all scalar. Each element is touched by exactly one call.
template <class Scalar, class Vec4>
__device__ __forceinline__ void split_loop(long long n, int head, long long first, long long stride, Scalar scalar,
                                           Vec4 vec4) {
    if (head < 0) {
        for (long long i = first; i < n; i += stride) scalar(i);
        return;
    }
    long long h = head < n ? head : n;
    long long vectors = (n - h) >> 2;
    if (first < h) scalar(first);                                  // head: at most 3 elements
    for (long long v = first; v < vectors; v += stride) vec4(h + 4 * v);
    long long t = h + 4 * vectors + first;                         // tail: at most 3 elements
    if (t < n) scalar(t);
}

// Grid-stride version for the elementwise kernels (any grid works).
template <class Scalar, class Vec4>
__device__ __forceinline__ void grid_loop(long long n, int head, Scalar scalar, Vec4 vec4) {
    split_loop(n, head, static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x,
               static_cast<long long>(gridDim.x) * blockDim.x, scalar, vec4);
}

// Block-stride version for row kernels (one row per block).
template <class Scalar, class Vec4>
__device__ __forceinline__ void row_loop(int n, int head, Scalar scalar, Vec4 vec4) {
    split_loop(n, head, threadIdx.x, blockDim.x, scalar, vec4);
}

__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ void store4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }

// ------------------------------------------------------------------------------ 16-bit floats
// Raw bits, little-endian: element 0 of a pair is the low half of the 32-bit word.
__device__ __forceinline__ float bf16_bits_to_float(unsigned bits16) { return __uint_as_float(bits16 << 16); }
__device__ __forceinline__ unsigned float_to_bf16_bits(float f) {  // round to nearest even
    return __bfloat16_as_ushort(__float2bfloat16_rn(f));
}
__device__ __forceinline__ float f16_bits_to_float(unsigned bits16) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(bits16)));
}
__device__ __forceinline__ unsigned float_to_f16_bits(float f) { return __half_as_ushort(__float2half_rn(f)); }

// Two floats -> two bf16 (round to nearest even) in one 32-bit word, lo in the low half: one
// F2FP.BF16.PACK instruction on sm_80+.
__device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<unsigned*>(&h);
}

// Four 16-bit values (8 bytes, 8-byte aligned) <-> float4.
template <bool BF16>
__device__ __forceinline__ float4 load4_16(const void* p) {
    uint2 w = *reinterpret_cast<const uint2*>(p);
    if (BF16) {
        return make_float4(__uint_as_float(w.x << 16), __uint_as_float(w.x & 0xffff0000u), __uint_as_float(w.y << 16),
                           __uint_as_float(w.y & 0xffff0000u));
    }
    return make_float4(f16_bits_to_float(w.x & 0xffffu), f16_bits_to_float(w.x >> 16), f16_bits_to_float(w.y & 0xffffu),
                       f16_bits_to_float(w.y >> 16));
}
template <bool BF16>
__device__ __forceinline__ void store4_16(void* p, float4 v) {
    uint2 w;
    if (BF16) {
        w.x = pack_bf16x2(v.x, v.y);
        w.y = pack_bf16x2(v.z, v.w);
    } else {
        w.x = float_to_f16_bits(v.x) | (float_to_f16_bits(v.y) << 16);
        w.y = float_to_f16_bits(v.z) | (float_to_f16_bits(v.w) << 16);
    }
    *reinterpret_cast<uint2*>(p) = w;
}

// ------------------------------------------------------------------------------ reductions
// Butterfly (xor) warp reductions: every lane ends with the same bits, since each step combines
// the same two values (a + b == b + a exactly).
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}
__device__ __forceinline__ double warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}
__device__ __forceinline__ long long warp_sum(long long v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

// max that propagates NaN (fmaxf drops it) and orders -0 below +0, like Java's Math.max.
__device__ __forceinline__ float max_nan(float a, float b) {
    if (a != a) return a;
    if (b != b) return b;
    if (a == b) return signbit(a) ? b : a;
    return a > b ? a : b;
}
__device__ __forceinline__ float warp_max_nan(float v) {
    for (int o = 16; o > 0; o >>= 1) v = max_nan(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}
__device__ __forceinline__ float warp_max(float v) {  // NaN-oblivious, for softmax-style row maxima
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

// Block-wide sum over blockDim.x threads (a multiple of 32, at most 1024); every thread receives
// the same result. scratch: 32 elements of shared memory; the leading barrier lets callers reuse
// it for consecutive reductions. Fixed tree: deterministic for a fixed block size.
template <class T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : T(0);
    return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : -INFINITY;
    return warp_max(v);
}

// ------------------------------------------------------------------------------ online softmax

// Online softmax statistics (softmax.cu, cross_entropy.cu): running max m and sum s of exp(x - m)
// over the values seen so far.
struct Online {
    float m, s;
};

// -inf values add nothing (and never meet -inf - -inf); NaN makes s NaN, so the row comes out NaN
// as in the CPU backend; +inf gives NaN through exp(inf - inf), as there too.
__device__ __forceinline__ void online_add(Online& o, float x) {
    if (x > o.m) {
        o.s = o.s * expf(o.m - x) + 1.0f;  // exp(-inf) = 0 covers the first element
        o.m = x;
    } else if (x != -INFINITY) {
        o.s += expf(x - o.m);  // one exp per element in the common case
    }
}

__device__ __forceinline__ Online online_merge(Online a, Online b) {
    const float m = fmaxf(a.m, b.m);  // never NaN: NaN values never become m
    if (m == -INFINITY) return Online{m, a.s + b.s};
    return Online{m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}

__device__ __forceinline__ Online warp_online(Online o) {
    for (int k = 16; k > 0; k >>= 1) {
        Online other{__shfl_xor_sync(FULL_MASK, o.m, k), __shfl_xor_sync(FULL_MASK, o.s, k)};
        o = online_merge(o, other);
    }
    // merge is symmetric up to fma contraction; broadcast lane 0 so that every lane agrees exactly.
    return Online{__shfl_sync(FULL_MASK, o.m, 0), __shfl_sync(FULL_MASK, o.s, 0)};
}

// Every thread of the block receives the row's (max, sum).
__device__ __forceinline__ Online block_online(Online o, Online* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    o = warp_online(o);
    __syncthreads();
    if (lane == 0) scratch[warp] = o;
    __syncthreads();
    o = lane < warps ? scratch[lane] : Online{-INFINITY, 0.0f};
    return warp_online(o);
}

// Records `index` in *error when it is smaller than what is there (-1 = nothing yet), so the host
// sees the first offending index whatever the order in which blocks ran.
__device__ __forceinline__ void record_error(int* error, int index) {
    int old = *reinterpret_cast<volatile int*>(error);
    while (old == -1 || index < old) {
        int seen = atomicCAS(error, old, index);
        if (seen == old) break;
        old = seen;
    }
}

}  // namespace tf
