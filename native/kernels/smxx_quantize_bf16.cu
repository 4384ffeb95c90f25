// The activation quantizer: BF16 rows (K a multiple of 8, 16-byte aligned) to MXFP4, MXFP8, NVFP4 and FP8 per-tensor /
// per-row, optionally rotated first (block Hadamard, NUMERICS.md s4), bit-identical to the generic quantizer
// (smxx_quantize.cu) and so to the reference, but built for bandwidth:
//  - a lane owns 32 consecutive values of a row (four 16-byte loads: one MX block, two NVFP4 blocks), so block amax and
//    scale need no shuffles; a warp owns a 1024-value piece; warps stride over the pieces with the next piece's loads in
//    flight while the current one is encoded;
//  - MXFP4 without rotation encodes straight from the BF16 pairs: x 2^-e is exact in BF16, so RNE onto the E2M1 grid is
//    the smallest of three `fma.rn.bf16x2` roundings onto 128 (ulp 1 there), two values per instruction (e2m1_pair);
//  - otherwise binary32: E2M1 as the smallest of three binary32 roundings onto 1.5 * 2^23 (fast_encode.cuh), FP8 by
//    cvt.rn.satfinite (sm_89+; exactly NUMERICS' satfinite conversion), and the divisions x / d of NVFP4 and FP8 are
//    Markstein's correction of x * RN(1/d) (two FMAs; correctly rounded while d and 1/d are normal, else IEEE);
//  - block amax of unrotated values on the BF16 pairs (16-bit integer max of the magnitudes: non-finite halves sort
//    above every finite one);
//  - FP8 per-row: one to four warps per row keep the row in registers (K <= 16384), so the row amax costs no second
//    read; rotated rows take a CTA per row.
// NVFP4 and FP8 per-tensor take their tensor scale from amax_kernel first (the same loads, a second read of the input).
#include <cuda_runtime_api.h>
#include <cstdint>
#include "common/fast_encode.cuh"
#include "common/quantize_params.cuh"
#include "launch.h"
#include "../src/error.h"

