// Elementwise f32 arithmetic and dtype casts. Grid-stride loops (any grid works); 16-byte vector
// loads/stores where the operands share an alignment phase (tf::grid_loop), scalar otherwise.
// out may alias an input: each element is read before it is written, by the same thread.
#include "tf_common.cuh"

TF_KERNEL void tf_add_f32(const float* a, const float* b, float* out, long long n) {
    tf::grid_loop(
        n, tf::common_head(tf::phase(a, 4), tf::phase(b, 4), tf::phase(out, 4)),
        [&](long long i) { out[i] = a[i] + b[i]; },
        [&](long long i) {
            float4 x = tf::load4(a + i), y = tf::load4(b + i);
            tf::store4(out + i, make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w));
        });
}

TF_KERNEL void tf_mul_f32(const float* a, const float* b, float* out, long long n) {
    tf::grid_loop(
        n, tf::common_head(tf::phase(a, 4), tf::phase(b, 4), tf::phase(out, 4)),
        [&](long long i) { out[i] = a[i] * b[i]; },
        [&](long long i) {
            float4 x = tf::load4(a + i), y = tf::load4(b + i);
            tf::store4(out + i, make_float4(x.x * y.x, x.y * y.y, x.z * y.z, x.w * y.w));
        });
}

TF_KERNEL void tf_scale_f32(const float* a, float s, float* out, long long n) {
    tf::grid_loop(
        n, tf::common_head(tf::phase(a, 4), tf::phase(out, 4)),
        [&](long long i) { out[i] = a[i] * s; },
        [&](long long i) {
            float4 x = tf::load4(a + i);
            tf::store4(out + i, make_float4(x.x * s, x.y * s, x.z * s, x.w * s));
        });
}

TF_KERNEL void tf_fill_f32(float* out, float value, long long n) {
    tf::grid_loop(
        n, tf::common_head(tf::phase(out, 4)),
        [&](long long i) { out[i] = value; },
        [&](long long i) { tf::store4(out + i, make_float4(value, value, value, value)); });
}

// ------------------------------------------------------------------------------ casts
// Every conversion goes through f32 and rounds to nearest even. Vectors: 4 f32 (16 B) <-> 4
// 16-bit values (8 B); both sides must share the phase (element index mod 4).
namespace tf_cast {

// 16-bit -> f32
template <bool BF16>
__device__ __forceinline__ void from16(const void* src, float* dst, long long n) {
    const unsigned short* s = static_cast<const unsigned short*>(src);
    tf::grid_loop(
        n, tf::common_head(tf::phase(src, 2), tf::phase(dst, 4)),
        [&](long long i) { dst[i] = BF16 ? tf::bf16_bits_to_float(s[i]) : tf::f16_bits_to_float(s[i]); },
        [&](long long i) { tf::store4(dst + i, tf::load4_16<BF16>(s + i)); });
}

// f32 -> 16-bit
template <bool BF16>
__device__ __forceinline__ void to16(const float* src, void* dst, long long n) {
    unsigned short* d = static_cast<unsigned short*>(dst);
    tf::grid_loop(
        n, tf::common_head(tf::phase(src, 4), tf::phase(dst, 2)),
        [&](long long i) {
            d[i] = static_cast<unsigned short>(BF16 ? tf::float_to_bf16_bits(src[i]) : tf::float_to_f16_bits(src[i]));
        },
        [&](long long i) { tf::store4_16<BF16>(d + i, tf::load4(src + i)); });
}

// 16-bit -> 16-bit of the other kind, through f32.
template <bool FROM_BF16>
__device__ __forceinline__ void cross16(const void* src, void* dst, long long n) {
    const unsigned short* s = static_cast<const unsigned short*>(src);
    unsigned short* d = static_cast<unsigned short*>(dst);
    tf::grid_loop(
        n, tf::common_head(tf::phase(src, 2), tf::phase(dst, 2)),
        [&](long long i) {
            d[i] = static_cast<unsigned short>(FROM_BF16 ? tf::float_to_f16_bits(tf::bf16_bits_to_float(s[i]))
                                                         : tf::float_to_bf16_bits(tf::f16_bits_to_float(s[i])));
        },
        [&](long long i) { tf::store4_16<!FROM_BF16>(d + i, tf::load4_16<FROM_BF16>(s + i)); });
}

}  // namespace tf_cast

TF_KERNEL void tf_cast_f32_bf16(const float* src, bf16* dst, long long n) { tf_cast::to16<true>(src, dst, n); }
TF_KERNEL void tf_cast_bf16_f32(const bf16* src, float* dst, long long n) { tf_cast::from16<true>(src, dst, n); }
TF_KERNEL void tf_cast_f32_f16(const float* src, f16* dst, long long n) { tf_cast::to16<false>(src, dst, n); }
TF_KERNEL void tf_cast_f16_f32(const f16* src, float* dst, long long n) { tf_cast::from16<false>(src, dst, n); }
TF_KERNEL void tf_cast_bf16_f16(const bf16* src, f16* dst, long long n) { tf_cast::cross16<true>(src, dst, n); }
TF_KERNEL void tf_cast_f16_bf16(const f16* src, bf16* dst, long long n) { tf_cast::cross16<false>(src, dst, n); }
