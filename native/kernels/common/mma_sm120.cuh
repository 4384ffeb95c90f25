// The GeForce Blackwell (sm_120a) block-scaled warp MMAs of the sm120 FP4 family, and their software emulation on sm_90,
// where the same tile code runs on an H100 / H200 for the tests (no Blackwell GPU is at hand; see NOTES-sm120.md).
// PTX ISA 9.0 s9.7.14.5.14 (mma ... block_scale), fragment layouts s9.7.14.5.10/11; design study
// shared/design/BLACKWELL-KERNELS.md s1 and s5. g = lane / 4, t = lane % 4 throughout.
//
//  kMxf4: m16n8k64 kind::mxf4nvf4 scale_vec::2X, E2M1 x E2M1, UE8M0 per 32 (MXFP4 x MXFP4)
//  kNvf4: m16n8k64 kind::mxf4nvf4 scale_vec::4X, E2M1 x E2M1, UE4M3 per 16 (NVFP4 x NVFP4)
//  kW4A8: m16n8k32 kind::mxf8f6f4 scale_vec::1X, E4M3 x E2M1, UE8M0 per 32 (FP8 activations x MXFP4 weights); the E2M1
//         operand sits one value per byte in bits [5:2] (the instruction's padded container)
// Fragments (element j of a register = nibble j for E2M1 k64, byte j for k32):
//  k64: a0 = A[g][8t+j] a1 = A[g+8][8t+j] a2 = A[g][32+8t+j] a3 = A[g+8][32+8t+j]; b0 = B[8t+j][g] b1 = B[32+8t+j][g]
//  k32: a0 = A[g][4t+j] a1 = A[g+8][4t+j] a2 = A[g][16+4t+j] a3 = A[g+8][16+4t+j]; b0 = B[4t+j][g] b1 = B[16+4t+j][g]
//  D:   d0 = (g, 2t) d1 = (g, 2t+1) d2 = (g+8, 2t) d3 = (g+8, 2t+1)
// Scale registers, with thread-id-a = thread-id-b = 0 (what CUTLASS and QuTLASS use): row m of A takes its scales from lane
// 4 (m % 8) + m / 8, column n of B from lane 4 n; byte q of the register scales K block q (4X: four blocks of 16; 2X: two
// blocks of 32 from byte-id; 1X: the one block of 32 at byte-id). The lane map for A comes from CUTLASS's SFALayout (the PTX
// shows it only in a figure): the emulation shares that assumption, and only a Blackwell run of the Gpu tests can confirm it.
#pragma once
#include <cstdint>
#include "formats.cuh"

#if defined(__CUDA_ARCH__) && (defined(__CUDA_ARCH_FEAT_SM120_ALL) || defined(__CUDA_ARCH_FEAT_SM121_ALL))
#define MS_SM120_MMA_NATIVE 1
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 900
#define MS_SM120_MMA_EMULATED 1
#endif
#if defined(MS_SM120_MMA_NATIVE) || defined(MS_SM120_MMA_EMULATED)
#define MS_SM120_TILES 1
#endif