namespace ms {

namespace {

constexpr int kLaneValues = 32;              // a lane's values: four 16-byte loads
constexpr int kLaneWords = kLaneValues / 2;  // as BF16 pairs
constexpr int kPiece = 32 * kLaneValues;     // values per warp item: a multiple of every Hadamard block
constexpr int kWarps = 8;                    // piece and amax kernels
constexpr int kRowWarps = 16;                // per-row CTA kernel (rotated or long rows): a CTA per row
constexpr int kRowSegmentsPerWarp = 4;       // so rows up to 16 x 4 x 256 = 16384 values
constexpr int kRowSegment = 256;             // values per warp segment of the per-row CTA kernel (8 per lane)
constexpr int kMaxRowColumns = kRowWarps * kRowSegmentsPerWarp * kRowSegment;
constexpr int kRowWarpsPerCta = 4;           // per-row warp kernel: 4 rows per CTA

enum Family { kMx = 0, kNv = 1, kFp8 = 2 };

__device__ __forceinline__ uint32_t max_u16x2(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && __CUDACC_VER_MAJOR__ >= 12  // PTX ISA 8.0
  uint32_t r;
  asm("max.u16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
  return r;
#else
  return __vmaxu2(a, b);
#endif
}

__device__ __forceinline__ uint32_t fma_bf16x2(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t r;
  asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c));
  return r;
}

__device__ __forceinline__ uint32_t min_bf16x2(uint32_t a, uint32_t b) {
  uint32_t r;
  asm("min.bf16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
  return r;
}

// The magnitudes of BF16 pairs with their non-finite halves cleared (NaN / Inf magnitudes are >= 0x7F80: adding 0x80 sets
// their bit 15, which prmt's sign-replicate mode spreads over the half).
__device__ __forceinline__ uint32_t finite_magnitudes(uint32_t w) {
  const uint32_t a = w & 0x7FFF7FFFu;
  return a & ~prmt(a + 0x00800080u, 0, 0xBB99u);
}

// The larger of a BF16 pair's two 16-bit halves.
__device__ __forceinline__ uint32_t pair_max(uint32_t m) { return max(m & 0xFFFFu, m >> 16); }

// Block amax of `n` BF16 pairs as binary32 bits (finite values) and whether the block holds a NaN or Inf.
template <int N>
__device__ __forceinline__ void pair_amax(const uint32_t* w, uint32_t& amax, bool& non_finite) {
  uint32_t m = 0;
#pragma unroll
  for (int j = 0; j < N; ++j) m = max_u16x2(m, w[j] & 0x7FFF7FFFu);
  const uint32_t top = pair_max(m);
  non_finite = top >= 0x7F80u;
  amax = non_finite ? 0u : top << 16;
}

// Block amax of binary32 values (bits; NaN and Inf magnitudes sort above every finite one).
template <int N>
__device__ __forceinline__ void float_amax(const float* v, uint32_t& amax, bool& non_finite) {
  uint32_t m = 0;
#pragma unroll
  for (int e = 0; e < N; ++e) m = max(m, abs_bits(v[e]));
  non_finite = !is_finite_bits(m);
  amax = non_finite ? 0u : m;
}

// x / d for N values of a lane: the branch-free quotient where the divisor allows (tested once), else the checked one.
// The checked form is rare (a divisor near the ends of the binary32 range) and kept rolled, so that it costs no code size,
// unless kRolledFallback is false: a rolled loop over many values can put them in local memory (it did for 32, costing
// 2.2x), so callers with one divisor for a whole lane unroll both forms.
template <int N, bool kRolledFallback = true>
__device__ __forceinline__ void divide_all(const Divider& div, float* x) {
  if (div.unscaled()) {
#pragma unroll
    for (int e = 0; e < N; ++e) x[e] = div.fast_quotient(x[e]);
  } else if (kRolledFallback) {
#pragma unroll 1
    for (int e = 0; e < N; ++e) x[e] = div(x[e]);
  } else {
#pragma unroll
    for (int e = 0; e < N; ++e) x[e] = div(x[e]);
  }
}

__device__ __forceinline__ float low_bf16(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float high_bf16(uint32_t w) { return __uint_as_float(w & 0xFFFF0000u); }

// E2M1 magnitude codes of a BF16 pair x (signs cleared) times 2^-e: RNE(2t) + 128, RNE(t) + 130 and RNE(t / 2) + 132 are
// each one rounding of an exact product onto [128, 256), where BF16's ulp is 1, so the smallest of them and 135 is
// 128 + the code (the reasoning of e2m1_magnitude, fast_encode.cuh); the code lands in bits 0-2 of each half.
// m1, m0, mh: 2^(1-e), 2^-e, 2^(-1-e) as BF16 pairs, all normal (e in [-123, 125]; there a BF16 subnormal x, flushed or
// not, gives t < 2^-3 and code 0 either way).
__device__ __forceinline__ uint32_t e2m1_pair(uint32_t x, uint32_t m1, uint32_t m0, uint32_t mh) {
  const uint32_t c1 = fma_bf16x2(x, m1, 0x43004300u), c2 = fma_bf16x2(x, m0, 0x43024302u), c3 = fma_bf16x2(x, mh, 0x43044304u);
  return min_bf16x2(min_bf16x2(c1, c2), min_bf16x2(c3, 0x43074307u));
}

// 8 E2M1 codes from four e2m1_pair results r (element 2k in r[k]'s low half) and signs from the BF16 pairs w: the codes'
// low bytes gathered (even elements from the low halves, odd from the high), even | odd << 4, and each element's sign byte
// replicated by prmt into bit 3 of its nibble.
__device__ __forceinline__ uint32_t pack_e2m1_pairs(const uint32_t* r, const uint32_t* w) {
  const uint32_t even = prmt(prmt(r[0], r[1], 0x0040u), prmt(r[2], r[3], 0x0040u), 0x5410u);
  const uint32_t odd = prmt(prmt(r[0], r[1], 0x0062u), prmt(r[2], r[3], 0x0062u), 0x5410u);
  const uint32_t high01 = prmt(w[0], w[1], 0x7351u), high23 = prmt(w[2], w[3], 0x7351u);  // sign bytes, even then odd
  const uint32_t even_signs = prmt(high01, high23, 0xDC98u), odd_signs = prmt(high01, high23, 0xFEBAu);
  return ((even + (odd << 4)) | (even_signs & 0x08080808u)) | (odd_signs & 0x80808080u);
}

__device__ __forceinline__ uint32_t bf16_pair(float power_of_two) { return (__float_as_uint(power_of_two) >> 16) * 0x10001u; }

// 8 E2M1 codes of binary32 values (already scaled).
__device__ __forceinline__ uint32_t e2m1_word(const float* x) {
  uint32_t m[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) m[e] = e2m1_magnitude(x[e]);
  return pack_e2m1(m, x);
}

template <int kKind>
__device__ __forceinline__ uint32_t fp8_word(const float* x) {
  return fp8x2(x[0], x[1], kKind) | (fp8x2(x[2], x[3], kKind) << 16);
}

// 8 FP8 codes of p.kind (E4M3 or E5M2) as one 8-byte piece.
__device__ __forceinline__ uint2 fp8_eight(int kind, const float* x) {
  return kind == kE4M3 ? make_uint2(fp8_word<kE4M3>(x), fp8_word<kE4M3>(x + 4)) : make_uint2(fp8_word<kE5M2>(x), fp8_word<kE5M2>(x + 4));
}

// FP8 codes of a lane's 32 scaled values (E4M3 or E5M2), 4 per word.
__device__ __forceinline__ void fp8_lane(int kind, const float (&x)[kLaneValues], uint32_t (&out)[8]) {
  if (kind == kE4M3) {
#pragma unroll
    for (int q = 0; q < 8; ++q) out[q] = fp8_word<kE4M3>(x + 4 * q);
  } else {
#pragma unroll
    for (int q = 0; q < 8; ++q) out[q] = fp8_word<kE5M2>(x + 4 * q);
  }
}

struct Loader {
  const uint16_t* src;
  int cols, padded_cols, pieces_per_row;
  // Item `item` is piece item % pieces_per_row of row item / pieces_per_row; its lane's first column.
  __device__ __forceinline__ void locate(int item, int lane, int& row, int& col0) const {
    row = item / pieces_per_row;
    col0 = (item - row * pieces_per_row) * kPiece + lane * kLaneValues;
  }
  // The lane's 32 values from (row, col0) as BF16 pairs, zeros past K.
  __device__ __forceinline__ void operator()(int row, int col0, uint32_t (&w)[kLaneWords]) const {
    const uint4* base = reinterpret_cast<const uint4*>(src + (int64_t)row * cols + col0);
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const uint4 v = col0 + 8 * q < cols ? base[q] : make_uint4(0u, 0u, 0u, 0u);
      w[4 * q] = v.x, w[4 * q + 1] = v.y, w[4 * q + 2] = v.z, w[4 * q + 3] = v.w;
    }
  }
};

// The rotation of a lane's 32 values (NUMERICS.md s4 order): signs (pre-spread into the BF16 pairs' sign bits; not on the
// zero padding past K, which is never rotated), the FWHT stages inside the lane (pairs e, e ^ s), then across lanes
// (s >= 32: lane bit s / 32; the upper lane's other - v as the exact fma(v, -1, other)). Every lane of the warp takes part
// (shuffles). The x c of the last step is left to the caller (MX folds it into its scale multiply).
__device__ __forceinline__ void rotate_lane(const uint32_t (&w)[kLaneWords], const uint32_t (&signs)[kLaneWords], int g, int lane, int col0,
                                            int cols, float (&v)[kLaneValues]) {
#pragma unroll
  for (int j = 0; j < kLaneWords; ++j) {
    const uint32_t s = col0 + 2 * j < cols ? w[j] ^ signs[j] : w[j];
    v[2 * j] = low_bf16(s), v[2 * j + 1] = high_bf16(s);
  }
#pragma unroll
  for (int s = 1; s < kLaneValues; s <<= 1) {
    if (s >= g) break;
#pragma unroll
    for (int e = 0; e < kLaneValues; ++e)
      if ((e & s) == 0) {
        const float a = v[e], b = v[e + s];
        v[e] = __fadd_rn(a, b);
        v[e + s] = __fsub_rn(a, b);
      }
  }
  for (int s = kLaneValues; s < g; s <<= 1) {
    const int lane_mask = s / kLaneValues;
    const float sign = (lane & lane_mask) == 0 ? 1.0f : -1.0f;
#pragma unroll
    for (int e = 0; e < kLaneValues; ++e) v[e] = __fmaf_rn(v[e], sign, __shfl_xor_sync(0xFFFFFFFFu, v[e], lane_mask));
  }
}

__device__ __forceinline__ void scale_all(float c, float (&v)[kLaneValues]) {
#pragma unroll
  for (int e = 0; e < kLaneValues; ++e) v[e] = __fmul_rn(v[e], c);
}

// The lane's sign flips as BF16-pair sign bits: value e of the lane is index (lane * 32 + e) % g of the sign vector (a
// piece starts at a multiple of 1024, so this holds for every piece).
__device__ __forceinline__ void lane_signs(const SegmentParams& s, int lane, uint32_t (&signs)[kLaneWords]) {
#pragma unroll
  for (int j = 0; j < kLaneWords; ++j) {
    uint32_t bits = 0;
    if (s.signs && s.g != 0) {
      if (s.signs[(lane * kLaneValues + 2 * j) % s.g] < 0.0f) bits |= 0x8000u;
      if (s.signs[(lane * kLaneValues + 2 * j + 1) % s.g] < 0.0f) bits |= 0x80000000u;
    }
    signs[j] = bits;
  }
}

struct PieceContext {
  float tensor_scale;  // NVFP4 g / FP8 per-tensor decode scale
  Divider tensor_div;  // x / g
  Divider six;         // NVFP4 amax / 6
  uint32_t signs[kLaneWords];
};

// NVFP4's block scale UE4M3((amax / 6) / g) (formats.cuh nv_block_scale) with both divisions by Markstein's correction
// where that is the correctly rounded quotient (amax >= 2^-98, so both remainders are exact; g's divider unscaled; a
// finite result), converted by cvt.rn.satfinite; else the IEEE divisions.
__device__ __forceinline__ uint32_t nv_scale_code(float amax, float g, const Divider& six, const Divider& by_g) {
  if (amax >= 0x1p-98f && by_g.unscaled()) {
    const float q = divide(divide(amax, six.d, six.y), by_g.d, by_g.y);
    if (q < 65536.0f) return fp8x2(q, 0.0f, kE4M3) & 0xFFu;
  }
  return nv_block_scale(amax, g);
}

// The lane's scaled binary32 values x 2^-e: unrotated from the BF16 pairs; rotated from the FWHT outputs y, where the
// reference's RN(RN(y c) 2^-e) is RN(y (c 2^-e)) while c 2^-e is normal and a subnormal y c could not reach any element
// grid (e in [-108, 123]: then RN(y c) 2^-e < 2^-18), else both multiplies.
template <bool kRotated>
__device__ __forceinline__ void mx_scaled(const uint32_t (&w)[kLaneWords], const float (&v)[kLaneValues], float c, int e, float factor,
                                          float (&x)[kLaneValues]) {
  if (!kRotated) {
#pragma unroll
    for (int i = 0; i < kLaneValues; ++i) x[i] = __fmul_rn(i & 1 ? high_bf16(w[i / 2]) : low_bf16(w[i / 2]), factor);
  } else if (e >= -108 && e <= 123) {
    const float folded = __fmul_rn(c, factor);
#pragma unroll
    for (int i = 0; i < kLaneValues; ++i) x[i] = __fmul_rn(v[i], folded);
  } else {
#pragma unroll
    for (int i = 0; i < kLaneValues; ++i) x[i] = __fmul_rn(__fmul_rn(v[i], c), factor);
  }
}

// MX: one block of 32 (scale byte at block col0 / 32); codes for E2M1 or FP8 of p.kind. Rotated v are the FWHT outputs
// before x c: the block amax of RN(y c) is RN(amax |y| x c) (rounding is monotonic).
template <bool kRotated>
__device__ __forceinline__ void quantize_mx(const QuantizeParams& p, int64_t row, int col0, const uint32_t (&w)[kLaneWords], const float (&v)[kLaneValues]) {
  uint32_t amax;
  bool non_finite;
  if (kRotated) {
    float_amax<kLaneValues>(v, amax, non_finite);
    amax = f2u(__fmul_rn(u2f(amax), p.seg.c));
  } else {
    pair_amax<kLaneWords>(w, amax, non_finite);
  }
  float factor;
  const uint32_t scale = block_scale(p, amax, non_finite, factor);
  p.block_scales[scale_offset((int)row, col0 / 32, p.scale_cols, p.swizzled)] = (uint8_t)scale;
  const int64_t index = row * p.seg.padded_cols + col0;
  const int e = (int)scale - 127;
  if (p.kind == kE2M1) {
    uint4 out = make_uint4(0u, 0u, 0u, 0u);
    if (factor != 0.0f && !kRotated && e >= -123 && e <= 125) {
      const uint32_t m1 = bf16_pair(pow2(1 - e)), m0 = bf16_pair(pow2(-e)), mh = bf16_pair(pow2(-1 - e));
      uint32_t r[kLaneWords];
#pragma unroll
      for (int j = 0; j < kLaneWords; ++j) r[j] = e2m1_pair(w[j] & 0x7FFF7FFFu, m1, m0, mh);
      out = make_uint4(pack_e2m1_pairs(r, w), pack_e2m1_pairs(r + 4, w + 4), pack_e2m1_pairs(r + 8, w + 8), pack_e2m1_pairs(r + 12, w + 12));
    } else if (factor != 0.0f) {  // rotated values, or a block too close to the ends of the exponent range for BF16
      float x[kLaneValues];
      mx_scaled<kRotated>(w, v, p.seg.c, e, factor, x);
      out = make_uint4(e2m1_word(x), e2m1_word(x + 8), e2m1_word(x + 16), e2m1_word(x + 24));
    }
    *reinterpret_cast<uint4*>(p.data + (index >> 1)) = out;
    return;
  }
  uint32_t out[8] = {0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u};
  if (factor != 0.0f) {
    float x[kLaneValues];
    mx_scaled<kRotated>(w, v, p.seg.c, e, factor, x);
    fp8_lane(p.kind, x, out);
  }
  uint4* dst = reinterpret_cast<uint4*>(p.data + index);
  dst[0] = make_uint4(out[0], out[1], out[2], out[3]);
  dst[1] = make_uint4(out[4], out[5], out[6], out[7]);
}

// NVFP4: two blocks of 16 (the second only inside the padded row), each divided by d = decode(s) x g. Rows are padded to
// 16 values, so the codes go out as 8-byte pieces.
template <bool kRotated>
__device__ __forceinline__ void quantize_nv(const QuantizeParams& p, const PieceContext& ctx, int64_t row, int col0, const uint32_t (&w)[kLaneWords], const float (&v)[kLaneValues]) {
  uint2* dst = reinterpret_cast<uint2*>(p.data + ((row * p.seg.padded_cols + col0) >> 1));
#pragma unroll
  for (int b = 0; b < 2; ++b) {
    if (b == 1 && col0 + 16 >= p.seg.padded_cols) break;
    uint32_t amax;
    bool non_finite;
    if (kRotated) float_amax<16>(v + 16 * b, amax, non_finite);
    else pair_amax<8>(w + 8 * b, amax, non_finite);
    const uint32_t code = non_finite ? kUE4M3Nan : nv_scale_code(u2f(amax), ctx.tensor_scale, ctx.six, ctx.tensor_div);
    p.block_scales[scale_offset((int)row, col0 / 16 + b, p.scale_cols, p.swizzled)] = (uint8_t)code;
    uint2 out = make_uint2(0u, 0u);
    if (!non_finite && code != 0) {
      float x[16];
#pragma unroll
      for (int e = 0; e < 16; ++e) {
        const int i = 16 * b + e;
        x[e] = kRotated ? v[i] : (i & 1 ? high_bf16(w[i / 2]) : low_bf16(w[i / 2]));
      }
      divide_all<16>(Divider(__fmul_rn(from_e4m3(code), ctx.tensor_scale)), x);
      out = make_uint2(e2m1_word(x), e2m1_word(x + 8));
    }
    dst[b] = out;
  }
}

// FP8 per-tensor: x / g for every value. Rows are not padded (K is a multiple of 8): 16-byte stores where rows keep them
// aligned (K a multiple of 16), else 8-byte ones, inside K.
template <bool kRotated>
__device__ __forceinline__ void quantize_fp8(const QuantizeParams& p, const Divider& div, int64_t row, int col0, const uint32_t (&w)[kLaneWords], const float (&v)[kLaneValues]) {
  float x[kLaneValues];
#pragma unroll
  for (int i = 0; i < kLaneValues; ++i) x[i] = kRotated ? v[i] : (i & 1 ? high_bf16(w[i / 2]) : low_bf16(w[i / 2]));
  divide_all<kLaneValues, false>(div, x);  // one divisor for the whole tensor
  uint32_t out[8];
  fp8_lane(p.kind, x, out);
  uint8_t* dst = p.data + row * p.seg.padded_cols + col0;
  if (p.seg.cols % 16 == 0) {
    reinterpret_cast<uint4*>(dst)[0] = make_uint4(out[0], out[1], out[2], out[3]);
    if (col0 + 16 < p.seg.cols) reinterpret_cast<uint4*>(dst)[1] = make_uint4(out[4], out[5], out[6], out[7]);
  } else {
#pragma unroll
    for (int q = 0; q < 4; ++q)
      if (col0 + 8 * q < p.seg.cols) reinterpret_cast<uint2*>(dst)[q] = make_uint2(out[2 * q], out[2 * q + 1]);
  }
}

template <Family F, bool kRotated>
__device__ __forceinline__ void quantize_piece(const QuantizeParams& p, const PieceContext& ctx, int row, int col0, int lane,
                                               const uint32_t (&w)[kLaneWords]) {
  float v[kLaneValues];
  if (kRotated) {
    rotate_lane(w, ctx.signs, p.seg.g, lane, col0, p.seg.cols, v);
    if (F != kMx) scale_all(p.seg.c, v);
  }
  if (col0 >= (F == kFp8 ? p.seg.cols : p.seg.padded_cols)) return;
  if (F == kMx) quantize_mx<kRotated>(p, row, col0, w, v);
  else if (F == kNv) quantize_nv<kRotated>(p, ctx, row, col0, w, v);
  else quantize_fp8<kRotated>(p, ctx.tensor_div, row, col0, w, v);
}

// One warp per 1024-value piece, grid-stride. Unrotated: two pieces in flight per warp (A is encoded while B loads, then
// the reverse); rotated pieces hold their binary32 values, so they load one at a time (the registers would not allow more
// warps otherwise).
template <Family F, bool kRotated>
__global__ void __launch_bounds__(32 * kWarps) piece_kernel(QuantizeParams p, Loader load, int items) {
  const int lane = threadIdx.x & 31, stride = gridDim.x * kWarps;
  int item = blockIdx.x * kWarps + (threadIdx.x >> 5);
  if (item >= items) return;
  const float tensor_scale = F == kMx ? 1.0f : p.decode_scales[0];
  PieceContext ctx{tensor_scale, Divider(tensor_scale), Divider(6.0f), {}};
  int row_a, col_a;
  uint32_t a[kLaneWords];
  if (kRotated) {
    lane_signs(p.seg, lane, ctx.signs);
    for (; item < items; item += stride) {
      load.locate(item, lane, row_a, col_a);
      load(row_a, col_a, a);
      quantize_piece<F, kRotated>(p, ctx, row_a, col_a, lane, a);
    }
    return;
  }
  uint32_t b[kLaneWords];
  int row_b, col_b;
  load.locate(item, lane, row_a, col_a);
  load(row_a, col_a, a);
  // One step: start loading the piece after this one into `next`, encode `current`; taken with the buffers swapped, so
  // both stay in registers without copies.
  const auto step = [&](const uint32_t (&current)[kLaneWords], int row_c, int col_c, uint32_t (&next)[kLaneWords], int& row_n, int& col_n) {
    if (item + stride < items) {
      load.locate(item + stride, lane, row_n, col_n);
      load(row_n, col_n, next);
    }
    quantize_piece<F, kRotated>(p, ctx, row_c, col_c, lane, current);
    item += stride;
    return item < items;
  };
  while (step(a, row_a, col_a, b, row_b, col_b) && step(b, row_b, col_b, a, row_a, col_a)) {
  }
}

// The finite amax (binary32 bits, into p.amax[0]) of the (rotated) tensor for NVFP4 and FP8 per-tensor: the pieces' loads,
// a running max per warp over its grid-stride items, one atomic per warp.
template <bool kRotated>
__global__ void __launch_bounds__(32 * kWarps) amax_kernel(QuantizeParams p, Loader load, int items) {
  const int lane = threadIdx.x & 31, stride = gridDim.x * kWarps;
  uint32_t signs[kLaneWords];
  if (kRotated) lane_signs(p.seg, lane, signs);
  uint32_t running = 0;
  for (int item = blockIdx.x * kWarps + (threadIdx.x >> 5); item < items; item += stride) {
    uint32_t w[kLaneWords];
    int row, col0;
    load.locate(item, lane, row, col0);
    load(row, col0, w);
    if (kRotated) {
      float v[kLaneValues];
      rotate_lane(w, signs, p.seg.g, lane, col0, p.seg.cols, v);
#pragma unroll
      for (int e = 0; e < kLaneValues; ++e) {
        const uint32_t bits = abs_bits(v[e]);
        running = bits > running && is_finite_bits(bits) ? bits : running;
      }
    } else {
      uint32_t m = 0;
#pragma unroll
      for (int j = 0; j < kLaneWords; ++j) m = max_u16x2(m, finite_magnitudes(w[j]));
      running = max(running, pair_max(m) << 16);
    }
  }
  for (int o = 16; o > 0; o >>= 1) running = max(running, __shfl_xor_sync(0xFFFFFFFFu, running, o));
  if (kRotated) running = f2u(__fmul_rn(u2f(running), p.seg.c));  // max RN(|y| c) = RN(max |y| x c)
  if (lane == 0 && running != 0) atomicMax(p.amax, (int)running);
}

// FP8 per-row, unrotated, K <= kRowWarps x 64 x kWords: kRowWarps warps share a row, each holding its part in registers
// (load q of lane L: values (32 q + L) x 8 of the part, coalesced); the finite amax is reduced with shuffles, then across
// the row's warps through shared memory and a named barrier; then the decode scale and the codes.
template <int kWords, int kRowWarps>
__global__ void __launch_bounds__(32 * kRowWarpsPerCta) row_warp_kernel(QuantizeParams p, const uint16_t* src) {
  constexpr int kPart = 64 * kWords;  // values per warp
  __shared__ uint32_t warp_amax[kRowWarpsPerCta];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, part = warp % kRowWarps;
  const int64_t row = (int64_t)blockIdx.x * (kRowWarpsPerCta / kRowWarps) + warp / kRowWarps;
  if (row >= p.seg.rows) return;  // the row's warps leave together
  const int cols = p.seg.cols, first = part * kPart;
  const uint4* base = reinterpret_cast<const uint4*>(src + row * cols + first);
  uint32_t w[kWords];
#pragma unroll
  for (int q = 0; q < kWords / 4; ++q) {
    const uint4 v = first + (32 * q + lane) * 8 < cols ? base[32 * q + lane] : make_uint4(0u, 0u, 0u, 0u);
    w[4 * q] = v.x, w[4 * q + 1] = v.y, w[4 * q + 2] = v.z, w[4 * q + 3] = v.w;
  }
  uint32_t m = 0;
#pragma unroll
  for (int j = 0; j < kWords; ++j) m = max_u16x2(m, finite_magnitudes(w[j]));
  uint32_t amax = pair_max(m);
  for (int o = 16; o > 0; o >>= 1) amax = max(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, o));
  if (kRowWarps > 1) {
    if (lane == 0) warp_amax[warp] = amax;
    asm volatile("bar.sync %0, %1;" ::"r"(1 + warp / kRowWarps), "r"(32 * kRowWarps) : "memory");
#pragma unroll
    for (int i = 0; i < kRowWarps; ++i) amax = max(amax, warp_amax[warp - part + i]);
  }
  const float row_scale = tensor_decode_scale(u2f(amax << 16), element_max(p.kind));
  if (lane == 0 && part == 0) p.decode_scales[row] = row_scale;
  const Divider div(row_scale);
  uint2* dst = reinterpret_cast<uint2*>(p.data + row * p.seg.padded_cols + first);
  if (!div.unscaled()) {  // rare (a row scale near the ends of the binary32 range): the checked division, rolled, from memory again
#pragma unroll 1
    for (int i = lane; i < kPart / 8 && first + i * 8 < cols; i += 32) {
      const uint4 v = base[i];
      const uint32_t raw[4] = {v.x, v.y, v.z, v.w};
      float x[8];
#pragma unroll
      for (int e = 0; e < 8; ++e) x[e] = div(e & 1 ? high_bf16(raw[e / 2]) : low_bf16(raw[e / 2]));
      dst[i] = fp8_eight(p.kind, x);
    }
    return;
  }
#pragma unroll
  for (int q = 0; q < kWords / 4; ++q) {
    if (first + (32 * q + lane) * 8 >= cols) continue;
    float x[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) x[e] = div.fast_quotient(e & 1 ? high_bf16(w[4 * q + e / 2]) : low_bf16(w[4 * q + e / 2]));
    dst[32 * q + lane] = fp8_eight(p.kind, x);
  }
}

// This lane's 8 values of segment `first` of `row` as binary32 (zeros past K), rotated when asked (per-row CTA kernel).
__device__ __forceinline__ void load8(const QuantizeParams& p, const uint16_t* src, int row, int first, int lane, float (&v)[8]) {
  const int col0 = first + lane * 8;
  uint4 raw = make_uint4(0, 0, 0, 0);
  if (col0 < p.seg.cols) raw = *reinterpret_cast<const uint4*>(src + (int64_t)row * p.seg.cols + col0);
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) v[2 * j] = low_bf16(w[j]), v[2 * j + 1] = high_bf16(w[j]);
  if (p.seg.g != 0) rotate_segment<8>(p.seg, lane, col0 < p.seg.cols, v);
}

