// SwiGLU gate: out = silu(g) * u with silu(g) = g / (1 + exp(-g)) = g * sigmoid(g).
// Backward: silu'(g) = sigmoid(g) * (1 + g * (1 - sigmoid(g))). Elementwise, grid-stride, 16-byte
// vectors when the operands share an alignment phase. Outputs may alias inputs (every input of an
// element is loaded before its outputs are stored). expf, not __expf: the kernels are bound by
// memory, so the accurate exponential costs nothing measurable.
#include "tf_common.cuh"

namespace tf_swiglu {

__device__ __forceinline__ float fwd(float g, float u) { return g / (1.0f + expf(-g)) * u; }

// Writes dgate and dup for one element.
__device__ __forceinline__ void bwd(float d, float g, float u, float& dgate, float& dup) {
    const float sig = 1.0f / (1.0f + expf(-g));
    dgate = d * u * (sig * (1.0f + g * (1.0f - sig)));
    dup = d * g * sig;
}

}  // namespace tf_swiglu

TF_KERNEL void tf_swiglu_fwd_f32(const float* gate, const float* up, float* out, long long n) {
    using tf_swiglu::fwd;
    tf::grid_loop(
        n, tf::common_head(tf::phase(gate, 4), tf::phase(up, 4), tf::phase(out, 4)),
        [&](long long i) { out[i] = fwd(gate[i], up[i]); },
        [&](long long i) {
            float4 g = tf::load4(gate + i), u = tf::load4(up + i);
            tf::store4(out + i, make_float4(fwd(g.x, u.x), fwd(g.y, u.y), fwd(g.z, u.z), fwd(g.w, u.w)));
        });
}

TF_KERNEL void tf_swiglu_bwd_f32(const float* dout, const float* gate, const float* up, float* dgate, float* dup,
                                 long long n) {
    using tf_swiglu::bwd;
    tf::grid_loop(
        n,
        tf::common_head(tf::phase(dout, 4), tf::phase(gate, 4), tf::phase(up, 4), tf::phase(dgate, 4),
                        tf::phase(dup, 4)),
        [&](long long i) {
            float dg, du;
            bwd(dout[i], gate[i], up[i], dg, du);
            dgate[i] = dg;
            dup[i] = du;
        },
        [&](long long i) {
            float4 d = tf::load4(dout + i), g = tf::load4(gate + i), u = tf::load4(up + i), dg, du;
            bwd(d.x, g.x, u.x, dg.x, du.x);
            bwd(d.y, g.y, u.y, dg.y, du.y);
            bwd(d.z, g.z, u.z, dg.z, du.z);
            bwd(d.w, g.w, u.w, dg.w, du.w);
            tf::store4(dgate + i, dg);
            tf::store4(dup + i, du);
        });
}
