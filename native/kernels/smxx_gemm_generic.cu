// The generic CUDA-core GEMM for every operand pair: C = alpha * deq(A).deq(B)^T + bias, binary32 accumulation.
// Correct first: the tensor-core kernels of later families plug in behind the same plan API and are tested against it.
// Tile config 64x64x32_t16x16_m4x4: a block of 16x16 threads computes a 64x64 tile of C, each thread a 4x4 micro-tile;
// operands are dequantized as they are loaded into shared memory (K-major, padded against bank conflicts).
// Error bound (NUMERICS.md s5): |C - C_ref| <= (K + 4) * 2^-24 * |alpha| * sum|a.b| + one output ulp.
#include "common/formats.cuh"
#include "launch.h"
#include "../src/error.h"

namespace ms {

const char* const kGemmGenericName = "ms_smxx_gemm_generic_nt_64x64x32_t16x16_m4x4";

namespace {

constexpr int kTileM = 64, kTileN = 64, kTileK = 32, kSide = 16, kMicro = 4;
constexpr int kStride = kTileM + 1;

struct Operand {
  QuantView q;
  const void* dense;
  int dense_dtype;
  bool is_dense;

  __device__ __forceinline__ float load(int row, int col) const {
    if (!is_dense) return dequantize_at(q, row, col);
    int64_t i = (int64_t)row * q.cols + col;
    if (dense_dtype == 0) return static_cast<const float*>(dense)[i];
    uint32_t bits = static_cast<const uint16_t*>(dense)[i];
    return dense_dtype == 1 ? from_bf16(bits) : from_f16(bits);
  }
};

struct Epilogue {
  int m, n, k;
  float alpha;
  const float* bias;
  void* out;
  int out_dtype;
};

__global__ void __launch_bounds__(kSide * kSide) gemm_generic_kernel(Operand a, Operand b, Epilogue ep) {
  __shared__ float a_tile[kTileK * kStride];
  __shared__ float b_tile[kTileK * kStride];
  const int tx = threadIdx.x, ty = threadIdx.y, thread = ty * kSide + tx;
  const int row_base = blockIdx.y * kTileM, col_base = blockIdx.x * kTileN;
  float acc[kMicro][kMicro] = {};
  for (int k0 = 0; k0 < ep.k; k0 += kTileK) {
    for (int l = thread; l < kTileM * kTileK; l += kSide * kSide) {
      int r = l / kTileK, kk = l % kTileK, k = k0 + kk;
      a_tile[kk * kStride + r] = (row_base + r < ep.m && k < ep.k) ? a.load(row_base + r, k) : 0.0f;
      b_tile[kk * kStride + r] = (col_base + r < ep.n && k < ep.k) ? b.load(col_base + r, k) : 0.0f;
    }
    __syncthreads();
#pragma unroll 8
    for (int kk = 0; kk < kTileK; ++kk) {
      float av[kMicro], bv[kMicro];
#pragma unroll
      for (int i = 0; i < kMicro; ++i) {
        av[i] = a_tile[kk * kStride + ty * kMicro + i];
        bv[i] = b_tile[kk * kStride + tx * kMicro + i];
      }
#pragma unroll
      for (int i = 0; i < kMicro; ++i)
#pragma unroll
        for (int j = 0; j < kMicro; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < kMicro; ++i)
#pragma unroll
    for (int j = 0; j < kMicro; ++j) {
      int m = row_base + ty * kMicro + i, n = col_base + tx * kMicro + j;
      if (m >= ep.m || n >= ep.n) continue;
      float value = ep.alpha * acc[i][j];
      if (ep.bias) value += ep.bias[n];
      int64_t index = (int64_t)m * ep.n + n;
      if (ep.out_dtype == 0) static_cast<float*>(ep.out)[index] = value;
      else static_cast<uint16_t*>(ep.out)[index] = ep.out_dtype == 1 ? to_bf16(value) : to_f16(value);
    }
}

Operand operand_of(const ms_qtensor_t& t, int k) {
  Operand o{};
  o.is_dense = t.format == MS_FMT_DENSE;
  o.dense = t.dense;
  o.dense_dtype = t.dtype;
  o.q.cols = k;
  if (o.is_dense) return o;
  o.q = quant_view_of(t, k);
  return o;
}

}  // namespace

void launch_gemm_generic(const ms_gemm_desc_t& desc, const ms_gemm_operands_t& ops, cudaStream_t stream) {
  Epilogue ep{desc.m, desc.n, desc.k, ops.alpha, desc.has_bias ? ops.bias : nullptr, ops.out, desc.out_dtype};
  dim3 grid((desc.n + kTileN - 1) / kTileN, (desc.m + kTileM - 1) / kTileM), block(kSide, kSide);
  gemm_generic_kernel<<<grid, block, 0, stream>>>(operand_of(ops.a, desc.k), operand_of(ops.b, desc.k), ep);
  check_cuda(cudaGetLastError(), "generic GEMM launch");
}

}  // namespace ms