// FP8 per-row, rotated or K > the warp kernel's: a CTA holds one row in registers (warp w: segments w, w + 16, ...),
// reduces its finite amax, writes the decode scale and the codes.
__global__ void __launch_bounds__(32 * kRowWarps) row_kernel(QuantizeParams p, const uint16_t* src) {
  __shared__ uint32_t warp_amax[kRowWarps];
  __shared__ float row_scale;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, row = blockIdx.x;
  float v[kRowSegmentsPerWarp][8];
  uint32_t amax = 0;
#pragma unroll
  for (int i = 0; i < kRowSegmentsPerWarp; ++i) {
    const int first = (warp + i * kRowWarps) * kRowSegment;
    if (first < p.seg.cols) {  // warp-uniform
      load8(p, src, row, first, lane, v[i]);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const uint32_t bits = abs_bits(v[i][e]);
        amax = bits > amax && is_finite_bits(bits) ? bits : amax;
      }
    }
  }
  for (int o = 16; o > 0; o >>= 1) amax = max(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, o));
  if (lane == 0) warp_amax[warp] = amax;
  __syncthreads();
  if (threadIdx.x == 0) {
    uint32_t m = 0;
    for (int w = 0; w < kRowWarps; ++w) m = max(m, warp_amax[w]);
    row_scale = tensor_decode_scale(u2f(m), element_max(p.kind));
    p.decode_scales[row] = row_scale;
  }
  __syncthreads();
  const Divider div(row_scale);
