// Hopper FP8 GEMM (sm_90a), "NT": A [M,K] and B [N,K] K-major FP8 (E4M3 or E5M2), C = alpha * diag(sa) (A.B^T) diag(sb) + bias.
// Persistent and warp-specialized (study: DeepGEMM sm90_fp8_gemm_1d2d, CUTLASS sm90 warpspecialized cooperative):
//  - warpgroup 0 (producer, setmaxnreg 40): one thread issues TMA loads of A and B tiles into a ring of kStages stages,
//    each guarded by a "full" mbarrier (TMA completes bytes) and an "empty" mbarrier (both consumers released it);
//  - warpgroups 1 and 2 (consumers, setmaxnreg 232): each owns 64 rows of the 128-row tile and issues
//    wgmma.mma_async m64n128k32 over the 128-wide K block, then promotes the block's partial sum into FP32 registers
//    (NUMERICS.md s5: FP8 tensor-core accumulation is promoted at least every 128 of K);
//  - epilogue: per-tensor / per-row scales, bias, BF16 / FP16 / FP32 stores straight from registers.
// Tile configs 256x128x128_s4 and 128x128x128_s6 (pipelined promotion); tiles visited in groups of 8 M-tiles for L2 reuse. M, N and K tails: TMA zero-fills
// out-of-range boxes (K must be a multiple of 16 bytes for the TMA row stride), stores are guarded.
#include <cuda_runtime_api.h>
#include <cstring>
#include "common/formats.cuh"
#include "common/ptx_sm90.cuh"
#include "launch.h"
#include "../src/driver.h"
#include "../src/error.h"

