// Layout conversion of quantized tensors (ms_relayout): codes and block scales from any layout to any other that applies
// to the format (linear, swizzled 128x4 scales, the decode GEMM's tiles of 16 x 128: common/formats.cuh). A one-time
// prepacking step for weights, so the kernels favour simplicity: one thread per destination byte of codes and per block
// scale, reading through the source view, after the destination (padding included) is zeroed.
#include <algorithm>
#include "common/formats.cuh"
#include "launch.h"
#include "../src/error.h"

namespace ms {

namespace {

int64_t padded_rows(const ms_qtensor_t& t) {
  if (t.layout == MS_LAYOUT_TILED_16X128) return (t.rows + 15) / 16 * 16;
  return t.rows;
}

// Byte of dst's codes that holds (row, col) (col the first value of the byte).
__device__ int64_t code_byte(const QuantView& q, int row, int col) {
  if (q.tiled) return tiled_code_offset(row, col, tiled_col_chunks(q.cols));
  return ((int64_t)row * q.padded_cols + col) * q.bits / 8;
}

__global__ void relayout_codes_kernel(QuantView src, QuantView dst, int rows, uint8_t* __restrict__ out) {
  const int per_byte = 8 / src.bits, row_bytes = src.padded_cols / per_byte;
  const int64_t total = (int64_t)rows * row_bytes;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int row = (int)(i / row_bytes), col = (int)(i % row_bytes) * per_byte;
    uint32_t byte = 0;
    for (int v = 0; v < per_byte; ++v) byte |= code_at(src, row, col + v) << (src.bits * v);
    out[code_byte(dst, row, col)] = (uint8_t)byte;
  }
}

__global__ void relayout_scales_kernel(QuantView src, QuantView dst, int rows, uint8_t* __restrict__ out) {
  const int64_t total = (int64_t)rows * src.scale_cols;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int row = (int)(i / src.scale_cols), block = (int)(i % src.scale_cols);
    const int64_t at = dst.tiled ? tiled_scale_offset(row, block, dst.block, tiled_col_chunks(dst.cols)) : scale_offset(row, block, dst.scale_cols, dst.swizzled);
    out[at] = (uint8_t)scale_code_at(src, row, block);
  }
}

int grid_for(int64_t items) { return (int)std::min<int64_t>((items + 255) / 256, 65535 * 8); }

}  // namespace

size_t qtensor_data_bytes(const ms_qtensor_t& t) {
  const QuantView q = quant_view_of(t, t.cols);
  if (q.tiled) return (size_t)(padded_rows(t) / 16) * tiled_col_chunks(t.cols) * 1024;
  return (size_t)t.rows * q.padded_cols * q.bits / 8;
}

size_t qtensor_scale_bytes(const ms_qtensor_t& t) {
  const QuantView q = quant_view_of(t, t.cols);
  if (!q.block) return 0;
  if (q.tiled) return (size_t)(padded_rows(t) / 16) * tiled_col_chunks(t.cols) * (16 * 128 / q.block);
  if (q.swizzled) return (size_t)((t.rows + 127) / 128 * 128) * ((q.scale_cols + 3) / 4 * 4);
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
