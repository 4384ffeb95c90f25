// Decode GEMM (sm_80+; built for M <= 64 tokens): C[m, n] = alpha * sum_k deq(a)[m, k] * deq(w)[n, k] (+ bias[n]), bound
// by reading the weights w [N, K] once. Above 64 tokens, grid z runs blocks of 64 tokens, each streaming the weights again
// (from L2 where they fit): far from a prefill GEMM's speed, but the fastest path for FP4 weights on GPUs without FP4
// tensor cores until a tiled one exists. Weights: MXFP4, NVFP4 (W4A16 / W4A8 / W4A4) or FP8 per-tensor / per-row (W8A16 / W8A8);
// activations: BF16, FP8 E4M3/E5M2 with per-tensor / per-token scales, or MXFP4 / NVFP4 with weights of the same format.
// Study: Marlin (FP4 -> BF16 by bit placement, weights as the MMA's M side), TensorRT-LLM weight-only GEMV (split over K).
//  - A CTA of 8 warps owns 128 weight rows (16 per warp: the M side of mma.sync m16n8k16) and a range of K chunks (64 bytes
//    of every row: 128 FP4 or 64 FP8 values). Each lane of a quad streams 16 contiguous bytes of rows g and g+8 per chunk
//    with 16-byte loads, kPrefetch chunks in flight, no L1 allocation. Prepacked weights (MS_LAYOUT_TILED_16X128, the kTiled
//    kernels) hold those 16 rows x 64 bytes contiguously, so a warp's load is one 512-byte piece (H200: 10-18% less time).
//  - Dequantization is exact into BF16 registers: FP4 nibbles are placed into BF16 bit fields (value x 2^-126, Marlin's trick)
//    and multiplied (fma.rn.bf16x2) by the block scale times 2^126 (MX: 2^(e-1), a second factor when e > 128; NVFP4: the
//    UE4M3 scale x 2^118, the remaining 2^8 and the tensor scale in the epilogue); FP8 goes through cvt to F16 and FP32.
//    Every product of the MMA is then exact and the accumulation is FP32.
//  - Activations of the CTA's K range are staged in shared memory as BF16 (FP8 converted exactly; FP4 blocks dequantized
//    exactly: NVFP4 as E2M1 x UE4M3, MXFP4 as E2M1 x 2^(e-129), every such value a BF16 one, the 2^2 and NVFP4's tensor
//    scale applied in the epilogue): a row per token and one
//    zero row that lanes of tokens past M read. For FP4 weights each 8-value group is permuted into the order the nibble
//    extraction produces (the reduction order over K is free; A and B fragments only have to agree) and each chunk's
//    16-byte units are transposed so that a quad reads 64 contiguous bytes (staged_offset). Lane (g, t) reads token g's
//    values at the K offsets its own weights cover.
//  - Split-K over CTAs when N alone cannot fill the GPU: partial sums go to the workspace, the last CTA of a row tile
//    (arrival counter) adds them in split order, so results do not depend on timing, resets the counter and runs the
//    epilogue. Without a workspace the kernel runs unsplit.
// Tile config names: ms_sm80_decode_gemm_nt_128x<8*T>_<weights>: 128 weight rows per CTA, 8*T token columns (T mma tiles).
// Error bound (GemmAccuracy): exact products, FP32 accumulation inside the tensor core (aligned, truncated sums of 16
// products) and across chunks and splits, scales in FP32: eps = 2^-17 + (K + 8) 2^-24; the Gpu tests measure the real ratio.
#include <cuda_runtime_api.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include "common/formats.cuh"
#include "launch.h"
#include "../src/error.h"

