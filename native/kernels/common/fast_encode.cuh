// Fast element encoders shared by the bandwidth-bound quantizers (smxx_quantize_bf16.cu, smxx_quantize_dual.cu): each is
// bit-identical to the integer codecs of formats.cuh (and so to the reference), but built from a few binary32 and
// conversion instructions.
#pragma once
#include <cstdint>
#include "formats.cuh"

namespace ms {

// RN(a / d) for a >= 0 finite, d > 0, y = RN(1/d), d and y normal: Markstein's theorem (q within one ulp, the remainder
// a - d q exact by FMA, one corrected rounding). The remainder is exact while a >= 2^-102; a smaller a only matters when
// the quotient is at least 2^-18 (E5M2 smallest half-step), which needs d < 2^-84: Divider scales a and d by
// 2^64 (exact) whenever d < 2^-60. Checked against the IEEE division on 2e7 random pairs (every quotient >= 2^-18 identical).
__device__ __forceinline__ float divide(float a, float d, float y) {
  const float q = __fmul_rn(a, y);
  return __fmaf_rn(__fmaf_rn(-d, q, a), y, q);
}

// The IEEE division for divisors outside Markstein's range, out of line: it is rare, and inlined at every call it would
// swell the kernels past the instruction cache.
static __device__ __noinline__ float divide_ieee(float a, float d) { return __fdiv_rn(a, d); }

// x / d with x's sign (also for -0 and for quotients below the normal range), Inf and NaN passed through (cvt saturates
// them; E2M1 blocks holding them are zeroed before).
struct Divider {
  float d, y, scale;
  bool fast;
  __device__ explicit Divider(float divisor) {
    fast = divisor >= 0x1p-125f && divisor <= 0x1p125f;
    scale = divisor < 0x1p-60f ? 0x1p64f : 1.0f;
    d = fast ? __fmul_rn(divisor, scale) : divisor;
    y = fast ? __frcp_rn(d) : 0.0f;
  }
  __device__ float operator()(float x) const {
    if (!isfinite(x)) return x;
    const float q = fast ? divide(__fmul_rn(fabsf(x), scale), d, y) : divide_ieee(fabsf(x), d);
    return __uint_as_float(__float_as_uint(q) | (__float_as_uint(x) & 0x80000000u));
  }
  // The same where `fast` holds and no rescale is needed (divisor >= 2^-60), without branches (selects), for loops over
  // many values that test `unscaled()` once.
  __device__ __forceinline__ bool unscaled() const { return fast && scale == 1.0f; }
  __device__ __forceinline__ float fast_quotient(float x) const {
    const float q = divide(fabsf(x), d, y);
    return fabsf(x) < INFINITY ? __uint_as_float(__float_as_uint(q) | (__float_as_uint(x) & 0x80000000u)) : x;
  }
};

__device__ __forceinline__ uint32_t fp8x2(float lo, float hi, int kind) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  uint16_t r;
  if (kind == kE4M3) asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(hi), "f"(lo));
  else asm("cvt.rn.satfinite.e5m2x2.f32 %0, %1, %2;" : "=h"(r) : "f"(hi), "f"(lo));
  return r;
#else
  return encode(lo, kind) | (encode(hi, kind) << 8);
#endif
}

__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b, uint32_t selector) {
  uint32_t r;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(selector));
  return r;
}

// E2M1 magnitude of a = |x| (finite, scaled) as a binary32 whose low byte is the code: the smallest of RNE(2a),
// RNE(a) + 2, RNE(a / 2) + 4 and 7, each one FMA onto 1.5 * 2^23 (ulp 1 there). The right one of the three (a below 2,
// below 4, from 4) is never above the others (2a <= a + 2 <= a / 2 + 4 below 2, and so on), and RNE(y) + 2k = RNE(y + 2k),
// so ties still go to even codes. Bit-identical to to_e2m1 (formats.cuh).
__device__ __forceinline__ uint32_t e2m1_magnitude(float x) {
  const float a = fabsf(x), magic = 12582912.0f;
  const float c1 = __fmaf_rn(a, 2.0f, magic), c2 = __fadd_rn(a, magic + 2.0f), c3 = __fmaf_rn(a, 0.5f, magic + 4.0f);
  return __float_as_uint(fminf(fminf(c1, c2), fminf(c3, magic + 7.0f)));
}

