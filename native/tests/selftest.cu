// microscale_selftest: checks and times the GEMM families through the C ABI, without .NET (for kernel work on a GPU box).
//   microscale_selftest [--quick] [--sweep]
// Checks: for FP8 per-row x per-row problems, every sm90 config (and the heuristic's plan), FP32 and BF16 output, against the
// generic plan (MS_FORCE_CONFIG=generic): |C - C_generic| <= (2^-9 + (ceil(K/128) + K + 8) 2^-24) * sum|a b| (the sm90 bound
// of GemmAccuracy plus the generic kernel's own; sum|a b| from the generic kernel on |A|, |B|), plus 2^-8 |C_generic| for BF16
// rounding; it prints the worst ratio to that bound. Diagnostic configs (no promotion) are reported, not counted.
// Timing: the heuristic's plan against cuBLASLt FP8 (BF16 out), per-tensor and row-wise scaling, with CUDA events: median of
// 50 after warm-up, rotating 4 random operand sets, cuBLASLt and Microscale launches interleaved so that both see the same
// clocks (the H100 runs power-limited on random data); plans with a workspace (the stream-K tail) are also timed without it;
// --sweep also times every config forced. The checks set MS_STREAM_K=1 so that their larger shapes take the stream-K tail.
//   microscale_selftest --soak M N K SECONDS [CONFIG]: Microscale then cuBLASLt, each back to back for SECONDS (watch the
//   clocks with nvidia-smi meanwhile). --quantize / --repack: the quantize and GGUF repack kernels against a device copy.
//   --w4a8 [quick]: FP8 x MXFP4 on the sm90 W4A8 family, checked and timed (time_w4a8).
//   --decode [quick | N K M]: the decode GEMM (M <= 64) checked against the generic kernel and timed against cuBLAS BF16 and a copy.
#include <cuda_runtime.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <utility>
#include <vector>
#include "microscale.h"

extern "C" int msb_gemm(int dtype, int m, int n, int k, const void* a, const void* b, void* d, const void* a_scale, const void* b_scale,
                        void* workspace, size_t workspace_bytes, void* stream);
extern "C" const char* msb_last_error(void);

#define CHECK_CUDA(x) do { cudaError_t e = (x); if (e != cudaSuccess) { std::printf("CUDA %s at %s:%d\n", cudaGetErrorString(e), __FILE__, __LINE__); std::exit(2); } } while (0)
#define CHECK_MS(x) do { ms_status_t st_ = (x); if (st_ != MS_OK) { std::printf("ms status %d: %s (%s) at line %d\n", st_, ms_last_error_message(), ms_last_error_argument(), __LINE__); std::exit(3); } } while (0)

static ms_qtensor_t fp8(void* data, float* scales, int rows, int cols, int format) {
  ms_qtensor_t t{};
  t.struct_size = sizeof t; t.format = format; t.element = MS_ELEM_E4M3; t.rows = rows; t.cols = cols; t.data = data; t.decode_scales = scales;
  return t;
}

// The sm90 configs (native/kernels/sm90_fp8_gemm_nt.cu); the last is a diagnostic.
static const char* const kConfigs[] = {"ms_sm90_fp8_gemm_nt_128x64x128_c1x1_s8_ws", "ms_sm90_fp8_gemm_nt_128x128x128_c1x1_s6_ws",
                                       "ms_sm90_fp8_gemm_nt_128x192x128_c1x1_s4_ws", "ms_sm90_fp8_gemm_nt_128x128x128_c2x1_s6_ws",
                                       "ms_sm90_fp8_gemm_nt_128x256x128_c1x1_s3_ws_nopromotion"};
static bool diagnostic(const char* config) { return config && std::strstr(config, "_nopromotion"); }

// The plan's workspace (allocated per call: cudaFree synchronizes, which the callers of these helpers can afford).
struct Workspace {
  void* data = nullptr;
  explicit Workspace(const ms_gemm_plan* plan) {
    size_t bytes = 0;
    CHECK_MS(ms_gemm_plan_workspace_size(plan, &bytes));
    if (bytes) { CHECK_CUDA(cudaMalloc(&data, bytes)); CHECK_CUDA(cudaMemset(data, 0, bytes)); }  // zero-filled before first use
  }
  ~Workspace() { if (data) cudaFree(data); }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
};

// The plan for [m, k] x [n, k]^T of these formats (MS_FORCE_CONFIG = force, or the heuristic's); the variable stays set.
static ms_gemm_plan* plan_for(const char* force, int m, int n, int k, int a_format, int b_format, int out_dtype) {
  if (force) setenv("MS_FORCE_CONFIG", force, 1); else unsetenv("MS_FORCE_CONFIG");
  ms_gemm_desc_t d{}; d.struct_size = sizeof d; d.m = m; d.n = n; d.k = k;
  d.a_format = a_format; d.b_format = b_format; d.out_dtype = out_dtype;
  ms_gemm_plan* plan = nullptr;
  CHECK_MS(ms_gemm_plan_create(&d, &plan));
  return plan;
}

// One run of the plan for a x b^T (MS_FORCE_CONFIG = force, or the heuristic's), then a synchronize; name: the plan's kernel.
static void run_pair(const char* force, const ms_qtensor_t& a, const ms_qtensor_t& b, void* out, int out_dtype, char* name, cudaStream_t s) {
  ms_gemm_plan* plan = plan_for(force, a.rows, b.rows, a.cols, a.format, b.format, out_dtype);
  if (name) CHECK_MS(ms_gemm_plan_name(plan, name, 128));
  ms_gemm_operands_t o{}; o.struct_size = sizeof o; o.alpha = 1.0f;
  o.a = a; o.b = b; o.out = out;
  Workspace workspace(plan);
  CHECK_MS(ms_gemm_plan_run(plan, &o, workspace.data, s));
  CHECK_CUDA(cudaStreamSynchronize(s));
  ms_gemm_plan_destroy(plan);
}

static void run(const char* force, int m, int n, int k, void* a, float* sa, void* b, float* sb, void* out, int out_dtype, char* name, cudaStream_t s,
                int format = MS_FMT_FP8_ROW) {
  run_pair(force, fp8(a, sa, m, k, format), fp8(b, sb, n, k, format), out, out_dtype, name, s);
}

// Random FP8 bytes without NaN codes (S.1111.111), for timing on data that toggles like real operands.
__global__ void fill_random_fp8(uint8_t* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 0x9E3779B1u ^ seed;
    h ^= h >> 15; h *= 0x2C1B3C6Du; h ^= h >> 12; h *= 0x297A2D39u; h ^= h >> 15;
    uint8_t v = (uint8_t)h;
    p[i] = (v & 0x7F) == 0x7F ? (uint8_t)(v ^ 1) : v;
  }
}

static float bf16_to_float(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; std::memcpy(&f, &u, 4); return f; }

// The [m, n] output at `c` (F32 or BF16) as floats into r (h: the BF16 bits, when BF16).
static void fetch_output(const void* c, int out_dtype, std::vector<float>& r, std::vector<uint16_t>& h) {
  if (out_dtype == MS_DTYPE_F32) {
    CHECK_CUDA(cudaMemcpy(r.data(), c, r.size() * 4, cudaMemcpyDeviceToHost));
    return;
  }
  CHECK_CUDA(cudaMemcpy(h.data(), c, h.size() * 2, cudaMemcpyDeviceToHost));
  for (size_t i = 0; i < r.size(); ++i) r[i] = bf16_to_float(h[i]);
}

// --profile M N K [CONFIG [tensor|row]]: run one problem 3 times with the auto (or forced) plan and per-row (default) or
// per-tensor scales, for ncu; nothing else.
static int profile(int m, int n, int k, const char* config, int format) {
  void *a, *b, *out; float* s;
  CHECK_CUDA(cudaMalloc(&a, (size_t)m * k)); CHECK_CUDA(cudaMalloc(&b, (size_t)n * k)); CHECK_CUDA(cudaMalloc(&out, (size_t)m * n * 2));
  CHECK_CUDA(cudaMalloc(&s, 4 * (size_t)(m > n ? m : n)));
  fill_random_fp8<<<1024, 256>>>((uint8_t*)a, (size_t)m * k, 1); fill_random_fp8<<<1024, 256>>>((uint8_t*)b, (size_t)n * k, 2);
  CHECK_CUDA(cudaMemset(s, 0x3C, 4 * (size_t)(m > n ? m : n)));  // every scale 0x3C3C3C3C = 0.0115
  char name[128];
  for (int i = 0; i < 3; ++i) run(config, m, n, k, a, s, b, s, out, MS_DTYPE_BF16, name, nullptr, format);
  CHECK_CUDA(cudaDeviceSynchronize());
  std::printf("profiled %s\n", name);
  return 0;
}

// Medians (us) of `rounds` interleaved rounds of `variants` launches, launch(variant, round): each round starts with an untimed
// launch of variant 0 (it keeps the queue busy), then times every variant once between CUDA events, so that all see the same
// clocks.
template <class Launch> static std::vector<float> interleaved_medians(int variants, int rounds, Launch launch) {
  std::vector<cudaEvent_t> e(variants + 1);
  for (auto& x : e) cudaEventCreate(&x);
  std::vector<std::vector<float>> t(variants);
  for (int round = 0; round < rounds; ++round) {
    launch(0, round);
    for (int i = 0; i < variants; ++i) { cudaEventRecord(e[i]); launch(i, round); }
    cudaEventRecord(e[variants]); cudaEventSynchronize(e[variants]);
    for (int i = 0; i < variants; ++i) { float ms; cudaEventElapsedTime(&ms, e[i], e[i + 1]); t[i].push_back(ms * 1000); }
  }
  for (auto& x : e) cudaEventDestroy(x);
  std::vector<float> medians(variants);
  for (int i = 0; i < variants; ++i) { std::sort(t[i].begin(), t[i].end()); medians[i] = t[i][rounds / 2]; }
  return medians;
}

