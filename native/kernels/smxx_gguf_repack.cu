// GGUF (ggml) MXFP4 / NVFP4 blocks -> Microscale's layout on the device: codes as packed pairs per row (element 2i in the
// low nibble of byte i), scale bytes in their own array (linear or 128x4 swizzled). Codes and scales carry over unchanged
// except as ggml reads them: E2M1 -0 (code 8) becomes +0; a UE4M3 scale loses bit 7 and 0x7F reads as 0 (0xFF, which ggml
// reads as 480, becomes the NaN code 0x7F); E8M0 0xFF (rejected by ggml) stays 0xFF, NaN. Host twin: GgufQuantized.
// Memory-bound: a CTA stages kBlocksPerCta consecutive blocks through shared memory with 16-byte loads (the blocks are 17 or
// 36 bytes, so a thread's block is not 16-byte aligned in global memory), then each thread permutes one block's nibbles and
// writes its codes with 16-byte stores and its scales.
#include "common/formats.cuh"
#include "launch.h"
#include "../src/error.h"

namespace ms {
namespace {

constexpr int kThreads = 256;

// One ggml block per thread. kValues: 32 (MXFP4: 1 E8M0 + 16 bytes) or 64 (NVFP4: 4 UE4M3 + 32 bytes, 4 sub-blocks of 16).
template <int kValues>
struct Block {
  static constexpr int kScales = kValues == 32 ? 1 : 4, kSub = kValues / kScales, kBytes = kScales + kValues / 2;
  static constexpr int kStageBytes = kThreads * kBytes;  // a multiple of 16: 256 x 17 = 4352, 256 x 36 = 9216
  static_assert(kStageBytes % 16 == 0, "16-byte staging");
};

__device__ __forceinline__ uint32_t positive_zero(uint32_t code) { return code == 8 ? 0 : code; }

__device__ __forceinline__ uint8_t nv_scale(uint8_t d) { return d == 0x7F ? 0 : (d & 0x7F) == 0x7F ? 0x7F : (uint8_t)(d & 0x7F); }

template <int kValues>
__global__ void __launch_bounds__(kThreads) gguf_repack_kernel(const uint8_t* __restrict__ src, int64_t blocks, int blocks_per_row,
                                                               uint8_t* __restrict__ data, uint8_t* __restrict__ scales, int scale_cols,
                                                               int swizzled, float* decode_scales, float global_scale) {
  using B = Block<kValues>;
  __shared__ __align__(16) uint8_t stage[B::kStageBytes];
  if (decode_scales && blockIdx.x == 0 && threadIdx.x == 0) *decode_scales = global_scale;
  for (int64_t first = (int64_t)blockIdx.x * kThreads; first < blocks; first += (int64_t)gridDim.x * kThreads) {
    const int count = blocks - first < kThreads ? (int)(blocks - first) : kThreads;
    const uint8_t* tile = src + first * B::kBytes;
    const int bytes = count * B::kBytes;
    __syncthreads();  // the previous tile's reads are done
    if (reinterpret_cast<uintptr_t>(tile) % 16 == 0) {
      for (int i = threadIdx.x; i < bytes / 16; i += kThreads)
        reinterpret_cast<uint4*>(stage)[i] = reinterpret_cast<const uint4*>(tile)[i];
      for (int i = bytes / 16 * 16 + threadIdx.x; i < bytes; i += kThreads) stage[i] = tile[i];
    } else {
      for (int i = threadIdx.x; i < bytes; i += kThreads) stage[i] = tile[i];
    }
    __syncthreads();
    if (threadIdx.x >= count) continue;
    const int64_t block = first + threadIdx.x;
    const uint8_t* in = stage + threadIdx.x * B::kBytes;
    const int64_t row = block / blocks_per_row;
    const int column_block = (int)(block - row * blocks_per_row);
#pragma unroll
    for (int s = 0; s < B::kScales; ++s) {
      const uint8_t d = in[s];
      const int column = column_block * B::kScales + s;
      scales[scale_offset((int)row, column, scale_cols, swizzled != 0)] = B::kScales == 1 ? d : nv_scale(d);
    }
    // Element e of the (sub-)block sits in the low nibble of qs[e] (e < sub/2) or the high nibble of qs[e - sub/2].
    uint32_t out[kValues / 8];  // kValues / 2 bytes as words
#pragma unroll
    for (int w = 0; w < kValues / 8; ++w) out[w] = 0;
#pragma unroll
    for (int e = 0; e < kValues; ++e) {
      const int s = e / B::kSub, local = e % B::kSub, half = B::kSub / 2;
      const uint8_t q = in[B::kScales + s * half + (local < half ? local : local - half)];
      const uint32_t code = positive_zero(local < half ? q & 0xFu : q >> 4);
      out[e / 8] |= code << (4 * (e % 8));
    }
    uint4* dst = reinterpret_cast<uint4*>(data + block * (kValues / 2));
#pragma unroll
    for (int v = 0; v < kValues / 32; ++v) dst[v] = make_uint4(out[4 * v], out[4 * v + 1], out[4 * v + 2], out[4 * v + 3]);
  }
}

}  // namespace

void launch_gguf_repack(int values_per_block, const void* src, int rows, int cols, const ms_qtensor_t& dst, float global_scale, int sms,
                        cudaStream_t stream) {
  const int blocks_per_row = cols / values_per_block;
  const int64_t blocks = (int64_t)rows * blocks_per_row;
  const int scale_cols = cols / (values_per_block == 32 ? 32 : 16);
  const int64_t tiles = (blocks + kThreads - 1) / kThreads;
  const int grid = (int)(tiles < (int64_t)sms * 8 ? tiles : (int64_t)sms * 8);  // persistent-ish: 8 CTAs per SM, looping
  auto* data = static_cast<uint8_t*>(dst.data);
  auto* scales = static_cast<uint8_t*>(dst.block_scales);
  const int swizzled = dst.layout == MS_LAYOUT_SWIZZLED_128X4;
  if (swizzled) {  // the 128x4 layout's padding bytes are zero
    int64_t bytes = (int64_t)((rows + 127) / 128 * 128) * ((scale_cols + 3) / 4 * 4);
    check_cuda(cudaMemsetAsync(scales, 0, (size_t)bytes, stream), "cudaMemsetAsync(block_scales)");
  }
  if (values_per_block == 32)
    gguf_repack_kernel<32><<<grid, kThreads, 0, stream>>>(static_cast<const uint8_t*>(src), blocks, blocks_per_row, data, scales, scale_cols,
                                                          swizzled, nullptr, 1.0f);
  else
    gguf_repack_kernel<64><<<grid, kThreads, 0, stream>>>(static_cast<const uint8_t*>(src), blocks, blocks_per_row, data, scales, scale_cols,
                                                          swizzled, dst.decode_scales, global_scale);
  check_cuda(cudaGetLastError(), "gguf repack kernel launch");
}

}  // namespace ms