// Packs 8 E2M1 codes, the low byte of each of m[0..7] (< 16), into nibbles 0..7 of a word: bytes of the even and the odd
// elements gathered with byte permutes, then even | odd << 4. `signs`: when set, bit 31 of sign_source[e] becomes bit 3 of
// nibble e (the prmt sign-replicate mode copies a byte's msb).
__device__ __forceinline__ uint32_t pack_e2m1(const uint32_t (&m)[8], const float* sign_source) {
  uint32_t even = prmt(prmt(m[0], m[2], 0x0040), prmt(m[4], m[6], 0x0040), 0x5410);
  uint32_t odd = prmt(prmt(m[1], m[3], 0x0040), prmt(m[5], m[7], 0x0040), 0x5410);
  if (sign_source) {
    uint32_t b[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) b[e] = __float_as_uint(sign_source[e]);
    const uint32_t even_signs = prmt(prmt(b[0], b[2], 0x00FB), prmt(b[4], b[6], 0x00FB), 0x5410);
    const uint32_t odd_signs = prmt(prmt(b[1], b[3], 0x00FB), prmt(b[5], b[7], 0x00FB), 0x5410);
    even |= even_signs & 0x08080808u;
    odd |= odd_signs & 0x08080808u;
  }
  return even + (odd << 4);
}

// Stochastic rounding (NUMERICS.md s7) of a finite scaled value x with random byte r, the steps of stochastic.cuh's
// sr_encode on binary32 bits: t = |x| + r/256 step(|x|) is one FMA (the product is exact), and flooring t to the grid is
// truncating its mantissa where the grid is binary32-like.
// E2M1: step 0.5 / 1 / 2; t >= 1 truncates to one mantissa bit, whose code is (bits >> 22) - 252; below 1 the grid is {0, 0.5}.
__device__ __forceinline__ uint32_t e2m1_code_sr(float x, uint32_t r) {
  const uint32_t abs = __float_as_uint(x) & 0x7FFFFFFFu, exponent = abs & 0x7F800000u;
  const uint32_t step = (exponent > 0x3F800000u ? exponent : 0x3F800000u) - 0x00800000u;
  const float t = __fmaf_rn(__uint_as_float(0x4B000000u | r) - 8388608.0f, __uint_as_float(step - (8u << 23)), __uint_as_float(abs));
  const uint32_t code = t >= 1.0f ? min((__float_as_uint(t) >> 22) - 252u, 7u) : (t >= 0.5f ? 1u : 0u);
  return code | ((__float_as_uint(x) >> 28) & 8u);
}

// FP8 (E4M3 / E5M2): the grid value q (with x's sign) that the RNE conversion then encodes exactly.
__device__ __forceinline__ float fp8_value_sr(float x, uint32_t r, int kind) {
  const bool e4m3 = kind == kE4M3;
  const uint32_t mantissa = e4m3 ? 3u : 2u, min_exponent = e4m3 ? 121u << 23 : 113u << 23;  // 2^-6, 2^-14
  const float max = e4m3 ? 448.0f : 57344.0f;
  const uint32_t abs = __float_as_uint(x) & 0x7FFFFFFFu, exponent = abs & 0x7F800000u;
  const uint32_t step = (exponent > min_exponent ? exponent : min_exponent) - (mantissa << 23);
  const float t = __fmaf_rn(__uint_as_float(0x4B000000u | r) - 8388608.0f, __uint_as_float(step - (8u << 23)), __uint_as_float(abs));
  const uint32_t tb = __float_as_uint(t);
  const uint32_t subnormal_step = min_exponent - (mantissa << 23);
  float q = tb >= min_exponent ? __uint_as_float(tb & ~((1u << (23 - mantissa)) - 1u))
                               : __fmul_rn(floorf(__fmul_rn(t, __uint_as_float(0x7F000000u - subnormal_step))), __uint_as_float(subnormal_step));
  q = __uint_as_float(abs) >= max ? max : fminf(q, max);
  return __uint_as_float(__float_as_uint(q) | (__float_as_uint(x) & 0x80000000u));
}

}  // namespace ms