namespace ms {

const char* const kSm90Fp8GemmName = "ms_sm90_fp8_gemm_nt_256x128x128_c1x1_s4_ws";
const char* const kSm90Fp8GemmSmallName = "ms_sm90_fp8_gemm_nt_128x128x128_c1x1_s6_ws";
const char* const kSm90Fp8GemmClusterName = "ms_sm90_fp8_gemm_nt_128x128x128_c2x1_s6_ws";

namespace {

// Tile configs: each consumer warpgroup computes kWaves x 64 rows (one m64 wave at a time), so BM = 128 x kWaves.
//   256x128x128_s4: kWaves = 2, B tiles reused by 256 rows (large M); 128x128x128_s6: kWaves = 1 (small M).
constexpr int kBN = 128, kBK = 128, kGroupM = 8, kThreads = 384, kSmemLimit = 232448;
template <int kWaves> struct Config {
  static constexpr int kBM = 128 * kWaves;
  static constexpr int kTileABytes = kBM * kBK, kStageBytes = kTileABytes + kBN * kBK;
  static constexpr int kStages = kWaves == 2 ? 4 : 6;
  static constexpr int kSmemBytes = kStages * kStageBytes + 1024 /* alignment */ + 2 * kStages * 8 /* barriers */;
  static_assert(kSmemBytes <= kSmemLimit, "shared memory");
};

struct alignas(64) TensorMap { uint64_t opaque[16]; };  // CUtensorMap

struct Sm90Params {
  int m, n, k;
  float alpha;
  const float* scale_a;  // [1] or [m]
  const float* scale_b;  // [1] or [n]
  int a_per_row, b_per_row;
  const float* bias;     // [n] or null
  void* out;
  int out_dtype;
};

#ifdef MS_SM90_ENABLED
__device__ __forceinline__ void tile_coords(int tile, int tiles_m, int tiles_n, int& tm, int& tn) {
  int in_group = kGroupM * tiles_n;
  int group = tile / in_group, first_m = group * kGroupM;
  int rows = min(tiles_m - first_m, kGroupM);
  int local = tile - group * in_group;
  tm = first_m + local % rows;
  tn = local / rows;
}
#endif

#ifdef MS_SM90_ENABLED
__device__ __forceinline__ void store_pair(const Sm90Params& p, int row, int col, float v0, float v1) {
  int64_t index = (int64_t)row * p.n + col;
  bool both = col + 1 < p.n, aligned = (p.n & 1) == 0;
  if (p.out_dtype == 0) {
    float* out = static_cast<float*>(p.out);
    if (both && aligned) *reinterpret_cast<float2*>(out + index) = make_float2(v0, v1);
    else { out[index] = v0; if (both) out[index + 1] = v1; }
  } else {
    uint16_t* out = static_cast<uint16_t*>(p.out);
    uint16_t h0 = p.out_dtype == 1 ? to_bf16(v0) : to_f16(v0), h1 = p.out_dtype == 1 ? to_bf16(v1) : to_f16(v1);
    if (both && aligned) *reinterpret_cast<uint32_t*>(out + index) = (uint32_t)h0 | ((uint32_t)h1 << 16);
    else { out[index] = h0; if (both) out[index + 1] = h1; }
  }
}
#endif

#ifdef MS_SM90_ENABLED
// One m64n128k32 FP8 wgmma (32 FP8 values = 32 bytes along K: descriptors advance by 2 per step in 16-byte units).
template <int kA, int kB>
__device__ __forceinline__ void mma(float (&d)[64], uint64_t da, uint64_t db, int scale_d) {
  using namespace sm90;
  if constexpr (kA == kE4M3 && kB == kE4M3) wgmma_m64n128k32_e4m3_e4m3(d, da, db, scale_d);
  else if constexpr (kA == kE4M3) wgmma_m64n128k32_e4m3_e5m2(d, da, db, scale_d);
  else if constexpr (kB == kE4M3) wgmma_m64n128k32_e5m2_e4m3(d, da, db, scale_d);
  else wgmma_m64n128k32_e5m2_e5m2(d, da, db, scale_d);
}
#endif

// kCluster = 2: CTA pairs along M share each B tile: each CTA loads half of it and multicasts it to both, halving B's L2
// traffic; a stage is free only when the consumers of both CTAs released it. Correct (selftest) but measured slower on the
// H100 than c1x1 (536 vs 823 TFLOPS at 8192^3, 2026-11-23): L2 traffic is not what limits this kernel yet; forced-only.
template <int kA, int kB, int kWaves, int kCluster>
__global__ void __launch_bounds__(kThreads, 1)
sm90_fp8_gemm_kernel(const __grid_constant__ TensorMap map_a, const __grid_constant__ TensorMap map_b, Sm90Params p) {
#ifdef MS_SM90_ENABLED
  using namespace sm90;
  using C = Config<kWaves>;
  constexpr int kBM = C::kBM, kStages = C::kStages, kStageBytes = C::kStageBytes, kTileABytes = C::kTileABytes;
  extern __shared__ __align__(1024) uint8_t smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + kStages * kStageBytes);
  uint64_t* empty = full + kStages;
  const int warpgroup = threadIdx.x / 128;
  const int tiles_m = (p.m + kBM - 1) / kBM, tiles_n = (p.n + kBN - 1) / kBN;
  const int k_blocks = (p.k + kBK - 1) / kBK;
  // Work units: one tile, or (kCluster = 2) a pair of M-adjacent tiles with the same B tile, one per CTA of the cluster.
  const int unit_rows = (tiles_m + kCluster - 1) / kCluster, units = unit_rows * tiles_n;
  const uint32_t rank = kCluster > 1 ? cluster_ctarank() : 0;
  const int first_unit = kCluster > 1 ? (int)cluster_id_x() : blockIdx.x;
  const int unit_step = kCluster > 1 ? (int)cluster_count_x() : gridDim.x;

  if (threadIdx.x == 0) {
    prefetch_tensormap(&map_a);
    prefetch_tensormap(&map_b);
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(&full[s], 1);
      mbarrier_init(&empty[s], 2 * kCluster);  // one arrival per consumer warpgroup of every CTA sharing the stage
    }
    fence_barrier_init();
  }
  if constexpr (kCluster > 1) cluster_sync(); else __syncthreads();