namespace ms::sm120 {

enum Kind { kMxf4, kNvf4, kW4A8 };

#ifdef MS_SM120_MMA_EMULATED
// The value of a scale byte: UE8M0 2^(code - 127) (0xFF NaN), UE4M3 a 7-bit unsigned E4M3 (0x7F NaN). Double: two UE8M0
// scales multiply to 2^-254 .. 2^254, outside binary32.
__device__ __forceinline__ double scale_value(uint32_t code, bool ue4m3) {
  if (ue4m3) return (double)from_e4m3(code & 0x7Fu);
  return code == 0xFFu ? __longlong_as_double(0x7FF8000000000000ll) : ldexp(1.0, (int)code - 127);
}

// What the instruction computes, from the same per-thread operands: D = C + sum_q SFA[m][q] SFB[q][n] sum_{k in q} A B.
// Each block's sum of products is exact in binary32 (E2M1 x E2M1 and E4M3 x E2M1 products and their sums over 16 or 32
// values); the scaled block sums accumulate in binary64 in block order and D is rounded once (the PTX leaves the hardware's
// order and intermediate precision unspecified: at least single precision). All 32 lanes must call it together.
template <int kKind, int kByteId>
__device__ void mma_emulated(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], uint32_t sfa, uint32_t sfb) {
  constexpr unsigned kAll = 0xFFFFFFFFu;
  constexpr bool kK64 = kKind != kW4A8;
  constexpr int kBlocks = kKind == kNvf4 ? 4 : kKind == kMxf4 ? 2 : 1, kBlockK = (kK64 ? 64 : 32) / kBlocks;
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  // Rows g and g + 8 of A and columns 2t, 2t + 1 of B, whole K of the instruction: word w holds k = kPerWord w ...
  uint32_t rows[2][8], cols[2][8];
#pragma unroll
  for (int q = 0; q < 4; ++q) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      rows[r][q] = __shfl_sync(kAll, a[r], 4 * g + q);
      rows[r][4 + q] = __shfl_sync(kAll, a[2 + r], 4 * g + q);
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      cols[h][q] = __shfl_sync(kAll, b[0], 4 * (2 * t + h) + q);
      cols[h][4 + q] = __shfl_sync(kAll, b[1], 4 * (2 * t + h) + q);
    }
  }
  uint32_t row_scales[2], col_scales[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) row_scales[r] = __shfl_sync(kAll, sfa, 4 * g + r);        // row g + 8r
#pragma unroll
  for (int h = 0; h < 2; ++h) col_scales[h] = __shfl_sync(kAll, sfb, 4 * (2 * t + h));  // column 2t + h
  auto element = [](const uint32_t (&words)[8], int k, bool fp8) -> float {
    if (!kK64 && fp8) return from_e4m3((words[k / 4] >> (8 * (k % 4))) & 0xFFu);
    if (!kK64) return from_e2m1((words[k / 4] >> (8 * (k % 4) + 2)) & 0xFu);  // the padded container's bits [5:2]
    return from_e2m1((words[k / 8] >> (4 * (k % 8))) & 0xFu);
  };
#pragma unroll 1
  for (int r = 0; r < 2; ++r)
#pragma unroll 1
    for (int h = 0; h < 2; ++h) {
      double acc = d[2 * r + h];
#pragma unroll 1
      for (int q = 0; q < kBlocks; ++q) {
        float part = 0.0f;
        for (int k = q * kBlockK; k < (q + 1) * kBlockK; ++k) part += element(rows[r], k, true) * element(cols[h], k, false);
        const int byte = kKind == kNvf4 ? q : kByteId + q;
        acc += (double)part * scale_value((row_scales[r] >> (8 * byte)) & 0xFFu, kKind == kNvf4) *
               scale_value((col_scales[h] >> (8 * byte)) & 0xFFu, kKind == kNvf4);
      }
      d[2 * r + h] = (float)acc;
    }
}
#endif

// D += A.B with block scales; kByteId: 0 for 4X, 0 or 2 for 2X (which half of the scale word), 0..3 for 1X.
template <int kKind, int kByteId>
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], uint32_t sfa, uint32_t sfb) {
#if defined(MS_SM120_MMA_NATIVE)
  constexpr uint16_t kBid = kByteId, kTid = 0;
#define MS_MMA_OPERANDS                                                                                                  \
  "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3}, {%10}, {%11, %12}, {%13}, {%14, %15};"                \
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])                                                                   \
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(sfa), "h"(kBid), "h"(kTid), "r"(sfb), "h"(kBid), \
        "h"(kTid)
  if constexpr (kKind == kMxf4)
    asm volatile("mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4.block_scale.scale_vec::2X.f32.e2m1.e2m1.f32.ue8m0 " MS_MMA_OPERANDS);
  else if constexpr (kKind == kNvf4)
    asm volatile("mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4.block_scale.scale_vec::4X.f32.e2m1.e2m1.f32.ue4m3 " MS_MMA_OPERANDS);
  else
    asm volatile("mma.sync.aligned.m16n8k32.row.col.kind::mxf8f6f4.block_scale.scale_vec::1X.f32.e4m3.e2m1.f32.ue8m0 " MS_MMA_OPERANDS);
#undef MS_MMA_OPERANDS
#elif defined(MS_SM120_MMA_EMULATED)
  mma_emulated<kKind, kByteId>(d, a, b, sfa, sfb);
#endif
}

}  // namespace ms::sm120
