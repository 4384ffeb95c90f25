// Fast element encoders shared by the bandwidth-bound quantizers (smxx_quantize_bf16.cu, smxx_quantize_dual.cu): each is
// bit-identical to the integer codecs of formats.cuh (and so to the reference), but built from a few binary32 and
// conversion instructions.
#pragma once
#include <cstdint>
#include "formats.cuh"

namespace ms {

// E2M1 RNE, saturating, of a finite binary32 (bit-identical to to_e2m1): |x| below 2 rounds to halves, [2, 4) to
// integers, from 4 to even integers; each is the binary32 rounding of |x| * {2, 1, 1/2} + 1.5 * 2^23 (ulp 1 there).
__device__ __forceinline__ uint32_t e2m1_code(float x) {
  const float a = fminf(fabsf(x), 8.0f);
  const bool ge2 = a >= 2.0f, ge4 = a >= 4.0f;
  const float m = ge4 ? 0.5f : ge2 ? 1.0f : 2.0f;
  const uint32_t bias = ge4 ? 0x4B3FFFFCu : ge2 ? 0x4B3FFFFEu : 0x4B400000u;  // 0x4B400000 - {4, 2, 0}
  const uint32_t code = __float_as_uint(__fmaf_rn(a, m, 12582912.0f)) - bias;
  return (code < 7u ? code : 7u) | ((__float_as_uint(x) >> 28) & 8u);
}

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