  if (warpgroup == 0) {
    setmaxnreg_dec<40>();
    if (threadIdx.x == 0) {
      uint32_t iteration = 0;
      for (int unit = first_unit; unit < units; unit += unit_step) {
        int um, tn;
        tile_coords(unit, unit_rows, tiles_n, um, tn);
        const int tm = um * kCluster + (int)rank;
        for (int kb = 0; kb < k_blocks; ++kb, ++iteration) {
          int s = iteration % kStages;
          uint32_t phase = (iteration / kStages) & 1;
          mbarrier_wait(&empty[s], phase ^ 1);
          uint8_t* a_tile = smem + s * kStageBytes;
          mbarrier_arrive_expect_tx(&full[s], kStageBytes);
          tma_load_2d(a_tile, &map_a, &full[s], kb * kBK, tm * kBM);
          if constexpr (kCluster > 1) {
            constexpr int kHalf = kBN / 2;
            tma_load_2d_multicast(a_tile + kTileABytes + rank * kHalf * kBK, &map_b, &full[s], kb * kBK, tn * kBN + (int)rank * kHalf, 0x3);
          } else {
            tma_load_2d(a_tile + kTileABytes, &map_b, &full[s], kb * kBK, tn * kBN);
          }
        }
      }
    }
    if constexpr (kCluster > 1) cluster_sync();  // no CTA leaves while its peer may still write into it
    return;
  }

  setmaxnreg_inc<232>();
  const int consumer = warpgroup - 1;        // rows consumer*64*kWaves .. of the tile, one 64-row wave at a time
  const int t = threadIdx.x % 128, warp = t / 32, lane = t % 32;
  float acc[64], total[kWaves][64];
  uint32_t iteration = 0;
  auto release = [&](int s) {
    mbarrier_arrive(&empty[s]);
    if constexpr (kCluster > 1) mbarrier_arrive_remote(&empty[s], rank ^ 1);
  };
  for (int unit = first_unit; unit < units; unit += unit_step) {
    int um, tn;
    tile_coords(unit, unit_rows, tiles_n, um, tn);
    const int tm = um * kCluster + (int)rank;
#pragma unroll
    for (int w = 0; w < kWaves; ++w)
#pragma unroll
      for (int i = 0; i < 64; ++i) total[w][i] = 0.0f;
    if constexpr (kWaves == 1) {
      // Pipelined promotion (one wgmma batch in flight, as CUTLASS's K_PIPE_MMAS = 1): issue block kb into one
      // accumulator, then wait for block kb-1 in the other and promote it while the tensor cores work on kb.
      auto issue = [&](float (&a)[64]) -> int {
        int s = iteration % kStages;
        uint32_t phase = (iteration / kStages) & 1;
        ++iteration;
        mbarrier_wait(&full[s], phase);
        uint64_t da = sw128_desc(smem + s * kStageBytes + consumer * 64 * kBK);
        uint64_t db = sw128_desc(smem + s * kStageBytes + kTileABytes);
        fence_operand(a);
        wgmma_fence();
#pragma unroll
        for (int k = 0; k < kBK / 32; ++k) mma<kA, kB>(a, da + 2 * k, db + 2 * k, k);
        wgmma_commit();
        return s;
      };
      auto retire = [&](float (&a)[64], int s) {
        fence_operand(a);
        if (t == 0) release(s);
#pragma unroll
        for (int i = 0; i < 64; ++i) total[0][i] += a[i];
      };
      float acc1[64];
      int s0 = issue(acc), s1 = 0;
      for (int kb = 1;; ) {
        if (kb >= k_blocks) { wgmma_wait<0>(); retire(acc, s0); break; }
        s1 = issue(acc1); wgmma_wait<1>(); retire(acc, s0); ++kb;
        if (kb >= k_blocks) { wgmma_wait<0>(); retire(acc1, s1); break; }
        s0 = issue(acc); wgmma_wait<1>(); retire(acc1, s1); ++kb;
      }
    } else {
    for (int kb = 0; kb < k_blocks; ++kb, ++iteration) {
      int s = iteration % kStages;
      uint32_t phase = (iteration / kStages) & 1;
      mbarrier_wait(&full[s], phase);
      uint64_t db = sw128_desc(smem + s * kStageBytes + kTileABytes);
#pragma unroll
      for (int w = 0; w < kWaves; ++w) {
        uint64_t da = sw128_desc(smem + s * kStageBytes + (consumer * kWaves + w) * 64 * kBK);
        fence_operand(acc);
        wgmma_fence();
#pragma unroll
        for (int k = 0; k < kBK / 32; ++k) mma<kA, kB>(acc, da + 2 * k, db + 2 * k, k);
        wgmma_commit();
        wgmma_wait<0>();
        fence_operand(acc);
        if (w == kWaves - 1 && t == 0) release(s);  // the stage is free once the last wave has read it
#pragma unroll
        for (int i = 0; i < 64; ++i) total[w][i] += acc[i];  // promotion of this 128-wide K block to FP32
      }
    }
    }

    // Epilogue. wgmma D layout (m64nNk32, f32): d[4c+{0,1}] at (r0, 8c + 2(lane%4) + {0,1}), d[4c+{2,3}] at row r0 + 8.
#pragma unroll
    for (int w = 0; w < kWaves; ++w) {
      const int r0 = tm * kBM + (consumer * kWaves + w) * 64 + warp * 16 + lane / 4;
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        int row = r0 + 8 * half;
        if (row >= p.m) continue;
        float sa = p.alpha * p.scale_a[p.a_per_row ? row : 0];
#pragma unroll
        for (int c = 0; c < kBN / 8; ++c) {
          int col = tn * kBN + 8 * c + 2 * (lane % 4);
          if (col >= p.n) continue;
          float v0 = total[w][4 * c + 2 * half] * sa * p.scale_b[p.b_per_row ? col : 0];
          float v1 = col + 1 < p.n ? total[w][4 * c + 2 * half + 1] * sa * p.scale_b[p.b_per_row ? col + 1 : 0] : 0.0f;
          if (p.bias) {
            v0 += p.bias[col];
            if (col + 1 < p.n) v1 += p.bias[col + 1];
          }
          store_pair(p, row, col, v0, v1);
        }
      }
    }
  }
  if constexpr (kCluster > 1) cluster_sync();
