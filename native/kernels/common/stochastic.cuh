// Stochastic rounding of NUMERICS.md s7, shared by every quantize kernel: Philox4x32-10 random bytes that are a pure
// function of (seed, element index), and the rounding of a scaled binary32 value onto an element grid with one of them.
// Bit-identical to the managed StochasticRounding (the same integer and exact binary32 steps).
#pragma once
#include <cmath>
#include <cstdint>
#include "formats.cuh"

namespace ms {

// Philox4x32-10 (Salmon et al. 2011; Random123 / cuRAND): counter (c0, c1, 0, 0), key (k0, k1).
MS_HD void philox4x32_10(uint32_t c0, uint32_t c1, uint32_t k0, uint32_t k1, uint32_t (&out)[4]) {
  uint32_t c2 = 0, c3 = 0;
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    if (round != 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

// The 16 random bytes of elements 16 group .. 16 group + 15 (byte b of the result: element 16 group + b).
MS_HD void random_group(uint64_t seed, uint64_t group, uint32_t (&words)[4]) {
  philox4x32_10((uint32_t)group, (uint32_t)(group >> 32), (uint32_t)seed, (uint32_t)(seed >> 32), words);
}

MS_HD uint32_t random_byte(uint64_t seed, uint64_t index) {
  uint32_t w[4];
  random_group(seed, index >> 4, w);
  const uint32_t b = (uint32_t)(index & 15);
  return (w[b >> 2] >> (8 * (b & 3))) & 0xFFu;
}

// Binary32 bits of step(a), the spacing of the element grid at a >= 0 (a's exponent clamped to the element's smallest
// normal exponent, less the mantissa bits): E2M1 0.5 / 1 / 2, E4M3 2^(max(floor(log2 a), -6) - 3), E5M2 min exponent -14.
MS_HD uint32_t sr_step_bits(uint32_t abs, int kind) {
  const uint32_t mantissa = kind == kE2M1 ? 1 : kind == kE4M3 ? 3 : 2;
  const uint32_t min_exponent = kind == kE2M1 ? 127u << 23 : kind == kE4M3 ? 121u << 23 : 113u << 23;
  const uint32_t exponent = abs & 0x7F800000u;
  return (exponent > min_exponent ? exponent : min_exponent) - (mantissa << 23);
}

// The element code of the scaled value v rounded stochastically with random byte r: |v| >= max gives max; else
// t = |v| + (r / 256) step(|v|), q = min(floor(t / step(t)) step(t), max); sign kept, NaN as satfinite. Every step but
// the one addition is exact, so one binary32 rounding, as the managed reference.
MS_HD uint32_t sr_encode(float v, uint32_t r, int kind) {
  const uint32_t abs = abs_bits(v);
  if (is_nan_bits(abs)) return encode(v, kind);
  const float a = u2f(abs), max = element_max(kind);
  float q = max;
  if (a < max) {
    const float t = a + (float)r * u2f(sr_step_bits(abs, kind) - (8u << 23));
    const uint32_t step = sr_step_bits(f2u(t), kind);
    q = std::floor(t * u2f(0x7F000000u - step)) * u2f(step);
    q = q > max ? max : q;
  }
  return encode(u2f(f2u(q) | (f2u(v) & 0x80000000u)), kind);
}

}  // namespace ms
