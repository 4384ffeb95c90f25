// The activation quantizer: BF16 rows (K a multiple of 8, 16-byte aligned) to MXFP4, MXFP8, NVFP4 and FP8 per-tensor /
// per-row, optionally rotated first (block Hadamard, NUMERICS.md s4), bit-identical to the generic quantizer
// (smxx_quantize.cu) and so to the reference, but built for bandwidth:
//  - a lane loads 8 BF16 values with one 16-byte load (a warp: one 256-value segment), rotates them in registers with the
//    same operation order (segment.cuh), and writes its codes with one 4-byte (FP4) or 8-byte (FP8) store;
//  - E2M1 codes are the smallest of three binary32 roundings onto 1.5 * 2^23 (fast_encode.cuh), FP8 is cvt.rn.satfinite
//    (sm_89+; exactly NUMERICS' satfinite conversion), and the divisions x / d of NVFP4 and FP8 are Markstein's correction
//    of x * RN(1/d) (two FMAs; correctly rounded while d and 1/d are normal, else the IEEE division);
//  - FP8 per-row: one CTA per row keeps the row in registers (K <= 16384), so the row amax costs no second read.
// NVFP4 and FP8 per-tensor take their tensor scale from the amax pass of smxx_quantize.cu first.
#include <cuda_runtime_api.h>
#include <cstdint>
#include "common/fast_encode.cuh"
#include "common/quantize_params.cuh"
#include "launch.h"
#include "../src/error.h"

namespace ms {

namespace {

constexpr int kE = 8;                        // values per lane: one 16-byte load
constexpr int kSegment = 32 * kE;            // values per warp segment
constexpr int kWarps = 8;                    // segment kernel
constexpr int kRowWarps = 16;                // per-row kernel: a CTA per row
constexpr int kRowSegmentsPerWarp = 4;       // so rows up to 16 x 4 x 256 = 16384 values
constexpr int kMaxRowColumns = kRowWarps * kRowSegmentsPerWarp * kSegment;

enum Family { kMx = 0, kNv = 1, kFp8 = 2 };

// This lane's 8 values of segment `first` of `row` as binary32 (zeros past K), rotated when asked.
__device__ __forceinline__ void load8(const QuantizeParams& p, const uint16_t* src, int row, int first, int lane, float (&v)[kE]) {
  const int col0 = first + lane * kE;
  uint4 raw = make_uint4(0, 0, 0, 0);
  if (col0 < p.seg.cols) raw = *reinterpret_cast<const uint4*>(src + (int64_t)row * p.seg.cols + col0);
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    v[2 * j] = __uint_as_float(w[j] << 16);
    v[2 * j + 1] = __uint_as_float(w[j] & 0xFFFF0000u);
  }
  if (p.seg.g != 0) rotate_segment<kE>(p.seg, lane, col0 < p.seg.cols, v);
}

// Codes of 8 values with a common multiplier (MX: x 2^-e, exact) or divisor (NVFP4 / FP8), stored at column col0.
template <Family F>
__device__ __forceinline__ void store8(const QuantizeParams& p, int row, int col0, const float (&v)[kE], float factor, const Divider& div, bool zero) {
  const int64_t index = (int64_t)row * p.seg.padded_cols + col0;
  if (F == kFp8 || (F == kMx && p.kind != kE2M1)) {
    float x[kE];
#pragma unroll
    for (int e = 0; e < kE; ++e) x[e] = F == kMx ? __fmul_rn(v[e], factor) : div(v[e]);
    uint2 out;
    out.x = fp8x2(x[0], x[1], p.kind) | (fp8x2(x[2], x[3], p.kind) << 16);
    out.y = fp8x2(x[4], x[5], p.kind) | (fp8x2(x[6], x[7], p.kind) << 16);
    if (zero) out = make_uint2(0, 0);
    *reinterpret_cast<uint2*>(p.data + index) = out;
  } else {
    float x[kE];
    uint32_t m[kE];
#pragma unroll
    for (int e = 0; e < kE; ++e) {
      x[e] = F == kMx ? __fmul_rn(v[e], factor) : div(v[e]);
      m[e] = e2m1_magnitude(x[e]);
    }
    *reinterpret_cast<uint32_t*>(p.data + (index >> 1)) = zero ? 0u : pack_e2m1(m, x);
  }
}

// MX and NVFP4 blocks (4 or 2 lanes), FP8 per-tensor: one warp per 256-value segment, grid-stride.
template <Family F>
__global__ void __launch_bounds__(32 * kWarps) segment_kernel(QuantizeParams p, const uint16_t* src) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t)gridDim.x * kWarps, items = (int64_t)p.seg.rows * p.seg.segs_per_row;
  const float tensor_scale = F == kMx ? 1.0f : p.decode_scales[0];
  const Divider fp8_div(tensor_scale);
  for (int64_t item = (int64_t)blockIdx.x * kWarps + (threadIdx.x >> 5); item < items; item += warps) {
    const int row = (int)(item / p.seg.segs_per_row);
    const int first = (int)(item - (int64_t)row * p.seg.segs_per_row) * kSegment;
    float v[kE];
    load8(p, src, row, first, lane, v);
    const int col0 = first + lane * kE;
    if (F == kFp8) {
      if (col0 < p.seg.cols) store8<F>(p, row, col0, v, 1.0f, fp8_div, false);
      continue;
    }
    // Block amax over 32 (MX: 4 lanes) or 16 (NVFP4: 2 lanes) values; a non-finite value makes the block NaN.
    const int lanes = p.block / kE;
    uint32_t amax;
    bool non_finite;
    block_amax<kE>(v, lanes, amax, non_finite);
    if (col0 >= p.seg.padded_cols) continue;
    float factor;  // MX multiplier or NVFP4 divisor; 0: all codes 0
    const uint32_t scale_code = block_scale(p, amax, non_finite, factor);
    const Divider div(F == kNv && factor != 0.0f ? factor : 1.0f);
    if (lane % lanes == 0) p.block_scales[scale_offset(row, col0 / p.block, p.scale_cols, p.swizzled)] = (uint8_t)scale_code;
    store8<F>(p, row, col0, v, factor, div, factor == 0.0f);
  }
}