#pragma unroll
  for (int i = 0; i < kRowSegmentsPerWarp; ++i) {
    const int col0 = (warp + i * kRowWarps) * kRowSegment + lane * 8;
    if (col0 >= p.seg.cols) continue;
    float x[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) x[e] = v[i][e];
    divide_all<8>(div, x);
    *reinterpret_cast<uint2*>(p.data + (int64_t)row * p.seg.padded_cols + col0) = fp8_eight(p.kind, x);
  }
}

// BF16 source, K a multiple of 8, 16-byte aligned rows and data, fewer than 2^31 pieces.
bool eligible(const QuantizeLaunch& q) {
  if (q.format == kFmtMxint8 || q.stochastic) return false;  // integer and stochastic encodings live in the other kernels
  const int64_t pieces = (int64_t)q.rows * ((q.padded_cols + kPiece - 1) / kPiece);
  return q.src_dtype == 1 && q.cols % 8 == 0 && reinterpret_cast<uintptr_t>(q.src) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(q.data) % 16 == 0 && q.hadamard <= kPiece && pieces < (int64_t)1 << 31;
}

Loader loader_for(const QuantizeLaunch& q) {
  return Loader{static_cast<const uint16_t*>(q.src), q.cols, q.padded_cols, (q.padded_cols + kPiece - 1) / kPiece};
}

