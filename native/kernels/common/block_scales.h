// Block scales as the Blackwell block-scaled tensor-core families read them: the swizzled 128x4 layout (NUMERICS.md s3),
// whose 512-byte atoms hold 128 rows x 4 consecutive K blocks. Host-side sizes here; smxx_scale_swizzle.cu swizzles linear
// scales into a workspace.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cuda_runtime_api.h>
#include "microscale.h"

namespace ms {

constexpr int kAtomBytes = 512;  // 128 rows x 4 block scales

inline int block_of(int format) { return format == MS_FMT_NVFP4 ? 16 : 32; }
inline int padded_k(int format, int k) { const int b = block_of(format); return (k + b - 1) / b * b; }
inline int scale_blocks(int format, int k) { return padded_k(format, k) / block_of(format); }
// Atoms along K of one 128-row tile: the padded K blocks / 4, rounded up.
inline int atoms_per_tile_row(int format, int k) { return (scale_blocks(format, k) + 3) / 4; }
inline bool has_block_scales(int format) { return format == MS_FMT_MXFP4 || format == MS_FMT_NVFP4 || format == MS_FMT_MXFP8; }
// Bytes of a [rows, k] operand's scales in the swizzled layout (rows padded to 128).
inline size_t swizzled_bytes(int format, int rows, int k) { return (size_t)((rows + 127) / 128) * atoms_per_tile_row(format, k) * kAtomBytes; }
// Workspace bytes swizzled_scales needs for an operand of this format and scale layout (256-byte multiples): 0 when its
// scales are swizzled already.
inline size_t swizzled_scales_workspace(int format, int layout, int rows, int k) {
  return has_block_scales(format) && layout == MS_LAYOUT_LINEAR ? (swizzled_bytes(format, rows, k) + 255) / 256 * 256 : 0;
}
inline size_t swizzled_scales_workspace(const ms_qtensor_t& t, int rows, int k) { return swizzled_scales_workspace(t.format, t.layout, rows, k); }
// ... and for both operands of a GEMM.
inline size_t swizzled_scales_workspace(const ms_gemm_desc_t& d) {
  return swizzled_scales_workspace(d.a_format, d.a_layout, d.m, d.k) + swizzled_scales_workspace(d.b_format, d.b_layout, d.n, d.k);
}

// The Blackwell FP4 families' pairs: 0 MXFP4 x MXFP4, 1 NVFP4 x NVFP4, 2 W4A8 = E4M3 activations (MXFP8, or FP8 per-token /
// per-tensor, whose decode scale goes to the epilogue) x MXFP4 weights; -1 for any other pair.
inline int blackwell_fp4_pair(const ms_gemm_desc_t& d) {
  if (d.a_format == MS_FMT_MXFP4 && d.b_format == MS_FMT_MXFP4) return 0;
  if (d.a_format == MS_FMT_NVFP4 && d.b_format == MS_FMT_NVFP4) return 1;
  const bool fp8_a = d.a_format == MS_FMT_MXFP8 || d.a_format == MS_FMT_FP8_ROW || d.a_format == MS_FMT_FP8_TENSOR;
  return fp8_a && d.a_element == MS_ELEM_E4M3 && d.b_format == MS_FMT_MXFP4 ? 2 : -1;
}

// The operand's scales in the swizzled layout: in place, or swizzled into `free` on `stream` (then advanced past them);
// null for formats without block scales.
const uint8_t* swizzled_scales(const ms_qtensor_t& t, int rows, int k, uint8_t*& free, cudaStream_t stream);

// Bytes of one row of A as both Blackwell families load it: E4M3 for W4A8 (K, padded for MXFP8), packed FP4 otherwise.
inline int blackwell_a_row_bytes(const ms_gemm_desc_t& d) {
  if (blackwell_fp4_pair(d) != 2) return padded_k(d.a_format, d.k) / 2;
  return d.a_format == MS_FMT_MXFP8 ? padded_k(MS_FMT_MXFP8, d.k) : d.k;
}

// What both Blackwell FP4 families' kernels take beside their operands' data: sizes, swizzled block scales (null: unit scales,
// W4A8 with FP8 per-token / per-tensor A), decode scales, alpha, bias and the output.
struct BlackwellGemmParams {
  int m, n, k;
  const uint8_t* sfa;
  const uint8_t* sfb;
  int atoms_per_tile_row;  // atoms along K of one 128-row tile: padded K blocks / 4
  float alpha;
  const float* scale_a;  // NVFP4 g / FP8 per-tensor g [1], or FP8 per-token [m]; null: 1
  int a_per_row;
  const float* scale_b;  // NVFP4 g [1]; null: 1
  const float* bias;     // [n] or null
  void* out;
  int out_dtype;
};

// Fills them for a GEMM, swizzling linear block scales into `free` (advanced past them).
inline BlackwellGemmParams blackwell_gemm_params(const ms_gemm_desc_t& d, const ms_gemm_operands_t& ops, uint8_t*& free, cudaStream_t stream) {
  BlackwellGemmParams p{};
  p.m = d.m; p.n = d.n; p.k = d.k;
  p.sfa = swizzled_scales(ops.a, d.m, d.k, free, stream);
  p.sfb = swizzled_scales(ops.b, d.n, d.k, free, stream);
  p.atoms_per_tile_row = atoms_per_tile_row(d.b_format, d.k);
  p.alpha = ops.alpha;
  const bool a_decode = d.a_format == MS_FMT_NVFP4 || d.a_format == MS_FMT_FP8_TENSOR || d.a_format == MS_FMT_FP8_ROW;
  p.scale_a = a_decode ? ops.a.decode_scales : nullptr;
  p.a_per_row = d.a_format == MS_FMT_FP8_ROW;
  p.scale_b = d.b_format == MS_FMT_NVFP4 ? ops.b.decode_scales : nullptr;
  p.bias = d.has_bias ? ops.bias : nullptr;
  p.out = ops.out;
  p.out_dtype = d.out_dtype;
  return p;
}

}  // namespace ms