// --scales M N K: the heuristic's plan with A x B scales tensor x tensor, row x row, tensor x row and row x tensor on the same
// random data, launches of the four interleaved; medians of 30 (us). Isolates what per-row scales cost.
static int time_scale_modes(int m, int n, int k) {
  void *a, *b, *out; float* s;
  CHECK_CUDA(cudaMalloc(&a, (size_t)m * k)); CHECK_CUDA(cudaMalloc(&b, (size_t)n * k)); CHECK_CUDA(cudaMalloc(&out, (size_t)m * n * 2));
  CHECK_CUDA(cudaMalloc(&s, 4 * (size_t)(m > n ? m : n)));
  fill_random_fp8<<<1024, 256>>>((uint8_t*)a, (size_t)m * k, 1); fill_random_fp8<<<1024, 256>>>((uint8_t*)b, (size_t)n * k, 2);
  CHECK_CUDA(cudaMemset(s, 0x3C, 4 * (size_t)(m > n ? m : n)));
  const int modes[4][2] = {{MS_FMT_FP8_TENSOR, MS_FMT_FP8_TENSOR}, {MS_FMT_FP8_ROW, MS_FMT_FP8_ROW}, {MS_FMT_FP8_TENSOR, MS_FMT_FP8_ROW},
                           {MS_FMT_FP8_ROW, MS_FMT_FP8_TENSOR}};
  ms_gemm_plan* plans[4];
  for (int i = 0; i < 4; ++i) {
    ms_gemm_desc_t d{}; d.struct_size = sizeof d; d.m = m; d.n = n; d.k = k;
    d.a_format = modes[i][0]; d.b_format = modes[i][1]; d.out_dtype = MS_DTYPE_BF16;
    CHECK_MS(ms_gemm_plan_create(&d, &plans[i]));
  }
  Workspace workspace(plans[0]);  // the four plans share a shape and config, so one workspace size
  auto launch = [&](int i) {
    ms_gemm_operands_t o{}; o.struct_size = sizeof o; o.alpha = 1.0f;
    o.a = fp8(a, s, m, k, modes[i][0]); o.b = fp8(b, s, n, k, modes[i][1]); o.out = out;
    CHECK_MS(ms_gemm_plan_run(plans[i], &o, workspace.data, nullptr));
  };
  for (int w = 0; w < 3; ++w) for (int i = 0; i < 4; ++i) launch(i);
  const std::vector<float> t = interleaved_medians(4, 30, [&](int i, int) { launch(i); });
  const char* names[4] = {"tensor x tensor", "row x row", "tensor x row", "row x tensor"};
  for (int i = 0; i < 4; ++i) {
    std::printf("scales %dx%dx%d %-16s %9.1f us\n", m, n, k, names[i], t[i]);
    ms_gemm_plan_destroy(plans[i]);
  }
  return 0;
}

// --soak M N K SECONDS [CONFIG]: Microscale (per-tensor, BF16 out) then cuBLASLt back to back for SECONDS each, printing the
// achieved TFLOPS and the wall-clock window of each phase (to match against nvidia-smi clock / power samples).
static int soak(int m, int n, int k, double seconds, const char* config) {
  const int sets = 4;
  std::vector<void*> as(sets), bs(sets);
  for (int i = 0; i < sets; ++i) {
    CHECK_CUDA(cudaMalloc(&as[i], (size_t)m * k)); CHECK_CUDA(cudaMalloc(&bs[i], (size_t)n * k));
    fill_random_fp8<<<1024, 256>>>((uint8_t*)as[i], (size_t)m * k, 2 * i + 1);
    fill_random_fp8<<<1024, 256>>>((uint8_t*)bs[i], (size_t)n * k, 2 * i + 2);
  }
  float* s; void *out, *ws;
  CHECK_CUDA(cudaMalloc(&s, 4)); CHECK_CUDA(cudaMalloc(&out, (size_t)m * n * 2)); CHECK_CUDA(cudaMalloc(&ws, 32 << 20));
  float scale = 1.0f / 64;
  CHECK_CUDA(cudaMemcpy(s, &scale, 4, cudaMemcpyHostToDevice));
  if (config) setenv("MS_FORCE_CONFIG", config, 1);
  ms_gemm_desc_t d{}; d.struct_size = sizeof d; d.m = m; d.n = n; d.k = k;
  d.a_format = MS_FMT_FP8_TENSOR; d.b_format = MS_FMT_FP8_TENSOR; d.out_dtype = MS_DTYPE_BF16;
  ms_gemm_plan* plan = nullptr;
  CHECK_MS(ms_gemm_plan_create(&d, &plan));
  char name[128]; CHECK_MS(ms_gemm_plan_name(plan, name, sizeof name));
  Workspace workspace(plan);
  auto phase = [&](const char* label, auto&& body) {
    auto wall = [] { timespec ts; clock_gettime(CLOCK_REALTIME, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; };
    double start = wall(), now = start; long launches = 0;
    while (now - start < seconds) {
      for (int i = 0; i < 20; ++i, ++launches) body((int)(launches % sets));
      CHECK_CUDA(cudaDeviceSynchronize());
      now = wall();
    }
    std::printf("soak %-10s %-56s %8.1f TFLOPS  wall %.3f .. %.3f\n", label, label[0] == 'm' ? name : "cublasLt", 2.0 * m * n * k * launches / (now - start) / 1e12,
                start, now);
  };
  phase("microscale", [&](int i) {
    ms_gemm_operands_t o{}; o.struct_size = sizeof o; o.alpha = 1.0f;
    o.a = fp8(as[i], s, m, k, MS_FMT_FP8_TENSOR); o.b = fp8(bs[i], s, n, k, MS_FMT_FP8_TENSOR); o.out = out;
    CHECK_MS(ms_gemm_plan_run(plan, &o, workspace.data, nullptr));
  });
  phase("cublaslt", [&](int i) {
    if (msb_gemm(1, m, n, k, as[i], bs[i], out, s, s, ws, 32 << 20, nullptr)) { std::printf("cuBLASLt: %s\n", msb_last_error()); std::exit(4); }
  });
  ms_gemm_plan_destroy(plan);
  return 0;
}

// Median of 30 CUDA-event timings of `body` on `stream` after 5 warm-up runs, in microseconds.
template <class Body>
static double median_us(cudaStream_t stream, Body&& body) {
  for (int i = 0; i < 5; ++i) body();
  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  std::vector<float> ms(30);
  for (auto& t : ms) { cudaEventRecord(e0, stream); body(); cudaEventRecord(e1, stream); cudaEventSynchronize(e1); cudaEventElapsedTime(&t, e0, e1); }
  cudaEventDestroy(e0); cudaEventDestroy(e1);
  std::sort(ms.begin(), ms.end());
  return ms[15] * 1000.0;
}

// --repack: GGUF MXFP4 / NVFP4 blocks of a 8192x8192 and a 14336x4096 weight repacked on the device (ms_gguf_repack)
// against a device-to-device copy of the same blocks; bytes moved = blocks read + codes and scales written.
static void time_repack(cudaStream_t stream) {
  std::printf("\n%-14s %-8s %10s %10s %8s\n", "gguf repack", "type", "us", "copy us", "vs copy");
  for (auto [rows, cols] : {std::pair<int, int>{8192, 8192}, {14336, 4096}}) {
    for (int type : {39, 40}) {
      const int block = type == 39 ? 32 : 64, block_bytes = type == 39 ? 17 : 36;
      const size_t blocks = (size_t)rows * cols / block, bytes = blocks * block_bytes;
      void *src, *copy, *data, *scales; float* g;
      CHECK_CUDA(cudaMalloc(&src, bytes)); CHECK_CUDA(cudaMalloc(&copy, bytes)); CHECK_CUDA(cudaMalloc(&data, (size_t)rows * cols / 2));
      CHECK_CUDA(cudaMalloc(&scales, (size_t)rows * cols / 16)); CHECK_CUDA(cudaMalloc(&g, 4));
      fill_random_fp8<<<1024, 256, 0, stream>>>((uint8_t*)src, bytes, 5);  // any bytes: scale checks do not branch on values
      ms_qtensor_t q{}; q.struct_size = sizeof q; q.format = type == 39 ? MS_FMT_MXFP4 : MS_FMT_NVFP4; q.rows = rows; q.cols = cols;
      q.data = data; q.block_scales = scales; q.decode_scales = type == 39 ? nullptr : g;
      double copy_us = median_us(stream, [&] { CHECK_CUDA(cudaMemcpyAsync(copy, src, bytes, cudaMemcpyDeviceToDevice, stream)); });
      double us = median_us(stream, [&] { CHECK_MS(ms_gguf_repack(type, src, &q, 1.0f, stream)); });
      char shape[32]; std::snprintf(shape, sizeof shape, "%dx%d", rows, cols);
      std::printf("%-14s %-8s %10.1f %10.1f %8.3f\n", shape, type == 39 ? "mxfp4" : "nvfp4", us, copy_us, copy_us / us);  // both move the same bytes
      cudaFree(src); cudaFree(copy); cudaFree(data); cudaFree(scales); cudaFree(g);
    }
  }
}

// BF16 test tensor for the quantizer check. Rows below 256 sweep every magnitude of the 11 binades below 2^(row - 127)
// (both signs, every mantissa, subnormals at row 0-10), each 32-value block led by the binade's largest value, so a block's
// scale is set by its row and every element code of every shift is reached; row 255 holds Inf / NaN leaders. Later rows:
// random bits (NaN, Inf, subnormals anywhere), blocks around a random exponent (ties, zeros, -0), tiny and huge values.
__device__ uint32_t mix32(uint32_t x) {
  x ^= x >> 16; x *= 0x7FEB352Du; x ^= x >> 15; x *= 0x846CA68Bu; x ^= x >> 16;
  return x;
}
__global__ void fill_quantizer_check(uint16_t* x, int rows, int cols, uint32_t seed) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (int64_t)rows * cols; i += (int64_t)gridDim.x * blockDim.x) {
    const int row = (int)(i / cols), col = (int)(i % cols);
    const uint32_t h = mix32((uint32_t)i * 0x9E3779B9u + seed), hb = mix32((uint32_t)(i / 32) + seed * 31u);
    uint32_t v;
    if (row < 256) {
      const int k = (col / 32) * 31 + col % 32 - 1;
      const int binade = row - (k / 256) % 11;
      v = col % 32 == 0 ? (uint32_t)(row << 7) | 0x7Fu | (row == 255 && (col / 32) % 2 ? 0x40u : 0u)
                        : (binade < 0 ? 0u : (uint32_t)(binade << 7) | (uint32_t)(k % 128)) | (uint32_t)((k / 128) % 2) << 15;
    } else if (row % 4 == 0) {
      v = h & 0xFFFFu;
    } else if (row % 4 == 1) {
      const int e = (int)(hb % 250) + 2 - (int)(h % 8);
      v = (h >> 8) % 16 == 0 ? 0u : (uint32_t)(e < 0 ? 0 : e) << 7 | ((h >> 12) & 0x7Fu);
      v |= (h >> 20 & 1u) << 15;
    } else if (row % 4 == 2) {
      v = ((h >> 3) % 9) << 7 | ((h >> 12) & 0x7Fu) | (h >> 20 & 1u) << 15;
    } else {
      v = (240u + (h >> 3) % 15) << 7 | ((h >> 12) & 0x7Fu) | (h >> 20 & 1u) << 15;
    }
    x[i] = (uint16_t)v;
  }
}
__global__ void bf16_to_f32(const uint16_t* x, float* y, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) y[i] = __uint_as_float((uint32_t)x[i] << 16);
}