// Grid of a grid-stride kernel: every piece its own warp, at most as many CTAs as fit on the GPU at once (the occupancy
// query once per kernel: it costs host time on every launch otherwise).
template <auto Kernel>
int grid_for(int items, int multiprocessors) {
  static const int per_sm = [] {
    int n = 0;
    return cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, Kernel, 32 * kWarps, 0) == cudaSuccess && n > 0 ? n : 1;
  }();
  const int64_t blocks = ((int64_t)items + kWarps - 1) / kWarps, cap = (int64_t)multiprocessors * per_sm;
  return (int)(blocks < cap ? blocks : cap);
}

template <Family F, bool kRotated>
void launch_pieces(const QuantizeLaunch& q, int multiprocessors, cudaStream_t stream) {
  const QuantizeParams p = params_for(q, kPiece);
  const Loader load = loader_for(q);
  const int items = q.rows * load.pieces_per_row;
  piece_kernel<F, kRotated><<<grid_for<piece_kernel<F, kRotated>>(items, multiprocessors), 32 * kWarps, 0, stream>>>(p, load, items);
}

template <Family F>
void launch_pieces(const QuantizeLaunch& q, int multiprocessors, cudaStream_t stream) {
  if (q.hadamard) launch_pieces<F, true>(q, multiprocessors, stream);
  else launch_pieces<F, false>(q, multiprocessors, stream);
}

}  // namespace

