// Decode access-pattern probe: a CTA of 8 warps owns 128 rows of a row-major [N, Kb] byte matrix and a range of K chunks;
// lane (g, t) of warp w loads, per chunk, P adjacent 16-byte pieces of rows 16w + g and 16w + g + 8 at byte offset
// chunk * 64P + 16Pt. D chunks in flight per lane (register ring). Times it like the decode selftest.
#include <cuda_runtime.h>
#include "timing.cuh"
#include <cstdint>
#include <cstdio>
#include <vector>
#include <algorithm>
__device__ __forceinline__ uint4 ldg(const uint8_t* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}
template <int P, int D>
__global__ void __launch_bounds__(256) pattern(const uint8_t* __restrict__ w, int64_t row_bytes, int chunks_per_cta, uint32_t* out) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int64_t row0 = (int64_t)blockIdx.x * 128 + warp * 16 + g;
  const int chunk0 = blockIdx.y * chunks_per_cta;
  const uint8_t* p0 = w + row0 * row_bytes + (int64_t)chunk0 * 64 * P + 16 * P * t;
  const uint8_t* p1 = p0 + 8 * row_bytes;
  uint4 r[D][2][P];
  uint32_t acc = 0;
#pragma unroll
  for (int d = 0; d < D; ++d)
#pragma unroll
    for (int q = 0; q < P; ++q) { r[d][0][q] = ldg(p0 + d * 64 * P + 16 * q); r[d][1][q] = ldg(p1 + d * 64 * P + 16 * q); }
  for (int c = 0; c < chunks_per_cta; c += D) {
#pragma unroll
    for (int d = 0; d < D; ++d) {
#pragma unroll
      for (int q = 0; q < P; ++q) acc ^= r[d][0][q].x ^ r[d][0][q].w ^ r[d][1][q].y ^ r[d][1][q].z;
      const int next = c + d + D;
      if (next < chunks_per_cta) {
#pragma unroll
        for (int q = 0; q < P; ++q) { r[d][0][q] = ldg(p0 + next * 64 * P + 16 * q); r[d][1][q] = ldg(p1 + next * 64 * P + 16 * q); }
      }
    }
  }
  if (acc == 0x9E3779B1u) out[0] = acc;
}
// Tiled (prepacked) layout: each warp's 16 rows x 64 bytes per chunk are 1 KB contiguous, chunk after chunk; a warp
// instruction reads 512 contiguous bytes. D chunks in flight.
template <int D>
__global__ void __launch_bounds__(256) tiled(const uint8_t* __restrict__ w, int64_t row_bytes, int chunks_per_cta, uint32_t* out) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t tile16 = (int64_t)blockIdx.x * 8 + warp;  // 16-row tile
  const int chunks_per_row = (int)(row_bytes / 64);
  const uint8_t* base = w + (tile16 * chunks_per_row + (int64_t)blockIdx.y * chunks_per_cta) * 1024 + 16 * lane;
  uint4 r[D][2];
  uint32_t acc = 0;
#pragma unroll
  for (int d = 0; d < D; ++d) { r[d][0] = ldg(base + d * 1024); r[d][1] = ldg(base + d * 1024 + 512); }
  for (int c = 0; c < chunks_per_cta; c += D) {
#pragma unroll
    for (int d = 0; d < D; ++d) {
      acc ^= r[d][0].x ^ r[d][0].w ^ r[d][1].y ^ r[d][1].z;
      const int next = c + d + D;
      if (next < chunks_per_cta) { r[d][0] = ldg(base + next * 1024); r[d][1] = ldg(base + next * 1024 + 512); }
    }
  }
  if (acc == 0x9E3779B1u) out[0] = acc;
}
int main() {
  cudaStream_t s; cudaStreamCreate(&s);
  const size_t big = (size_t)1 << 30;
  void *c0, *c1; cudaMalloc(&c0, big); cudaMalloc(&c1, big);
  const double copy = 2.0 * big / (median_us(s, [&] { cudaMemcpyAsync(c1, c0, big, cudaMemcpyDeviceToDevice, s); }) * 1e3);
  printf("1 GiB copy %.0f GB/s\n", copy);
  uint32_t* out; cudaMalloc(&out, 64);
  struct Shape { int n; int64_t row_bytes; };
  for (Shape sh : {Shape{28672, 4096}, Shape{28672, 8192}, Shape{8192, 4096}}) {
    const size_t bytes = (size_t)sh.n * sh.row_bytes;
    const int sets = (int)std::max<size_t>(2, ((size_t)400 << 20) / bytes + 1);
    uint8_t* pool; cudaMalloc(&pool, bytes * sets); cudaMemset(pool, 1, bytes * sets);
    printf("\n%d rows x %lld bytes (%.1f MB)\n", sh.n, (long long)sh.row_bytes, bytes / 1e6);
    int i = 0;
    auto run = [&](const char* name, auto kernel, int P, int splits) {
      const int chunks = (int)(sh.row_bytes / (64 * P));
      dim3 grid(sh.n / 128, splits);
      const int cpc = chunks / splits;
      double us = median_us(s, [&] { for (int r = 0; r < 10; ++r, ++i) kernel<<<grid, 256, 0, s>>>(pool + (size_t)(i % sets) * bytes, sh.row_bytes, cpc, out); }) / 10;
      printf("  %-26s splits %2d  %8.2f us  %.3f of copy\n", name, splits, us, bytes / (us * 1e3) / copy);
    };
    for (int splits : {1, 4, 8}) {
      run("64 B/row/chunk, 4 deep", pattern<1, 4>, 1, splits);
      run("64 B/row/chunk, 8 deep", pattern<1, 8>, 1, splits);
      run("tiled 1 KB/warp/chunk, 4 deep", tiled<4>, 1, splits);
      run("tiled 1 KB/warp/chunk, 8 deep", tiled<8>, 1, splits);
    }
    cudaFree(pool);
  }
  printf("%s\n", cudaGetErrorString(cudaDeviceSynchronize()));
  return 0;
}