static bool same_bytes(const void* a, const void* b, size_t n) {
  std::vector<uint8_t> ha(n), hb(n);
  CHECK_CUDA(cudaMemcpy(ha.data(), a, n, cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(hb.data(), b, n, cudaMemcpyDeviceToHost));
  return ha == hb;
}

// The BF16 activation quantizer (smxx_quantize_bf16.cu) against the generic kernels on the same values as F32 (which the
// BF16 kernels never take): codes, block scales and decode scales byte for byte, every format, rule and rotation, linear
// and swizzled scales, K padded or not. Returns the number of mismatching cases.
static int check_quantizer(cudaStream_t stream) {
  int failures = 0, cases = 0;
  float* signs;
  CHECK_CUDA(cudaMalloc(&signs, 256 * sizeof(float)));
  std::vector<float> host_signs(256);
  for (int i = 0; i < 256; ++i) host_signs[i] = (i * 7 + i / 3) % 5 < 2 ? -1.0f : 1.0f;
  CHECK_CUDA(cudaMemcpy(signs, host_signs.data(), 256 * sizeof(float), cudaMemcpyHostToDevice));
  for (auto [rows, cols] : {std::pair<int, int>{300, 8192}, {37, 4104}, {19, 1040}, {9, 16384}, {21, 4096}}) {
    const size_t n = (size_t)rows * cols;
    uint16_t* bf16; float* f32;
    CHECK_CUDA(cudaMalloc(&bf16, n * 2)); CHECK_CUDA(cudaMalloc(&f32, n * 4));
    fill_quantizer_check<<<1024, 256, 0, stream>>>(bf16, rows, cols, 11u + (uint32_t)cols);
    bf16_to_f32<<<1024, 256, 0, stream>>>(bf16, f32, n);
    struct Case { int format, element, hadamard, rule, swizzled; };
    std::vector<Case> list;
    for (int h : {0, 16, 32, 64, 128, 256}) {
      if (h && cols % h) continue;
      for (int rule : {0, 1}) {
        list.push_back({MS_FMT_MXFP4, 0, h, rule, 0});
        list.push_back({MS_FMT_MXFP8, MS_ELEM_E4M3, h, rule, rule});
        list.push_back({MS_FMT_MXFP8, MS_ELEM_E5M2, h, rule, 0});
      }
      list.push_back({MS_FMT_MXFP4, 0, h, 0, 1});
      list.push_back({MS_FMT_NVFP4, 0, h, 0, 0});
      list.push_back({MS_FMT_NVFP4, 0, h, 0, 1});
      list.push_back({MS_FMT_FP8_TENSOR, MS_ELEM_E4M3, h, 0, 0});
      list.push_back({MS_FMT_FP8_TENSOR, MS_ELEM_E5M2, h, 0, 0});
      list.push_back({MS_FMT_FP8_ROW, MS_ELEM_E4M3, h, 0, 0});
      list.push_back({MS_FMT_FP8_ROW, MS_ELEM_E5M2, h, 0, 0});
    }
    for (const Case& c : list) {
      ms_qtensor_t q[2];
      void* parts[2][3] = {};
      size_t data_bytes = 0, scale_bytes = 0;
      for (int side = 0; side < 2; ++side) {
        ms_qtensor_t& t = q[side];
        t = ms_qtensor_t{}; t.struct_size = sizeof t; t.format = c.format; t.element = c.element; t.rows = rows; t.cols = cols;
        t.layout = c.swizzled ? MS_LAYOUT_SWIZZLED_128X4 : MS_LAYOUT_LINEAR;
        CHECK_MS(ms_qtensor_bytes(&t, &data_bytes, &scale_bytes));
        CHECK_CUDA(cudaMalloc(&parts[side][0], data_bytes)); CHECK_CUDA(cudaMemset(parts[side][0], 0xA5, data_bytes));
        if (scale_bytes) { CHECK_CUDA(cudaMalloc(&parts[side][1], scale_bytes)); CHECK_CUDA(cudaMemset(parts[side][1], 0x5A, scale_bytes)); }
        CHECK_CUDA(cudaMalloc(&parts[side][2], rows * 4 + 4));
        t.data = parts[side][0]; t.block_scales = (uint8_t*)parts[side][1];
        t.decode_scales = c.format == MS_FMT_NVFP4 || c.format == MS_FMT_FP8_TENSOR || c.format == MS_FMT_FP8_ROW ? (float*)parts[side][2] : nullptr;
        ms_quantize_desc_t d{}; d.struct_size = sizeof d; d.src_dtype = side ? MS_DTYPE_F32 : MS_DTYPE_BF16; d.rule = c.rule;
        d.hadamard_block = c.hadamard; d.hadamard_signs = c.hadamard ? signs : nullptr;
        size_t ws = 0;
        CHECK_MS(ms_quantize_workspace_size(&t, &d, &ws));
        void* workspace = nullptr;
        if (ws) CHECK_CUDA(cudaMalloc(&workspace, ws));
        CHECK_MS(ms_quantize(&d, side ? (const void*)f32 : (const void*)bf16, &t, workspace, ws, stream));
        CHECK_CUDA(cudaStreamSynchronize(stream));
        if (workspace) cudaFree(workspace);
      }
      const int decode_count = c.format == MS_FMT_FP8_ROW ? rows : c.format == MS_FMT_NVFP4 || c.format == MS_FMT_FP8_TENSOR ? 1 : 0;
      const bool ok = same_bytes(parts[0][0], parts[1][0], data_bytes) && (!scale_bytes || same_bytes(parts[0][1], parts[1][1], scale_bytes)) &&
                      (!decode_count || same_bytes(parts[0][2], parts[1][2], decode_count * 4));
      ++cases;
      if (!ok) {
        ++failures;
        std::printf("quantizer check FAILED: %dx%d format %d element %d hadamard %d rule %d swizzled %d\n", rows, cols, c.format, c.element,
                    c.hadamard, c.rule, c.swizzled);
      }
      for (auto& side : parts) for (void* ptr : side) if (ptr) cudaFree(ptr);
    }
    cudaFree(bf16); cudaFree(f32);
  }
  cudaFree(signs);
  std::printf("quantizer check: BF16 kernels against the generic kernels on the same values, %d cases, %d failures\n", cases, failures);
  return failures;
}

// Median time of one launch, from CUDA events around `batch` back-to-back launches (throughput, launch gaps hidden).
template <typename Body>
static double median_batched_us(cudaStream_t stream, int batch, Body&& body) {
  for (int i = 0; i < 5; ++i) body();
  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  std::vector<float> ms(15);
  for (auto& t : ms) {
    cudaEventRecord(e0, stream);
    for (int i = 0; i < batch; ++i) body();
    cudaEventRecord(e1, stream); cudaEventSynchronize(e1); cudaEventElapsedTime(&t, e0, e1);
  }
  cudaEventDestroy(e0); cudaEventDestroy(e1);
  std::sort(ms.begin(), ms.end());
  return ms[7] * 1000.0 / batch;
}

// Quantization of an 8192x8192 BF16 tensor (and 16x8192) against a device-to-device copy of the input, CUDA events: one
// launch per event pair (latency included) and batches of 20 back-to-back launches (throughput), each against the copy
// timed the same way.
static int time_quantize(cudaStream_t stream, const char* only = nullptr) {
  const int failures = only ? 0 : check_quantizer(stream);
  std::printf("\n%-14s %-12s %10s %10s %8s %10s %10s %8s\n", "quantize", "format", "us", "copy us", "vs copy", "batch us", "copy us", "vs copy");
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
    double copy_us = median_us(stream, [&] { CHECK_CUDA(cudaMemcpyAsync(copy, src, n * 2, cudaMemcpyDeviceToDevice, stream)); });
    double copy_batch_us = median_batched_us(stream, 20, [&] { CHECK_CUDA(cudaMemcpyAsync(copy, src, n * 2, cudaMemcpyDeviceToDevice, stream)); });
    struct Case { int format, hadamard; };
    for (Case c : {Case{MS_FMT_NVFP4, 0}, Case{MS_FMT_MXFP4, 0}, Case{MS_FMT_MXFP8, 0}, Case{MS_FMT_FP8_ROW, 0}, Case{MS_FMT_FP8_TENSOR, 0},
                   Case{MS_FMT_MXFP4, 32}, Case{MS_FMT_NVFP4, 16}, Case{MS_FMT_MXFP4, 128}, Case{MS_FMT_FP8_ROW, 128}}) {
      const int format = c.format;
      const bool mx = format == MS_FMT_MXFP4 || format == MS_FMT_MXFP8;
      ms_qtensor_t q{}; q.struct_size = sizeof q; q.format = format; q.rows = rows; q.cols = cols; q.data = data;
      q.block_scales = mx || format == MS_FMT_NVFP4 ? scales : nullptr; q.decode_scales = mx ? nullptr : decode;
      ms_quantize_desc_t d{}; d.struct_size = sizeof d; d.src_dtype = MS_DTYPE_BF16; d.hadamard_block = c.hadamard;
      char shape[32], name[32];
      std::snprintf(shape, sizeof shape, "%dx%d", rows, cols);
      std::snprintf(name, sizeof name, "%s%s%d", format == MS_FMT_NVFP4 ? "nvfp4" : format == MS_FMT_MXFP4 ? "mxfp4" : format == MS_FMT_MXFP8 ? "mxfp8"
                    : format == MS_FMT_FP8_ROW ? "fp8-row" : "fp8-tensor", c.hadamard ? "+h" : "", c.hadamard);
      if (!c.hadamard) name[std::strlen(name) - 1] = '\0';  // no "0" suffix
      if (only && std::strcmp(only, name) != 0) continue;
      double us = median_us(stream, [&] { CHECK_MS(ms_quantize(&d, src, &q, workspace, rows * 4, stream)); });
      double batch_us = median_batched_us(stream, 20, [&] { CHECK_MS(ms_quantize(&d, src, &q, workspace, rows * 4, stream)); });
      // Bytes: read 2/value; write 0.5 (FP4) or 1 (FP8) per value plus scales; the copy moves 4 per value.
      const bool fp4 = format == MS_FMT_MXFP4 || format == MS_FMT_NVFP4;
      double bytes = n * 2.0 + n * (fp4 ? 0.5 : 1.0) + (format == MS_FMT_NVFP4 ? n / 16.0 : mx ? n / 32.0 : 0);
      std::printf("%-14s %-12s %10.1f %10.1f %8.3f %10.1f %10.1f %8.3f\n", shape, name, us, copy_us, (bytes / us) / (n * 4.0 / copy_us),
                  batch_us, copy_batch_us, (bytes / batch_us) / (n * 4.0 / copy_batch_us));
    }
    cudaFree(src); cudaFree(copy); cudaFree(data); cudaFree(scales); cudaFree(decode); cudaFree(workspace);
  }
  return failures;
}