bool launch_quantize_bf16_rows(const QuantizeLaunch& q, cudaStream_t stream) {
  if (q.format != kFmtFp8Row || !eligible(q) || q.cols > kMaxRowColumns) return false;
  const QuantizeParams p = params_for(q, kRowSegment);
  const auto* src = static_cast<const uint16_t*>(q.src);
  const auto ctas = [&](int row_warps) { return (q.rows + kRowWarpsPerCta / row_warps - 1) / (kRowWarpsPerCta / row_warps); };
  const int threads = 32 * kRowWarpsPerCta;
  // Unrotated: 2048 values per warp (about 60 registers, so 32 warps per multiprocessor keep loads in flight), 4096 past
  // 8192, up to kMaxRowColumns. Rotated rows take a CTA per row.
  static_assert(4 * 64 * 64 == kMaxRowColumns, "the widest row warp kernel covers every row this launch takes");
  if (q.hadamard != 0) row_kernel<<<q.rows, 32 * kRowWarps, 0, stream>>>(p, src);
  else if (q.cols <= 64 * 32) row_warp_kernel<32, 1><<<ctas(1), threads, 0, stream>>>(p, src);
  else if (q.cols <= 2 * 64 * 32) row_warp_kernel<32, 2><<<ctas(2), threads, 0, stream>>>(p, src);
  else if (q.cols <= 4 * 64 * 32) row_warp_kernel<32, 4><<<ctas(4), threads, 0, stream>>>(p, src);
  else row_warp_kernel<64, 4><<<ctas(4), threads, 0, stream>>>(p, src);
  check_cuda(cudaGetLastError(), "BF16 row quantize launch");
  return true;
}

