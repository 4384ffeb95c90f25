// Layout conversion of quantized tensors (ms_relayout): codes and block scales from any layout to any other that applies
// to the format (linear, swizzled 128x4 scales, the decode GEMM's tiles of 16 x 128: common/formats.cuh). A one-time
// prepacking step for weights, so the kernels favour simplicity: one thread per destination byte of codes and per block
// scale, reading through the source view, after the destination (padding included) is zeroed.
#include <algorithm>
#include "common/block_scales.h"
#include "common/formats.cuh"
#include "launch.h"
#include "../src/error.h"

namespace ms {

namespace {

// Tiles of 16 rows x 128 values the tensor takes in the tiled layout.
size_t tiled_tiles(const ms_qtensor_t& t) { return (size_t)((t.rows + 15) / 16) * tiled_col_chunks(t.cols); }

__global__ void relayout_codes_kernel(QuantView src, QuantView dst, int rows, uint8_t* __restrict__ out) {
  const int per_byte = 8 / src.bits, row_bytes = src.padded_cols / per_byte;
  const int64_t total = (int64_t)rows * row_bytes;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int row = (int)(i / row_bytes), col = (int)(i % row_bytes) * per_byte;
    uint32_t byte = 0;
    for (int v = 0; v < per_byte; ++v) byte |= code_at(src, row, col + v) << (src.bits * v);
    out[code_offset(dst, row, col)] = (uint8_t)byte;
  }
}

__global__ void relayout_scales_kernel(QuantView src, QuantView dst, int rows, uint8_t* __restrict__ out) {
  const int64_t total = (int64_t)rows * src.scale_cols;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int row = (int)(i / src.scale_cols), block = (int)(i % src.scale_cols);
    out[scale_index(dst, row, block)] = (uint8_t)scale_code_at(src, row, block);
  }
}

int grid_for(int64_t items) { return (int)std::min<int64_t>((items + 255) / 256, 65535 * 8); }

}  // namespace

size_t qtensor_data_bytes(const ms_qtensor_t& t) {
  const QuantView q = quant_view_of(t, t.cols);
  if (q.tiled) return tiled_tiles(t) * 1024;
  return (size_t)t.rows * q.padded_cols * q.bits / 8;
}

size_t qtensor_scale_bytes(const ms_qtensor_t& t) {
  const QuantView q = quant_view_of(t, t.cols);
  if (!q.block) return 0;
  if (q.tiled) return tiled_tiles(t) * (16 * 128 / q.block);
  if (q.swizzled) return swizzled_bytes(t.format, t.rows, t.cols);
  return (size_t)t.rows * q.scale_cols;
}

void launch_relayout(const ms_qtensor_t& src, const ms_qtensor_t& dst, cudaStream_t stream) {
  const QuantView s = quant_view_of(src, src.cols), d = quant_view_of(dst, dst.cols);
  uint8_t* data = static_cast<uint8_t*>(dst.data);
  check_cuda(cudaMemsetAsync(data, 0, qtensor_data_bytes(dst), stream), "cudaMemsetAsync(dst.data)");
  relayout_codes_kernel<<<grid_for((int64_t)src.rows * s.padded_cols * s.bits / 8), 256, 0, stream>>>(s, d, src.rows, data);
  check_cuda(cudaGetLastError(), "relayout launch");
  if (!s.block) return;
  uint8_t* scales = static_cast<uint8_t*>(dst.block_scales);
  check_cuda(cudaMemsetAsync(scales, 0, qtensor_scale_bytes(dst), stream), "cudaMemsetAsync(dst.block_scales)");
  relayout_scales_kernel<<<grid_for((int64_t)src.rows * s.scale_cols), 256, 0, stream>>>(s, d, src.rows, scales);
  check_cuda(cudaGetLastError(), "relayout launch");
}

}  // namespace ms