// --decode: W4A16 (MXFP4 / NVFP4) and W8A16 (E4M3 per-row) decode plans on random codes (block scales 2^-9..2^-1, UE4M3 scales
// 0x20..0x4F) and BF16 activations. Check (first weight set): |C - C_generic| / ((2^-17 + (2K + 12) 2^-24) sum|a b| + 2^-126),
// sum|a b| from the generic kernel on |A|, |B|. Timing: CUDA events, medians of 30, weight sets rotated (>= 100 MB), the
// decode plan and cuBLAS BF16 alternately; weight GB/s = (codes + scales) / time against a 1 GiB device copy (read + write);
// "static" columns: the same plan made with MS_GEMM_STATIC_WEIGHTS (weights streamed while the previous launch finishes).
__global__ void fill_bytes(uint8_t* p, size_t n, uint32_t seed, uint32_t lo, uint32_t span, uint32_t mask) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 0x9E3779B1u ^ seed;
    h ^= h >> 15; h *= 0x2C1B3C6Du; h ^= h >> 12; h *= 0x297A2D39u; h ^= h >> 15;
    p[i] = span ? (uint8_t)(lo + h % span) : (uint8_t)(h & mask);
  }
}

static int time_decode(bool quick, int only_n = 0, int only_k = 0, int only_m = 0) {
  cudaStream_t s; CHECK_CUDA(cudaStreamCreate(&s));
  void* ws32; CHECK_CUDA(cudaMalloc(&ws32, 32 << 20));
  const size_t copy_bytes = (size_t)1 << 30;
  void *c0, *c1; CHECK_CUDA(cudaMalloc(&c0, copy_bytes)); CHECK_CUDA(cudaMalloc(&c1, copy_bytes));
  const double copy_gbps = 2.0 * copy_bytes / (median_us(s, [&] { CHECK_CUDA(cudaMemcpyAsync(c1, c0, copy_bytes, cudaMemcpyDeviceToDevice, s)); }) * 1e3);
  cudaFree(c0); cudaFree(c1);
  std::printf("\ndevice copy %.0f GB/s (static: the plan made with MS_GEMM_STATIC_WEIGHTS)\n%-11s %3s %-7s %-40s %9s %8s %7s %9s %7s %10s %9s %7s %7s %9s %7s %7s %9s %7s %7s\n",
              copy_gbps, "decode", "M", "weights", "kernel", "us", "GB/s", "of copy", "BF16 us", "x BF16", "err/bound", "static us", "of copy", "x BF16", "tiled us", "of copy", "x BF16", "t+s us", "of copy", "x BF16");
  std::vector<std::pair<int, int>> shapes = {{8192, 8192}, {14336, 4096}, {4096, 14336}, {28672, 8192}};
  std::vector<int> tokens = {1, 2, 4, 8, 16, 32, 64};
  if (quick) { shapes.resize(1); tokens = {1, 16}; }
  if (only_n) { shapes = {{only_n, only_k}}; tokens = {only_m}; }
  int failures = 0;
  for (auto shape : shapes) {
    const int n = shape.first, k = shape.second;  // (lambdas cannot capture structured bindings in C++17)
    const int sets = (int)std::max<size_t>(2, ((size_t)100 << 20) / ((size_t)n * k / 2) + 1);
    std::vector<void*> bf16_w(2);
    for (auto& w : bf16_w) { CHECK_CUDA(cudaMalloc(&w, (size_t)n * k * 2)); fill_bytes<<<1024, 256, 0, s>>>((uint8_t*)w, (size_t)n * k * 2, 9, 0, 0, 0xBF); }
    for (int format : {MS_FMT_MXFP4, MS_FMT_NVFP4, MS_FMT_FP8_ROW}) {
      const bool fp4 = format != MS_FMT_FP8_ROW;
      const size_t data_bytes = fp4 ? (size_t)n * k / 2 : (size_t)n * k, scale_bytes = format == MS_FMT_MXFP4 ? (size_t)n * k / 32 : format == MS_FMT_NVFP4 ? (size_t)n * k / 16 : 0;
      std::vector<void*> data(sets), scales(sets);
      float* decode; CHECK_CUDA(cudaMalloc(&decode, 4 * (size_t)n));
      std::vector<float> ones(n, 1.0f); CHECK_CUDA(cudaMemcpy(decode, ones.data(), 4 * (size_t)n, cudaMemcpyHostToDevice));
      for (int i = 0; i < sets; ++i) {
        CHECK_CUDA(cudaMalloc(&data[i], data_bytes));
        if (fp4) fill_bytes<<<1024, 256, 0, s>>>((uint8_t*)data[i], data_bytes, 17 + i, 0, 0, 0xFF);
        else fill_random_fp8<<<1024, 256, 0, s>>>((uint8_t*)data[i], data_bytes, 17 + i);
        scales[i] = nullptr;
        if (scale_bytes) {
          CHECK_CUDA(cudaMalloc(&scales[i], scale_bytes));
          fill_bytes<<<1024, 256, 0, s>>>((uint8_t*)scales[i], scale_bytes, 31 + i, format == MS_FMT_MXFP4 ? 118 : 0x20, format == MS_FMT_MXFP4 ? 9 : 0x30, 0);
        }
      }
      // The same weights in the tiled layout (ms_relayout), for the tiled plans.
      auto qtensor = [&](void* wdata, void* wscales, int layout) {
        ms_qtensor_t t{}; t.struct_size = sizeof t; t.format = format; t.rows = n; t.cols = k; t.layout = layout;
        t.data = wdata; t.block_scales = wscales; t.decode_scales = format == MS_FMT_MXFP4 ? nullptr : decode;
        return t;
      };
      std::vector<void*> tiled_data(fp4 ? sets : 0), tiled_scales(fp4 ? sets : 0);
      for (size_t i = 0; i < tiled_data.size(); ++i) {
        ms_qtensor_t t = qtensor(nullptr, nullptr, MS_LAYOUT_TILED_16X128);
        size_t tiled_bytes = 0, tiled_scale_bytes = 0; CHECK_MS(ms_qtensor_bytes(&t, &tiled_bytes, &tiled_scale_bytes));
        CHECK_CUDA(cudaMalloc(&tiled_data[i], tiled_bytes)); CHECK_CUDA(cudaMalloc(&tiled_scales[i], tiled_scale_bytes));
        t.data = tiled_data[i]; t.block_scales = tiled_scales[i];
        const ms_qtensor_t linear = qtensor(data[i], scales[i], MS_LAYOUT_LINEAR);
        CHECK_MS(ms_relayout(&linear, &t, s));
      }
      if (fp4) {  // dequantization reads both layouts to the same values, and the tiled copy back to linear is the original
        float *d0, *d1; void* back; CHECK_CUDA(cudaMalloc(&d0, (size_t)n * k * 4)); CHECK_CUDA(cudaMalloc(&d1, (size_t)n * k * 4));
        CHECK_CUDA(cudaMalloc(&back, data_bytes + scale_bytes));
        const ms_qtensor_t linear = qtensor(data[0], scales[0], MS_LAYOUT_LINEAR), tiled = qtensor(tiled_data[0], tiled_scales[0], MS_LAYOUT_TILED_16X128);
        const ms_qtensor_t restored = qtensor(back, (uint8_t*)back + data_bytes, MS_LAYOUT_LINEAR);
        CHECK_MS(ms_dequantize(&linear, d0, s)); CHECK_MS(ms_dequantize(&tiled, d1, s)); CHECK_MS(ms_relayout(&tiled, &restored, s));
        std::vector<uint8_t> h0((size_t)n * k * 4), h1(h0.size()), original(data_bytes + scale_bytes), round_trip(data_bytes + scale_bytes);
        CHECK_CUDA(cudaMemcpy(h0.data(), d0, h0.size(), cudaMemcpyDeviceToHost)); CHECK_CUDA(cudaMemcpy(h1.data(), d1, h1.size(), cudaMemcpyDeviceToHost));
        CHECK_CUDA(cudaMemcpy(original.data(), data[0], data_bytes, cudaMemcpyDeviceToHost));
        CHECK_CUDA(cudaMemcpy(original.data() + data_bytes, scales[0], scale_bytes, cudaMemcpyDeviceToHost));
        CHECK_CUDA(cudaMemcpy(round_trip.data(), back, round_trip.size(), cudaMemcpyDeviceToHost));
        const bool same = h0 == h1 && original == round_trip;
        std::printf("%5dx%-5d tiled %s: dequantized %s, relayout round trip %s\n", n, k, format == MS_FMT_MXFP4 ? "mxfp4" : "nvfp4",
                    h0 == h1 ? "identical" : "DIFFERENT", original == round_trip ? "identical" : "DIFFERENT");
        failures += !same;
        cudaFree(d0); cudaFree(d1); cudaFree(back);
      }
      for (int m : tokens) {
        void *a, *a_abs, *out, *ref, *abs_out, *w_abs;
        CHECK_CUDA(cudaMalloc(&a, (size_t)m * k * 2)); CHECK_CUDA(cudaMalloc(&a_abs, (size_t)m * k * 2));
        CHECK_CUDA(cudaMalloc(&out, (size_t)m * n * 4)); CHECK_CUDA(cudaMalloc(&ref, (size_t)m * n * 4)); CHECK_CUDA(cudaMalloc(&abs_out, (size_t)m * n * 4));
        CHECK_CUDA(cudaMalloc(&w_abs, data_bytes));
        std::vector<uint16_t> ha((size_t)m * k), habs((size_t)m * k);
        std::mt19937 rng(m + k);
        for (size_t i = 0; i < ha.size(); ++i) { ha[i] = (uint16_t)(0x3C00 + (rng() & 0x7FF) - 0x400 + ((rng() & 1) << 15)); habs[i] = ha[i] & 0x7FFF; }
        CHECK_CUDA(cudaMemcpy(a, ha.data(), ha.size() * 2, cudaMemcpyHostToDevice));
        CHECK_CUDA(cudaMemcpy(a_abs, habs.data(), habs.size() * 2, cudaMemcpyHostToDevice));
        std::vector<uint8_t> hw(data_bytes);
        CHECK_CUDA(cudaMemcpy(hw.data(), data[0], data_bytes, cudaMemcpyDeviceToHost));
        for (auto& v : hw) v &= fp4 ? 0x77 : 0x7F;
        CHECK_CUDA(cudaMemcpy(w_abs, hw.data(), data_bytes, cudaMemcpyHostToDevice));
        // The plan description and operands of this problem (BF16 activations `act` x weights `wdata` / `wscales`) into `dst`.
        auto describe = [&](int out_dtype, int layout = MS_LAYOUT_LINEAR) {
          ms_gemm_desc_t d{}; d.struct_size = sizeof d; d.m = m; d.n = n; d.k = k;
          d.a_format = MS_FMT_DENSE; d.a_dtype = MS_DTYPE_BF16; d.b_format = format; d.b_layout = layout; d.out_dtype = out_dtype;
          return d;
        };
        auto operands = [&](const void* act, void* wdata, void* wscales, void* dst, int layout = MS_LAYOUT_LINEAR) {
          ms_gemm_operands_t ops{}; ops.struct_size = sizeof ops; ops.alpha = 1.0f; ops.out = dst;
          ops.a.struct_size = sizeof ops.a; ops.a.format = MS_FMT_DENSE; ops.a.dtype = MS_DTYPE_BF16; ops.a.rows = m; ops.a.cols = k; ops.a.dense = act;
          ops.b = qtensor(wdata, wscales, layout);
          return ops;
        };
        auto gemm = [&](const char* force, const void* act, void* wdata, void* wscales, void* dst, int out_dtype, char* name, bool with_workspace,
                        int layout = MS_LAYOUT_LINEAR) {
          if (force) setenv("MS_FORCE_CONFIG", force, 1); else unsetenv("MS_FORCE_CONFIG");
          const ms_gemm_desc_t d = describe(out_dtype, layout);
          ms_gemm_plan* plan = nullptr; CHECK_MS(ms_gemm_plan_create(&d, &plan));
          if (name) CHECK_MS(ms_gemm_plan_name(plan, name, 128));
          const ms_gemm_operands_t ops = operands(act, wdata, wscales, dst, layout);
          size_t need = 0; CHECK_MS(ms_gemm_plan_workspace_size(plan, &need));
          if (need > (32u << 20)) { std::printf("workspace %zu > 32 MiB\n", need); std::exit(5); }
          CHECK_MS(ms_gemm_plan_run(plan, &ops, with_workspace && need ? ws32 : nullptr, s));
          ms_gemm_plan_destroy(plan);
        };
        char name[128];
        CHECK_CUDA(cudaMemsetAsync(ws32, 0, 32 << 20, s));
        gemm(nullptr, a, data[0], scales[0], out, MS_DTYPE_F32, name, true);
        gemm("generic", a, data[0], scales[0], ref, MS_DTYPE_F32, nullptr, false);
        gemm("generic", a_abs, w_abs, scales[0], abs_out, MS_DTYPE_F32, nullptr, false);
        std::vector<float> ho((size_t)m * n), hr((size_t)m * n), hs((size_t)m * n);
        CHECK_CUDA(cudaMemcpy(ho.data(), out, ho.size() * 4, cudaMemcpyDeviceToHost));
        CHECK_CUDA(cudaMemcpy(hr.data(), ref, hr.size() * 4, cudaMemcpyDeviceToHost));
        CHECK_CUDA(cudaMemcpy(hs.data(), abs_out, hs.size() * 4, cudaMemcpyDeviceToHost));
        double worst = 0, eps = std::ldexp(1.0, -17) + (2.0 * k + 12) * std::ldexp(1.0, -24);
        for (size_t i = 0; i < ho.size(); ++i) {
          double r = std::fabs((double)ho[i] - hr[i]) / (eps * hs[i] + std::ldexp(1.0, -126));
          if (!(r <= worst)) worst = std::isnan(r) ? INFINITY : r;
        }
        failures += !(worst <= 1.0);
        // Tiled weights: the decode kernel does the same arithmetic in the same order, so the bytes must be the linear run's;
        // the generic kernel reads them through the tiled index and must equal its own linear run too.
        const char* tiled_check = "";
        if (fp4) {
          std::vector<float> ht(ho.size()), hg(ho.size());
          CHECK_CUDA(cudaMemsetAsync(ws32, 0, 32 << 20, s));
          gemm(nullptr, a, tiled_data[0], tiled_scales[0], abs_out, MS_DTYPE_F32, nullptr, true, MS_LAYOUT_TILED_16X128);
          CHECK_CUDA(cudaMemcpy(ht.data(), abs_out, ht.size() * 4, cudaMemcpyDeviceToHost));
          gemm("generic", a, tiled_data[0], tiled_scales[0], abs_out, MS_DTYPE_F32, nullptr, false, MS_LAYOUT_TILED_16X128);
          CHECK_CUDA(cudaMemcpy(hg.data(), abs_out, hg.size() * 4, cudaMemcpyDeviceToHost));
          const bool same = std::memcmp(ht.data(), ho.data(), ho.size() * 4) == 0 && std::memcmp(hg.data(), hr.data(), hr.size() * 4) == 0;
          tiled_check = same ? "" : "  TILED DIFFERS";
          failures += !same;
        }
        // One plan, run 10 times per timing (rotating weight sets) so that host work overlaps the GPU; the plan shares ws32's
        // first 16 MiB, cuBLAS gets the rest.
        unsetenv("MS_FORCE_CONFIG");
        ms_gemm_desc_t d = describe(MS_DTYPE_BF16);
        ms_gemm_plan* plan = nullptr; CHECK_MS(ms_gemm_plan_create(&d, &plan));
        d.flags = MS_GEMM_STATIC_WEIGHTS;  // the weights are never written here
        ms_gemm_plan* static_plan = nullptr; CHECK_MS(ms_gemm_plan_create(&d, &static_plan));
        ms_gemm_operands_t ops = operands(a, nullptr, nullptr, out);
        const bool no_workspace = std::getenv("MS_SELFTEST_NO_WORKSPACE") != nullptr;  // time the unsplit kernel
        int i = 0;
        auto timed = [&](const ms_gemm_plan* p) {
          return [&, p] {
            for (int r = 0; r < 10; ++r, ++i) {
              ops.b.data = data[i % sets]; ops.b.block_scales = scales[i % sets];
              CHECK_MS(ms_gemm_plan_run(p, &ops, no_workspace ? nullptr : ws32, s));
            }
          };
        };
        auto ours = timed(plan);
        auto ours_static = timed(static_plan);
        // Tiled plans (FP4): plain and static weights.
        ms_gemm_plan *tiled_plan = nullptr, *tiled_static_plan = nullptr;
        ms_gemm_operands_t tiled_ops = operands(a, nullptr, nullptr, out, MS_LAYOUT_TILED_16X128);
        double tiled_us = 0, tiled_static_us = 0;
        if (fp4) {
          ms_gemm_desc_t dt = describe(MS_DTYPE_BF16, MS_LAYOUT_TILED_16X128);
          CHECK_MS(ms_gemm_plan_create(&dt, &tiled_plan));
          dt.flags = MS_GEMM_STATIC_WEIGHTS;
          CHECK_MS(ms_gemm_plan_create(&dt, &tiled_static_plan));
          auto tiled_timed = [&](const ms_gemm_plan* p) {
            return [&, p] {
              for (int r = 0; r < 10; ++r, ++i) {
                tiled_ops.b.data = tiled_data[i % sets]; tiled_ops.b.block_scales = tiled_scales[i % sets];
                CHECK_MS(ms_gemm_plan_run(p, &tiled_ops, no_workspace ? nullptr : ws32, s));
              }
            };
          };
          tiled_us = median_us(s, tiled_timed(tiled_plan)) / 10;
          tiled_static_us = median_us(s, tiled_timed(tiled_static_plan)) / 10;
          ms_gemm_plan_destroy(tiled_plan);
          ms_gemm_plan_destroy(tiled_static_plan);
        }
        int j = 0;
        auto cublas = [&] {
          for (int r = 0; r < 10; ++r)
            if (msb_gemm(0, m, n, k, a, bf16_w[j++ % 2], out, nullptr, nullptr, (uint8_t*)ws32 + (16 << 20), 16 << 20, s)) { std::printf("cuBLAS: %s\n", msb_last_error()); std::exit(4); }
        };
        double bf16_us = median_us(s, cublas) / 10, us = median_us(s, ours) / 10, static_us = median_us(s, ours_static) / 10;
        bf16_us = std::min(bf16_us, median_us(s, cublas) / 10);
        ms_gemm_plan_destroy(plan);
        ms_gemm_plan_destroy(static_plan);
        const double gbps = (data_bytes + scale_bytes) / (us * 1e3), static_gbps = (data_bytes + scale_bytes) / (static_us * 1e3);
        const double wbytes = (double)(data_bytes + scale_bytes) / 1e3;
        std::printf("%5dx%-5d %3d %-7s %-40s %9.1f %8.0f %7.3f %9.1f %7.2f %10.2e %9.1f %7.3f %7.2f", n, k, m,
                    format == MS_FMT_MXFP4 ? "mxfp4" : format == MS_FMT_NVFP4 ? "nvfp4" : "e4m3row", name, us, gbps, gbps / copy_gbps, bf16_us,
                    bf16_us / us, worst, static_us, static_gbps / copy_gbps, bf16_us / static_us);
        if (fp4)
          std::printf(" %9.1f %7.3f %7.2f %9.1f %7.3f %7.2f", tiled_us, wbytes / tiled_us / copy_gbps, bf16_us / tiled_us, tiled_static_us,
                      wbytes / tiled_static_us / copy_gbps, bf16_us / tiled_static_us);
        std::printf("%s%s\n", worst <= 1.0 ? "" : "  FAIL", tiled_check);
        cudaFree(a); cudaFree(a_abs); cudaFree(out); cudaFree(ref); cudaFree(abs_out); cudaFree(w_abs);
      }
      for (int i = 0; i < sets; ++i) { cudaFree(data[i]); if (scales[i]) cudaFree(scales[i]); }
      for (size_t i = 0; i < tiled_data.size(); ++i) { cudaFree(tiled_data[i]); cudaFree(tiled_scales[i]); }
      cudaFree(decode);
    }
    for (auto w : bf16_w) cudaFree(w);
  }
  unsetenv("MS_FORCE_CONFIG");
  cudaFree(ws32);
  std::printf("decode: %d failures\n", failures);
  return failures ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------------------- W4A8
// --w4a8 [quick]: FP8 activations x MXFP4 weights on the sm90 W4A8 family (weights folded into E4M3 in the kernel). Checks
// every config and the heuristic's plan against the generic plan with the FP8 family's bound (above), on weights whose rows
// include blocks of zeros, a row spanning 40 binades (several fold passes) and a row with a NaN block scale (its column
// must be NaN where the reference's is); then times the heuristic's plan against cuBLASLt FP8 per-tensor (on random FP8
// weights of the same shape), cuBLAS BF16, the W4A8 family forced and the BF16 family's route for the same pair
// (dequantize, then BF16 wgmma), all interleaved launch by launch, 4 operand sets; ratios are their time over the plan's.
static const char* const kFoldConfigs[] = {"ms_sm90_w4a8_gemm_nt_64x128x128_s12", "ms_sm90_w4a8_gemm_nt_128x128x128_s8"};

static ms_qtensor_t mxfp4(void* codes, void* scales, int rows, int cols) {
  ms_qtensor_t t{};
  t.struct_size = sizeof t; t.format = MS_FMT_MXFP4; t.rows = rows; t.cols = cols; t.data = codes; t.block_scales = scales;
  return t;
}

static ms_gemm_plan* w4a8_plan(const char* force, int m, int n, int k, int a_format) {
  ms_gemm_plan* plan = plan_for(force, m, n, k, a_format, MS_FMT_MXFP4, MS_DTYPE_BF16);
  unsetenv("MS_FORCE_CONFIG");
  return plan;
}

static void run_w4a8(const char* force, int m, int n, int k, void* a, float* sa, void* codes, void* scales, void* out, int out_dtype, char* name,
                     cudaStream_t s) {
  run_pair(force, fp8(a, sa, m, k, MS_FMT_FP8_ROW), mxfp4(codes, scales, n, k), out, out_dtype, name, s);
  unsetenv("MS_FORCE_CONFIG");
}

__global__ void fill_scales(uint8_t* p, size_t n, uint32_t seed, int lo, int span) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 0x9E3779B1u ^ seed;
    h ^= h >> 15; h *= 0x2C1B3C6Du; h ^= h >> 13;
    p[i] = (uint8_t)(lo + h % span);
  }
}
__global__ void fill_random_bf16(uint16_t* p, size_t n, uint32_t seed) {  // |x| in [2^-4, 2^4), signs random
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 0x9E3779B1u ^ seed;
    h ^= h >> 15; h *= 0x2C1B3C6Du; h ^= h >> 12;
    p[i] = (uint16_t)(((h >> 16) & 0x8000u) | ((123u + (h >> 8) % 8) << 7) | (h & 0x7Fu));
  }
}

