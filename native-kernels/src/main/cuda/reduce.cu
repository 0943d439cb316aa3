// Whole-tensor reductions in two deterministic stages: TF_REDUCE_BLOCKS blocks of TF_EW_THREADS
// threads each reduce a fixed grid-stride share into one partial per block (fixed butterfly tree),
// then one block folds the partials (fixed order). Same input, same grid -> same bits.
// Sums accumulate in double, as the CPU reference does.
#include "tf_common.cuh"

namespace tf_reduce {

template <bool SQUARES>
__device__ __forceinline__ void sum_partial(const float* x, long long n, double* partial) {
    __shared__ double scratch[32];
    double acc = 0.0;
    // Widen each element before adding (and squaring): the CPU reference's arithmetic.
    auto add = [&](float f) {
        double v = f;
        acc += SQUARES ? v * v : v;
    };
    tf::grid_loop(
        n, tf::common_head(tf::phase(x, 4)), [&](long long i) { add(x[i]); },
        [&](long long i) {
            float4 v = tf::load4(x + i);
            add(v.x);
            add(v.y);
            add(v.z);
            add(v.w);
        });
    acc = tf::block_sum(acc, scratch);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

}  // namespace tf_reduce

TF_KERNEL void tf_sum_partial_f32(const float* x, long long n, double* partial) {
    tf_reduce::sum_partial<false>(x, n, partial);
}

TF_KERNEL void tf_sumsq_partial_f32(const float* x, long long n, double* partial) {
    tf_reduce::sum_partial<true>(x, n, partial);
}

// One block: thread t folds partials t, t + blockDim, ... in order, then the block tree.
TF_KERNEL void tf_sum_final_f64(const double* partial, int parts, double* result) {
    __shared__ double scratch[32];
    double acc = 0.0;
    for (int i = threadIdx.x; i < parts; i += blockDim.x) acc += partial[i];
    acc = tf::block_sum(acc, scratch);
    if (threadIdx.x == 0) result[0] = acc;
}

// max: NaN anywhere makes the result NaN; an empty tensor gives -infinity (as the CPU backend).
TF_KERNEL void tf_max_partial_f32(const float* x, long long n, float* partial) {
    __shared__ float scratch[32];
    float m = -INFINITY;
    tf::grid_loop(
        n, tf::common_head(tf::phase(x, 4)), [&](long long i) { m = tf::max_nan(m, x[i]); },
        [&](long long i) {
            float4 v = tf::load4(x + i);
            m = tf::max_nan(tf::max_nan(m, v.x), tf::max_nan(v.y, tf::max_nan(v.z, v.w)));
        });
    m = tf::warp_max_nan(m);
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = m;
    __syncthreads();
    if (threadIdx.x < 32) {
        m = threadIdx.x < (blockDim.x >> 5) ? scratch[threadIdx.x] : -INFINITY;
        m = tf::warp_max_nan(m);
        if (threadIdx.x == 0) partial[blockIdx.x] = m;
    }
}

TF_KERNEL void tf_max_final_f32(const float* partial, int parts, float* result) {
    __shared__ float scratch[32];
    float m = -INFINITY;
    for (int i = threadIdx.x; i < parts; i += blockDim.x) m = tf::max_nan(m, partial[i]);
    m = tf::warp_max_nan(m);
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = m;
    __syncthreads();
    if (threadIdx.x < 32) {
        m = threadIdx.x < (blockDim.x >> 5) ? scratch[threadIdx.x] : -INFINITY;
        m = tf::warp_max_nan(m);
        if (threadIdx.x == 0) result[0] = m;
    }
}
