// Element and scale formats of NUMERICS.md s1-s3 as host/device functions: integer and binary32 arithmetic only, the
// same algorithms as the managed FloatBits/ScaleRules, so every backend writes the same bytes. Files that include this
// are compiled with --fmad=false -ftz=false -prec-div=true -prec-sqrt=true.
#pragma once
#include <cstdint>
#include <cstring>
#include "microscale.h"

#define MS_HD __host__ __device__ __forceinline__

namespace ms {

MS_HD uint32_t f2u(float x) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(x);
#else
  uint32_t u; std::memcpy(&u, &x, 4); return u;
#endif
}

MS_HD float u2f(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float x; std::memcpy(&x, &u, 4); return x;
#endif
}

MS_HD uint32_t abs_bits(float x) { return f2u(x) & 0x7FFFFFFFu; }
MS_HD bool is_nan_bits(uint32_t a) { return a > 0x7F800000u; }
MS_HD bool is_finite_bits(uint32_t a) { return a < 0x7F800000u; }

enum : int { kE2M1 = 0, kE4M3 = 1, kE5M2 = 2, kInt8 = 3 /* MXINT8: a two's-complement byte */ };
constexpr uint32_t kNanCode8 = 0x7F;
constexpr uint32_t kE4M3Max = 0x7E, kE5M2Max = 0x7B, kE2M1Max = 0x7;
constexpr uint32_t kE8M0Nan = 0xFF, kUE4M3Nan = 0x7F;

// RNE of a finite non-negative binary32 (bits) onto a small float grid: unsaturated magnitude code.
MS_HD uint32_t round_to_magnitude_code(uint32_t abs, int mantissa_bits, int min_exponent) {
  uint32_t biased = abs >> 23;
  if (biased == 0) return 0;  // binary32 subnormals are far below half the smallest 4/8-bit subnormal
  int exponent = (int)biased - 127;
  uint32_t significand = (abs & 0x7FFFFFu) | 0x800000u;
  int target = exponent > min_exponent ? exponent : min_exponent;
  int shift = target - exponent + 23 - mantissa_bits;
  if (shift >= 25) return 0;
  uint32_t rounded = significand >> shift;
  uint32_t remainder = significand & ((1u << shift) - 1u);
  uint32_t half = 1u << (shift - 1);
  if (remainder > half || (remainder == half && (rounded & 1u))) rounded++;
  return ((uint32_t)(target - min_exponent) << mantissa_bits) + rounded;
}

MS_HD uint32_t to_e2m1(float x) {
  uint32_t bits = f2u(x), abs = bits & 0x7FFFFFFFu;
  if (is_nan_bits(abs)) return kE2M1Max;
  uint32_t code = round_to_magnitude_code(abs, 1, 0);
  return ((bits >> 28) & 0x8u) | (code > kE2M1Max ? kE2M1Max : code);
}

// satfinite FP8 (NaN -> 0x7F, overflow and Inf -> +-max).
MS_HD uint32_t to_fp8_sat(float x, int mantissa_bits, int min_exponent, uint32_t max_code) {
  uint32_t bits = f2u(x), abs = bits & 0x7FFFFFFFu;
  if (is_nan_bits(abs)) return kNanCode8;
  uint32_t code = abs == 0x7F800000u ? max_code : round_to_magnitude_code(abs, mantissa_bits, min_exponent);
  return ((bits >> 24) & 0x80u) | (code > max_code ? max_code : code);
}

MS_HD uint32_t to_e4m3(float x) { return to_fp8_sat(x, 3, -6, kE4M3Max); }
MS_HD uint32_t to_e5m2(float x) { return to_fp8_sat(x, 2, -14, kE5M2Max); }
// MXINT8 (NUMERICS.md s8): RNE of a finite binary32 to an integer, clamped to +-127, as a two's-complement byte. The
// magic-number rounding is exact for |x| <= 2^22 (larger values clamp anyway); the same steps as the managed RoundToInt.
MS_HD uint32_t to_int8(float x) {
  float a = u2f(abs_bits(x));
  if (a > 4194304.0f) a = 4194304.0f;
#ifdef __CUDA_ARCH__
  const float r = __fsub_rn(__fadd_rn(a, 12582912.0f), 12582912.0f);
#else
  volatile float up = a + 12582912.0f;  // no reassociation on the host either
  const float r = up - 12582912.0f;
#endif
  const int q = r > 127.0f ? 127 : (int)r;
  return (uint32_t)(f2u(x) >> 31 ? -q : q) & 0xFFu;
}
MS_HD uint32_t encode(float x, int kind) {
  return kind == kE2M1 ? to_e2m1(x) : kind == kE4M3 ? to_e4m3(x) : kind == kE5M2 ? to_e5m2(x) : to_int8(x);
}

MS_HD float pow2(int n) { return n >= -126 ? u2f((uint32_t)(n + 127) << 23) : u2f(1u << (n + 149)); }

MS_HD float from_e2m1(uint32_t code) {
  uint32_t m = code & 7u, e = m >> 1;
  float v = e == 0 ? (float)(m & 1u) * 0.5f : u2f(((e + 126u) << 23) | ((m & 1u) << 22));
  return (code & 8u) ? -v : v;
}

