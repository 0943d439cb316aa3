// Rotary position embedding, Hugging Face rotate_half (dimension j pairs with j + d/2).
//
// Work item = one row r and W consecutive pairs j..j+W-1; the item computes its W cos/sin once
// and applies them to every head of the row (cos/sin depend on the position and j only, so
// sincosf runs once per row and pair instead of once per head). W = 4 (float4 loads of x[j..j+3]
// and x[j+d/2..j+d/2+3]) when d/2 % 4 == 0 and the tensors are 16-byte aligned, so every row and
// head offset is too; W = 1 otherwise. Consecutive threads take consecutive pairs of a row: a warp
// reads contiguous 256-byte runs of each head. Items are grid-strided, so any grid works (the host
// sizes it for rows*heads*(d/2) elements; surplus threads exit).
//
// angle = f32(position * inv_freq[j]) exactly as the CPU reference; sincosf is the accurate
// version (2 ulp over the whole range), never __sinf/__cosf, whose error grows with |angle| and
// angles reach 8e4 radians at long context.
#include "tf_common.cuh"

namespace tf_rope {

// Rotates `heads` heads of d values starting at x (and writes them at out; out may equal x: each
// pair is loaded before it is stored, by the same thread).
template <int W>
__device__ __forceinline__ void rotate_heads(const float* x, float* out, int heads, int d, int j, const float (&c)[W],
                                             const float (&s)[W]) {
    const int half = d >> 1;
#pragma unroll 4
    for (int h = 0; h < heads; h++) {
        const long long lo = static_cast<long long>(h) * d + j, hi = lo + half;
        if constexpr (W == 4) {
            float4 a = tf::load4(x + lo), b = tf::load4(x + hi);
            tf::store4(out + lo, make_float4(a.x * c[0] - b.x * s[0], a.y * c[1] - b.y * s[1], a.z * c[2] - b.z * s[2],
                                             a.w * c[3] - b.w * s[3]));
            tf::store4(out + hi, make_float4(b.x * c[0] + a.x * s[0], b.y * c[1] + a.y * s[1], b.z * c[2] + a.z * s[2],
                                             b.w * c[3] + a.w * s[3]));
        } else {
            float a = x[lo], b = x[hi];
            out[lo] = a * c[0] - b * s[0];
            out[hi] = b * c[0] + a * s[0];
        }
    }
}

template <int W>
__device__ __forceinline__ void angles(int position, const float* inv_freq, int j, float attn_scale, int dir,
                                       float (&c)[W], float (&s)[W]) {
    const float p = static_cast<float>(position);
#pragma unroll
    for (int u = 0; u < W; u++) {
        float sn, cs;
        sincosf(p * inv_freq[j + u], &sn, &cs);
        c[u] = cs * attn_scale;
        s[u] = dir < 0 ? -(sn * attn_scale) : sn * attn_scale;
    }
}

// Rotates, for every row, `heads_a` heads of a (into out_a) and `heads_b` heads of b in place
// (heads_b = 0 for the single-tensor kernel).
template <int W>
__device__ __forceinline__ void rope_rows(const float* a, float* out_a, int heads_a, float* b, int heads_b,
                                          const float* inv_freq, const int* positions, float attn_scale, int rows,
                                          int d, int dir) {
    const int groups = (d >> 1) / W;
    const long long items = static_cast<long long>(rows) * groups;
    const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
    for (long long item = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; item < items; item += stride) {
        const int r = static_cast<int>(item / groups), j = static_cast<int>(item % groups) * W;
        float c[W], s[W];
        angles<W>(positions[r], inv_freq, j, attn_scale, dir, c, s);
        const long long ra = static_cast<long long>(r) * heads_a * d;
        rotate_heads<W>(a + ra, out_a + ra, heads_a, d, j, c, s);
        if (heads_b > 0) {
            const long long rb = static_cast<long long>(r) * heads_b * d;
            rotate_heads<W>(b + rb, b + rb, heads_b, d, j, c, s);
        }
    }
}

__device__ __forceinline__ bool vectorisable(int d, const void* p, const void* q) {
    return ((d >> 1) & 3) == 0 && (reinterpret_cast<uintptr_t>(p) & 15) == 0 && (reinterpret_cast<uintptr_t>(q) & 15) == 0;
}

}  // namespace tf_rope

TF_KERNEL void tf_rope_f32(const float* x, const float* inv_freq, const int* positions, float attn_scale, float* out,
                           int rows, int heads, int d, int dir) {
    if (tf_rope::vectorisable(d, x, out)) {
        tf_rope::rope_rows<4>(x, out, heads, nullptr, 0, inv_freq, positions, attn_scale, rows, d, dir);
    } else {
        tf_rope::rope_rows<1>(x, out, heads, nullptr, 0, inv_freq, positions, attn_scale, rows, d, dir);
    }
}

TF_KERNEL void tf_rope_qk_f32(float* q, float* k, const float* inv_freq, const int* positions, float attn_scale,
                              int rows, int hq, int hkv, int d, int dir) {
    if (tf_rope::vectorisable(d, q, k)) {
        tf_rope::rope_rows<4>(q, q, hq, k, hkv, inv_freq, positions, attn_scale, rows, d, dir);
    } else {
        tf_rope::rope_rows<1>(q, q, hq, k, hkv, inv_freq, positions, attn_scale, rows, d, dir);
    }
}
