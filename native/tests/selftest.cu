// microscale_selftest: checks and times the GEMM families through the C ABI, without .NET (for kernel work on a GPU box).
//   microscale_selftest [--quick]
// For FP8 per-row x per-row problems it runs the auto-selected plan and the generic plan (MS_FORCE_CONFIG=generic),
// checks |C - C_generic| <= (2^-9 + (ceil(K/128) + K + 8) 2^-24) * sum|a b| (the sm90 bound of GemmAccuracy plus the generic
// kernel's own; sum|a b| from the generic kernel on |A|, |B|), printing the worst ratio to that bound and to 2^-13 per block,
// then times the selected kernel against cuBLASLt FP8 per-tensor (BF16 out) with CUDA events: median of 50 after warm-up,
// rotating 4 operand sets.
#include <cuda_runtime.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>
#include "microscale.h"

extern "C" int msb_gemm(int dtype, int m, int n, int k, const void* a, const void* b, void* d, const float* a_scale, const float* b_scale,
                        void* workspace, size_t workspace_bytes, void* stream);
extern "C" const char* msb_last_error(void);

#define CHECK_CUDA(x) do { cudaError_t e = (x); if (e != cudaSuccess) { std::printf("CUDA %s at %s:%d\n", cudaGetErrorString(e), __FILE__, __LINE__); std::exit(2); } } while (0)
#define CHECK_MS(x) do { ms_status_t st_ = (x); if (st_ != MS_OK) { std::printf("ms status %d: %s (%s) at line %d\n", st_, ms_last_error_message(), ms_last_error_argument(), __LINE__); std::exit(3); } } while (0)

static ms_qtensor_t fp8(void* data, float* scales, int rows, int cols, int format) {
  ms_qtensor_t t{};
  t.struct_size = sizeof t; t.format = format; t.element = MS_ELEM_E4M3; t.rows = rows; t.cols = cols; t.data = data; t.decode_scales = scales;
  return t;
}

static void run(const char* force, int m, int n, int k, void* a, float* sa, void* b, float* sb, void* out, int out_dtype, char* name, cudaStream_t s) {
  if (force) setenv("MS_FORCE_CONFIG", force, 1); else unsetenv("MS_FORCE_CONFIG");
  ms_gemm_desc_t d{}; d.struct_size = sizeof d; d.m = m; d.n = n; d.k = k;
  d.a_format = MS_FMT_FP8_ROW; d.b_format = MS_FMT_FP8_ROW; d.out_dtype = out_dtype;
  ms_gemm_plan* plan = nullptr;
  CHECK_MS(ms_gemm_plan_create(&d, &plan));
  if (name) CHECK_MS(ms_gemm_plan_name(plan, name, 128));
  ms_gemm_operands_t o{}; o.struct_size = sizeof o; o.alpha = 1.0f;
  o.a = fp8(a, sa, m, k, MS_FMT_FP8_ROW); o.b = fp8(b, sb, n, k, MS_FMT_FP8_ROW); o.out = out;
  CHECK_MS(ms_gemm_plan_run(plan, &o, nullptr, s));
  ms_gemm_plan_destroy(plan);
}

// --profile M N K [CONFIG]: run one problem 3 times with the auto (or forced) plan, for ncu; nothing else.
static int profile(int m, int n, int k, const char* config) {
  void *a, *b, *out; float* s;
  CHECK_CUDA(cudaMalloc(&a, (size_t)m * k)); CHECK_CUDA(cudaMalloc(&b, (size_t)n * k)); CHECK_CUDA(cudaMalloc(&out, (size_t)m * n * 2));
  CHECK_CUDA(cudaMalloc(&s, 4 * (size_t)(m > n ? m : n)));
  CHECK_CUDA(cudaMemset(a, 0x38, (size_t)m * k)); CHECK_CUDA(cudaMemset(b, 0x30, (size_t)n * k)); CHECK_CUDA(cudaMemset(s, 0, 4));
  char name[128];
  for (int i = 0; i < 3; ++i) run(config, m, n, k, a, s, b, s, out, MS_DTYPE_BF16, name, nullptr);
  CHECK_CUDA(cudaDeviceSynchronize());
  std::printf("profiled %s\n", name);
  return 0;
}