MS_HD float from_small_float(uint32_t code, int mantissa_bits, int bias, bool finite_only) {
  uint32_t sign = (code & 0x80u) << 24, magnitude = code & 0x7Fu;
  uint32_t field = magnitude >> mantissa_bits, mantissa = magnitude & ((1u << mantissa_bits) - 1u);
  uint32_t max_field = (1u << (7 - mantissa_bits)) - 1u;
  if (finite_only ? magnitude == 0x7Fu : field == max_field)
    return u2f(sign | 0x7F800000u | ((finite_only || mantissa != 0) ? 0x400000u : 0u));
  if (field == 0) return u2f(sign | f2u((float)mantissa * pow2(1 - bias - mantissa_bits)));
  return u2f(sign | ((uint32_t)((int)field - bias + 127) << 23) | (mantissa << (23 - mantissa_bits)));
}

MS_HD float from_e4m3(uint32_t code) { return from_small_float(code & 0xFFu, 3, 7, true); }
MS_HD float from_e5m2(uint32_t code) { return from_small_float(code & 0xFFu, 2, 15, false); }
MS_HD float decode(uint32_t code, int kind) {
  return kind == kE2M1 ? from_e2m1(code) : kind == kE4M3 ? from_e4m3(code) : kind == kE5M2 ? from_e5m2(code) : (float)(int8_t)(code & 0xFFu);
}
MS_HD float from_e8m0(uint32_t code) {
  code &= 0xFFu;
  return code == 0xFFu ? u2f(0x7FC00000u) : u2f(code == 0 ? 0x400000u : code << 23);
}

MS_HD int floor_log2(float a) {
  uint32_t biased = abs_bits(a) >> 23;
  if (biased != 0) return (int)biased - 127;
  return (int)(abs_bits(a * 18446744073709551616.0f) >> 23) - 127 - 64;  // subnormal: exact rescale
}
MS_HD int ceil_log2(float t) { int f = floor_log2(t); return t == pow2(f) ? f : f + 1; }

MS_HD float element_max(int kind) { return kind == kE2M1 ? 6.0f : kind == kE4M3 ? 448.0f : kind == kE5M2 ? 57344.0f : 127.0f; }
// The exponent the MX floor rule subtracts: emax of the FP element (OCP), b - 2 = 6 for MXINT8 (NUMERICS.md s8).
MS_HD int element_max_exponent(int kind) { return kind == kE2M1 ? 2 : kind == kE4M3 ? 8 : kind == kE5M2 ? 15 : 6; }

// MX exponent for a block with finite amax > 0 (rule 0 floor, 1 ceil), clamped to [-127, 127].
MS_HD int mx_exponent(float amax, int rule, int kind) {
  int e;
  if (rule == 0) {
    e = floor_log2(amax) - element_max_exponent(kind);
  } else {
    float t = amax / element_max(kind);
    e = t == 0.0f ? -127 : ceil_log2(t);
  }
  return e < -127 ? -127 : e > 127 ? 127 : e;
}

MS_HD float tensor_decode_scale(float amax, float divisor) {
  float g = amax / divisor;
  return g >= 1.17549435e-38f ? g : 1.0f;
}

MS_HD uint32_t nv_block_scale(float block_amax, float g) { return to_e4m3(block_amax / 6.0f / g); }

MS_HD int64_t swizzled_offset(int row, int col, int padded_cols) {
  return ((int64_t)(row >> 7) * (padded_cols >> 2) + (col >> 2)) * 512 + (row & 31) * 16 + ((row & 127) >> 5) * 4 + (col & 3);
}
MS_HD int64_t scale_offset(int row, int col, int scale_cols, bool swizzled) {
  return swizzled ? swizzled_offset(row, col, (scale_cols + 3) / 4 * 4) : (int64_t)row * scale_cols + col;
}

// MS_LAYOUT_TILED_16X128 (FP4 weights, include/microscale.h): tiles of 16 rows x 128 values, tile (row / 16, col / 128) at
// (row / 16 x col_chunks + col / 128), col_chunks = ceil(cols / 128). Codes: 1024 bytes per tile, its rows 64 bytes each
// (byte (row % 16) x 64 + (col % 128) / 2, the nibble as in the linear layout). Scales: lane (g, t) of the decode kernel's
// quad layout, g = row % 8, h = row % 16 / 8: MX (4 blocks of 32 per tile row) byte 2 (4 g + t) + h of 64, t = block % 4;
// NVFP4 (8 blocks of 16) byte 4 (4 g + t) + 2 h + j of 128, t = block % 8 / 2, j = block % 2. One 16-byte load per lane
// then holds 32 values of rows g and g + 8, and one 2- or 4-byte load their scales.
MS_HD int64_t tiled_tile(int row, int col, int col_chunks) { return (int64_t)(row >> 4) * col_chunks + (col >> 7); }
MS_HD int64_t tiled_code_offset(int row, int col, int col_chunks) {
  return tiled_tile(row, col, col_chunks) * 1024 + (row & 15) * 64 + ((col & 127) >> 1);
}
MS_HD int64_t tiled_scale_offset(int row, int block, int block_size, int col_chunks) {
  const int per_lane = 32 / block_size;  // blocks of one row a lane covers: 1 (MX) or 2 (NVFP4)
  const int in_chunk = block % (128 / block_size), lane = (row & 7) * 4 + in_chunk / per_lane;
  return tiled_tile(row, block * block_size, col_chunks) * (16 * 128 / block_size) + lane * 2 * per_lane + ((row >> 3) & 1) * per_lane +
         in_chunk % per_lane;
}
MS_HD int tiled_col_chunks(int cols) { return (cols + 127) / 128; }