// The finite amax (binary32 bits, into p.amax[0]) of the (rotated) tensor for NVFP4 and FP8 per-tensor: the segments' 16-byte
// loads, a running max per warp over its grid-stride items, one atomic per warp.
__global__ void __launch_bounds__(32 * kWarps) amax_kernel(QuantizeParams p, const uint16_t* src) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t)gridDim.x * kWarps, items = (int64_t)p.seg.rows * p.seg.segs_per_row;
  uint32_t running = 0;
  for (int64_t item = (int64_t)blockIdx.x * kWarps + (threadIdx.x >> 5); item < items; item += warps) {
    const int row = (int)(item / p.seg.segs_per_row);
    const int first = (int)(item - (int64_t)row * p.seg.segs_per_row) * kSegment;
    float v[kE];
    load8(p, src, row, first, lane, v);
#pragma unroll
    for (int e = 0; e < kE; ++e) {
      const uint32_t bits = abs_bits(v[e]);
      running = bits > running && is_finite_bits(bits) ? bits : running;
    }
  }
  for (int o = 16; o > 0; o >>= 1) running = max(running, __shfl_xor_sync(0xFFFFFFFFu, running, o));
  if (lane == 0 && running != 0) atomicMax(p.amax, (int)running);
}

// FP8 per-row: a CTA holds one row in registers (warp w: segments w, w + 16, ...), reduces its finite amax, writes the
// decode scale and the codes.
__global__ void __launch_bounds__(32 * kRowWarps) row_kernel(QuantizeParams p, const uint16_t* src) {
  __shared__ uint32_t warp_amax[kRowWarps];
  __shared__ float row_scale;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, row = blockIdx.x;
  float v[kRowSegmentsPerWarp][kE];
  uint32_t amax = 0;
#pragma unroll
  for (int i = 0; i < kRowSegmentsPerWarp; ++i) {
    const int first = (warp + i * kRowWarps) * kSegment;
    if (first < p.seg.cols) {  // warp-uniform
      load8(p, src, row, first, lane, v[i]);
#pragma unroll
      for (int e = 0; e < kE; ++e) {
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
    const int col0 = (warp + i * kRowWarps) * kSegment + lane * kE;
    if (col0 < p.seg.cols) store8<kFp8>(p, row, col0, v[i], 1.0f, div, false);
  }
}

// BF16 source, K a multiple of 8, 16-byte aligned rows and a data pointer aligned for the 4- / 8-byte stores.
bool eligible(const QuantizeLaunch& q) {
  const bool fp8 = q.kind != kE2M1;
  if (q.format == kFmtMxint8 || q.stochastic) return false;  // integer and stochastic encodings live in the other kernels
  return q.src_dtype == 1 && q.cols % 8 == 0 && reinterpret_cast<uintptr_t>(q.src) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(q.data) % (fp8 ? 8 : 4) == 0 && q.hadamard <= kSegment;
}

}  // namespace

bool launch_quantize_bf16_rows(const QuantizeLaunch& q, cudaStream_t stream) {
  if (q.format != kFmtFp8Row || !eligible(q) || q.cols > kMaxRowColumns) return false;
  row_kernel<<<q.rows, 32 * kRowWarps, 0, stream>>>(params_for(q, kSegment), static_cast<const uint16_t*>(q.src));
  check_cuda(cudaGetLastError(), "BF16 row quantize launch");
  return true;
}

bool launch_quantize_bf16_amax(const QuantizeLaunch& q, int multiprocessors, cudaStream_t stream) {
  if (!eligible(q) || (q.format != kFmtNvfp4 && q.format != kFmtFp8Tensor)) return false;
  const QuantizeParams p = params_for(q, kSegment);
  const int64_t items = (int64_t)q.rows * p.seg.segs_per_row, blocks = (items + kWarps - 1) / kWarps, cap = (int64_t)multiprocessors * 16;
  amax_kernel<<<(int)(blocks < cap ? blocks : cap), 32 * kWarps, 0, stream>>>(p, static_cast<const uint16_t*>(q.src));
  check_cuda(cudaGetLastError(), "BF16 amax launch");
  return true;
}

bool launch_quantize_bf16_segments(const QuantizeLaunch& q, cudaStream_t stream) {
  if (!eligible(q) || q.format == kFmtFp8Row) return false;
  const QuantizeParams p = params_for(q, kSegment);
  const int64_t items = (int64_t)q.rows * p.seg.segs_per_row, blocks = (items + kWarps - 1) / kWarps;
  const int grid = (int)(blocks < 65535 * 16 ? blocks : 65535 * 16);
  const auto* src = static_cast<const uint16_t*>(q.src);
  if (q.format == kFmtMxfp4 || q.format == kFmtMxfp8) segment_kernel<kMx><<<grid, 32 * kWarps, 0, stream>>>(p, src);
  else if (q.format == kFmtNvfp4) segment_kernel<kNv><<<grid, 32 * kWarps, 0, stream>>>(p, src);
  else segment_kernel<kFp8><<<grid, 32 * kWarps, 0, stream>>>(p, src);
  check_cuda(cudaGetLastError(), "BF16 segment quantize launch");
  return true;
}

}  // namespace ms