namespace ms {

namespace {

constexpr int kWarps = 8, kThreads = kWarps * 32;
constexpr int kRowsPerCta = kWarps * 16;
constexpr int kChunkBytes = 64;        // bytes of one weight row per chunk (16 per lane of a quad)
constexpr int kCounterBytes = (int)kWorkspaceCounterBytes;  // split-K arrival counters (one int per 128-row tile) at the start of the workspace
constexpr int kMaxSplitTiles = kCounterBytes / 4;
// Staged activations per CTA: up to 16 tokens within the 48 KB that needs no opt-in (3 CTAs per SM); 32 and 64 tokens
// take 100 KB (2 CTAs per SM) so that a CTA restages rarely (each restage reads 32-64 token rows from L2).
constexpr int kNoOptInStagedBytes = 46 * 1024;
constexpr int max_staged_bytes(int tiles) { return tiles <= 2 ? kNoOptInStagedBytes : 100 * 1024; }

enum WeightKind { kWMx4 = 0, kWNv4 = 1, kWE4M3 = 2, kWE5M2 = 3 };
enum ActKind { kABf16 = 0, kAE4M3 = 1, kAE5M2 = 2, kAMx4 = 3, kANv4 = 4 };

template <int W> struct WeightTraits {
  static constexpr bool kFp4 = W == kWMx4 || W == kWNv4;
  static constexpr int kChunkK = kFp4 ? 128 : 64;  // K values of one chunk
  static constexpr int kLaneK = kChunkK / 4;       // K values one lane covers per chunk
  static constexpr int kRowPad = kFp4 ? 64 : 8;  // bytes added to a staged token row against bank conflicts
};

struct DecodeParams {
  int m, n, k;
  int chunks, chunks_per_cta, ksplit;
  int staged_chunks, staged_row_bytes;  // activations are staged for this many chunks at a time
  const uint8_t* __restrict__ w;
  int64_t w_row_bytes;
  const uint8_t* __restrict__ w_scales;
  int w_scale_cols, w_swizzled;
  const float* __restrict__ w_decode;  // NVFP4 g / FP8 [1] or [n]; null for MX
  int w_per_row;
  const void* __restrict__ a;
  int a_kind;
  const float* __restrict__ a_decode;  // FP8 activations: [1] or [m]; NVFP4: [1]; null for BF16 and MXFP4
  int a_per_row;
  const uint8_t* __restrict__ a_scales;  // FP4 activations' block scales
  int a_scale_cols, a_swizzled;
  float a_factor;  // what the staged activations lack: 4 for MXFP4 (staged x 2^-2), else 1
  float alpha;
  const float* __restrict__ bias;
  void* out;
  int out_dtype;
  float* partials;  // [ksplit][n_pad][8T]
  int* counters;    // [row tiles], zero between runs
  int early_weights;  // launched as a programmatic dependent: the first weight chunks load before waiting for the previous grid
};

// Programmatic dependent launch (sm_90+): the next kernel on the stream may launch once every CTA of this one has started,
// and this one waits for the previous grid (its completion and memory flush) only where it first reads what that grid may
// have written. Without the launch attribute both are no-ops.
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void wait_for_previous_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// ---------------------------------------------------------------------------------------------------------------- device

__device__ __forceinline__ uint4 load_stream(const uint8_t* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

__device__ __forceinline__ uint32_t bf16x2_fma(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t d;
  asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}
constexpr uint32_t kNegZeroX2 = 0x80008000u;  // x * s + (-0) == x * s exactly, also for x * s == +0

__device__ __forceinline__ void mma_bf16(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// Eight E2M1 nibbles of q (nibble j = bits 4j..4j+3) -> four BF16 pairs holding value x 2^-126 (exact; 0.5 becomes the
// BF16 subnormal 2^-127): p[j] = (nibble j, nibble j + 4).
__device__ __forceinline__ void fp4x8_to_bf16(uint32_t q, uint32_t (&p)[4]) {
  p[3] = (q & 0x80008000u) | ((q & 0x70007000u) >> 6);
  q <<= 4;
  p[2] = (q & 0x80008000u) | ((q & 0x70007000u) >> 6);
  q <<= 4;
  p[1] = (q & 0x80008000u) | ((q & 0x70007000u) >> 6);
  q <<= 4;
  p[0] = (q & 0x80008000u) | ((q & 0x70007000u) >> 6);
}

// Two FP8 codes (low byte first) -> a BF16 pair, exactly (every E4M3 / E5M2 value, NaN included, is a BF16 value).
template <int kKind> __device__ __forceinline__ uint32_t fp8x2_to_bf16(uint32_t v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  uint32_t h;
  if (kKind == kE4M3) asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h) : "h"((uint16_t)v));
  else asm("cvt.rn.f16x2.e5m2x2 %0, %1;" : "=r"(h) : "h"((uint16_t)v));
  return pack_bf16x2(__half2float(__ushort_as_half((unsigned short)(h & 0xFFFFu))), __half2float(__ushort_as_half((unsigned short)(h >> 16))));
#else
  return pack_bf16x2(decode(v & 0xFFu, kKind), decode((v >> 8) & 0xFFu, kKind));
#endif
}

// The BF16 multiplier of an MX block, in both halves: value x 2^-126 times it is value x 2^(e-127) for e <= 128 (2^(e-1));
// above, it is 2^127 and mx_second_x2 holds the rest, 2^(e-128); e = 255 (NaN scale) gives NaN.
__device__ __forceinline__ uint32_t mx_multiplier_x2(uint32_t e) {
  return e == 255u ? 0x7FC07FC0u : ((e > 128u ? 128u : e) + 126u) * 0x00800080u;
}
__device__ __forceinline__ bool mx_needs_second(uint32_t e) { return e > 128u && e != 255u; }
__device__ __forceinline__ uint32_t mx_second_x2(uint32_t e) { return mx_needs_second(e) ? (e - 1u) * 0x00800080u : 0x3F803F80u; }

// The BF16 multiplier of an NVFP4 block: UE4M3 scale s x 2^118 (value x 2^-126 times it is value x s x 2^-8, a normal
// BF16; the epilogue multiplies by 2^8). Exact: s has at most 4 significant bits.
__device__ __forceinline__ uint32_t nv_multiplier(uint32_t c) {
  if (c == 0x7Fu) return 0x7FC0u;
  if (c >= 8u) return (c << 4) + 0x7700u;           // (E + 238) << 7 | m << 4
  return f2u((float)c * 0x1p109f) >> 16;           // subnormal: c x 2^-9 x 2^118
}

__device__ __forceinline__ uint32_t splat(uint32_t bf16) { return bf16 | (bf16 << 16); }

// Byte offset of 16-byte unit `unit` (8 staged K values) in a token row. FP4 weights: within each chunk (16 units), lane t
// reads natural units 4t + i (i = 0..3, one per word); they are stored at i * 4 + t, so a quad reads 64 contiguous bytes
// per word and its four words sit at immediate offsets (with the 64-byte row pad, two tokens of a quarter-warp phase hit
// distinct banks). FP8 weights keep the natural order (a lane reads 8 bytes per word; the 8-byte pad spreads tokens).
template <int W> __device__ __forceinline__ int staged_offset(int unit) {
  if (WeightTraits<W>::kFp4) unit = (unit & ~15) | ((unit & 3) << 2) | ((unit >> 2) & 3);
  return unit * 16;
}

__device__ __forceinline__ uint4 lds128(uint32_t address) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(address));
  return v;
}
__device__ __forceinline__ uint2 lds64(uint32_t address) {
  uint2 v;
  asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];" : "=r"(v.x), "=r"(v.y) : "r"(address));
  return v;
}

