// Softmax over the last dimension. Row kernels: one row of n values per block (grid = rows,
// TF_ROW_THREADS threads), 16-byte vectors when the row pointers share an alignment phase.
//
// Forward in two passes over x instead of three: each thread keeps an online (max, sum of
// exp(x - max)) pair, the block merges the pairs, then the second pass writes exp(x - max) / sum.
// out may alias x: the second pass reads each element before the same thread overwrites it.
#include "tf_common.cuh"

TF_KERNEL void tf_softmax_fwd_f32(const float* x, float* out, int rows, int n) {
    __shared__ tf::Online scratch[32];
    const int r = blockIdx.x;
    if (r >= rows) return;
    const float* xr = x + static_cast<long long>(r) * n;
    float* outr = out + static_cast<long long>(r) * n;
    const int head = tf::common_head(tf::phase(xr, 4), tf::phase(outr, 4));

    tf::Online o{-INFINITY, 0.0f};
    tf::row_loop(
        n, head, [&](long long j) { tf::online_add(o, xr[j]); },
        [&](long long j) {
            float4 v = tf::load4(xr + j);
            tf::online_add(o, v.x);
            tf::online_add(o, v.y);
            tf::online_add(o, v.z);
            tf::online_add(o, v.w);
        });
    o = tf::block_online(o, scratch);
    const float m = o.m, inv = 1.0f / o.s;
    tf::row_loop(
        n, head, [&](long long j) { outr[j] = expf(xr[j] - m) * inv; },
        [&](long long j) {
            float4 v = tf::load4(xr + j);
            tf::store4(outr + j, make_float4(expf(v.x - m) * inv, expf(v.y - m) * inv, expf(v.z - m) * inv,
                                             expf(v.w - m) * inv));
        });
}

// dx = y * (dout - sum(dout * y)) per row. dx may alias dout or y (the dot product is complete
// before the first write; each element is read before it is written).
TF_KERNEL void tf_softmax_bwd_f32(const float* dout, const float* y, float* dx, int rows, int n) {
    __shared__ float scratch[32];
    const int r = blockIdx.x;
    if (r >= rows) return;
    const long long base = static_cast<long long>(r) * n;
    const float *gr = dout + base, *yr = y + base;
    float* dxr = dx + base;
    const int head = tf::common_head(tf::phase(gr, 4), tf::phase(yr, 4), tf::phase(dxr, 4));

    float dot = 0.0f;
    tf::row_loop(
        n, head, [&](long long j) { dot += gr[j] * yr[j]; },
        [&](long long j) {
            float4 g = tf::load4(gr + j), v = tf::load4(yr + j);
            dot += g.x * v.x + g.y * v.y + g.z * v.z + g.w * v.w;
        });
    dot = tf::block_sum(dot, scratch);
    tf::row_loop(
        n, head, [&](long long j) { dxr[j] = yr[j] * (gr[j] - dot); },
        [&](long long j) {
            float4 g = tf::load4(gr + j), v = tf::load4(yr + j);
            tf::store4(dxr + j, make_float4(v.x * (g.x - dot), v.y * (g.y - dot), v.z * (g.z - dot), v.w * (g.w - dot)));
        });
}
