// Chunked cross-entropy on precomputed logits. The host computes one vocabulary chunk of logits
// [T, Vc] at a time (cuBLAS) and calls tf_ce_stats_f32 on each chunk (pass 1), then, when gradients
// are wanted, recomputes each chunk and calls tf_ce_grad_f32 (pass 2); tf_ce_loss_f32 folds the
// per-row statistics into the summed loss. Nothing of size T x V ever exists.
//
// Stats and grad are row kernels (grid = T, TF_ROW_THREADS threads) reading each chunk row once
// with 16-byte vectors where the row is 16-byte aligned (always when Vc % 4 == 0).
#include "tf_common.cuh"

namespace tf_ce {
constexpr int IGNORE = -100;
}

// Pass 1: folds the chunk into the running (row_max, row_sum) of each non-ignored row (online
// logsumexp: one read of the chunk), and picks the target's logit when it falls in the chunk.
TF_KERNEL void tf_ce_stats_f32(const float* logits, const int* targets, int T, int Vc, int v0, float* row_max,
                               float* row_sum, float* target_logit) {
    __shared__ tf::Online scratch[32];
    const int t = blockIdx.x;
    if (t >= T) return;
    const int y = targets[t];
    if (y == tf_ce::IGNORE) return;  // ignored rows keep their initial statistics, as on the CPU
    const float* row = logits + static_cast<long long>(t) * Vc;

    tf::Online o{-INFINITY, 0.0f};
    tf::row_loop(
        Vc, tf::common_head(tf::phase(row, 4)), [&](long long j) { tf::online_add(o, row[j]); },
        [&](long long j) {
            float4 v = tf::load4(row + j);
            tf::online_add(o, v.x);
            tf::online_add(o, v.y);
            tf::online_add(o, v.z);
            tf::online_add(o, v.w);
        });
    o = tf::block_online(o, scratch);
    if (threadIdx.x == 0) {
        tf::Online run = tf::online_merge(tf::Online{row_max[t], row_sum[t]}, o);
        row_max[t] = run.m;
        row_sum[t] = run.s;
        if (y >= v0 && y - v0 < Vc) target_logit[t] = row[y - v0];
    }
}

// Pass 2: logits <- grad_scale * (exp(logit - lse) - onehot(target)) in place, lse = row_max +
// log(row_sum) over the whole vocabulary; all zero for an ignored row. Every element is written
// once, by one thread (the target's -grad_scale is applied by the thread that owns it).
TF_KERNEL void tf_ce_grad_f32(float* logits, const int* targets, const float* row_max, const float* row_sum,
                              float grad_scale, int T, int Vc, int v0) {
    const int t = blockIdx.x;
    if (t >= T) return;
    const int y = targets[t];
    float* row = logits + static_cast<long long>(t) * Vc;
    const int head = tf::common_head(tf::phase(row, 4));
    if (y == tf_ce::IGNORE) {
        tf::row_loop(
            Vc, head, [&](long long j) { row[j] = 0.0f; },
            [&](long long j) { tf::store4(row + j, make_float4(0.0f, 0.0f, 0.0f, 0.0f)); });
        return;
    }
    const float lse = row_max[t] + logf(row_sum[t]);
    const long long target = static_cast<long long>(y) - v0;  // outside [0, Vc) when not in this chunk
    auto grad = [&](float logit, long long j) {
        float g = expf(logit - lse) * grad_scale;
        return j == target ? g - grad_scale : g;
    };
    tf::row_loop(
        Vc, head, [&](long long j) { row[j] = grad(row[j], j); },
        [&](long long j) {
            float4 v = tf::load4(row + j);
            tf::store4(row + j, make_float4(grad(v.x, j), grad(v.y, j + 1), grad(v.z, j + 2), grad(v.w, j + 3)));
        });
}

// loss[0] = sum over non-ignored rows of (log(row_sum) + row_max - target_logit) in double;
// count[0] = their number. One block. The rows are cut into PARTS contiguous ranges summed in row
// order, and the range sums are added in range order by one thread: a fixed association whatever
// the block size, so the same statistics always give the same bits.
TF_KERNEL void tf_ce_loss_f32(const float* row_max, const float* row_sum, const float* target_logit, const int* targets,
                              int T, double* loss, long long* count) {
    constexpr int PARTS = TF_EW_THREADS;
    __shared__ double part_loss[PARTS];
    __shared__ long long part_count[PARTS];
    const int per_part = (T + PARTS - 1) / PARTS;
    for (int p = threadIdx.x; p < PARTS; p += blockDim.x) {
        const int begin = min(T, p * per_part), end = min(T, begin + per_part);
        double acc = 0.0;
        long long n = 0;
        for (int t = begin; t < end; t++) {
            if (targets[t] == tf_ce::IGNORE) continue;
            acc += (log(static_cast<double>(row_sum[t])) + static_cast<double>(row_max[t])) -
                   static_cast<double>(target_logit[t]);
            n++;
        }
        part_loss[p] = acc;
        part_count[p] = n;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double acc = 0.0;
        long long n = 0;
        for (int p = 0; p < PARTS; p++) {
            acc += part_loss[p];
            n += part_count[p];
        }
        loss[0] = acc;
        count[0] = n;
    }
}