// Stages the activations of p.staged_chunks chunks from K offset k0 as BF16 (k >= K as zeros): a row per token < m, and
// on the first piece (`zero_row`) row min(m, 8T) of zeros, which lanes of tokens >= m read.
// kFp4A: the W4A4 kernels stage only FP4 activations; the others never do (each keeps its own register budget).
template <int W, int T, bool kFp4A> __device__ void stage_activations(const DecodeParams& p, int k0, uint8_t* smem, bool zero_row) {
  const int m_base = T == 8 ? blockIdx.z * 64 : 0;  // this CTA's first token (only 64-token kernels run several blocks)
  const int tokens = min(p.m - m_base, 8 * T);
  const int units_per_row = p.staged_chunks * WeightTraits<W>::kChunkK / 8;
  const int units = (tokens + (zero_row && tokens < 8 * T ? 1 : 0)) * units_per_row;
  for (int u = threadIdx.x; u < units; u += kThreads) {
    const int token = u / units_per_row, unit = u % units_per_row, k = k0 + unit * 8;
    uint32_t x[4] = {0, 0, 0, 0};  // natural order: x[j] = values (2j, 2j+1)
    if (token < tokens && k < p.k) {
      const int64_t index = (int64_t)(m_base + token) * p.k + k;
      if constexpr (kFp4A) {
        // Eight E2M1 codes (element 2j in the low nibble of byte j) of one scale block. MX: (v / 4) x 2^(e-127) spans
        // 2^-130 ... 1.5 x 2^127, exact in binary32 and in BF16 (subnormals reach 2^-133); NVFP4: v x s has at most 6
        // significant bits within 2^-10 ... 2688. Binary32 products are exact (no FTZ), so the BF16 rounding is too.
        const bool mx = p.a_kind == kAMx4;
        const uint32_t q = *reinterpret_cast<const uint32_t*>(static_cast<const uint8_t*>(p.a) + index / 2);
        const uint32_t code = p.a_scales[scale_offset(m_base + token, k / (mx ? 32 : 16), p.a_scale_cols, p.a_swizzled != 0)];
        const float scale = mx ? from_e8m0(code) * 0.25f : from_e4m3(code);
        // A value whose dequantization overflows binary32 (4|x| >= 2^128) is staged as Inf, as the reference has it.
        auto value = [&](uint32_t c) {
          const float x = from_e2m1(c) * scale;
          return mx && fabsf(x) >= 0x1p126f ? copysignf(__int_as_float(0x7F800000), x) : x;
        };
        for (int j = 0; j < 4; ++j) x[j] = pack_bf16x2(value((q >> (8 * j)) & 0xFu), value((q >> (8 * j + 4)) & 0xFu));
      } else if (p.a_kind == kABf16) {
        uint4 v = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(p.a) + index);
        x[0] = v.x, x[1] = v.y, x[2] = v.z, x[3] = v.w;
      } else {
        uint2 v = *reinterpret_cast<const uint2*>(static_cast<const uint8_t*>(p.a) + index);
        for (int j = 0; j < 4; ++j) {
          uint32_t pair = ((j < 2 ? v.x : v.y) >> (16 * (j & 1))) & 0xFFFFu;
          x[j] = p.a_kind == kAE4M3 ? fp8x2_to_bf16<kE4M3>(pair) : fp8x2_to_bf16<kE5M2>(pair);
        }
      }
    }
    uint8_t* row = smem + token * p.staged_row_bytes;
    if (WeightTraits<W>::kFp4) {
      // Pairs (v0, v4), (v1, v5), (v2, v6), (v3, v7): the order fp4x8_to_bf16 produces.
      uint4 s;
      s.x = __byte_perm(x[0], x[2], 0x5410);
      s.y = __byte_perm(x[0], x[2], 0x7632);
      s.z = __byte_perm(x[1], x[3], 0x5410);
      s.w = __byte_perm(x[1], x[3], 0x7632);
      *reinterpret_cast<uint4*>(row + staged_offset<W>(unit)) = s;
    } else {
      uint2* dst = reinterpret_cast<uint2*>(row + staged_offset<W>(unit));  // rows are 8-byte aligned (pad 8)
      dst[0] = make_uint2(x[0], x[1]);
      dst[1] = make_uint2(x[2], x[3]);
    }
  }
}

