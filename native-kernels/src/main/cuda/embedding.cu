// Embedding lookup (a row gather) and its scatter-add backward. One block per token t
// (grid = T, TF_ROW_THREADS threads): the block copies one row of H values with 16-byte vectors
// when the table row and the output row share an alignment phase.
#include "tf_common.cuh"

namespace tf_embedding {

// Returns the table row of token t, or -1 after recording t in *error and zeroing out[t, :].
__device__ __forceinline__ long long checked_id(const int* ids, float* out, int t, int H, int V, int* error) {
    int id = ids[t];
    if (id >= 0 && id < V) return id;
    if (threadIdx.x == 0) tf::record_error(error, t);
    float* row = out + static_cast<long long>(t) * H;
    for (int j = threadIdx.x; j < H; j += blockDim.x) row[j] = 0.0f;
    return -1;
}

}  // namespace tf_embedding

TF_KERNEL void tf_embedding_fwd_f32(const float* table, const int* ids, float* out, int T, int H, int V, int* error) {
    const int t = blockIdx.x;
    if (t >= T) return;
    long long id = tf_embedding::checked_id(ids, out, t, H, V, error);
    if (id < 0) return;
    const float* src = table + id * H;
    float* dst = out + static_cast<long long>(t) * H;
    tf::row_loop(
        H, tf::common_head(tf::phase(src, 4), tf::phase(dst, 4)), [&](long long j) { dst[j] = src[j]; },
        [&](long long j) { tf::store4(dst + j, tf::load4(src + j)); });
}

TF_KERNEL void tf_embedding_fwd_bf16(const bf16* table, const int* ids, float* out, int T, int H, int V, int* error) {
    const int t = blockIdx.x;
    if (t >= T) return;
    long long id = tf_embedding::checked_id(ids, out, t, H, V, error);
    if (id < 0) return;
    const unsigned short* src = reinterpret_cast<const unsigned short*>(table) + id * H;
    float* dst = out + static_cast<long long>(t) * H;
    tf::row_loop(
        H, tf::common_head(tf::phase(src, 2), tf::phase(dst, 4)),
        [&](long long j) { dst[j] = tf::bf16_bits_to_float(src[j]); },
        [&](long long j) { tf::store4(dst + j, tf::load4_16<true>(src + j)); });
}

// dTable[ids[t], :] += dOut[t, :]. Float atomics: the order in which tokens sharing an id are added
// varies from run to run (the header's rule); ids were checked by the forward.
TF_KERNEL void tf_embedding_bwd_f32(const float* dout, const int* ids, float* dtable, int T, int H, int V) {
    const int t = blockIdx.x;
    if (t >= T) return;
    const int id = ids[t];
    if (id < 0 || id >= V) return;  // never for ids the forward accepted; guards memory anyway
    const float* src = dout + static_cast<long long>(t) * H;
    float* dst = dtable + static_cast<long long>(id) * H;
    tf::row_loop(
        H, tf::common_head(tf::phase(src, 4)), [&](long long j) { atomicAdd(dst + j, src[j]); },
        [&](long long j) {
            float4 g = tf::load4(src + j);
            atomicAdd(dst + j, g.x);
            atomicAdd(dst + j + 1, g.y);
            atomicAdd(dst + j + 2, g.z);
            atomicAdd(dst + j + 3, g.w);
        });
}
