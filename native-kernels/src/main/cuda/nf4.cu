// bitsandbytes NF4 dequantization: blocks of 64 elements, element 2j in the high nibble of
// packed[j], out[e] = NF4[code(e)] * absmax(e / 64). Double-quantized absmax:
// absmax(i) = nested_code[absmax_u8[i]] * nested_absmax[i / 256] + offset, computed with
// __fmul_rn/__fadd_rn so that nvcc cannot contract it into an fma: bitsandbytes and the CPU
// backend round the product before the sum, and a different absmax bit would change outputs.
// Each output is one f32 product (then rounded to nearest even for bf16), as on the CPU: results
// match the CPU backend bit for bit.
//
// Memory-bound: 0.5 byte in per element, 2 (bf16) or 4 (f32) bytes out. Each thread writes one
// 16-byte vector: 8 bf16 outputs from a 4-byte word of codes, or 4 f32 outputs from 2 bytes, so a
// warp's stores are 512 contiguous bytes. The 16 code values (and the 256 nested code values) sit
// in shared memory: lookups with divergent indices hit 16 distinct banks, no conflicts (a
// __constant__ table would serialise them). Grid-stride over units of output; any grid works.
// Requires out 16-byte and packed 4- (bf16) or 2-byte (f32) aligned for the vector path; other
// views take the scalar path (one byte, two outputs per step).
#include "tf_common.cuh"

namespace tf_nf4 {

__constant__ float CODE[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

template <bool BF16>
__device__ __forceinline__ void dequant(const uint8_t* packed, const float* absmax_f32, const uint8_t* absmax_u8,
                                        const float* nested_absmax, const float* nested_code, float offset, void* out,
                                        long long n) {
    __shared__ float code[16];
    __shared__ float ncode[256];
    const bool nested = absmax_f32 == nullptr;
    if (threadIdx.x < 16) code[threadIdx.x] = CODE[threadIdx.x];
    if (nested) {
        for (int i = threadIdx.x; i < 256; i += blockDim.x) ncode[i] = nested_code[i];
    }
    __syncthreads();

    auto scale = [&](long long block) -> float {
        if (!nested) return absmax_f32[block];
        return __fadd_rn(__fmul_rn(ncode[absmax_u8[block]], nested_absmax[block >> 8]), offset);
    };

    const long long bytes = n >> 1;
    const long long first = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
    constexpr int BPT = BF16 ? 4 : 2;  // bytes of codes per thread: 16 bytes of output either way
    const bool vec = (reinterpret_cast<uintptr_t>(packed) % BPT) == 0 && (reinterpret_cast<uintptr_t>(out) & 15) == 0;

    if (vec) {
        const long long units = bytes / BPT;  // exact: n is a multiple of 64
        for (long long u = first; u < units; u += stride) {
            // 2*BPT elements (8 or 4) never straddle a 64-element block.
            const float s = scale((u * 2 * BPT) >> 6);
            unsigned w = BF16 ? reinterpret_cast<const unsigned*>(packed)[u]
                              : reinterpret_cast<const unsigned short*>(packed)[u];
            float v[2 * BPT];
#pragma unroll
            for (int k = 0; k < BPT; k++) {  // byte k of the little-endian word is packed[u*BPT + k]
                const unsigned b = (w >> (8 * k)) & 0xffu;
                v[2 * k] = code[b >> 4] * s;
                v[2 * k + 1] = code[b & 15u] * s;
            }
            if constexpr (BF16) {
                reinterpret_cast<uint4*>(out)[u] = make_uint4(tf::pack_bf16x2(v[0], v[1]), tf::pack_bf16x2(v[2], v[3]),
                                                              tf::pack_bf16x2(v[4], v[5]), tf::pack_bf16x2(v[6], v[7]));
            } else {
                reinterpret_cast<float4*>(out)[u] = make_float4(v[0], v[1], v[2], v[3]);
            }
        }
    } else {
        for (long long j = first; j < bytes; j += stride) {
            const float s = scale(j >> 5);  // byte j holds elements 2j, 2j+1 of block 2j / 64
            const unsigned b = packed[j];
            const float hi = code[b >> 4] * s, lo = code[b & 15u] * s;
            if constexpr (BF16) {
                unsigned short* o = static_cast<unsigned short*>(out);
                o[2 * j] = static_cast<unsigned short>(tf::float_to_bf16_bits(hi));
                o[2 * j + 1] = static_cast<unsigned short>(tf::float_to_bf16_bits(lo));
            } else {
                float* o = static_cast<float*>(out);
                o[2 * j] = hi;
                o[2 * j + 1] = lo;
            }
        }
    }
}

}  // namespace tf_nf4

TF_KERNEL void tf_nf4_dequant_bf16(const uint8_t* packed, const float* absmax_f32, const uint8_t* absmax_u8,
                                   const float* nested_absmax, const float* nested_code, float offset, bf16* out,
                                   long long n) {
    tf_nf4::dequant<true>(packed, absmax_f32, absmax_u8, nested_absmax, nested_code, offset, out, n);
}

TF_KERNEL void tf_nf4_dequant_f32(const uint8_t* packed, const float* absmax_f32, const uint8_t* absmax_u8,
                                  const float* nested_absmax, const float* nested_code, float offset, float* out,
                                  long long n) {
    tf_nf4::dequant<false>(packed, absmax_f32, absmax_u8, nested_absmax, nested_code, offset, out, n);
}
