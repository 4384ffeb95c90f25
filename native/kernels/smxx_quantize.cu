// Quantization to every format of NUMERICS.md s3 (MXFP4, MXFP8, NVFP4, FP8 per-tensor / per-row) and MXINT8 (s8), optionally fused with
// the block Hadamard rotation (the rotated values never leave registers), the non-finite scan and dequantization.
// Bit-exact: built with --fmad=false -ftz=false -prec-div=true. One warp per row segment (common/segment.cuh).
#include <climits>
#include <cmath>
#include "common/quantize_params.cuh"
#include "launch.h"
#include "../src/error.h"

namespace ms {
namespace {

constexpr int kWarpsPerBlock = 8;
enum Mode { kAbsMax, kFirstNonFinite, kBlockQuantize, kFp8Quantize, kRotate };


template <int E>
__device__ void block_quantize(const QuantizeParams& p, int row, int first, int lane, const float (&v)[E]) {
  const int lanes_per_block = p.block / E;
  uint32_t amax;
  bool non_finite;
  block_amax<E>(v, lanes_per_block, amax, non_finite);
  const bool nv = p.format == kFmtNvfp4;
  float factor;  // MX: x 2^-e; NVFP4: / d; 0 writes +0 codes
  const uint32_t scale_code = block_scale(p, amax, non_finite, factor);
  const int col0 = first + lane * E;  // this lane's first column
  const int64_t row_start = (int64_t)row * p.seg.padded_cols;
  uint32_t codes[E];
#pragma unroll
  for (int e = 0; e < E; ++e)
    codes[e] = factor == 0.0f ? 0u : encode_element(p, nv ? __fdiv_rn(v[e], factor) : __fmul_rn(v[e], factor), row_start + col0 + e);
  // FP4 with one value per lane: the even lane packs its odd neighbour's code (every lane takes part in the shuffle).
  uint32_t neighbour = E == 1 ? __shfl_down_sync(0xFFFFFFFFu, codes[0], 1) : 0u;
  if (col0 >= p.seg.padded_cols) return;  // the segment runs past the padded row
  if (lane % lanes_per_block == 0)
    p.block_scales[scale_offset(row, col0 / p.block, p.scale_cols, p.swizzled)] = (uint8_t)scale_code;
  if (p.kind != kE2M1) {
#pragma unroll
    for (int e = 0; e < E; ++e) p.data[row_start + col0 + e] = (uint8_t)codes[e];
  } else if (E >= 2) {
#pragma unroll
    for (int e = 0; e + 1 < E; e += 2) p.data[(row_start + col0 + e) >> 1] = (uint8_t)(codes[e] | (codes[e + 1] << 4));
  } else if ((lane & 1) == 0) {
    p.data[(row_start + col0) >> 1] = (uint8_t)(codes[0] | (neighbour << 4));
  }
}

template <Mode M, int E>
__global__ void __launch_bounds__(32 * kWarpsPerBlock) segment_kernel(QuantizeParams p, const void* src) {
  const int lane = threadIdx.x & 31;
  const int64_t warp = (int64_t)blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
  const int64_t warps = (int64_t)gridDim.x * kWarpsPerBlock;
  const int64_t items = (int64_t)p.seg.rows * p.seg.segs_per_row;
  uint32_t running = 0;   // kAbsMax: this warp's max so far for running_row (one atomic per row or per warp, not per item)
  int running_row = -1;
  for (int64_t item = warp; item < items; item += warps) {
    const int row = (int)(item / p.seg.segs_per_row);
    const int first = (int)(item - (int64_t)row * p.seg.segs_per_row) * p.seg.seg;
    float v[E];
    load_segment<E>(p.seg, src, row, first, lane, v);
    const int col0 = first + lane * E;
    if constexpr (M == kAbsMax) {
      uint32_t amax = 0;
#pragma unroll
      for (int e = 0; e < E; ++e) {
        uint32_t bits = abs_bits(v[e]);
        if (is_finite_bits(bits) && bits > amax) amax = bits;
      }
      for (int o = 16; o > 0; o >>= 1) {
        uint32_t other = __shfl_xor_sync(0xFFFFFFFFu, amax, o);
        amax = other > amax ? other : amax;
      }
      int target = p.per_row ? row : 0;
      if (target != running_row) {
        if (lane == 0 && running != 0) atomicMax(&p.amax[running_row], (int)running);
        running = 0;
        running_row = target;
      }
      running = amax > running ? amax : running;
    } else if constexpr (M == kFirstNonFinite) {
#pragma unroll
      for (int e = 0; e < E; ++e)
        if (col0 + e < p.seg.cols && !is_finite_bits(abs_bits(v[e])))
          atomicMin(p.first_index, (unsigned long long)((int64_t)row * p.seg.cols + col0 + e));
    } else if constexpr (M == kBlockQuantize) {
      block_quantize<E>(p, row, first, lane, v);
    } else if constexpr (M == kFp8Quantize) {
      float g = p.decode_scales[p.per_row ? row : 0];
#pragma unroll
      for (int e = 0; e < E; ++e)
        if (col0 + e < p.seg.cols) {
          const int64_t index = (int64_t)row * p.seg.cols + col0 + e;
          p.data[index] = (uint8_t)encode_element(p, __fdiv_rn(v[e], g), index);
        }
    } else {
#pragma unroll
      for (int e = 0; e < E; ++e)
        if (col0 + e < p.seg.cols) p.rotated[(int64_t)row * p.seg.cols + col0 + e] = v[e];
    }
  }
  if constexpr (M == kAbsMax) {
    if (lane == 0 && running != 0) atomicMax(&p.amax[running_row], (int)running);
  }
}

__global__ void decode_scales_kernel(const int* amax, float* scales, int count, float divisor) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) scales[i] = tensor_decode_scale(u2f((uint32_t)amax[i]), divisor);
}