MS_HD uint16_t to_bf16(float x) {
  uint32_t bits = f2u(x);
  if (is_nan_bits(bits & 0x7FFFFFFFu)) return 0x7FC0;
  return (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}
MS_HD float from_bf16(uint32_t bits) { return u2f((bits & 0xFFFFu) << 16); }
MS_HD uint16_t to_f16(float x) {
  uint32_t bits = f2u(x), abs = bits & 0x7FFFFFFFu, sign = (bits >> 16) & 0x8000u;
  if (is_nan_bits(abs)) return (uint16_t)(sign | 0x7E00u);
  uint32_t code = abs == 0x7F800000u ? 0x7C00u : round_to_magnitude_code(abs, 10, -14);
  return (uint16_t)(sign | (code > 0x7C00u ? 0x7C00u : code));
}
MS_HD float from_f16(uint32_t h) {
  uint32_t sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
  if (e == 0x1F) return u2f(sign | 0x7F800000u | (m << 13));
  if (e == 0) return u2f(sign | f2u((float)m * pow2(-24)));
  return u2f(sign | ((e + 112u) << 23) | (m << 13));
}

// Format descriptor of a quantized operand, as kernels read it.
struct QuantView {
  const uint8_t* data;
  const uint8_t* block_scales;
  const float* decode_scales;
  int format, kind, bits, block, padded_cols, scale_cols, swizzled, cols;
  int tiled;  // MS_LAYOUT_TILED_16X128 (FP4 only): codes and scales in the decode tiles
};

enum : int { kFmtMxfp4 = 0, kFmtMxfp8 = 1, kFmtNvfp4 = 2, kFmtFp8Tensor = 3, kFmtFp8Row = 4, kFmtMxint8 = 5 };
MS_HD bool is_mx_format(int format) { return format == kFmtMxfp4 || format == kFmtMxfp8 || format == kFmtMxint8; }

// The view of a quantized operand [rows, cols] described through the C ABI.
inline QuantView quant_view_of(const ms_qtensor_t& t, int cols) {
  const bool fp4 = t.format == kFmtMxfp4 || t.format == kFmtNvfp4;
  const int block = t.format == kFmtNvfp4 ? 16 : is_mx_format(t.format) ? 32 : 0;
  const int padded = block ? (cols + block - 1) / block * block : cols;
  const int kind = fp4 ? kE2M1 : t.format == kFmtMxint8 ? kInt8 : t.element == MS_ELEM_E5M2 ? kE5M2 : kE4M3;
  return QuantView{static_cast<const uint8_t*>(t.data), static_cast<const uint8_t*>(t.block_scales), t.decode_scales, t.format, kind, fp4 ? 4 : 8,
                   block, padded, block ? padded / block : 0, t.layout == MS_LAYOUT_SWIZZLED_128X4, cols, t.layout == MS_LAYOUT_TILED_16X128};
}

// The byte of q's codes that holds (row, col) (FP4: the nibble is col & 1 in every layout), and of its block scale (row, block).
MS_HD int64_t code_offset(const QuantView& q, int row, int col) {
  if (q.tiled) return tiled_code_offset(row, col, tiled_col_chunks(q.cols));
  return ((int64_t)row * q.padded_cols + col) * q.bits / 8;
}
MS_HD int64_t scale_index(const QuantView& q, int row, int block) {
  return q.tiled ? tiled_scale_offset(row, block, q.block, tiled_col_chunks(q.cols)) : scale_offset(row, block, q.scale_cols, q.swizzled);
}
MS_HD uint32_t code_at(const QuantView& q, int row, int col) {
  const uint32_t byte = q.data[code_offset(q, row, col)];
  return q.bits == 8 ? byte : (byte >> (4 * (col & 1))) & 0xFu;
}
MS_HD uint32_t scale_code_at(const QuantView& q, int row, int block) { return q.block_scales[scale_index(q, row, block)]; }

// The dequantized value at (row, col): element x scale (MX), x s x g (NVFP4), x g (FP8).
MS_HD float dequantize_at(const QuantView& q, int row, int col) {
  float element = decode(code_at(q, row, col), q.kind);
  if (is_mx_format(q.format)) return element * from_e8m0(scale_code_at(q, row, col / q.block));
  if (q.format == kFmtNvfp4) return element * from_e4m3(scale_code_at(q, row, col / q.block)) * q.decode_scales[0];
  return element * q.decode_scales[q.format == kFmtFp8Row ? row : 0];
}

}  // namespace ms