// One chunk of FP4 weights: for each of the lane's four words, dequantize 8 values of rows g and g + 8, scale them (when
// `second`, also by the second MX factor of exponents e0 / e1), and multiply with the staged activations of every token tile.
template <int T>
__device__ __forceinline__ void fp4_chunk(float (&acc)[T][4], const uint32_t* q0, const uint32_t* q1, const uint32_t (&m0)[2], const uint32_t (&m1)[2],
                                          bool second, uint32_t e0, uint32_t e1, const uint32_t (&x_base)[T], int cs) {
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    uint32_t a[4], b[4];
    fp4x8_to_bf16(q0[i], a);
    fp4x8_to_bf16(q1[i], b);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      a[j] = bf16x2_fma(a[j], m0[i / 2], kNegZeroX2);
      b[j] = bf16x2_fma(b[j], m1[i / 2], kNegZeroX2);
    }
    if (second) {  // warp-uniform, rare
      const uint32_t f0 = mx_second_x2(e0), f1 = mx_second_x2(e1);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        a[j] = bf16x2_fma(a[j], f0, kNegZeroX2);
        b[j] = bf16x2_fma(b[j], f1, kNegZeroX2);
      }
    }
#pragma unroll
    for (int tt = 0; tt < T; ++tt) {
      const uint4 x = lds128(x_base[tt] + cs * 256 + i * 64);  // staged_offset: unit 16 cs + 4 t + i at 16 (16 cs + 4 i + t)
      mma_bf16(acc[tt], a[0], b[0], a[1], b[1], x.x, x.y);
      mma_bf16(acc[tt], a[2], b[2], a[3], b[3], x.z, x.w);
    }
  }
}

// CTAs per SM the registers must allow: 3 up to 16 tokens (2 for W4A4, whose FP4 staging needs more), 1 for 64 tokens of
// NVFP4, else 2. CUDA 13's ptxas needs a few more registers for sm_100a / sm_120a than for sm_90a and spilled (12-52 bytes
// in 24 of 32 instances) under those caps, so Blackwell builds allow one CTA fewer, and NVFP4 weights x one token (still
// 12 bytes of spills at 2 CTAs there) one CTA (not timed: no Blackwell GPU at hand).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 1000
constexpr int kFewerCtasOnThisArch = 1;
#else
constexpr int kFewerCtasOnThisArch = 0;
#endif
constexpr int min_ctas_per_sm(int W, int T, bool fp4_activations, bool tiled) {
  // CUDA 13's ptxas spilled 8 bytes in the W4A4 NVFP4 kernel of 32 tokens with tiled weights at 2 CTAs (sm_90a).
  if (tiled && W == kWNv4 && T == 4 && fp4_activations) return 1;
  const int ctas = T == 8 && W == kWNv4 ? 1 : T <= 2 && !fp4_activations ? 3 : 2;
  if (kFewerCtasOnThisArch && W == kWNv4 && T == 1) return 1;
  return ctas - kFewerCtasOnThisArch > 1 ? ctas - kFewerCtasOnThisArch : 1;
}