// Quantization of an 8192x8192 BF16 tensor (and 16x8192) against a device-to-device copy of the input, CUDA events.
static void time_quantize(cudaStream_t stream) {
  std::printf("\n%-14s %-12s %10s %10s %8s\n", "quantize", "format", "us", "copy us", "vs copy");
  for (int rows : {8192, 16}) {
    const int cols = 8192;
    size_t n = (size_t)rows * cols;
    void *src, *copy, *data, *scales, *workspace; float* decode;
    CHECK_CUDA(cudaMalloc(&src, n * 2)); CHECK_CUDA(cudaMalloc(&copy, n * 2)); CHECK_CUDA(cudaMalloc(&data, n));
    CHECK_CUDA(cudaMalloc(&scales, n / 16)); CHECK_CUDA(cudaMalloc(&decode, rows * 4)); CHECK_CUDA(cudaMalloc(&workspace, rows * 4));
    std::vector<uint16_t> host(n);
    std::mt19937 rng(3);
    for (auto& v : host) v = (uint16_t)(0x3C00 + (rng() & 0x3FF) - 0x200 + ((rng() & 1) << 15));  // bf16 around +-1
    CHECK_CUDA(cudaMemcpy(src, host.data(), n * 2, cudaMemcpyHostToDevice));
    auto time = [&](auto&& body) {
      for (int i = 0; i < 5; ++i) body();
      cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
      std::vector<float> ms(30);
      for (auto& t : ms) { cudaEventRecord(e0, stream); body(); cudaEventRecord(e1, stream); cudaEventSynchronize(e1); cudaEventElapsedTime(&t, e0, e1); }
      std::sort(ms.begin(), ms.end());
      return ms[15] * 1000.0;
    };
    double copy_us = time([&] { CHECK_CUDA(cudaMemcpyAsync(copy, src, n * 2, cudaMemcpyDeviceToDevice, stream)); });
    for (int format : {MS_FMT_NVFP4, MS_FMT_MXFP4, MS_FMT_FP8_ROW}) {
      ms_qtensor_t q{}; q.struct_size = sizeof q; q.format = format; q.rows = rows; q.cols = cols; q.data = data;
      q.block_scales = format == MS_FMT_FP8_ROW ? nullptr : scales; q.decode_scales = format == MS_FMT_MXFP4 ? nullptr : decode;
      ms_quantize_desc_t d{}; d.struct_size = sizeof d; d.src_dtype = MS_DTYPE_BF16;
      double us = time([&] { CHECK_MS(ms_quantize(&d, src, &q, workspace, rows * 4, stream)); });
      // Bytes: read 2/value; write 0.5 (FP4) or 1 (FP8) per value plus scales; the copy moves 4 per value.
      double bytes = n * 2.0 + n * (format == MS_FMT_FP8_ROW ? 1.0 : 0.5) + (format == MS_FMT_NVFP4 ? n / 16.0 : format == MS_FMT_MXFP4 ? n / 32.0 : 0);
      char shape[32]; std::snprintf(shape, sizeof shape, "%dx%d", rows, cols);
      std::printf("%-14s %-12s %10.1f %10.1f %8.3f\n", shape, format == MS_FMT_NVFP4 ? "nvfp4" : format == MS_FMT_MXFP4 ? "mxfp4" : "fp8-row",
                  us, copy_us, (bytes / us) / (n * 4.0 / copy_us));
    }
    cudaFree(src); cudaFree(copy); cudaFree(data); cudaFree(scales); cudaFree(decode); cudaFree(workspace);
  }
}

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--quantize") == 0) {
    cudaStream_t s; CHECK_CUDA(cudaFree(0)); CHECK_CUDA(cudaStreamCreate(&s));
    time_quantize(s);
    return 0;
  }
  if (argc >= 5 && std::strcmp(argv[1], "--profile") == 0) {
    CHECK_CUDA(cudaFree(0));
    return profile(std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]), argc > 5 ? argv[5] : nullptr);
  }
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  CHECK_CUDA(cudaFree(0));
  cudaStream_t stream; CHECK_CUDA(cudaStreamCreate(&stream));
  int sm = 0; char families[256]; CHECK_MS(ms_query(&sm, families, sizeof families));
  std::printf("sm_%d families: %s\n", sm, families);
  struct Shape { int m, n, k; };
  std::vector<Shape> checks = {{1, 128, 128}, {7, 130, 272}, {128, 128, 128}, {200, 300, 1040}, {256, 512, 4096}, {1000, 1000, 2000}};
  std::vector<Shape> timed = {{8192, 8192, 8192}, {4096, 4096, 4096}, {16384, 8192, 8192}, {4096, 14336, 4096}, {4096, 4096, 14336},
                              {1024, 8192, 8192}, {128, 8192, 8192}};
  if (quick) timed.resize(2);
  std::mt19937 rng(7);
  int failures = 0;
  std::printf("%-18s %-46s %12s %10s\n", "check m x n x k", "kernel", "max err/bnd", "result");
  for (Shape sh : checks) {
    const int m = sh.m, n = sh.n, k = sh.k;
    std::vector<uint8_t> ha((size_t)m * k), hb((size_t)n * k);
    for (auto& v : ha) { do v = rng() & 0xFF; while ((v & 0x7F) == 0x7F || (v & 0x78) > 0x50); }  // |x| <= 2^3, no NaN
    for (auto& v : hb) { do v = rng() & 0xFF; while ((v & 0x7F) == 0x7F || (v & 0x78) > 0x50); }
    std::vector<uint8_t> absa(ha), absb(hb);
    for (auto& v : absa) v &= 0x7F;
    for (auto& v : absb) v &= 0x7F;
    std::vector<float> hsa(m), hsb(n);
    for (auto& v : hsa) v = 0.5f + (rng() % 1000) / 1000.0f;
    for (auto& v : hsb) v = 0.5f + (rng() % 1000) / 1000.0f;
    void *a, *b, *aa, *ab; float *sa, *sb, *c1, *c2, *cabs;
    CHECK_CUDA(cudaMalloc(&a, ha.size())); CHECK_CUDA(cudaMalloc(&b, hb.size()));
    CHECK_CUDA(cudaMalloc(&aa, ha.size())); CHECK_CUDA(cudaMalloc(&ab, hb.size()));
    CHECK_CUDA(cudaMalloc(&sa, m * 4)); CHECK_CUDA(cudaMalloc(&sb, n * 4));
    CHECK_CUDA(cudaMalloc(&c1, (size_t)m * n * 4)); CHECK_CUDA(cudaMalloc(&c2, (size_t)m * n * 4)); CHECK_CUDA(cudaMalloc(&cabs, (size_t)m * n * 4));
    CHECK_CUDA(cudaMemcpy(a, ha.data(), ha.size(), cudaMemcpyHostToDevice)); CHECK_CUDA(cudaMemcpy(b, hb.data(), hb.size(), cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(aa, absa.data(), ha.size(), cudaMemcpyHostToDevice)); CHECK_CUDA(cudaMemcpy(ab, absb.data(), hb.size(), cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(sa, hsa.data(), m * 4, cudaMemcpyHostToDevice)); CHECK_CUDA(cudaMemcpy(sb, hsb.data(), n * 4, cudaMemcpyHostToDevice));
    char name[128];
    const char* check_config = std::getenv("SELFTEST_CONFIG");  // pin the checked config (else the heuristic's)
    run(check_config, m, n, k, a, sa, b, sb, c1, 0, name, stream);
    run("generic", m, n, k, a, sa, b, sb, c2, 0, nullptr, stream);
    run("generic", m, n, k, aa, sa, ab, sb, cabs, 0, nullptr, stream);
    CHECK_CUDA(cudaStreamSynchronize(stream));
    std::vector<float> r1((size_t)m * n), r2(r1.size()), rabs(r1.size());
    CHECK_CUDA(cudaMemcpy(r1.data(), c1, r1.size() * 4, cudaMemcpyDeviceToHost));
    CHECK_CUDA(cudaMemcpy(r2.data(), c2, r1.size() * 4, cudaMemcpyDeviceToHost));
    CHECK_CUDA(cudaMemcpy(rabs.data(), cabs, r1.size() * 4, cudaMemcpyDeviceToHost));
    double eps = std::ldexp(1.0, -9) + (std::ceil(k / 128.0) + k + 8) * std::ldexp(1.0, -24), worst = 0;
    for (size_t i = 0; i < r1.size(); ++i) {
      double bound = eps * rabs[i] + 1e-30;
      double ratio = std::fabs((double)r1[i] - r2[i]) / bound;
      if (!(ratio <= worst)) worst = std::isnan(ratio) ? INFINITY : ratio;
    }
    bool ok = worst <= 1.0;
    failures += !ok;
    char shape[32]; std::snprintf(shape, sizeof shape, "%dx%dx%d", m, n, k);
    std::printf("%-18s %-46s %12.3e %10s\n", shape, name, worst, ok ? "pass" : "FAIL");
    cudaFree(a); cudaFree(b); cudaFree(aa); cudaFree(ab); cudaFree(sa); cudaFree(sb); cudaFree(c1); cudaFree(c2); cudaFree(cabs);
  }

  std::printf("\n%-20s %-46s %10s %8s %12s %8s %7s\n", "time m x n x k", "kernel", "us", "TFLOPS", "cuBLASLt us", "TFLOPS", "ratio");
  double log_sum = 0; int count = 0;
  for (Shape sh : timed) {
    const int m = sh.m, n = sh.n, k = sh.k;
    const int sets = 4;
    std::vector<void*> as(sets), bs(sets);
    for (int i = 0; i < sets; ++i) {
      CHECK_CUDA(cudaMalloc(&as[i], (size_t)m * k)); CHECK_CUDA(cudaMalloc(&bs[i], (size_t)n * k));
      CHECK_CUDA(cudaMemset(as[i], 0x38, (size_t)m * k)); CHECK_CUDA(cudaMemset(bs[i], 0x30, (size_t)n * k));
    }
    float *sa, *sb, *one; void *out, *ws;
    CHECK_CUDA(cudaMalloc(&sa, m * 4)); CHECK_CUDA(cudaMalloc(&sb, n * 4)); CHECK_CUDA(cudaMalloc(&one, 4));
    std::vector<float> ones(std::max(m, n), 1.0f);
    CHECK_CUDA(cudaMemcpy(sa, ones.data(), m * 4, cudaMemcpyHostToDevice)); CHECK_CUDA(cudaMemcpy(sb, ones.data(), n * 4, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(one, ones.data(), 4, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMalloc(&out, (size_t)m * n * 2)); CHECK_CUDA(cudaMalloc(&ws, 32 << 20));
    char name[128];
    auto time = [&](auto&& body) {
      for (int i = 0; i < 10; ++i) body(i % sets);
      std::vector<float> ms(50);
      cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
      for (int i = 0; i < 50; ++i) {
        cudaEventRecord(e0, stream); body(i % sets); cudaEventRecord(e1, stream); cudaEventSynchronize(e1);
        cudaEventElapsedTime(&ms[i], e0, e1);
      }
      std::sort(ms.begin(), ms.end());
      return ms[25] * 1000.0;
    };
    unsetenv("MS_FORCE_CONFIG");
    ms_gemm_desc_t d{}; d.struct_size = sizeof d; d.m = m; d.n = n; d.k = k;
    d.a_format = MS_FMT_FP8_ROW; d.b_format = MS_FMT_FP8_ROW; d.out_dtype = MS_DTYPE_BF16;
    double base = time([&](int i) {
      if (msb_gemm(1, m, n, k, as[i], bs[i], out, one, one, ws, 32 << 20, stream)) { std::printf("cuBLASLt: %s\n", msb_last_error()); std::exit(4); }
    });
    double flops = 2.0 * m * n * k;
    char shape[32]; std::snprintf(shape, sizeof shape, "%dx%dx%d", m, n, k);
    // The heuristic's choice first (it goes into the geometric mean), then every config forced, to tune the heuristic.
    const char* configs[] = {nullptr, "ms_sm90_fp8_gemm_nt_256x128x128_c1x1_s4_ws", "ms_sm90_fp8_gemm_nt_128x128x128_c1x1_s6_ws",
                             "ms_sm90_fp8_gemm_nt_128x128x128_c2x1_s6_ws"};
    for (const char* config : configs) {
      if (config) setenv("MS_FORCE_CONFIG", config, 1);
      ms_gemm_plan* plan = nullptr;
      if (ms_gemm_plan_create(&d, &plan) != MS_OK) continue;
      CHECK_MS(ms_gemm_plan_name(plan, name, sizeof name));
      double us = time([&](int i) {
        ms_gemm_operands_t o{}; o.struct_size = sizeof o; o.alpha = 1.0f;
        o.a = fp8(as[i], sa, m, k, MS_FMT_FP8_ROW); o.b = fp8(bs[i], sb, n, k, MS_FMT_FP8_ROW); o.out = out;
        CHECK_MS(ms_gemm_plan_run(plan, &o, nullptr, stream));
      });
      ms_gemm_plan_destroy(plan);
      std::printf("%-20s %-46s %10.1f %8.1f %12.1f %8.1f %7.3f%s\n", shape, name, us, flops / us / 1e6, base, flops / base / 1e6, base / us,
                  config ? " (forced)" : "");
      if (!config) { log_sum += std::log(base / us); count++; }
    }
    unsetenv("MS_FORCE_CONFIG");
    for (int i = 0; i < sets; ++i) { cudaFree(as[i]); cudaFree(bs[i]); }
    cudaFree(sa); cudaFree(sb); cudaFree(one); cudaFree(out); cudaFree(ws);
  }
  std::printf("geometric mean ratio vs cuBLASLt FP8 per-tensor: %.3f\n", std::exp(log_sum / std::max(count, 1)));
  time_quantize(stream);
  std::printf("%d check failures\n", failures);
  return failures ? 1 : 0;
}