static int time_w4a8(bool quick) {
  cudaStream_t stream; CHECK_CUDA(cudaStreamCreate(&stream));
  struct Shape { int m, n, k; };
  std::vector<Shape> checks = {{65, 64, 128}, {129, 130, 256}, {200, 264, 1024}, {333, 776, 4224}, {1100, 1928, 2048}, {2048, 2200, 1024}};
  std::mt19937 rng(11);
  int failures = 0;
  std::printf("%-18s %-56s %-5s %12s %10s\n", "w4a8 m x n x k", "kernel", "out", "max err/bnd", "result");
  for (Shape sh : checks) {
    const int m = sh.m, n = sh.n, k = sh.k, blocks = (k + 31) / 32;
    std::vector<uint8_t> ha((size_t)m * k), hc((size_t)n * blocks * 16), hs((size_t)n * blocks);
    for (auto& v : ha) { do v = rng() & 0xFF; while ((v & 0x7F) == 0x7F || (v & 0x78) > 0x50); }  // |x| <= 2^3, no NaN
    for (auto& v : hc) v = rng() & 0xFF;
    for (auto& v : hs) v = 120 + rng() % 14;  // 2^-7 .. 2^6: every K block folds in one pass
    for (int row = 0; row < n; ++row) {
      if (row % 5 == 1) { int b = rng() % blocks; std::memset(&hc[((size_t)row * blocks + b) * 16], 0, 16); hs[(size_t)row * blocks + b] = 0; }  // a block of zeros
      if (row % 7 == 3) hs[(size_t)row * blocks + rng() % blocks] = 90 + rng() % 20;  // a block 14-44 binades down: a second pass
      if (row % 11 == 5) for (int b = 0; b < blocks; b += 2) hs[(size_t)row * blocks + b] = 60 + (b / 2) % 3 * 20;  // three and more passes
    }
    const int nan_row = n / 2;
    hs[(size_t)nan_row * blocks + blocks / 2] = 0xFF;
    std::vector<uint8_t> absa(ha), absc(hc);
    for (auto& v : absa) v &= 0x7F;
    for (auto& v : absc) v &= 0x77;
    std::vector<float> hsa(m);
    for (auto& v : hsa) v = 0.5f + (rng() % 1000) / 1000.0f;
    void *a, *aa, *c, *ac, *sc; float *sa, *c1, *c2, *cabs;
    CHECK_CUDA(cudaMalloc(&a, ha.size())); CHECK_CUDA(cudaMalloc(&aa, ha.size()));
    CHECK_CUDA(cudaMalloc(&c, hc.size())); CHECK_CUDA(cudaMalloc(&ac, hc.size())); CHECK_CUDA(cudaMalloc(&sc, hs.size()));
    CHECK_CUDA(cudaMalloc(&sa, m * 4));
    CHECK_CUDA(cudaMalloc(&c1, (size_t)m * n * 4)); CHECK_CUDA(cudaMalloc(&c2, (size_t)m * n * 4)); CHECK_CUDA(cudaMalloc(&cabs, (size_t)m * n * 4));
    CHECK_CUDA(cudaMemcpy(a, ha.data(), ha.size(), cudaMemcpyHostToDevice)); CHECK_CUDA(cudaMemcpy(aa, absa.data(), ha.size(), cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(c, hc.data(), hc.size(), cudaMemcpyHostToDevice)); CHECK_CUDA(cudaMemcpy(ac, absc.data(), hc.size(), cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(sc, hs.data(), hs.size(), cudaMemcpyHostToDevice)); CHECK_CUDA(cudaMemcpy(sa, hsa.data(), m * 4, cudaMemcpyHostToDevice));
    run_w4a8("generic", m, n, k, a, sa, c, sc, c2, MS_DTYPE_F32, nullptr, stream);
    run_w4a8("generic", m, n, k, aa, sa, ac, sc, cabs, MS_DTYPE_F32, nullptr, stream);
    std::vector<float> r1((size_t)m * n), r2(r1.size()), rabs(r1.size());
    std::vector<uint16_t> h1(r1.size());
    CHECK_CUDA(cudaMemcpy(r2.data(), c2, r1.size() * 4, cudaMemcpyDeviceToHost));
    CHECK_CUDA(cudaMemcpy(rabs.data(), cabs, r1.size() * 4, cudaMemcpyDeviceToHost));
    const double eps = std::ldexp(1.0, -9) + (std::ceil(k / 128.0) * 4 + k + 8) * std::ldexp(1.0, -24);  // up to 4 promotions per K block
    std::vector<const char*> configs = {nullptr};
    for (const char* cf : kFoldConfigs) configs.push_back(cf);
    for (const char* config : configs) {
      for (int out_dtype : {MS_DTYPE_F32, MS_DTYPE_BF16}) {
        char name[128];
        CHECK_CUDA(cudaMemset(c1, 0xFF, (size_t)m * n * 4));  // NaN poison: an unwritten element fails
        run_w4a8(config, m, n, k, a, sa, c, sc, c1, out_dtype, name, stream);
        fetch_output(c1, out_dtype, r1, h1);
        double worst = 0;
        int nan_mismatch = 0;
        for (size_t i = 0; i < r1.size(); ++i) {
          if (std::isnan(r2[i]) || (int)(i % n) == nan_row) { nan_mismatch += std::isnan(r1[i]) != std::isnan(r2[i]) || !std::isnan(r1[i]); continue; }
          double bound = eps * rabs[i] + (out_dtype == MS_DTYPE_BF16 ? std::ldexp(std::fabs((double)r2[i]), -8) : 0.0) + 1e-30;
          double ratio = std::fabs((double)r1[i] - r2[i]) / bound;
          if (!(ratio <= worst)) worst = std::isnan(ratio) ? INFINITY : ratio;
        }
        if (nan_mismatch || !(worst <= 1.0)) {  // the first few wrong elements, for diagnosis
          int shown = 0;
          for (size_t i = 0; i < r1.size() && shown < 4; ++i) {
            const bool nan_col = std::isnan(r2[i]) || (int)(i % n) == nan_row;
            const bool bad = nan_col ? (std::isnan(r1[i]) != std::isnan(r2[i]) || !std::isnan(r1[i]))
                                     : !(std::fabs((double)r1[i] - r2[i]) <= eps * rabs[i] + (out_dtype == MS_DTYPE_BF16 ? std::ldexp(std::fabs((double)r2[i]), -8) : 0.0) + 1e-30);
            if (bad) { std::printf("  row %zu col %zu: got %g (bits %04x) want %g\n", i / n, i % n, r1[i], out_dtype == MS_DTYPE_BF16 ? h1[i] : 0, r2[i]); ++shown; }
          }
        }
        // Forced configs must be the W4A8 family's; the heuristic takes the BF16 family above kW4a8TokensOnHopper (api.cpp).
        const bool family_ok = std::strstr(name, "ms_sm90_w4a8") || (!config && m > 1024 && std::strstr(name, "ms_sm90_bf16"));
        const bool ok = worst <= 1.0 && nan_mismatch == 0 && family_ok;
        failures += !ok;
        char shape[32]; std::snprintf(shape, sizeof shape, "%dx%dx%d", m, n, k);
        std::printf("%-18s %-56s %-5s %12.3e %10s%s\n", shape, name, out_dtype == MS_DTYPE_F32 ? "f32" : "bf16", worst, ok ? "pass" : "FAIL",
                    nan_mismatch ? " (NaN column wrong)" : "");
      }
    }
    cudaFree(a); cudaFree(aa); cudaFree(c); cudaFree(ac); cudaFree(sc); cudaFree(sa); cudaFree(c1); cudaFree(c2); cudaFree(cabs);
  }

  std::vector<Shape> timed = {{8192, 8192, 8192}, {4096, 4096, 4096}, {16384, 8192, 8192}, {4096, 14336, 4096}, {4096, 4096, 14336},
                              {1024, 8192, 8192}, {128, 8192, 8192}};
  if (quick) timed.resize(2);
  std::printf("\n%-20s %-44s %9s %8s | %11s %7s | %9s %7s | %9s %7s | %9s %7s\n", "w4a8 m x n x k", "kernel (heuristic)", "us", "TFLOPS",
              "cuBLASLt us", "ratio", "BF16 us", "ratio", "w4a8 us", "ratio", "dequant us", "ratio");
  double log_fp8 = 0, log_bf16 = 0; int count = 0;
  const char* dequant_config = "ms_sm90_bf16_gemm_nt_128x256x64_c1x1_s3_ws";
  for (Shape sh : timed) {
    const int m = sh.m, n = sh.n, k = sh.k, sets = 4;
    std::vector<void*> as(sets), cs(sets), ss(sets), b8(sets), a16(2), b16(2);
    for (int i = 0; i < sets; ++i) {
      CHECK_CUDA(cudaMalloc(&as[i], (size_t)m * k)); CHECK_CUDA(cudaMalloc(&cs[i], (size_t)n * k / 2));
      CHECK_CUDA(cudaMalloc(&ss[i], (size_t)n * k / 32)); CHECK_CUDA(cudaMalloc(&b8[i], (size_t)n * k));
      fill_random_fp8<<<1024, 256, 0, stream>>>((uint8_t*)as[i], (size_t)m * k, 2 * i + 1);
      fill_random_fp8<<<1024, 256, 0, stream>>>((uint8_t*)cs[i], (size_t)n * k / 2, 2 * i + 2);
      fill_random_fp8<<<1024, 256, 0, stream>>>((uint8_t*)b8[i], (size_t)n * k, 2 * i + 9);
      fill_scales<<<1024, 256, 0, stream>>>((uint8_t*)ss[i], (size_t)n * k / 32, 3 * i + 5, 121, 8);
    }
    for (int i = 0; i < 2; ++i) {
      CHECK_CUDA(cudaMalloc(&a16[i], (size_t)m * k * 2)); CHECK_CUDA(cudaMalloc(&b16[i], (size_t)n * k * 2));
      fill_random_bf16<<<1024, 256, 0, stream>>>((uint16_t*)a16[i], (size_t)m * k, 7 * i + 1);
      fill_random_bf16<<<1024, 256, 0, stream>>>((uint16_t*)b16[i], (size_t)n * k, 7 * i + 2);
    }
    float* sa; void *out, *ws;
    CHECK_CUDA(cudaMalloc(&sa, m * 4));
    std::vector<float> hs(m);
    for (int i = 0; i < m; ++i) hs[i] = 1.0f / 64 + (i % 7) / 256.0f;
    CHECK_CUDA(cudaMemcpy(sa, hs.data(), m * 4, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMalloc(&out, (size_t)m * n * 2)); CHECK_CUDA(cudaMalloc(&ws, 32 << 20));
    ms_gemm_plan* plan = w4a8_plan(nullptr, m, n, k, MS_FMT_FP8_TENSOR);
    ms_gemm_plan* dequant = w4a8_plan(dequant_config, m, n, k, MS_FMT_FP8_TENSOR);
    ms_gemm_plan* fold = w4a8_plan(m <= 128 ? kFoldConfigs[0] : kFoldConfigs[1], m, n, k, MS_FMT_FP8_TENSOR);
    char name[128]; CHECK_MS(ms_gemm_plan_name(plan, name, sizeof name));
    Workspace workspace(plan), dequant_workspace(dequant);
    auto ours = [&](ms_gemm_plan* pl, void* w, int i) {
      ms_gemm_operands_t o{}; o.struct_size = sizeof o; o.alpha = 1.0f;
      o.a = fp8(as[i], sa, m, k, MS_FMT_FP8_TENSOR); o.b = mxfp4(cs[i], ss[i], n, k); o.out = out;
      CHECK_MS(ms_gemm_plan_run(pl, &o, w, stream));
    };
    bool ok8 = true, ok16 = true;
    auto lt = [&](int i) { if (ok8 && msb_gemm(1, m, n, k, as[i], b8[i], out, sa, sa, ws, 32 << 20, stream)) { std::printf("cuBLASLt: %s\n", msb_last_error()); ok8 = false; } };
    auto bf = [&](int i) { if (ok16 && msb_gemm(0, m, n, k, a16[i % 2], b16[i % 2], out, nullptr, nullptr, ws, 32 << 20, stream)) { std::printf("cuBLAS BF16: %s\n", msb_last_error()); ok16 = false; } };
    const std::vector<float> t = interleaved_medians(5, 50, [&](int v, int round) {
      const int i = round % sets;
      if (v == 0) ours(plan, workspace.data, i);
      else if (v == 1) lt(i);
      else if (v == 2) bf(i);
      else if (v == 3) ours(fold, nullptr, i);
      else ours(dequant, dequant_workspace.data, i);
    });
    const double flops = 2.0 * m * n * k;
    char shape[32]; std::snprintf(shape, sizeof shape, "%dx%dx%d", m, n, k);
    std::printf("%-20s %-44s %9.1f %8.1f | %11.1f %7.3f | %9.1f %7.3f | %9.1f %7.3f | %9.1f %7.3f\n", shape, name, t[0], flops / t[0] / 1e6, t[1],
                t[1] / t[0], t[2], t[2] / t[0], t[3], t[3] / t[0], t[4], t[4] / t[0]);
    if (ok8 && ok16) { log_fp8 += std::log(t[1] / t[0]); log_bf16 += std::log(t[2] / t[0]); ++count; }
    ms_gemm_plan_destroy(plan); ms_gemm_plan_destroy(dequant); ms_gemm_plan_destroy(fold);
    for (int i = 0; i < sets; ++i) { cudaFree(as[i]); cudaFree(cs[i]); cudaFree(ss[i]); cudaFree(b8[i]); }
    for (int i = 0; i < 2; ++i) { cudaFree(a16[i]); cudaFree(b16[i]); }
    cudaFree(sa); cudaFree(out); cudaFree(ws);
  }
  std::printf("w4a8 geometric mean: %.3f x cuBLASLt FP8 per-tensor, %.3f x cuBLAS BF16\n", std::exp(log_fp8 / std::max(count, 1)),
              std::exp(log_bf16 / std::max(count, 1)));
  std::printf("w4a8: %d check failures\n", failures);
  return failures ? 1 : 0;
}

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--repack") == 0) {
    cudaStream_t s; CHECK_CUDA(cudaFree(0)); CHECK_CUDA(cudaStreamCreate(&s));
    time_repack(s);
    return 0;
  }
  if (argc >= 5 && std::strcmp(argv[1], "--w4a8-profile") == 0) {  // M N K [CONFIG]: three W4A8 runs on random data, for ncu
    CHECK_CUDA(cudaFree(0));
    const int m = std::atoi(argv[2]), n = std::atoi(argv[3]), k = std::atoi(argv[4]);
    void *a, *c, *sc, *out; float* sa;
    CHECK_CUDA(cudaMalloc(&a, (size_t)m * k)); CHECK_CUDA(cudaMalloc(&c, (size_t)n * k / 2)); CHECK_CUDA(cudaMalloc(&sc, (size_t)n * k / 32));
    CHECK_CUDA(cudaMalloc(&out, (size_t)m * n * 2)); CHECK_CUDA(cudaMalloc(&sa, 4 * (size_t)m));
    fill_random_fp8<<<1024, 256>>>((uint8_t*)a, (size_t)m * k, 1); fill_random_fp8<<<1024, 256>>>((uint8_t*)c, (size_t)n * k / 2, 2);
    fill_scales<<<1024, 256>>>((uint8_t*)sc, (size_t)n * k / 32, 3, 121, 8);
    CHECK_CUDA(cudaMemset(sa, 0x3C, 4 * (size_t)m));
    char name[128];
    for (int i = 0; i < 3; ++i) run_w4a8(argc > 5 ? argv[5] : nullptr, m, n, k, a, sa, c, sc, out, MS_DTYPE_BF16, name, nullptr);
    std::printf("profiled %s\n", name);
    return 0;
  }
  if (argc >= 2 && std::strcmp(argv[1], "--w4a8") == 0) {
    CHECK_CUDA(cudaFree(0));
    return time_w4a8(argc > 2 && std::strcmp(argv[2], "quick") == 0);
  }
  if (argc >= 2 && std::strcmp(argv[1], "--decode") == 0) {
    CHECK_CUDA(cudaFree(0));
    if (argc >= 5) return time_decode(false, std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]));  // one shape: N K M
    return time_decode(argc > 2 && std::strcmp(argv[2], "quick") == 0);
  }
  if (argc >= 2 && std::strcmp(argv[1], "--quantize") == 0) {
    cudaStream_t s; CHECK_CUDA(cudaFree(0)); CHECK_CUDA(cudaStreamCreate(&s));
    return time_quantize(s, argc > 2 ? argv[2] : nullptr) ? 1 : 0;  // a format name: only its timing, no check
  }
  if (argc >= 5 && std::strcmp(argv[1], "--scales") == 0) {
    CHECK_CUDA(cudaFree(0));
    return time_scale_modes(std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]));
  }
  if (argc >= 6 && std::strcmp(argv[1], "--soak") == 0) {
    CHECK_CUDA(cudaFree(0));
    return soak(std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]), std::atof(argv[5]), argc > 6 ? argv[6] : nullptr);
  }
  if (argc >= 5 && std::strcmp(argv[1], "--profile") == 0) {
    CHECK_CUDA(cudaFree(0));
    return profile(std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]), argc > 5 ? argv[5] : nullptr,
                   argc > 6 && std::strcmp(argv[6], "tensor") == 0 ? MS_FMT_FP8_TENSOR : MS_FMT_FP8_ROW);
  }
  bool quick = false, sweep = false;
  for (int i = 1; i < argc; ++i) {
    quick |= std::strcmp(argv[i], "--quick") == 0;
    sweep |= std::strcmp(argv[i], "--sweep") == 0;
  }
  CHECK_CUDA(cudaFree(0));
  cudaStream_t stream; CHECK_CUDA(cudaStreamCreate(&stream));
  int sm = 0; char families[256]; CHECK_MS(ms_query(&sm, families, sizeof families));
  std::printf("sm_%d families: %s\n", sm, families);
  struct Shape { int m, n, k; };
  std::vector<Shape> checks = {{1, 128, 128}, {7, 130, 272}, {128, 128, 128}, {200, 264, 1040}, {2100, 2200, 1040}, {200, 300, 1040}, {256, 512, 4096},
                               {1000, 1000, 2000}, {333, 776, 4112}, {1100, 1928, 2064}, {2048, 2200, 1040}};  // the last two: more tiles than SMs (the last: paired, 16 M tiles)
  std::vector<Shape> timed = {{8192, 8192, 8192}, {4096, 4096, 4096}, {16384, 8192, 8192}, {4096, 14336, 4096}, {4096, 4096, 14336},
                              {1024, 8192, 8192}, {128, 8192, 8192}};
  if (quick) { timed.resize(2); checks.resize(5); }
  std::mt19937 rng(7);
  int failures = 0;
  setenv("MS_STREAM_K", "1", 1);  // the checks' larger shapes take the stream-K tail (by default only from 16 waves on)
  std::printf("%-18s %-56s %-5s %12s %10s\n", "check m x n x k", "kernel", "out", "max err/bnd", "result");
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
    run("generic", m, n, k, a, sa, b, sb, c2, MS_DTYPE_F32, nullptr, stream);
    run("generic", m, n, k, aa, sa, ab, sb, cabs, MS_DTYPE_F32, nullptr, stream);
    CHECK_CUDA(cudaStreamSynchronize(stream));
    std::vector<float> r1((size_t)m * n), r2(r1.size()), rabs(r1.size());
    std::vector<uint16_t> h1(r1.size());
    CHECK_CUDA(cudaMemcpy(r2.data(), c2, r1.size() * 4, cudaMemcpyDeviceToHost));
    CHECK_CUDA(cudaMemcpy(rabs.data(), cabs, r1.size() * 4, cudaMemcpyDeviceToHost));
    const double eps = std::ldexp(1.0, -9) + (std::ceil(k / 128.0) + k + 8) * std::ldexp(1.0, -24);
    std::vector<const char*> configs = {nullptr};
    for (const char* c : kConfigs) configs.push_back(c);
    for (const char* config : configs) {
      for (int out_dtype : {MS_DTYPE_F32, MS_DTYPE_BF16}) {
        char name[128];
        CHECK_CUDA(cudaMemset(c1, 0xFF, (size_t)m * n * 4));  // NaN poison: an unwritten element fails
        run(config, m, n, k, a, sa, b, sb, c1, out_dtype, name, stream);
        CHECK_CUDA(cudaStreamSynchronize(stream));
        fetch_output(c1, out_dtype, r1, h1);
        double worst = 0;
        for (size_t i = 0; i < r1.size(); ++i) {
          double bound = eps * rabs[i] + (out_dtype == MS_DTYPE_BF16 ? std::ldexp(std::fabs((double)r2[i]), -8) : 0.0) + 1e-30;
          double ratio = std::fabs((double)r1[i] - r2[i]) / bound;
          if (!(ratio <= worst)) worst = std::isnan(ratio) ? INFINITY : ratio;
        }
        bool ok = worst <= 1.0, diag = diagnostic(config);
        failures += !ok && !diag;
        char shape[32]; std::snprintf(shape, sizeof shape, "%dx%dx%d", m, n, k);
        std::printf("%-18s %-56s %-5s %12.3e %10s\n", shape, name, out_dtype == MS_DTYPE_F32 ? "f32" : "bf16", worst,
                    ok ? "pass" : diag ? "(diag)" : "FAIL");
      }
    }
    cudaFree(a); cudaFree(b); cudaFree(aa); cudaFree(ab); cudaFree(sa); cudaFree(sb); cudaFree(c1); cudaFree(c2); cudaFree(cabs);
  }

  unsetenv("MS_STREAM_K");
  std::printf("\n%-20s %-7s %-56s %10s %8s %12s %8s %7s\n", "time m x n x k", "scales", "kernel", "us", "TFLOPS", "cuBLASLt us", "TFLOPS", "ratio");
  double log_sum[2] = {0, 0}; int count[2] = {0, 0};
  for (Shape sh : timed) {
    const int m = sh.m, n = sh.n, k = sh.k;
    const int sets = 4;
    std::vector<void*> as(sets), bs(sets);
    for (int i = 0; i < sets; ++i) {
      CHECK_CUDA(cudaMalloc(&as[i], (size_t)m * k)); CHECK_CUDA(cudaMalloc(&bs[i], (size_t)n * k));
      fill_random_fp8<<<1024, 256, 0, stream>>>((uint8_t*)as[i], (size_t)m * k, 2 * i + 1);
      fill_random_fp8<<<1024, 256, 0, stream>>>((uint8_t*)bs[i], (size_t)n * k, 2 * i + 2);
    }
    float *sa, *sb; void *out, *ws;
    CHECK_CUDA(cudaMalloc(&sa, m * 4)); CHECK_CUDA(cudaMalloc(&sb, n * 4));
    std::vector<float> hs(std::max(m, n));
    for (size_t i = 0; i < hs.size(); ++i) hs[i] = 1.0f / 64 + (i % 7) / 256.0f;  // keeps outputs finite in BF16
    CHECK_CUDA(cudaMemcpy(sa, hs.data(), m * 4, cudaMemcpyHostToDevice)); CHECK_CUDA(cudaMemcpy(sb, hs.data(), n * 4, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMalloc(&out, (size_t)m * n * 2)); CHECK_CUDA(cudaMalloc(&ws, 32 << 20));
    char name[128];
    // Interleaved: base and candidate alternate launch by launch; returns the two medians (us).
    auto time_pair = [&](auto&& base_body, auto&& body, double& base_us, double& us) {
      for (int i = 0; i < 10; ++i) { base_body(i % sets); body(i % sets); }
      std::vector<float> tb(50), tc(50);
      cudaEvent_t e0, e1, e2; cudaEventCreate(&e0); cudaEventCreate(&e1); cudaEventCreate(&e2);
      for (int i = 0; i < 50; ++i) {
        // An untimed launch first keeps the GPU busy while the timed pair is queued, so neither library's host launch
        // overhead lands inside its measured interval (after the synchronize the queue would be empty).
        body((i + 1) % sets);
        cudaEventRecord(e0, stream); base_body(i % sets); cudaEventRecord(e1, stream); body(i % sets); cudaEventRecord(e2, stream);
        cudaEventSynchronize(e2);
        cudaEventElapsedTime(&tb[i], e0, e1); cudaEventElapsedTime(&tc[i], e1, e2);
      }
      cudaEventDestroy(e0); cudaEventDestroy(e1); cudaEventDestroy(e2);
      std::sort(tb.begin(), tb.end()); std::sort(tc.begin(), tc.end());
      base_us = tb[25] * 1000.0; us = tc[25] * 1000.0;
    };
    const double flops = 2.0 * m * n * k;
    char shape[32]; std::snprintf(shape, sizeof shape, "%dx%dx%d", m, n, k);
    for (int rowwise = 0; rowwise < 2; ++rowwise) {
      const int format = rowwise ? MS_FMT_FP8_ROW : MS_FMT_FP8_TENSOR;
      bool have_base = true;
      auto base_body = [&](int i) {
        if (have_base && msb_gemm(rowwise ? 2 : 1, m, n, k, as[i], bs[i], out, sa, sb, ws, 32 << 20, stream)) {
          std::printf("cuBLASLt (%s): %s\n", rowwise ? "row-wise" : "per-tensor", msb_last_error());
          have_base = false;
        }
      };
      // The heuristic's choice first (it goes into the geometric mean), then (--sweep, per-tensor) every config forced.
      std::vector<const char*> configs = {nullptr};
      if (sweep && !rowwise) for (const char* c : kConfigs) configs.push_back(c);
      for (const char* config : configs) {
        if (config) setenv("MS_FORCE_CONFIG", config, 1); else unsetenv("MS_FORCE_CONFIG");
        ms_gemm_desc_t d{}; d.struct_size = sizeof d; d.m = m; d.n = n; d.k = k;
        d.a_format = format; d.b_format = format; d.out_dtype = MS_DTYPE_BF16;
        ms_gemm_plan* plan = nullptr;
        if (ms_gemm_plan_create(&d, &plan) != MS_OK) continue;
        CHECK_MS(ms_gemm_plan_name(plan, name, sizeof name));
        Workspace workspace(plan);
        // With the plan's workspace (the stream-K tail where it applies), then, for the heuristic's plan, without it (whole
        // tiles only) to show what the split buys.
        for (int pass = 0; pass < 2; ++pass) {
          void* ws_used = pass == 0 ? workspace.data : nullptr;
          if (pass == 1 && (config || !workspace.data)) break;
          double base = 0, us = 0;
          time_pair(base_body, [&](int i) {
            ms_gemm_operands_t o{}; o.struct_size = sizeof o; o.alpha = 1.0f;
            o.a = fp8(as[i], sa, m, k, format); o.b = fp8(bs[i], sb, n, k, format); o.out = out;
            CHECK_MS(ms_gemm_plan_run(plan, &o, ws_used, stream));
          }, base, us);
          if (!have_base) base = NAN;
          std::printf("%-20s %-7s %-56s %10.1f %8.1f %12.1f %8.1f %7.3f%s\n", shape, rowwise ? "row" : "tensor", name, us, flops / us / 1e6, base,
                      flops / base / 1e6, base / us, config ? " (forced)" : ws_used ? "" : " (no workspace: whole tiles)");
          if (!config && pass == 0 && have_base) { log_sum[rowwise] += std::log(base / us); count[rowwise]++; }
        }
        ms_gemm_plan_destroy(plan);
      }
    }
    unsetenv("MS_FORCE_CONFIG");
    for (int i = 0; i < sets; ++i) { cudaFree(as[i]); cudaFree(bs[i]); }
    cudaFree(sa); cudaFree(sb); cudaFree(out); cudaFree(ws);
  }
  std::printf("geometric mean ratio vs cuBLASLt FP8: per-tensor %.3f, row-wise %.3f\n", std::exp(log_sum[0] / std::max(count[0], 1)),
              std::exp(log_sum[1] / std::max(count[1], 1)));
  if (!quick) { failures += time_quantize(stream); time_repack(stream); }
  std::printf("%d check failures\n", failures);
  return failures ? 1 : 0;
}
