// Linear block scales -> the swizzled 128x4 layout, for the block-scaled tensor-core families (common/block_scales.h).
#include <algorithm>
#include "common/block_scales.h"
#include "../src/error.h"

namespace ms {

namespace {

// Linear [rows, blocks] scales -> the swizzled 128x4 layout (rows padded to 128, blocks to 4, padding zero): one thread per
// 32-bit word (one row's 4 blocks).
__global__ void swizzle_scales_kernel(const uint8_t* __restrict__ src, int rows, int blocks, int atoms_per_tile_row, int64_t words,
                                      uint32_t* __restrict__ dst) {
  for (int64_t w = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; w < words; w += (int64_t)gridDim.x * blockDim.x) {
    const int64_t atom = w / 128;
    const int in_atom = (int)(w % 128);
    const int row = (int)(atom / atoms_per_tile_row) * 128 + in_atom / 4 + 32 * (in_atom % 4);
    const int block0 = (int)(atom % atoms_per_tile_row) * 4;
    uint32_t word = 0;
    if (row < rows)
      for (int q = 0; q < 4; ++q)
        if (block0 + q < blocks) word |= (uint32_t)src[(int64_t)row * blocks + block0 + q] << (8 * q);
    dst[w] = word;
  }
}

}  // namespace

const uint8_t* swizzled_scales(const ms_qtensor_t& t, int rows, int k, uint8_t*& free, cudaStream_t stream) {
  if (!has_block_scales(t.format)) return nullptr;
  if (t.layout == MS_LAYOUT_SWIZZLED_128X4) return static_cast<const uint8_t*>(t.block_scales);
  const int64_t words = (int64_t)swizzled_bytes(t.format, rows, k) / 4;
  uint32_t* dst = reinterpret_cast<uint32_t*>(free);
  const int grid = (int)std::min<int64_t>((words + 255) / 256, 4096);
  swizzle_scales_kernel<<<grid, 256, 0, stream>>>(static_cast<const uint8_t*>(t.block_scales), rows, scale_blocks(t.format, k),
                                                  atoms_per_tile_row(t.format, k), words, dst);
  check_cuda(cudaGetLastError(), "scale swizzle launch");
  free += swizzled_scales_workspace(t, rows, k);
  return reinterpret_cast<const uint8_t*>(dst);
}

}  // namespace ms