template <int W, int T, bool kFp4A, bool kTiled>
__global__ void __launch_bounds__(kThreads, min_ctas_per_sm(W, T, kFp4A, kTiled)) decode_gemm_kernel(const DecodeParams p) {
  using Traits = WeightTraits<W>;
  // (One token with 2 CTAs per SM and 8 chunks in flight measured 10-17% slower on the H200 than 3 CTAs and 4 chunks.)
  constexpr int kPrefetch = T >= 4 || (T == 2 && W == kWNv4) ? 2 : T == 1 ? 4 : 3;  // chunks per warp in flight, within the register budget
  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ int s_last;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  // Row tile, K split, first token (only the 64-token kernels run several token blocks, along z).
  const int tile = blockIdx.x, split = blockIdx.y, m_base = T == 8 ? blockIdx.z * 64 : 0;
  const int chunk0 = split * p.chunks_per_cta;
  const int nchunks = min(p.chunks_per_cta, p.chunks - chunk0);
  const int row0 = tile * kRowsPerCta + warp * 16 + g, row1 = row0 + 8;
  const bool row0_ok = row0 < p.n, row1_ok = row1 < p.n;

  // This lane's 16 bytes of row0 in chunk c are at w_next + 64 (c - next) (row1: + row8); its block scales (FP4) at s_next
  // + scale_step (c - next) (row1: + scale8): one E8M0 byte (MX, block 4c + t) or two UE4M3 bytes (NVFP4, blocks 8c + 2t
  // and 8c + 2t + 1). In the 128x4 layout a chunk's scales of one row are one (MX) or two (NVFP4) 4-byte groups 512 bytes
  // apart, and rows r and r + 8 are 128 bytes apart. Loads past K or past N give zeros (chunks0 / chunks1: valid chunks).
  // Tiled weights (kTiled: MS_LAYOUT_TILED_16X128, FP4 only): the warp's 16 rows of a chunk are 1024 contiguous bytes, lane
  // L's 16 bytes of row g at 16 L and of row g + 8 at 512 + 16 L; its scales (rows g, g + 8) are adjacent, 64 (MX) or 128
  // (NVFP4) bytes per chunk. A template parameter, so that every stride is an immediate (the one-token kernels have no
  // register to spare).
  constexpr int w_step = kTiled ? 1024 : kChunkBytes;
  const int64_t group_chunk0 = (int64_t)(tile * kWarps + warp) * p.chunks + chunk0;  // tiled: this warp's first tile
  const uint8_t* w_next = kTiled ? p.w + group_chunk0 * 1024 + lane * 16
                                 : p.w + (int64_t)(row0_ok ? row0 : 0) * p.w_row_bytes + (int64_t)chunk0 * kChunkBytes + t * 16;
  const int64_t row8 = kTiled ? 512 : 8 * p.w_row_bytes;
  const int scale_step = kTiled ? (W == kWMx4 ? 64 : 128) : W == kWMx4 ? (p.w_swizzled ? 512 : 4) : (p.w_swizzled ? 1024 : 8);
  const int scale8 = p.w_swizzled ? 128 : 8 * p.w_scale_cols;  // untiled
  const uint8_t* s_next = nullptr;
  if (kTiled) s_next = p.w_scales + group_chunk0 * scale_step + lane * (W == kWMx4 ? 2 : 4);
  else if (Traits::kFp4)
    s_next = p.w_scales + scale_offset(row0_ok ? row0 : 0, W == kWMx4 ? t : 2 * t, p.w_scale_cols, p.w_swizzled) + (int64_t)chunk0 * scale_step;
  const int lane_k0 = chunk0 * Traits::kChunkK + t * Traits::kLaneK;
  const int lane_chunks = p.k > lane_k0 ? min(nchunks, (p.k - lane_k0 + Traits::kChunkK - 1) / Traits::kChunkK) : 0;
  // Tiled: rows past N within the last 16-row tile are zeros in memory, so one predicate (the warp's tile exists) serves both.
  const bool group_ok = tile * kRowsPerCta + warp * 16 < p.n;
  const int chunks0 = (kTiled ? group_ok : row0_ok) ? lane_chunks : 0, chunks1 = kTiled ? chunks0 : row1_ok ? lane_chunks : 0;
  uint4 wr[kPrefetch][2];
  uint32_t sr[kPrefetch][kTiled ? 1 : 2];
  auto load_chunk = [&](int c, int slot) {  // c: the chunk at w_next / s_next
    wr[slot][0] = c < chunks0 ? load_stream(w_next) : make_uint4(0, 0, 0, 0);
    wr[slot][1] = c < chunks1 ? load_stream(w_next + row8) : make_uint4(0, 0, 0, 0);
    if constexpr (kTiled) {  // both rows' scales in one load and one register: MX 2 bytes, NVFP4 4 (row g, then row g + 8)
      sr[slot][0] = c >= chunks0 ? 0u : W == kWMx4 ? (uint32_t)*reinterpret_cast<const uint16_t*>(s_next) : *reinterpret_cast<const uint32_t*>(s_next);
    } else if constexpr (W == kWMx4) {
      sr[slot][0] = c < chunks0 ? (uint32_t)s_next[0] : 0u;
      sr[slot][1] = c < chunks1 ? (uint32_t)s_next[scale8] : 0u;
    } else if constexpr (W == kWNv4) {
      sr[slot][0] = c < chunks0 ? (uint32_t)*reinterpret_cast<const uint16_t*>(s_next) : 0u;
      sr[slot][1] = c < chunks1 ? (uint32_t)*reinterpret_cast<const uint16_t*>(s_next + scale8) : 0u;
    }
    w_next += w_step;
    if (Traits::kFp4) s_next += scale_step;
  };
  allow_dependent_launch();
  if (!p.early_weights) wait_for_previous_grid();
#pragma unroll
  for (int s = 0; s < kPrefetch; ++s) load_chunk(s, s);  // chunks past nchunks load nothing (c >= chunks0, chunks1)
  if (p.early_weights) wait_for_previous_grid();

  stage_activations<W, T, kFp4A>(p, chunk0 * Traits::kChunkK, smem, true);
  __syncthreads();

  // Shared address of this lane's activations for token tile tt (tokens >= m read the zero row) at chunk 0 of the piece.
  const int staged_tokens = min(p.m - m_base, 8 * T);
  uint32_t x_base[T];
#pragma unroll
  for (int tt = 0; tt < T; ++tt) {
    const int row = tt * 8 + g < staged_tokens ? tt * 8 + g : staged_tokens;
    x_base[tt] = static_cast<uint32_t>(__cvta_generic_to_shared(smem)) + row * p.staged_row_bytes + (Traits::kFp4 ? t * 16 : t * 32);
  }

  float acc[T][4];
#pragma unroll
  for (int i = 0; i < T; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;

  int cs = 0;  // chunk within the staged activations
  for (int c0 = 0; c0 < nchunks; c0 += kPrefetch) {
#pragma unroll
    for (int s = 0; s < kPrefetch; ++s) {
      const int c = c0 + s;
      if (c >= nchunks) break;
      if (cs == p.staged_chunks) {  // the next piece of activations (uniform across the CTA)
        __syncthreads();
        stage_activations<W, T, kFp4A>(p, (chunk0 + c) * Traits::kChunkK, smem, false);
        __syncthreads();
        cs = 0;
      }
      const uint32_t* q0 = reinterpret_cast<const uint32_t*>(&wr[s][0]);
      const uint32_t* q1 = reinterpret_cast<const uint32_t*>(&wr[s][1]);
      if (Traits::kFp4) {
        // Multipliers (BF16 pairs): MX one block per lane and row; NVFP4 two (words 0-1 and 2-3). MX exponents above 128
        // (scales above 2) need a second factor; a chunk that has one anywhere in the warp takes the two-factor copy.
        // Scale codes of rows g and g + 8 (tiled: both in sr[s][0]).
        const uint32_t s0 = kTiled ? sr[s][0] & (W == kWMx4 ? 0xFFu : 0xFFFFu) : sr[s][0];
        uint32_t s1;
        if constexpr (kTiled) s1 = sr[s][0] >> (W == kWMx4 ? 8 : 16);
        else s1 = sr[s][1];
        uint32_t m0[2], m1[2];
        if (W == kWMx4) {
          m0[0] = m0[1] = mx_multiplier_x2(s0);
          m1[0] = m1[1] = mx_multiplier_x2(s1);
        } else {
          m0[0] = splat(nv_multiplier(s0 & 0xFFu)), m0[1] = splat(nv_multiplier(s0 >> 8));
          m1[0] = splat(nv_multiplier(s1 & 0xFFu)), m1[1] = splat(nv_multiplier(s1 >> 8));
        }
        const bool second = W == kWMx4 && __any_sync(0xFFFFFFFFu, mx_needs_second(s0) || mx_needs_second(s1));
        fp4_chunk<T>(acc, q0, q1, m0, m1, second, s0, s1, x_base, cs);
      } else {
        constexpr int kKind = W == kWE4M3 ? kE4M3 : kE5M2;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const uint32_t a_lo = fp8x2_to_bf16<kKind>(q0[i]), a_hi = fp8x2_to_bf16<kKind>(q0[i] >> 16);
          const uint32_t b_lo = fp8x2_to_bf16<kKind>(q1[i]), b_hi = fp8x2_to_bf16<kKind>(q1[i] >> 16);
#pragma unroll
          for (int tt = 0; tt < T; ++tt) {
            const uint2 x = lds64(x_base[tt] + cs * 128 + i * 8);  // K cs * 64 + 16 t + 4 i, 2 bytes each
            mma_bf16(acc[tt], a_lo, b_lo, a_hi, b_hi, x.x, x.y);
          }
        }
      }
      ++cs;
      load_chunk(c + kPrefetch, s);  // predicated off past the last chunk
    }
  }

  // Split-K: publish the partial sums; the last CTA of the row tile adds all splits in order and finishes.
  // This lane's two partials of split s, row row0 + 8 h, token tile tt: [ksplit][n_pad][8T] floats.
  const int64_t n_pad = (int64_t)gridDim.x * kRowsPerCta;
  auto partial = [&](int s, int h, int tt) {
    return reinterpret_cast<float2*>(p.partials + ((int64_t)s * n_pad + row0 + 8 * h) * (8 * T) + tt * 8 + 2 * t);
  };
  if (p.ksplit > 1) {
#pragma unroll
    for (int tt = 0; tt < T; ++tt)
#pragma unroll
      for (int h = 0; h < 2; ++h) __stcg(partial(split, h, tt), make_float2(acc[tt][2 * h], acc[tt][2 * h + 1]));
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
      const int arrived = atomicAdd(p.counters + tile, 1);
      s_last = arrived == p.ksplit - 1;
      if (s_last) p.counters[tile] = 0;  // ready for the next run
    }
    __syncthreads();
    if (!s_last) return;
    __threadfence();
#pragma unroll
    for (int tt = 0; tt < T; ++tt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float sum0 = 0.0f, sum1 = 0.0f;
        for (int s = 0; s < p.ksplit; ++s) {
          const float2 v = __ldcg(partial(s, h, tt));
          sum0 += v.x, sum1 += v.y;
        }
        acc[tt][2 * h] = sum0, acc[tt][2 * h + 1] = sum1;
      }
  }

  // Epilogue: C[m, n] = alpha * a_scale[m] * w_scale[n] * acc + bias[n].
  const float w_factor = (W == kWNv4 ? 256.0f : 1.0f) * p.a_factor;  // NVFP4 multipliers carried 2^-8
