// Warp-cooperative access to a row segment, shared by the quantize and Hadamard kernels: one warp loads S = 32 x E
// consecutive values of a row (lane L holds values L*E .. L*E+E-1) and, when a rotation is asked for, applies the block
// Hadamard transform of NUMERICS.md s4 with warp shuffles, in the bit-exact order: signs, stages s = 1, 2, 4, ... (pairs
// i and i^s: the lower index gets a + b, the higher a - b), then x c.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include "formats.cuh"

namespace ms {

struct SegmentParams {
  int rows, cols, padded_cols;
  int src_dtype;          // 0 f32, 1 bf16, 2 f16
  int g;                  // Hadamard block, 0 for none
  const float* signs;     // g signs (device), or null for all +1
  float c;                // 1/sqrt(g) rounded once
  int seg;                // S, values per warp segment
  int segs_per_row;
};

__device__ __forceinline__ float load_source(const void* src, int dtype, int64_t index) {
  if (dtype == 0) return static_cast<const float*>(src)[index];
  uint32_t bits = static_cast<const uint16_t*>(src)[index];
  return dtype == 1 ? from_bf16(bits) : from_f16(bits);
}

// The rotation of a loaded segment (lane L holds values L*E .. L*E+E-1; `in_k`: this lane's values lie inside K, whose
// g-blocks are rotated; the zero padding past K never is).
template <int E>
__device__ __forceinline__ void rotate_segment(const SegmentParams& p, int lane, bool in_k, float (&v)[E]) {
  float r[E];
#pragma unroll
  for (int e = 0; e < E; ++e) r[e] = v[e] * (p.signs ? p.signs[(lane * E + e) % p.g] : 1.0f);
#pragma unroll
  for (int s = 1; s < E; s <<= 1)
#pragma unroll
    for (int e = 0; e < E; ++e)
      if ((e & s) == 0) {
        float a = r[e], b = r[e + s];
        r[e] = __fadd_rn(a, b);
        r[e + s] = __fsub_rn(a, b);
      }
  for (int s = E; s < p.g; s <<= 1) {
    int lane_mask = s / E;
    bool lower = (lane & lane_mask) == 0;
#pragma unroll
    for (int e = 0; e < E; ++e) {
      float other = __shfl_xor_sync(0xFFFFFFFFu, r[e], lane_mask);
      r[e] = lower ? __fadd_rn(r[e], other) : __fsub_rn(other, r[e]);
    }
  }
  if (in_k) {
#pragma unroll
    for (int e = 0; e < E; ++e) v[e] = __fmul_rn(r[e], p.c);
  }
}

template <int E>
__device__ __forceinline__ void load_segment(const SegmentParams& p, const void* src, int row, int first, int lane, float (&v)[E]) {
  const int base = first + lane * E;
#pragma unroll
  for (int e = 0; e < E; ++e) {
    int col = base + e;
    v[e] = col < p.cols ? load_source(src, p.src_dtype, (int64_t)row * p.cols + col) : 0.0f;
  }
  // A g-block lies wholly inside K or wholly in the zero padding, which is never rotated.
  if (p.g != 0) rotate_segment<E>(p, lane, base < p.cols, v);
}

}  // namespace ms
