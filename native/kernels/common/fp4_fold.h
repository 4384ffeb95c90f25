// Exact FP4 -> FP8 folding (issue 7, ZeroQuant-FP): an MXFP4 block value v x 2^(e - 127) (v an E2M1 value, e its block's
// E8M0 code) is v x 2^d x 2^(base - 127) with d = e - base, and v x 2^d is exact in E4M3 for every E2M1 v when d is in
// [-8, 6] (0.5 x 2^-8 is E4M3's smallest subnormal, 6 x 2^6 = 384 <= 448). So a row of blocks whose nonzero blocks span at
// most 14 binades folds exactly into E4M3 codes with one power-of-two scale per row, and an FP8 wgmma GEMM with that row
// scale in its epilogue computes the same products as the MXFP4 operand. Rows that span more need another path (they must
// never be folded inexactly). fold8 is the form for kernels (ten operations per eight values). Host-visible: descriptor_test.cpp
// checks every code and shift exhaustively. The sm90 W4A8 family (sm90_w4a8_gemm_nt.cu) folds with them.
#pragma once
#include <cstdint>

namespace ms {

constexpr int kFoldMinShift = -8, kFoldMaxShift = 6;

// E2M1 code (sign in bit 3) times 2^d, d in [kFoldMinShift, kFoldMaxShift], as an E4M3 code (sign in bit 7); exact.
__host__ __device__ inline uint8_t fold_e2m1_to_e4m3(uint32_t code, int d) {
  const uint32_t sign = (code & 8u) << 4, magnitude = code & 7u;
  if (magnitude == 0) return (uint8_t)sign;
  // |v| = (1 + mantissa / 8) x 2^exponent: 0.5 = 2^-1; codes 2..7 are (1 + (code & 1) / 2) x 2^((code >> 1) - 1).
  const int exponent = (magnitude == 1 ? -1 : (int)(magnitude >> 1) - 1) + d;
  const uint32_t mantissa = magnitude == 1 ? 0u : (magnitude & 1u) << 2;
  const int biased = exponent + 7;
  if (biased >= 1) return (uint8_t)(sign | (uint32_t)biased << 3 | mantissa);
  // Subnormal: (8 + mantissa) x 2^(exponent - 3) = m x 2^-9; the bits shifted out are zero for d >= -8.
  return (uint8_t)(sign | (8u + mantissa) >> (-6 - exponent));
}

// The fold base of a row of `blocks` MXFP4 blocks (E8M0 codes `scales`, packed E2M1 codes `codes`, two per byte, 32 per
// block): base = the largest exponent of a block holding a nonzero code, minus kFoldMaxShift, so that every such block's
// shift d = e - base is at most 6; false when some such block's shift would fall below -8 (the row spans more than 14
// binades) or a block's scale is NaN (E8M0 0xFF). A row of zeros folds with base 0. Blocks of zeros take any shift.
__host__ __device__ inline bool fold_row_base(const uint8_t* scales, const uint8_t* codes, int blocks, int& base) {
  int lowest = 256, highest = -1;
  for (int b = 0; b < blocks; ++b) {
    if (scales[b] == 0xFF) return false;
    bool nonzero = false;
    for (int i = 0; i < 16; ++i) nonzero |= (codes[b * 16 + i] & 0x77) != 0;
    if (!nonzero) continue;
    lowest = scales[b] < lowest ? scales[b] : lowest;
    highest = scales[b] > highest ? scales[b] : highest;
  }
  base = highest < 0 ? 0 : highest - kFoldMaxShift;
  return highest < 0 || lowest - base >= kFoldMinShift;
}

// A block's shift against its row's base, clamped into the exact range (blocks of zeros may lie outside it).
__host__ __device__ inline int fold_shift(int scale, int base) {
  const int d = scale - base;
  return d < kFoldMinShift ? kFoldMinShift : d > kFoldMaxShift ? kFoldMaxShift : d;
}

// PTX prmt (CUDA's __byte_perm) in its default mode: byte i of the result is byte (s >> 4i) & 7 of y:x (x the low four),
// or that byte's sign replicated when bit 3 of the selector nibble is set.
__host__ __device__ inline uint32_t byte_perm(uint32_t x, uint32_t y, uint32_t s) {
#ifdef __CUDA_ARCH__
  return __byte_perm(x, y, s);
#else
  const uint64_t bytes = (uint64_t)y << 32 | x;
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) {
    const uint32_t sel = (s >> (4 * i)) & 0xFu;
    uint32_t byte = (uint32_t)(bytes >> (8 * (sel & 7u))) & 0xFFu;
    if (sel & 8u) byte = byte & 0x80u ? 0xFFu : 0u;
    r |= byte << (8 * i);
  }
  return r;
#endif
}

// The E4M3 bytes of the eight E2M1 magnitudes at shift d (lo: magnitudes 0-3, hi: 4-7), for fold8. From d = -5 on every
// result is normal and magnitude c >= 2 folds to (c << 2) + ((d + 6) << 3), 0.5 to (d + 6) << 3.
struct FoldLut {
  uint32_t lo, hi;
};
constexpr int kFoldMinNormalShift = -5;
// fold_lut for d >= kFoldMinNormalShift, where every result is normal: two multiply-adds, no branch.
__host__ __device__ inline FoldLut fold_lut_normal(int d) {
  const uint32_t step = (uint32_t)(d + 6);  // the E4M3 exponent field of 2^(d - 1), in units of 8
  return FoldLut{0x0C080000u + step * 0x08080800u, 0x1C181410u + step * 0x08080808u};
}
__host__ __device__ inline FoldLut fold_lut(int d) {
  if (d >= kFoldMinNormalShift) return fold_lut_normal(d);
  FoldLut lut{0, 0};
  for (uint32_t c = 1; c < 8; ++c) (c < 4 ? lut.lo : lut.hi) |= (uint32_t)fold_e2m1_to_e4m3(c, d) << (8 * (c % 4));
  return lut;
}

// Eight packed E2M1 codes (value i in nibble i, NUMERICS.md s2) folded with one block's table into eight E4M3 bytes
// (value i in byte i of lo:hi): per four values one prmt looks up the magnitudes and one picks 0x00 or 0x80 for the sign.
// The signs: value i's sign bit (4i + 3) is the top bit of a byte of packed or packed << 4, which one prmt gathers into
// byte i's top bit (ten operations per eight values).
__host__ __device__ inline void fold8(uint32_t packed, FoldLut lut, uint32_t& lo, uint32_t& hi) {
  const uint32_t shifted = packed << 4;
  lo = byte_perm(lut.lo, lut.hi, packed & 0x7777u) | (byte_perm(shifted, packed, 0x5140u) & 0x80808080u);
  hi = byte_perm(lut.lo, lut.hi, (packed >> 16) & 0x7777u) | (byte_perm(shifted, packed, 0x7362u) & 0x80808080u);
}

}  // namespace ms
