// Shared by the probes: median of 30 CUDA-event samples of f() after 3 untimed calls.
#pragma once
#include <cuda_runtime.h>
#include <algorithm>
#include <vector>
template <class F> double median_us(cudaStream_t s, F f) {
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  for (int i = 0; i < 3; ++i) f();
  std::vector<float> t;
  for (int r = 0; r < 30; ++r) { cudaEventRecord(a, s); f(); cudaEventRecord(b, s); cudaEventSynchronize(b); float ms; cudaEventElapsedTime(&ms, a, b); t.push_back(ms * 1000); }
  std::sort(t.begin(), t.end()); return t[15];
}