#endif
}

using EncodeTiled = int (*)(TensorMap*, int, uint32_t, void*, const uint64_t*, const uint64_t*, const uint32_t*, const uint32_t*, int, int, int, int);

TensorMap make_map(const void* base, int rows, int k, int box_rows) {
  static EncodeTiled encode = reinterpret_cast<EncodeTiled>(Driver::get().symbol("cuTensorMapEncodeTiled"));
  if (!encode) fail(MS_ERR_CUDA, "", "cuTensorMapEncodeTiled is not available from the CUDA driver");
  TensorMap map;
  uint64_t dims[2] = {(uint64_t)k, (uint64_t)rows};
  uint64_t strides[1] = {(uint64_t)k};  // bytes per row (FP8)
  uint32_t box[2] = {(uint32_t)kBK, (uint32_t)box_rows};
  uint32_t element_strides[2] = {1, 1};
  // UINT8 data, no interleave, 128B swizzle, L2 promotion 256B, OOB fill zeros.
  int result = encode(&map, 0, 2, const_cast<void*>(base), dims, strides, box, element_strides, 0, 3, 3, 0);
  if (result != 0) fail(MS_ERR_CUDA, "", "cuTensorMapEncodeTiled failed with CUresult %d (rows %d, k %d)", result, rows, k);
  return map;
}

