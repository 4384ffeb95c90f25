// What a quantize / rotate / check kernel reads, resolved from a QuantizeLaunch: shared by the generic kernels
// (smxx_quantize.cu) and the BF16 activation quantizer (smxx_quantize_bf16.cu).
#pragma once
#include <cmath>
#include "segment.cuh"
#include "../launch.h"

namespace ms {

struct QuantizeParams {
  SegmentParams seg;
  int format, kind, rule, swizzled, block, scale_cols, per_row;
  uint8_t* data;
  uint8_t* block_scales;
  float* decode_scales;
  int* amax;
  unsigned long long* first_index;
  float* rotated;
};

inline int block_size_of(int format) { return format == kFmtNvfp4 ? 16 : (format == kFmtMxfp4 || format == kFmtMxfp8) ? 32 : 0; }

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
  return p;
}

}  // namespace ms
