// RMSNorm forward and backward. Row kernels: one row per block (grid = rows, TF_ROW_THREADS
// threads). Each pass over the row uses 16-byte vectors when x, the weight and the output share
// an alignment phase (always, for 16-byte aligned tensors with H % 4 == 0). The second read of
// a row hits L1/L2: a row of H = 4096 floats is 16 KB.
#include "tf_common.cuh"

// rstd[r] = 1/sqrt(mean(x[r]^2) + eps); out = x * rstd * w. out may alias x: the row's sum is
// complete (block barrier) before the first write, and each element is read before it is written.
TF_KERNEL void tf_rmsnorm_fwd_f32(const float* x, const float* w, float eps, float* out, float* rstd, int rows, int H) {
    __shared__ float scratch[32];
    const int r = blockIdx.x;
    if (r >= rows) return;
    const float* xr = x + static_cast<long long>(r) * H;
    float* outr = out + static_cast<long long>(r) * H;
    const int head = tf::common_head(tf::phase(xr, 4), tf::phase(w, 4), tf::phase(outr, 4));

    float ss = 0.0f;
    tf::row_loop(
        H, head, [&](long long j) { ss += xr[j] * xr[j]; },
        [&](long long j) {
            float4 v = tf::load4(xr + j);
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        });
    ss = tf::block_sum(ss, scratch);
    const float inv = 1.0f / sqrtf(ss / H + eps);  // IEEE sqrt and division, not rsqrtf (2 ulp)
    if (threadIdx.x == 0) rstd[r] = inv;

    tf::row_loop(
        H, head, [&](long long j) { outr[j] = xr[j] * inv * w[j]; },
        [&](long long j) {
            float4 v = tf::load4(xr + j), g = tf::load4(w + j);
            tf::store4(outr + j, make_float4(v.x * inv * g.x, v.y * inv * g.y, v.z * inv * g.z, v.w * inv * g.w));
        });
}

// dx = rstd * w * dout - x * c with c = rstd^3 * sum(w * dout * x) / H (the header's formula,
// expanded). dx may alias dout: the dot product is complete before the first write.
TF_KERNEL void tf_rmsnorm_bwd_f32(const float* dout, const float* x, const float* w, const float* rstd, float* dx,
                                  int rows, int H) {
    __shared__ float scratch[32];
    const int r = blockIdx.x;
    if (r >= rows) return;
    const long long base = static_cast<long long>(r) * H;
    const float *gr = dout + base, *xr = x + base;
    float* dxr = dx + base;
    const int head = tf::common_head(tf::phase(gr, 4), tf::phase(xr, 4), tf::phase(w, 4), tf::phase(dxr, 4));

    float dot = 0.0f;
    tf::row_loop(
        H, head, [&](long long j) { dot += gr[j] * w[j] * xr[j]; },
        [&](long long j) {
            float4 g = tf::load4(gr + j), v = tf::load4(xr + j), k = tf::load4(w + j);
            dot += g.x * k.x * v.x + g.y * k.y * v.y + g.z * k.z * v.z + g.w * k.w * v.w;
        });
    dot = tf::block_sum(dot, scratch);
    const float inv = rstd[r];
    const float c = static_cast<float>(static_cast<double>(inv) * inv * inv * dot / H);  // once per row

    tf::row_loop(
        H, head, [&](long long j) { dxr[j] = gr[j] * w[j] * inv - xr[j] * c; },
        [&](long long j) {
            float4 g = tf::load4(gr + j), v = tf::load4(xr + j), k = tf::load4(w + j);
            tf::store4(dxr + j, make_float4(g.x * k.x * inv - v.x * c, g.y * k.y * inv - v.y * c,
                                            g.z * k.z * inv - v.z * c, g.w * k.w * inv - v.w * c));
        });
}

// dw[j] += sum_r dout[r, j] * x[r, j] * rstd[r]: one thread per column, rows in order (so the
// result is deterministic), grid = ceil(H / TF_EW_THREADS). A warp reads 128 contiguous bytes per
// row; ROW_UNROLL rows' loads are issued before their adds so enough bytes are in flight.
TF_KERNEL void tf_rmsnorm_dweight_f32(const float* dout, const float* x, const float* rstd, float* dw, int rows,
                                      int H) {
    constexpr int ROW_UNROLL = 8;
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= H) return;
    float acc = 0.0f;
    int r = 0;
    for (; r + ROW_UNROLL <= rows; r += ROW_UNROLL) {
        float g[ROW_UNROLL], v[ROW_UNROLL], s[ROW_UNROLL];
#pragma unroll
        for (int u = 0; u < ROW_UNROLL; u++) {
            const long long at = static_cast<long long>(r + u) * H + j;
            g[u] = dout[at];
            v[u] = x[at];
            s[u] = rstd[r + u];
        }
#pragma unroll
        for (int u = 0; u < ROW_UNROLL; u++) acc += g[u] * v[u] * s[u];
    }
    for (; r < rows; r++) {
        const long long at = static_cast<long long>(r) * H + j;
        acc += dout[at] * x[at] * rstd[r];
    }
    dw[j] += acc;
}
