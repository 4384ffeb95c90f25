// What a quantize / rotate / check kernel reads, resolved from a QuantizeLaunch: shared by the generic kernels
// (smxx_quantize.cu) and the BF16 activation quantizer (smxx_quantize_bf16.cu).
#pragma once
#include <cmath>
#include "segment.cuh"
#include "stochastic.cuh"
#include "../launch.h"

namespace ms {

struct QuantizeParams {
  SegmentParams seg;
  int format, kind, rule, swizzled, block, scale_cols, per_row;
  int stochastic;  // NUMERICS.md s7 element rounding with random bytes keyed by seed
  uint64_t seed;
  uint8_t* data;
  uint8_t* block_scales;
  float* decode_scales;
  int* amax;
  unsigned long long* first_index;
  float* rotated;
};

// The finite amax (binary32 bits) and non-finite flag of a block held by `lanes` neighbouring lanes, E values each.
template <int E>
__device__ __forceinline__ void block_amax(const float (&v)[E], int lanes, uint32_t& amax, bool& non_finite) {
  amax = 0;
  non_finite = false;
#pragma unroll
  for (int e = 0; e < E; ++e) {
    uint32_t bits = abs_bits(v[e]);
    if (!is_finite_bits(bits)) non_finite = true;
    else if (bits > amax) amax = bits;
  }
  for (int o = 1; o < lanes; o <<= 1) {
    uint32_t other = __shfl_xor_sync(0xFFFFFFFFu, amax, o);
    amax = other > amax ? other : amax;
    non_finite |= __shfl_xor_sync(0xFFFFFFFFu, (int)non_finite, o) != 0;
  }
}

// A block's scale code (NUMERICS.md s3, s6) and what its elements are encoded with: MX multiplies by `factor` (2^-e), NVFP4
// divides by it (s x g, g = the tensor's decode scale); factor 0 means every code is +0 (zero or non-finite block).
__device__ __forceinline__ uint32_t block_scale(const QuantizeParams& p, uint32_t amax, bool non_finite, float& factor) {
  factor = 0.0f;
  if (p.format == kFmtNvfp4) {
    const float g = p.decode_scales[0];
    const uint32_t code = non_finite ? kUE4M3Nan : nv_block_scale(u2f(amax), g);
    if (!non_finite && code != 0) factor = __fmul_rn(from_e4m3(code), g);
    return code;
  }
  if (non_finite) return kE8M0Nan;
  if (amax == 0) return 0;
  const int e = mx_exponent(u2f(amax), p.rule, p.kind);
  factor = pow2(-e);
  return (uint32_t)(e + 127);
}

// Round-to-nearest or stochastic code of the scaled value x, element `index` of the padded destination.
__device__ __forceinline__ uint32_t encode_element(const QuantizeParams& p, float x, int64_t index) {
  return p.stochastic ? sr_encode(x, random_byte(p.seed, (uint64_t)index), p.kind) : encode(x, p.kind);
}

inline int block_size_of(int format) { return format == kFmtNvfp4 ? 16 : is_mx_format(format) ? 32 : 0; }

// `segment`: values per warp segment (0: the generic kernel's, the smallest multiple of g and of the block that fills a warp).
inline QuantizeParams params_for(const QuantizeLaunch& q, int segment = 0) {
  QuantizeParams p{};
  int block = block_size_of(q.format);
  int width = q.hadamard > block ? q.hadamard : (block > 0 ? block : 32);  // a multiple of g and of the block
  p.seg.rows = q.rows;
  p.seg.cols = q.cols;
  p.seg.padded_cols = q.padded_cols;
  p.seg.src_dtype = q.src_dtype;
  p.seg.g = q.hadamard;
  p.seg.signs = q.signs;
  p.seg.c = q.hadamard ? (float)(1.0 / std::sqrt((double)q.hadamard)) : 1.0f;
  p.seg.seg = segment ? segment : width > 32 ? width : 32;
  p.seg.segs_per_row = (q.padded_cols + p.seg.seg - 1) / p.seg.seg;
  p.format = q.format;
  p.kind = q.kind;
  p.rule = q.rule;
  p.swizzled = q.swizzled;
  p.block = block;
  p.scale_cols = q.scale_cols;
  p.per_row = q.format == kFmtFp8Row;
  p.data = q.data;
  p.block_scales = q.block_scales;
  p.decode_scales = q.decode_scales;
  p.amax = q.amax_workspace;
  p.stochastic = q.stochastic;
  p.seed = q.seed;
  return p;
}

}  // namespace ms