template <int kA, int kB, int kWaves, int kCluster>
void launch_typed(const void* a, const void* b, const Sm90Params& p, int sms, cudaStream_t stream) {
  using C = Config<kWaves>;
  auto kernel = sm90_fp8_gemm_kernel<kA, kB, kWaves, kCluster>;
  static bool configured = [&] {
    return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmemBytes) == cudaSuccess;
  }();
  if (!configured) fail(MS_ERR_CUDA, "", "cudaFuncSetAttribute(MaxDynamicSharedMemorySize = %d) failed", C::kSmemBytes);
  TensorMap ma = make_map(a, p.m, p.k, C::kBM), mb = make_map(b, p.n, p.k, kBN / kCluster);
  int units = ((p.m + C::kBM * kCluster - 1) / (C::kBM * kCluster)) * ((p.n + kBN - 1) / kBN);
  int ctas = (units < sms / kCluster ? units : sms / kCluster) * kCluster;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(ctas);
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = C::kSmemBytes;
  config.stream = stream;
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = kCluster;
  attribute.val.clusterDim.y = 1;
  attribute.val.clusterDim.z = 1;
  config.attrs = &attribute;
  config.numAttrs = 1;
  check_cuda(cudaLaunchKernelEx(&config, kernel, ma, mb, p), "sm90 FP8 GEMM launch");
}

template <int kWaves, int kCluster>
void launch_config(const ms_gemm_desc_t& d, const void* a, const void* b, const Sm90Params& p, int sms, cudaStream_t stream) {
  bool a5 = d.a_element == MS_ELEM_E5M2, b5 = d.b_element == MS_ELEM_E5M2;
  if (!a5 && !b5) launch_typed<kE4M3, kE4M3, kWaves, kCluster>(a, b, p, sms, stream);
  else if (!a5) launch_typed<kE4M3, kE5M2, kWaves, kCluster>(a, b, p, sms, stream);
  else if (!b5) launch_typed<kE5M2, kE4M3, kWaves, kCluster>(a, b, p, sms, stream);
  else launch_typed<kE5M2, kE5M2, kWaves, kCluster>(a, b, p, sms, stream);
}

}  // namespace

bool sm90_fp8_gemm_can_implement(const ms_gemm_desc_t& d) {
  bool fp8 = (d.a_format == MS_FMT_FP8_TENSOR || d.a_format == MS_FMT_FP8_ROW) && (d.b_format == MS_FMT_FP8_TENSOR || d.b_format == MS_FMT_FP8_ROW);
  return fp8 && d.k % 16 == 0;
}

const char* sm90_fp8_gemm_config(const ms_gemm_desc_t& d) {
  // Heuristic, from the H100 sweep (microscale_selftest, 2026-11-23): 128x128 with pipelined promotion beats 256x128
  // (whose two waves per warpgroup leave no registers for a second accumulator) at every measured shape, by 1.15-2.0x.
  // 256x128 stays available through MS_FORCE_CONFIG for tuning.
  (void)d;
  return kSm90Fp8GemmSmallName;
}

void launch_sm90_fp8_gemm(const ms_gemm_desc_t& d, const char* config, const ms_gemm_operands_t& ops, int sms, cudaStream_t stream) {
  if (reinterpret_cast<uintptr_t>(ops.a.data) % 16 || reinterpret_cast<uintptr_t>(ops.b.data) % 16)
    fail(MS_ERR_MISALIGNED, "a", "the sm90 FP8 kernel needs 16-byte aligned A and B data");
  Sm90Params p{d.m, d.n, d.k, ops.alpha, ops.a.decode_scales, ops.b.decode_scales, d.a_format == MS_FMT_FP8_ROW, d.b_format == MS_FMT_FP8_ROW,
               d.has_bias ? ops.bias : nullptr, ops.out, d.out_dtype};
  if (std::strcmp(config, kSm90Fp8GemmName) == 0) launch_config<2, 1>(d, ops.a.data, ops.b.data, p, sms, stream);
  else if (std::strcmp(config, kSm90Fp8GemmClusterName) == 0) launch_config<1, 2>(d, ops.a.data, ops.b.data, p, sms, stream);
  else launch_config<1, 1>(d, ops.a.data, ops.b.data, p, sms, stream);
}

}  // namespace ms