#pragma unroll
  for (int tt = 0; tt < T; ++tt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = row0 + 8 * h;
      if (row >= p.n) continue;
      float w_scale = w_factor;
      if (p.w_decode) w_scale *= p.w_decode[p.w_per_row ? row : 0];
      const float bias = p.bias ? p.bias[row] : 0.0f;
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int m = m_base + tt * 8 + 2 * t + j;
        if (m >= p.m) continue;
        float scale = p.alpha * w_scale;
        if (p.a_decode) scale *= p.a_decode[p.a_per_row ? m : 0];
        const float value = acc[tt][2 * h + j] * scale + bias;
        const int64_t index = (int64_t)m * p.n + row;
        if (p.out_dtype == MS_DTYPE_F32) static_cast<float*>(p.out)[index] = value;
        else static_cast<uint16_t*>(p.out)[index] = p.out_dtype == MS_DTYPE_BF16 ? to_bf16(value) : to_f16(value);
      }
    }
}

// ------------------------------------------------------------------------------------------------------------------ host

int weight_kind(const ms_gemm_desc_t& d) {
  if (d.b_format == MS_FMT_MXFP4) return kWMx4;
  if (d.b_format == MS_FMT_NVFP4) return kWNv4;
  return d.b_element == MS_ELEM_E5M2 ? kWE5M2 : kWE4M3;
}

int token_tiles(int m) { return m <= 8 ? 1 : m <= 16 ? 2 : m <= 32 ? 4 : 8; }

const char* weight_name(int kind) {
  static const char* const names[] = {"mxfp4", "nvfp4", "e4m3", "e5m2"};
  return names[kind];
}

