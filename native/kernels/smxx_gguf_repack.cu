// GGUF (ggml) MXFP4 / NVFP4 blocks -> Microscale's layout on the device: codes as packed pairs per row (element 2i in the
// low nibble of byte i), scale bytes in their own array (linear or 128x4 swizzled). Codes and scales carry over unchanged
// except as ggml reads them: E2M1 -0 (code 8) becomes +0; a UE4M3 scale loses bit 7 and 0x7F reads as 0 (0xFF, which ggml
// reads as 480, becomes the NaN code 0x7F); E8M0 0xFF (rejected by ggml) stays 0xFF, NaN. Host twin: GgufQuantized.
// Memory-bound: a CTA stages kTileBlocks consecutive blocks (two per thread) through shared memory with 16-byte loads (the blocks are 17 or
// 36 bytes, so a thread's block is not 16-byte aligned in global memory), then each thread permutes its blocks' nibbles with
// word operations (byte_perm pairs; a carry trick finds -0) and writes its codes with 16-byte stores and its scales.
#include "common/formats.cuh"
#include "launch.h"
#include "../src/error.h"

namespace ms {
namespace {

constexpr int kThreads = 256;
constexpr int kBlocksPerThread = 2;  // per tile: each thread's loads (2-5 x 16 bytes) all in flight before its shared stores
constexpr int kTileBlocks = kThreads * kBlocksPerThread;

// One ggml block. kValues: 32 (MXFP4: 1 E8M0 + 16 bytes) or 64 (NVFP4: 4 UE4M3 + 32 bytes, 4 sub-blocks of 16).
template <int kValues>
struct Block {
  static constexpr int kScales = kValues == 32 ? 1 : 4, kSub = kValues / kScales, kBytes = kScales + kValues / 2;
  static constexpr int kStageBytes = kTileBlocks * kBytes;  // a multiple of 16: 512 x 17 = 8704, 512 x 36 = 18432
  static constexpr int kVectorsPerThread = (kStageBytes / 16 + kThreads - 1) / kThreads;
  static_assert(kStageBytes % 16 == 0, "16-byte staging");
};

__device__ __forceinline__ uint8_t nv_scale(uint8_t d) { return d == 0x7F ? 0 : (d & 0x7F) == 0x7F ? 0x7F : (uint8_t)(d & 0x7F); }

// Eight 4-bit values, one per byte of a and b (low nibbles), paired into one word: byte i = v[2i] | v[2i+1] << 4.
__device__ __forceinline__ uint32_t pair_nibbles(uint32_t a, uint32_t b) {
  return __byte_perm(a | (a >> 4), b | (b >> 4), 0x6420);  // bytes 0 and 2 of each carry the pairs
}

// Every nibble equal to 8 (E2M1 -0) becomes 0 (+0), as ggml decodes it. 0 < low three bits <= 7 carries into bit 3 when
// 7 is added, so a nibble is -0 exactly when its bit 3 is set and that carry is not.
__device__ __forceinline__ uint32_t positive_zeros(uint32_t x) {
  const uint32_t nonzero_low = ((x & 0x77777777u) + 0x77777777u) & 0x88888888u;
  return x ^ (x & 0x88888888u & ~nonzero_low);
}

// Eight ggml bytes (words u0, u1) to our layout: their low nibbles, paired, into low and their high nibbles into high.
__device__ __forceinline__ void split_halves(uint32_t u0, uint32_t u1, uint32_t& low, uint32_t& high) {
  low = positive_zeros(pair_nibbles(u0 & 0x0F0F0F0Fu, u1 & 0x0F0F0F0Fu));
  high = positive_zeros(pair_nibbles((u0 >> 4) & 0x0F0F0F0Fu, (u1 >> 4) & 0x0F0F0F0Fu));
}

template <int kValues>
__global__ void __launch_bounds__(kThreads) gguf_repack_kernel(const uint8_t* __restrict__ src, int64_t blocks, int blocks_per_row,
                                                               uint8_t* __restrict__ data, uint8_t* __restrict__ scales, int scale_cols,
                                                               int swizzled, float* decode_scales, float global_scale) {
  using B = Block<kValues>;
  __shared__ __align__(16) uint8_t stage[B::kStageBytes + 16];  // + 16: the last MXFP4 block's unaligned word reads
  if (decode_scales && blockIdx.x == 0 && threadIdx.x == 0) *decode_scales = global_scale;
  for (int64_t first = (int64_t)blockIdx.x * kTileBlocks; first < blocks; first += (int64_t)gridDim.x * kTileBlocks) {
    const int count = blocks - first < kTileBlocks ? (int)(blocks - first) : kTileBlocks;
    const uint8_t* tile = src + first * B::kBytes;
    const int bytes = count * B::kBytes;
    __syncthreads();  // the previous tile's reads are done
    if (reinterpret_cast<uintptr_t>(tile) % 16 == 0) {
      // Every load of this thread before any shared store, so they are all in flight at once; read once: evict first.
      const int vectors = bytes / 16;
      uint4 v[B::kVectorsPerThread];
#pragma unroll
      for (int j = 0; j < B::kVectorsPerThread; ++j) {
        const int i = threadIdx.x + j * kThreads;
        if (i < vectors) v[j] = __ldcs(reinterpret_cast<const uint4*>(tile) + i);
      }
#pragma unroll
      for (int j = 0; j < B::kVectorsPerThread; ++j) {
        const int i = threadIdx.x + j * kThreads;
        if (i < vectors) reinterpret_cast<uint4*>(stage)[i] = v[j];
      }
      for (int i = vectors * 16 + threadIdx.x; i < bytes; i += kThreads) stage[i] = tile[i];
    } else {
      for (int i = threadIdx.x; i < bytes; i += kThreads) stage[i] = tile[i];
    }
    __syncthreads();
#pragma unroll 1
    for (int local = threadIdx.x; local < count; local += kThreads) {  // consecutive threads, consecutive blocks
      const int64_t block = first + local;
      const uint8_t* in = stage + local * B::kBytes;
      const int64_t row = block / blocks_per_row;
      const int column_block = (int)(block - row * blocks_per_row);
  #pragma unroll
      for (int s = 0; s < B::kScales; ++s) {
        const uint8_t d = in[s];
        const int column = column_block * B::kScales + s;
        scales[scale_offset((int)row, column, scale_cols, swizzled != 0)] = B::kScales == 1 ? d : nv_scale(d);
      }
      uint32_t out[kValues / 8];  // our codes: kValues / 2 bytes as words
      if constexpr (kValues == 32) {
        // qs: 16 bytes from byte 1 of the 17-byte block, unaligned: funnel-shift five aligned words. Value j is the low nibble
        // of qs[j] and value j + 16 the high nibble, so the low nibbles of the four words are values 0..15.
        const int offset = local * B::kBytes + 1, shift = (offset & 3) * 8;
        const uint32_t* aligned = reinterpret_cast<const uint32_t*>(stage + (offset & ~3));
        uint32_t w[5], q[4];
  #pragma unroll
        for (int i = 0; i < 5; ++i) w[i] = aligned[i];
  #pragma unroll
        for (int i = 0; i < 4; ++i) q[i] = __funnelshift_r(w[i], w[i + 1], shift);
        split_halves(q[0], q[1], out[0], out[2]);  // values 0..7 and 16..23
        split_halves(q[2], q[3], out[1], out[3]);  // values 8..15 and 24..31
      } else {
        // 36-byte blocks stay word-aligned: word 0 holds the four scales, words 1 + 2s and 2 + 2s sub-block s (16 values, j
        // and j + 8 sharing byte j).
        const uint32_t* words = reinterpret_cast<const uint32_t*>(in);
  #pragma unroll
        for (int s = 0; s < 4; ++s) split_halves(words[1 + 2 * s], words[2 + 2 * s], out[2 * s], out[2 * s + 1]);
      }
      uint4* dst = reinterpret_cast<uint4*>(data + block * (kValues / 2));
  #pragma unroll
      for (int v = 0; v < kValues / 32; ++v) __stcs(dst + v, make_uint4(out[4 * v], out[4 * v + 1], out[4 * v + 2], out[4 * v + 3]));
    }
  }
}

}  // namespace

void launch_gguf_repack(int values_per_block, const void* src, int rows, int cols, const ms_qtensor_t& dst, float global_scale, int sms,
                        cudaStream_t stream) {
  const int blocks_per_row = cols / values_per_block;
  const int64_t blocks = (int64_t)rows * blocks_per_row;
  const int scale_cols = cols / (values_per_block == 32 ? 32 : 16);
  const int64_t tiles = (blocks + kTileBlocks - 1) / kTileBlocks;
  const int grid = (int)(tiles < (int64_t)sms * 8 ? tiles : (int64_t)sms * 8);  // persistent-ish: looping over tiles
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
