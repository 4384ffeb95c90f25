// Device helpers every tensor-core GEMM family shares (sm90_gemm_kernel.cuh, sm120_fp4_gemm_nt.cu): the tile order of a
// grid (groups of M tiles for L2 reuse) and the store of an output pair in FP32, BF16 or FP16.
#pragma once
#include <cstdint>
#include "microscale.h"

namespace ms {

namespace {

// Tile `tile` of a tiles_m x tiles_n grid, visited in groups of kGroupM M-tiles: consecutive tiles share B tiles (and, within
// a group, A tiles) while they are in L2.
template <int kGroupM>
__device__ __forceinline__ void tile_coords(int tile, int tiles_m, int tiles_n, int& tm, int& tn) {
  int in_group = kGroupM * tiles_n;
  int group = tile / in_group, first_m = group * kGroupM;
  int rows = min(tiles_m - first_m, kGroupM);
  int local = tile - group * in_group;
  tm = first_m + local % rows;
  tn = local / rows;
}

// Two FP32 values to a packed pair of BF16 or FP16 (RNE; the first value in the low half).
__device__ __forceinline__ uint32_t pack_half2(float lo, float hi, int out_dtype) {
  uint32_t r;
  if (out_dtype == MS_DTYPE_BF16) asm("cvt.rn.bf16x2.f32 %0, %2, %1;" : "=r"(r) : "f"(lo), "f"(hi));
  else asm("cvt.rn.f16x2.f32 %0, %2, %1;" : "=r"(r) : "f"(lo), "f"(hi));
  return r;
}

// Columns col and col + 1 of row `row` of the [m, n] output p.out (of p.out_dtype); col + 1 is dropped past n.
template <class Params>
__device__ __forceinline__ void store_pair(const Params& p, int row, int col, float v0, float v1) {
  int64_t index = (int64_t)row * p.n + col;
  bool both = col + 1 < p.n, aligned = (p.n & 1) == 0;
  if (p.out_dtype == MS_DTYPE_F32) {
    float* out = static_cast<float*>(p.out);
    if (both && aligned) *reinterpret_cast<float2*>(out + index) = make_float2(v0, v1);
    else { out[index] = v0; if (both) out[index + 1] = v1; }
  } else {
    uint16_t* out = static_cast<uint16_t*>(p.out);
    uint32_t pair = pack_half2(v0, v1, p.out_dtype);
    if (both && aligned) *reinterpret_cast<uint32_t*>(out + index) = pair;
    else { out[index] = (uint16_t)pair; if (both) out[index + 1] = (uint16_t)(pair >> 16); }
  }
}

}  // namespace

}  // namespace ms