using Kernel = void (*)(DecodeParams);
template <int W, bool kFp4A, bool kTiled> Kernel kernel_for_tiles(int tiles) {
  switch (tiles) {
    case 1: return decode_gemm_kernel<W, 1, kFp4A, kTiled>;
    case 2: return decode_gemm_kernel<W, 2, kFp4A, kTiled>;
    case 4: return decode_gemm_kernel<W, 4, kFp4A, kTiled>;
    default: return decode_gemm_kernel<W, 8, kFp4A, kTiled>;
  }
}
template <int W, bool kTiled> Kernel fp4_kernel_for(int tiles, bool fp4_activations) {
  return fp4_activations ? kernel_for_tiles<W, true, kTiled>(tiles) : kernel_for_tiles<W, false, kTiled>(tiles);
}
// Tiled weights (MS_LAYOUT_TILED_16X128) are FP4 only.
Kernel kernel_for(int kind, int tiles, bool fp4_activations, bool tiled) {
  switch (kind) {
    case kWMx4: return tiled ? fp4_kernel_for<kWMx4, true>(tiles, fp4_activations) : fp4_kernel_for<kWMx4, false>(tiles, fp4_activations);
    case kWNv4: return tiled ? fp4_kernel_for<kWNv4, true>(tiles, fp4_activations) : fp4_kernel_for<kWNv4, false>(tiles, fp4_activations);
    case kWE4M3: return kernel_for_tiles<kWE4M3, false, false>(tiles);
    default: return kernel_for_tiles<kWE5M2, false, false>(tiles);
  }
}

int chunk_k(int kind) { return kind == kWMx4 || kind == kWNv4 ? 128 : 64; }
int row_pad(int kind) { return kind == kWMx4 || kind == kWNv4 ? WeightTraits<kWMx4>::kRowPad : WeightTraits<kWE4M3>::kRowPad; }

// How a problem is cut: K chunks per CTA, splits over K, chunks staged at a time, and the resulting launch shape.
struct Split {
  int chunks, chunks_per_cta, ksplit, staged_chunks, staged_row_bytes, smem_bytes;
  size_t workspace_bytes;  // counters + partial sums (0 unsplit)
};

// The GEMM is bound by each SM's share of the weight stream, so the estimated time is the busiest SM's work: ceil(CTAs /
// SMs) x (chunks per CTA + 1 for staging and the epilogue), times 1.5 when fewer than two CTAs per SM leave too few warps
// to keep loads in flight. The cheapest split wins (ties: fewer splits). Splitting needs a workspace and at most
// kMaxSplitTiles row tiles (the counter area).
Split choose_split(const ms_gemm_desc_t& d, int sms, bool can_split) {
  const int kind = weight_kind(d), tt = token_tiles(d.m), ck = chunk_k(kind), tokens = 8 * tt;
  can_split = can_split && d.m <= tokens;  // above 64 tokens the token blocks fill the GPU
  const int tiles = (d.n + kRowsPerCta - 1) / kRowsPerCta, chunks = (d.k + ck - 1) / ck;
  const int max_staged = max_staged_bytes(tt) / (tokens + 1) / (ck * 2 + row_pad(kind));  // (+ the zero row)
  const long sm_count = sms > 0 ? sms : 1;
  int best_ksplit = 1;
  double best_cost = -1;
  for (int ksplit = 1; ksplit <= chunks; ++ksplit) {
    const int cpc = (chunks + ksplit - 1) / ksplit;
    if (ksplit > 1 && (!can_split || tiles > kMaxSplitTiles)) break;
    if ((chunks + cpc - 1) / cpc != ksplit) continue;  // the same cut as a smaller ksplit
    const long ctas = (long)tiles * ksplit;
    const double cost = (double)((ctas + sm_count - 1) / sm_count) * (cpc + 1) * (ctas < 2 * sm_count ? 1.5 : 1.0);
    if (best_cost < 0 || cost < best_cost) { best_ksplit = ksplit; best_cost = cost; }
  }
  Split s{};
  s.chunks = chunks;
  s.chunks_per_cta = (chunks + best_ksplit - 1) / best_ksplit;
  s.ksplit = best_ksplit;
  s.staged_chunks = s.chunks_per_cta < max_staged ? s.chunks_per_cta : max_staged;
  s.staged_row_bytes = s.staged_chunks * ck * 2 + row_pad(kind);
  s.smem_bytes = ((d.m < tokens ? d.m : tokens) + 1) * s.staged_row_bytes;  // + the zero row
  s.workspace_bytes = s.ksplit > 1 ? kCounterBytes + (size_t)s.ksplit * tiles * kRowsPerCta * tokens * sizeof(float) : 0;
  return s;
}

}  // namespace

bool decode_gemm_can_implement(const ms_gemm_desc_t& d) {
  const bool fp4_w = d.b_format == MS_FMT_MXFP4 || d.b_format == MS_FMT_NVFP4;
  const bool fp8_w = d.b_format == MS_FMT_FP8_TENSOR || d.b_format == MS_FMT_FP8_ROW;
  const bool bf16_a = d.a_format == MS_FMT_DENSE && d.a_dtype == MS_DTYPE_BF16;
  const bool fp8_a = d.a_format == MS_FMT_FP8_TENSOR || d.a_format == MS_FMT_FP8_ROW;
  const bool fp4_a = (d.a_format == MS_FMT_MXFP4 || d.a_format == MS_FMT_NVFP4) && d.a_format == d.b_format;  // W4A4
  return d.m <= 64 * 65535 && (fp4_w || fp8_w) && (bf16_a || fp8_a || fp4_a) && d.k % 32 == 0;
}