__global__ void dequantize_kernel(QuantView q, int rows, float* dst) {
  const int64_t total = (int64_t)rows * q.cols;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int row = (int)(i / q.cols);
    dst[i] = dequantize_at(q, row, (int)(i - (int64_t)row * q.cols));
  }
}

template <Mode M>
void launch_mode(const QuantizeParams& p, const void* src, cudaStream_t stream) {
  int64_t items = (int64_t)p.seg.rows * p.seg.segs_per_row;
  int64_t blocks = (items + kWarpsPerBlock - 1) / kWarpsPerBlock;
  // The amax pass keeps a per-warp running max, so it wants few warps with many items each (few atomics).
  const int64_t cap = M == kAbsMax ? 132 * 16 : 65535 * 8;
  int grid = (int)(blocks < cap ? blocks : cap);
  switch (p.seg.seg / 32) {
    case 1: segment_kernel<M, 1><<<grid, 32 * kWarpsPerBlock, 0, stream>>>(p, src); break;
    case 2: segment_kernel<M, 2><<<grid, 32 * kWarpsPerBlock, 0, stream>>>(p, src); break;
    case 4: segment_kernel<M, 4><<<grid, 32 * kWarpsPerBlock, 0, stream>>>(p, src); break;
    default: segment_kernel<M, 8><<<grid, 32 * kWarpsPerBlock, 0, stream>>>(p, src); break;
  }
  check_cuda(cudaGetLastError(), "quantize kernel launch");
}

}  // namespace

void launch_quantize(const QuantizeLaunch& q, int multiprocessors, cudaStream_t stream) {
  if ((q.stochastic || q.two_d) && dual_quantize_eligible(q)) {  // the tile kernel: stochastic rounding at bandwidth, 2D blocks
    DualLaunch d{};
    d.src = q.src;
    d.src_dtype = q.src_dtype;
    d.rows = q.rows;
    d.cols = q.cols;
    d.side[0] = dual_side_of(q);
    d.amax_workspace = q.amax_workspace;
    launch_quantize_dual(d, multiprocessors, stream);
    return;
  }
  if (launch_quantize_bf16_rows(q, stream)) return;  // FP8 per-row from BF16: row amax and codes in one pass
  QuantizeParams p = params_for(q);
  bool mx = is_mx_format(q.format);
  if (q.block_scales && q.swizzled) clear_swizzled_scales(q.block_scales, q.rows, q.scale_cols, stream);
  if (!mx) {
    int count = q.format == kFmtFp8Row ? q.rows : 1;
    check_cuda(cudaMemsetAsync(q.amax_workspace, 0, sizeof(int) * count, stream), "cudaMemsetAsync(workspace)");
    if (!launch_quantize_bf16_amax(q, multiprocessors, stream)) launch_mode<kAbsMax>(p, q.src, stream);
    float divisor = q.format == kFmtNvfp4 ? 2688.0f : element_max(q.kind);
    decode_scales_kernel<<<(count + 255) / 256, 256, 0, stream>>>(q.amax_workspace, q.decode_scales, count, divisor);
    check_cuda(cudaGetLastError(), "decode scale kernel launch");
  }
  if (launch_quantize_bf16_segments(q, multiprocessors, stream)) return;
  if (q.format == kFmtFp8Tensor || q.format == kFmtFp8Row) launch_mode<kFp8Quantize>(p, q.src, stream);
  else launch_mode<kBlockQuantize>(p, q.src, stream);
}

void clear_swizzled_scales(uint8_t* block_scales, int rows, int scale_cols, cudaStream_t stream) {
  const int64_t bytes = (int64_t)((rows + 127) / 128 * 128) * ((scale_cols + 3) / 4 * 4);
  check_cuda(cudaMemsetAsync(block_scales, 0, (size_t)bytes, stream), "cudaMemsetAsync(block_scales)");
}

void launch_find_nonfinite(const QuantizeLaunch& q, unsigned long long* device_index, cudaStream_t stream) {
  QuantizeParams p = params_for(q);
  p.first_index = device_index;
  launch_mode<kFirstNonFinite>(p, q.src, stream);
}

void launch_rotate(const QuantizeLaunch& q, float* dst, cudaStream_t stream) {
  QuantizeParams p = params_for(q);
  p.rotated = dst;
  launch_mode<kRotate>(p, q.src, stream);
}

void launch_dequantize(const ms_qtensor_t& t, float* dst, cudaStream_t stream) {
  const QuantView q = quant_view_of(t, t.cols);
  int64_t total = (int64_t)t.rows * t.cols;
  int grid = (int)((total + 255) / 256 < 65535 * 16 ? (total + 255) / 256 : 65535 * 16);
  dequantize_kernel<<<grid, 256, 0, stream>>>(q, t.rows, dst);
  check_cuda(cudaGetLastError(), "dequantize kernel launch");
}

}  // namespace ms
