// microscale_baselines: cuBLASLt GEMMs for side-by-side benchmarks only (never shipped, never called by the library).
// Layout "TN" like Microscale's: A [m,k] and B [n,k] row-major (K-major), D [m,n] row-major. In cuBLASLt's column-major
// terms that is D^T (n x m) = op(B^T buffer, T) x (A^T buffer, N).
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cstdint>
#include <cstdio>
#include <string>

#if defined(_WIN32)
#define MSB_API extern "C" __declspec(dllexport)
#else
#define MSB_API extern "C" __attribute__((visibility("default")))
#endif

namespace {
thread_local std::string t_error;
cublasLtHandle_t handle() {
  static cublasLtHandle_t h = [] { cublasLtHandle_t x = nullptr; cublasLtCreate(&x); return x; }();
  return h;
}
int fail(const char* what, int status) {
  t_error = std::string(what) + " failed with status " + std::to_string(status);
  return status == 0 ? -1 : status;
}
}  // namespace

MSB_API const char* msb_last_error(void) { return t_error.c_str(); }

// dtype: 0 bf16 x bf16 -> bf16; 1 fp8 e4m3 x e4m3 -> bf16 with per-tensor float scales a_scale, b_scale (device pointers);
// 2 the same with row-wise scales (a_scale [m], b_scale [n]: cuBLASLt's "outer vector" scaling, cuBLASLt >= 12.9);
// block-scaled (cuBLASLt >= 12.8, Blackwell GPUs; elsewhere the heuristic finds no algorithm and the call fails), a_scale and
// b_scale being the block scales in the swizzled 128x4 layout: 3 NVFP4 (E2M1 x E2M1, UE4M3 per 16: VEC16_UE4M3; the tensor
// scales belong in alpha, left 1 here), 4 MXFP4 (E2M1 x E2M1, UE8M0 per 32: VEC32_UE8M0), 5 MXFP8 (E4M3 x E4M3, VEC32_UE8M0).
// Descriptors and the heuristic's algorithm of the last problem, so that repeated calls time only cublasLtMatmul.
struct Cached {
  int dtype = -1, m = 0, n = 0, k = 0;
  const void* a_scale = nullptr;
  const void* b_scale = nullptr;
  size_t workspace_bytes = 0;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
  cublasLtMatmulAlgo_t algo{};
};
thread_local Cached t_cached;

MSB_API int msb_gemm(int dtype, int m, int n, int k, const void* a, const void* b, void* d, const void* a_scale, const void* b_scale,
                     void* workspace, size_t workspace_bytes, void* stream) {
  Cached& c = t_cached;
  if (c.dtype == dtype && c.m == m && c.n == n && c.k == k && c.a_scale == a_scale && c.b_scale == b_scale && c.workspace_bytes == workspace_bytes) {
    float alpha = 1.0f, beta = 0.0f;
    int status = cublasLtMatmul(handle(), c.op, &alpha, b, c.la, a, c.lb, &beta, d, c.ld, d, c.ld, &c.algo, workspace, workspace_bytes,
                                static_cast<cudaStream_t>(stream));
    return status ? fail("cublasLtMatmul", status) : 0;
  }
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  if (dtype < 0 || dtype > 5) return fail("dtype", -1);
#if !(CUBLAS_VER_MAJOR > 12 || (CUBLAS_VER_MAJOR == 12 && CUBLAS_VER_MINOR >= 8))
  if (dtype >= 3) return fail("block-scaled matmuls need cuBLASLt 12.8", -1);
  cudaDataType_t in = dtype == 0 ? CUDA_R_16BF : CUDA_R_8F_E4M3;
#else
  cudaDataType_t in = dtype == 0 ? CUDA_R_16BF : dtype == 3 || dtype == 4 ? CUDA_R_4F_E2M1 : CUDA_R_8F_E4M3;
#endif
  cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
  float alpha = 1.0f, beta = 0.0f;
  int status = 0;
  int results = 0;
  cublasLtMatmulHeuristicResult_t heuristic{};
  if ((status = cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F))) { fail("cublasLtMatmulDescCreate", status); goto done; }
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof transa);
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof transb);
  if (dtype >= 1) {  // cuBLASLt's A is our B and its B our A (see the layout note above)
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &b_scale, sizeof b_scale);
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &a_scale, sizeof a_scale);
  }
#if CUBLAS_VER_MAJOR > 12 || (CUBLAS_VER_MAJOR == 12 && CUBLAS_VER_MINOR >= 8)
  if (dtype >= 3) {
    cublasLtMatmulMatrixScale_t mode = dtype == 3 ? CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3 : CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0;
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof mode);
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof mode);
  }
#endif
  if (dtype == 2) {
#if CUBLAS_VER_MAJOR > 12 || (CUBLAS_VER_MAJOR == 12 && CUBLAS_VER_MINOR >= 9)
    cublasLtMatmulMatrixScale_t outer = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &outer, sizeof outer);
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &outer, sizeof outer);
#else
    status = -1; fail("row-wise scaling needs cuBLASLt 12.9", status); goto done;
#endif
  }
  cublasLtMatrixLayoutCreate(&la, in, k, n, k);   // B buffer, col-major k x n
  cublasLtMatrixLayoutCreate(&lb, in, k, m, k);   // A buffer, col-major k x m
  cublasLtMatrixLayoutCreate(&ld, CUDA_R_16BF, n, m, n);
  cublasLtMatmulPreferenceCreate(&pref);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes, sizeof workspace_bytes);
  if ((status = cublasLtMatmulAlgoGetHeuristic(handle(), op, la, lb, ld, ld, pref, 1, &heuristic, &results)) || results == 0) {
    fail("cublasLtMatmulAlgoGetHeuristic", status); status = status ? status : -1; goto done;
  }
  if ((status = cublasLtMatmul(handle(), op, &alpha, b, la, a, lb, &beta, d, ld, d, ld, &heuristic.algo, workspace, workspace_bytes,
                               static_cast<cudaStream_t>(stream)))) {
    fail("cublasLtMatmul", status);
    goto done;
  }
  // Keep this problem's descriptors for the next call (the previous ones are released).
  if (c.op) { cublasLtMatmulDescDestroy(c.op); cublasLtMatrixLayoutDestroy(c.la); cublasLtMatrixLayoutDestroy(c.lb); cublasLtMatrixLayoutDestroy(c.ld); }
  c = Cached{dtype, m, n, k, a_scale, b_scale, workspace_bytes, op, la, lb, ld, heuristic.algo};
  op = nullptr; la = lb = ld = nullptr;
done:
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  if (ld) cublasLtMatrixLayoutDestroy(ld);
  if (lb) cublasLtMatrixLayoutDestroy(lb);
  if (la) cublasLtMatrixLayoutDestroy(la);
  if (op) cublasLtMatmulDescDestroy(op);
  return status;
}