bool launch_quantize_bf16_amax(const QuantizeLaunch& q, int multiprocessors, cudaStream_t stream) {
  if (!eligible(q) || (q.format != kFmtNvfp4 && q.format != kFmtFp8Tensor)) return false;
  const QuantizeParams p = params_for(q, kPiece);
  const Loader load = loader_for(q);
  const int items = q.rows * load.pieces_per_row;
  if (q.hadamard) amax_kernel<true><<<grid_for<amax_kernel<true>>(items, multiprocessors), 32 * kWarps, 0, stream>>>(p, load, items);
  else amax_kernel<false><<<grid_for<amax_kernel<false>>(items, multiprocessors), 32 * kWarps, 0, stream>>>(p, load, items);
  check_cuda(cudaGetLastError(), "BF16 amax launch");
  return true;
}

bool launch_quantize_bf16_segments(const QuantizeLaunch& q, int multiprocessors, cudaStream_t stream) {
  if (!eligible(q) || q.format == kFmtFp8Row) return false;
  if (q.format == kFmtMxfp4 || q.format == kFmtMxfp8) launch_pieces<kMx>(q, multiprocessors, stream);
  else if (q.format == kFmtNvfp4) launch_pieces<kNv>(q, multiprocessors, stream);
  else launch_pieces<kFp8>(q, multiprocessors, stream);
  check_cuda(cudaGetLastError(), "BF16 segment quantize launch");
  return true;
}

}  // namespace ms