std::string decode_gemm_config(const ms_gemm_desc_t& d) {
  char name[96];
  std::snprintf(name, sizeof name, "ms_sm80_decode_gemm_nt_128x%d_%s", 8 * token_tiles(d.m), weight_name(weight_kind(d)));
  return name;
}

size_t decode_gemm_workspace_size(const ms_gemm_desc_t& d, int sms) { return choose_split(d, sms, true).workspace_bytes; }

void launch_decode_gemm(const ms_gemm_desc_t& d, const ms_gemm_operands_t& ops, int sms, void* workspace, size_t workspace_bytes, bool programmatic,
                        cudaStream_t stream) {
  const int kind = weight_kind(d), tiles = (d.n + kRowsPerCta - 1) / kRowsPerCta;
  Split s = choose_split(d, sms, workspace != nullptr);
  if (s.ksplit > 1 && workspace_bytes < s.workspace_bytes) s = choose_split(d, sms, false);

  DecodeParams p{};
  p.m = d.m, p.n = d.n, p.k = d.k;
  p.chunks = s.chunks, p.chunks_per_cta = s.chunks_per_cta, p.ksplit = s.ksplit;
  p.staged_chunks = s.staged_chunks, p.staged_row_bytes = s.staged_row_bytes;
  const bool fp4 = kind == kWMx4 || kind == kWNv4;
  p.w = static_cast<const uint8_t*>(ops.b.data);
  p.w_row_bytes = fp4 ? d.k / 2 : d.k;
  p.w_scales = static_cast<const uint8_t*>(ops.b.block_scales);
  p.w_scale_cols = fp4 ? d.k / (kind == kWMx4 ? 32 : 16) : 0;
  p.w_swizzled = ops.b.layout == MS_LAYOUT_SWIZZLED_128X4;
  const bool tiled = fp4 && ops.b.layout == MS_LAYOUT_TILED_16X128;
  p.w_decode = kind == kWMx4 ? nullptr : ops.b.decode_scales;
  p.w_per_row = d.b_format == MS_FMT_FP8_ROW;
  p.a_factor = 1.0f;
  if (d.a_format == MS_FMT_DENSE) {
    p.a = ops.a.dense, p.a_kind = kABf16;
  } else if (d.a_format == MS_FMT_MXFP4 || d.a_format == MS_FMT_NVFP4) {
    const bool mx = d.a_format == MS_FMT_MXFP4;
    p.a = ops.a.data, p.a_kind = mx ? kAMx4 : kANv4;
    p.a_scales = static_cast<const uint8_t*>(ops.a.block_scales);
    p.a_scale_cols = d.k / (mx ? 32 : 16), p.a_swizzled = ops.a.layout == MS_LAYOUT_SWIZZLED_128X4;
    p.a_decode = mx ? nullptr : ops.a.decode_scales;
    p.a_factor = mx ? 4.0f : 1.0f;
  } else {
    p.a = ops.a.data, p.a_kind = d.a_element == MS_ELEM_E5M2 ? kAE5M2 : kAE4M3;
    p.a_decode = ops.a.decode_scales, p.a_per_row = d.a_format == MS_FMT_FP8_ROW;
  }
  p.alpha = ops.alpha;
  p.bias = d.has_bias ? ops.bias : nullptr;
  p.out = ops.out, p.out_dtype = d.out_dtype;
  if (s.ksplit > 1) {
    p.counters = static_cast<int*>(workspace);
    p.partials = reinterpret_cast<float*>(static_cast<uint8_t*>(workspace) + kCounterBytes);
  }
  const int tokens = 8 * token_tiles(d.m);
  dim3 grid(tiles, s.ksplit, (d.m + tokens - 1) / tokens);  // z: blocks of 64 tokens above 64
  Kernel kernel = kernel_for(kind, token_tiles(d.m), p.a_kind == kAMx4 || p.a_kind == kANv4, tiled);
  if (s.smem_bytes > kNoOptInStagedBytes)  // per launch: the attribute belongs to the current context
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, s.smem_bytes), "cudaFuncSetAttribute(decode)");
  // Programmatic dependent launch: CTA launch overlaps the previous kernel's tail; with static weights the first chunks'
  // loads do too (H200, 8192 x 8192, one token: 21.0 us plain, 20.2 programmatic, 18.0 with static weights).
  p.early_weights = programmatic && (d.flags & MS_GEMM_STATIC_WEIGHTS) != 0;
  cudaLaunchConfig_t config{};
  config.gridDim = grid, config.blockDim = dim3(kThreads), config.dynamicSmemBytes = s.smem_bytes, config.stream = stream;
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attribute, config.numAttrs = programmatic ? 1 : 0;
  check_cuda(cudaLaunchKernelEx(&config, kernel, p), "decode GEMM launch");
}

bool decode_gemm_operands_aligned(const ms_gemm_operands_t& ops) {
  const void* a = ops.a.format == MS_FMT_DENSE ? ops.a.dense : ops.a.data;
  return reinterpret_cast<uintptr_t>(a) % 16 == 0 && reinterpret_cast<uintptr_t>(ops.b.data) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(ops.b.block_scales) % 2 == 0;
}

}  // namespace ms
