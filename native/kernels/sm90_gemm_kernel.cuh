// The Hopper (sm_90a) persistent, warp-specialized wgmma GEMM kernel shared by the FP8 family (sm90_fp8_gemm_nt.cu: FP8
// operands straight from global memory) and the BF16 family (sm90_bf16_gemm_nt.cu: block-scaled operands dequantized to
// BF16 first). "NT": A [M,K] and B [N,K] K-major, C = alpha * diag(sa) (A.B^T) diag(sb) + bias.
// Study: DeepGEMM sm90_fp8_gemm_1d2d, CUTLASS sm90 warpspecialized cooperative.
//  - warpgroup 0 (producer, setmaxnreg 40): one thread issues TMA loads of the A and B tiles into a ring of kStages stages,
//    each guarded by a "full" mbarrier (TMA completes bytes) and an "empty" mbarrier (every consumer warp released it);
//    its second warp loads each tile's epilogue operands;
//  - warpgroups 1 and 2 (consumers, setmaxnreg 232): each owns 64 rows of the 128-row tile and issues wgmma.mma_async over
//    each 128-byte K block (128 FP8 or 64 BF16 values: four m64nNk32 FP8 or m64nNk16 BF16 wgmma); FP8 partial sums are
//    promoted into FP32 registers (NUMERICS.md s5: FP8 tensor-core accumulation is promoted at least every 128 of K), BF16
//    accumulates in the tensor core (kNone). How promotion overlaps the tensor cores is per config;
//  - epilogue: per-tensor / per-row scales (null: 1) and bias in FP32; 16-bit outputs are staged through a 128B-swizzled
//    shared buffer and written by TMA stores that run while the warpgroup starts its next tile; FP32 (or rows whose stride is
//    not a multiple of 16 bytes) is stored straight from registers;
//  - stream-K tail (common/stream_k.h): on problems of many waves with a partial last one, the last tiles are split along K
//    over every CTA; a split tile's head leaves its FP32 partial in the workspace for its tail, which adds it.
//  - clusters (kCluster = 2): the CTA pair of a cluster runs M-adjacent tiles of one B tile in lockstep; each CTA loads its
//    own A tile and half of the B tile, multicast into both, so B's L2 reads halve; a stage is free when the consumers of
//    both CTAs released it. Work is scheduled per pair ("unit" of kCluster M-tiles), the stream-K tail too.
// Tiles are visited in groups of 8 M-tiles for L2 reuse.
// M, N and K tails: TMA zero-fills out-of-range boxes (the K row stride must be a multiple of 16 bytes) and clips
// out-of-range stores.
#pragma once
#include <cuda_runtime_api.h>
#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include "common/formats.cuh"
#include "common/gemm_epilogue.cuh"
#include "common/tensor_map.h"
#include "common/ptx_sm90.cuh"
#include "common/stream_k.h"
#include "launch.h"
#include "../src/driver.h"
#include "../src/error.h"

namespace ms {

namespace {

constexpr int kBM = 128, kBK = 128 /* bytes of K per stage row */, kGroupM = 8, kThreads = 384, kSmemLimit = 232448;
// Operand element of the kernel: kE4M3 / kE5M2 (formats.cuh) or BF16.
constexpr int kBf16 = 16;
template <int kElem> constexpr int kKPerBlock = kElem == kBf16 ? kBK / 2 : kBK;  // K values per 128-byte block
constexpr int kConsumerWarps = 8;

// How a consumer warpgroup promotes its wgmma partial sums (one 128-wide K block each) into the FP32 total:
//  kPipelined: two partial accumulators, block kb+1 is issued before block kb is promoted (BN <= 128: 3 x BN/2 registers);
//  kPerBlock:  one partial accumulator, wait then promote (DeepGEMM); the other warpgroup keeps the tensor cores busy;
//  kNone:      no promotion, the whole K accumulates in the tensor core: the BF16 configs (FP32 accumulation); for FP8 a
//              diagnostic only (it breaks the NUMERICS.md s5 bound; only MS_FORCE_CONFIG runs it, to measure what promotion costs).
// (BN = 256 as two promoted m64n128 halves, and MXFP8 x MXFP8 promoted every 32 of K, were measured slower and not kept:
// NOTES-sm90-fp8.md.)
enum Promotion { kPipelined, kPerBlock, kNone };

template <int kBN_, int kStages_, Promotion kPromotion_, int kCluster_ = 1> struct Config {
  static constexpr int kBN = kBN_, kStages = kStages_, kCluster = kCluster_;
  static constexpr Promotion kPromotion = kPromotion_;
  using Single = Config<kBN_, kStages_, kPromotion_, 1>;  // the same tile without the cluster (problems it cannot pair)
  static_assert(kCluster == 1 || (kCluster == 2 && kGroupM % kCluster == 0 && (kBN / kCluster) % 8 == 0), "cluster of 2 along M");
  static constexpr int kTileA = kBM * kBK, kStageBytes = kTileA + kBN * kBK;
  static constexpr int kOutTileBytes = kBM * kBN * 2;  // 16-bit output tile staged for the TMA store (64-column chunks)
  static constexpr int kEpilogueFloats = kBM + 2 * kBN;  // one tile's row scales, column scales and biases
  static constexpr int kSmemBytes = kStages * kStageBytes + kOutTileBytes + 1024 /* alignment */ + (2 * kStages + 2) * 8 /* barriers */ +
                                    kEpilogueFloats * 4;
  static_assert(kSmemBytes <= kSmemLimit, "shared memory");
  static_assert(kBN % 64 == 0 && kBN <= 256, "the output is staged in 64-column chunks");
  static_assert(kPromotion != kPipelined || kBN <= 128, "pipelined promotion needs 3 x BN/2 accumulator registers");
};


struct Sm90Params {
  int m, n, k;
  float alpha;
  const float* __restrict__ scale_a;  // [1] or [m]; null: 1
  const float* __restrict__ scale_b;  // [1] or [n]; null: 1
  int a_per_row, b_per_row;
  const float* __restrict__ bias;     // [n] or null
  void* out;
  int out_dtype;   // MS_DTYPE_F32 / BF16 / F16
  int tma_store;   // 16-bit output with a 16-byte aligned base and row stride: staged + TMA store
  // Stream-K tail (use_stream_k): units (tiles, or a cluster's kCluster M-adjacent tiles) from dp_tiles on are split along
  // K; flags [grid][2] (zero between runs, in the workspace's counter area) and partials [grid][2][64 x BN] FP32 carry each
  // split tile's head to its tail.
  int dp_tiles;  // INT_MAX: every unit whole
  int* flags;
  float* partials;
};

#ifdef MS_SM90_ENABLED
// One wgmma over 32 bytes of K: m64nNk32 FP8 (32 values) or m64nNk16 BF16 (16 values); descriptors advance by 2 per step
// in 16-byte units.
template <int kA, int kB, int kN>
__device__ __forceinline__ void mma(float (&d)[kN / 2], uint64_t da, uint64_t db, int scale_d) {
  using namespace sm90;
  static_assert((kA == kBf16) == (kB == kBf16), "BF16 pairs only with BF16");
#define MS_WGMMA(N)                                                                  \
  if constexpr (kA == kBf16) wgmma_m64n##N##k16_bf16_bf16(d, da, db, scale_d);                   \
  else if constexpr (kA == kE4M3 && kB == kE4M3) wgmma_m64n##N##k32_e4m3_e4m3(d, da, db, scale_d); \
  else if constexpr (kA == kE4M3) wgmma_m64n##N##k32_e4m3_e5m2(d, da, db, scale_d);          \
  else if constexpr (kB == kE4M3) wgmma_m64n##N##k32_e5m2_e4m3(d, da, db, scale_d);          \
  else wgmma_m64n##N##k32_e5m2_e5m2(d, da, db, scale_d);
  if constexpr (kN == 64) { MS_WGMMA(64) }
  else if constexpr (kN == 128) { MS_WGMMA(128) }
  else if constexpr (kN == 192) { MS_WGMMA(192) }
  else { static_assert(kN == 256, "wgmma N"); MS_WGMMA(256) }
#undef MS_WGMMA
}

// Issues one 128-byte K block (4 wgmma) as one wgmma group; `accumulate` keeps what `d` holds, else it starts at 0.
template <int kA, int kB, int kN>
__device__ __forceinline__ void mma_block(float (&d)[kN / 2], uint64_t da, uint64_t db, bool accumulate) {
  sm90::fence_operand(d);
  sm90::wgmma_fence();
#pragma unroll
  for (int k = 0; k < kBK / 32; ++k) mma<kA, kB, kN>(d, da + 2 * k, db + 2 * k, (k > 0 || accumulate) ? 1 : 0);
  sm90::wgmma_commit();
}

template <int N> __device__ __forceinline__ void add_into(float* total, const float (&partial)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) total[i] += partial[i];
}

__device__ __forceinline__ void store_release_gpu(int* flag, int value) {
  asm volatile("st.release.gpu.global.b32 [%0], %1;" ::"l"(flag), "r"(value) : "memory");
}
__device__ __forceinline__ int load_acquire_gpu(const int* flag) {
  int value;
  asm volatile("ld.acquire.gpu.global.b32 %0, [%1];" : "=r"(value) : "l"(flag) : "memory");
  return value;
}
#endif

// This CTA's work item i (common/stream_k.h): the cluster's, over units of kCluster M-adjacent tiles; w.tile is a unit.
template <int kCluster> __device__ __forceinline__ bool work_item(const Sm90Params& p, int units, int k_blocks, int i, Work& w) {
  return stream_k_item(p.dp_tiles, units, k_blocks, gridDim.x / kCluster, blockIdx.x / kCluster, i, w);
}

template <int kA, int kB, class C>
__global__ void __launch_bounds__(kThreads, 1)
sm90_gemm_kernel(const __grid_constant__ TensorMap map_a, const __grid_constant__ TensorMap map_b,
                 const __grid_constant__ TensorMap map_out, Sm90Params p) {
#ifdef MS_SM90_ENABLED
  using namespace sm90;
  constexpr int kBN = C::kBN, kStages = C::kStages, kStageBytes = C::kStageBytes, kTileA = C::kTileA, kCluster = C::kCluster;
  extern __shared__ __align__(1024) uint8_t smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  uint8_t* out_tile = smem + kStages * kStageBytes;
  uint64_t* full = reinterpret_cast<uint64_t*>(out_tile + C::kOutTileBytes);
  uint64_t* empty = full + kStages;
  // The epilogue operands of one tile (alpha x row scales, column scales, biases), loaded by the producer warpgroup's second
  // warp: consumer warps never keep global loads in flight across their mainloop (measured: per-row x per-row scales loaded
  // by the consumers at tile start made the mainloop 25% slower at 8192^3 and 16384x8192x8192, data-starved).
  uint64_t* epilogue_full = empty + kStages;
  uint64_t* epilogue_empty = epilogue_full + 1;
  float* row_scale = reinterpret_cast<float*>(epilogue_empty + 1);
  float* column_scale = row_scale + kBM;
  float* column_bias = column_scale + kBN;
  const int warpgroup = __shfl_sync(0xffffffffu, threadIdx.x / 128, 0);
  // The launch pairs tiles only when tiles_m is a multiple of kCluster; this CTA runs M tile unit x kCluster + rank.
  const int tiles_m = (p.m + kBM - 1) / kBM, tiles_n = (p.n + kBN - 1) / kBN, units_m = tiles_m / kCluster, units = units_m * tiles_n;
  const int rank = kCluster > 1 ? (int)cluster_ctarank() : 0;
  auto coords = [&](const Work& w, int& tm, int& tn) {
    int um;
    tile_coords<kGroupM / kCluster>(w.tile, units_m, tiles_n, um, tn);
    tm = um * kCluster + rank;
  };
  constexpr int kKBlock = kKPerBlock<kA>;
  const int k_blocks = (p.k + kKBlock - 1) / kKBlock;

  if (threadIdx.x == 0) {
    prefetch_tensormap(&map_a);
    prefetch_tensormap(&map_b);
    if (p.tma_store) prefetch_tensormap(&map_out);
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(&full[s], 1);                // the TMA bytes' arrival
      mbarrier_init(&empty[s], kConsumerWarps * kCluster);  // every consumer warp of every CTA that the stage's B reaches
    }
    mbarrier_init(epilogue_full, 32);             // every lane of the loading warp, after its stores
    mbarrier_init(epilogue_empty, kConsumerWarps);
    fence_barrier_init();
  }
  if constexpr (kCluster > 1) cluster_sync();  // the peer's barriers are initialized before any multicast or remote arrive
  else __syncthreads();

  uint32_t stage = 0, phase = 0;
  auto advance = [&] {
    if (++stage == kStages) { stage = 0; phase ^= 1; }
  };

  if (warpgroup == 0) {
    setmaxnreg_dec<40>();
    Work w;
    if (threadIdx.x == 0) {
      for (int i = 0; work_item<kCluster>(p, units, k_blocks, i, w); ++i) {
        int tm, tn;
        coords(w, tm, tn);
        for (int kb = w.kb0; kb < w.kb1; ++kb, advance()) {
          mbarrier_wait(&empty[stage], phase ^ 1);
          uint8_t* a_tile = smem + stage * kStageBytes;
          mbarrier_arrive_expect_tx(&full[stage], kStageBytes);  // A, and B from every CTA of the cluster
          tma_load_2d(a_tile, &map_a, &full[stage], kb * kKBlock, tm * kBM);
          if constexpr (kCluster == 1) {
            tma_load_2d(a_tile + kTileA, &map_b, &full[stage], kb * kKBlock, tn * kBN);
          } else {
            constexpr int kPart = kBN / kCluster;  // B rows this CTA loads for the whole cluster (the map's box)
            tma_load_2d_multicast(a_tile + kTileA + rank * kPart * kBK, &map_b, &full[stage], kb * kKBlock, tn * kBN + rank * kPart,
                                  (1u << kCluster) - 1);
          }
        }
      }
      // The peer's consumers arrive on this CTA's empty barriers until their last stage: wait for every one of those
      // arrivals before the CTA may exit (its shared memory must outlive them).
      if constexpr (kCluster > 1)
        for (int s = 0; s < kStages; ++s, advance()) mbarrier_wait(&empty[stage], phase ^ 1);
    } else if (threadIdx.x / 32 == 1) {
      const int lane = threadIdx.x % 32;
      uint32_t parity = 0;
      for (int i = 0; work_item<kCluster>(p, units, k_blocks, i, w); ++i, parity ^= 1) {
        int tm, tn;
        coords(w, tm, tn);
        mbarrier_wait(epilogue_empty, parity ^ 1);  // the consumers have read the previous tile's operands
        for (int i = lane; i < kBM; i += 32) {
          const int row = tm * kBM + i;
          row_scale[i] = row < p.m ? p.alpha * (p.scale_a ? p.scale_a[p.a_per_row ? row : 0] : 1.0f) : 0.0f;
        }
        for (int i = lane; i < kBN; i += 32) {
          const int col = tn * kBN + i;
          column_scale[i] = col < p.n ? (p.scale_b ? p.scale_b[p.b_per_row ? col : 0] : 1.0f) : 0.0f;
          column_bias[i] = p.bias && col < p.n ? p.bias[col] : 0.0f;
        }
        mbarrier_arrive(epilogue_full);
      }
    }
    return;
  }

  setmaxnreg_inc<232>();
  const int consumer = warpgroup - 1;  // rows consumer*64 .. +63 of the tile
  const int t = threadIdx.x % 128, warp = t / 32, lane = t % 32;
  // Descriptors of stage 0; stage s adds s * kStageBytes / 16 (the start address field counts 16-byte units).
  const uint64_t desc_a0 = sw128_desc(smem + consumer * 64 * kBK), desc_b0 = sw128_desc(smem + kTileA);
  auto desc_a = [&](uint32_t s) { return desc_a0 + s * (kStageBytes / 16); };
  auto desc_b = [&](uint32_t s) { return desc_b0 + s * (kStageBytes / 16); };
  auto release = [&](uint32_t s) {
    if constexpr (kCluster == 1) {
      if (lane == 0) mbarrier_arrive(&empty[s]);
    } else if (lane < kCluster) {
      mbarrier_arrive_cluster(&empty[s], lane);  // lane c releases the stage in CTA c (its B half came from there)
    }
  };
  float total[kBN / 2];

  const int r = warp * 16 + lane / 4;  // the wgmma D rows of this thread within the warpgroup's 64: r and r + 8
  uint32_t epilogue_parity = 0;
  Work w;
  for (int i = 0; work_item<kCluster>(p, units, k_blocks, i, w); ++i, epilogue_parity ^= 1) {
    int tm, tn;
    coords(w, tm, tn);
    const int blocks = w.kb1 - w.kb0;  // K blocks of this work item (>= 1)

    if constexpr (C::kPromotion == kNone) {
      // The accumulator stays in the tensor core for all of K; one group in flight, its stage released one block later.
      uint32_t previous = 0;
      for (int kb = 0; kb < blocks; ++kb, advance()) {
        mbarrier_wait(&full[stage], phase);
        mma_block<kA, kB, kBN>(total, desc_a(stage), desc_b(stage), kb > 0);
        wgmma_wait<1>();
        if (kb > 0) release(previous);
        previous = stage;
      }
      wgmma_wait<0>();
      fence_operand(total);
      release(previous);
    } else {
#pragma unroll
      for (int i = 0; i < kBN / 2; ++i) total[i] = 0.0f;
      if constexpr (C::kPromotion == kPipelined) {
        // Issue block kb into one partial, then wait for block kb-1 in the other and promote it while kb runs (CUTLASS's
        // K_PIPE_MMAS = 1).
        float part0[kBN / 2], part1[kBN / 2];
        auto issue = [&](float (&part)[kBN / 2]) -> uint32_t {
          mbarrier_wait(&full[stage], phase);
          mma_block<kA, kB, kBN>(part, desc_a(stage), desc_b(stage), false);
          uint32_t used = stage;
          advance();
          return used;
        };
        auto retire = [&](float (&part)[kBN / 2], uint32_t s) {
          fence_operand(part);
          release(s);
          add_into(total, part);
        };
        uint32_t s0 = issue(part0), s1 = 0;
        for (int kb = 1;;) {
          if (kb >= blocks) { wgmma_wait<0>(); retire(part0, s0); break; }
          s1 = issue(part1); wgmma_wait<1>(); retire(part0, s0); ++kb;
          if (kb >= blocks) { wgmma_wait<0>(); retire(part1, s1); break; }
          s0 = issue(part0); wgmma_wait<1>(); retire(part1, s1); ++kb;
        }
      } else {
        // kPerBlock: wait for each K block's wgmma group and promote it at once; the other warpgroup keeps the tensor cores
        // busy meanwhile.
        float part[kBN / 2];
#pragma unroll 1
        for (int kb = 0; kb < blocks; ++kb, advance()) {
          mbarrier_wait(&full[stage], phase);
          mma_block<kA, kB, kBN>(part, desc_a(stage), desc_b(stage), false);
          wgmma_wait<0>();
          fence_operand(part);
          release(stage);
          add_into(total, part);
        }
      }
    }

    // Epilogue. wgmma D layout (m64nNk32, f32): total[4c+{0,1}] at (r, 8c + 2(lane%4) + {0,1}), total[4c+{2,3}] at row r + 8.
    mbarrier_wait(epilogue_full, epilogue_parity);
    if (w.part != kWhole) {
      // A split tile: the head's FP32 partial, in this thread's register order (float4 c of thread t at c x 128 + t:
      // coalesced), goes to the head CTA's slot; the tail (the same rank of the next cluster) adds it, then runs the epilogue.
      const int owner = w.part == kHead ? blockIdx.x : blockIdx.x - kCluster;
      float4* slot = reinterpret_cast<float4*>(p.partials) + ((size_t)owner * 2 + consumer) * (64 * kBN / 4);
      int* flag = p.flags + owner * 2 + consumer;
      if (w.part == kHead) {
#pragma unroll
        for (int c = 0; c < kBN / 8; ++c) __stcg(slot + c * 128 + t, make_float4(total[4 * c], total[4 * c + 1], total[4 * c + 2], total[4 * c + 3]));
        __threadfence();
        named_barrier_sync(1 + consumer, 128);
        if (t == 0) store_release_gpu(flag, 1);
        __syncwarp();
        if (lane == 0) mbarrier_arrive(epilogue_empty);
        continue;
      }
      if (t == 0) {
        while (load_acquire_gpu(flag) == 0) {
        }
        *flag = 0;  // zero again for the next run
      }
      named_barrier_sync(1 + consumer, 128);
#pragma unroll
      for (int c0 = 0; c0 < kBN / 8; c0 += 4) {
        float4 head[4];
#pragma unroll
        for (int c = 0; c < 4; ++c) head[c] = __ldcg(slot + (c0 + c) * 128 + t);
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          float* d = total + 4 * (c0 + c);
          d[0] += head[c].x, d[1] += head[c].y, d[2] += head[c].z, d[3] += head[c].w;
        }
        asm volatile("" ::: "memory");  // at most 4 loads in flight: the accumulators leave few registers
      }
    }
    const int row0 = tm * kBM + consumer * 64 + r, row1 = row0 + 8;
    const float sa0 = row_scale[consumer * 64 + r], sa1 = row_scale[consumer * 64 + r + 8];
    const int col_base = tn * kBN + 2 * (lane % 4);
    if (p.tma_store) {
      // The staging buffer is free once the previous tile's TMA store has read it.
      if (t == 0) bulk_wait_group_read<0>();
      named_barrier_sync(1 + consumer, 128);
      uint8_t* staged = out_tile + consumer * (64 * kBN * 2);
#pragma unroll
      for (int c = 0; c < kBN / 8; ++c) {
        const int local = 8 * c + 2 * (lane % 4);  // tile column of total[4c] (and + 1)
        const float sb0 = column_scale[local], sb1 = column_scale[local + 1], b0 = column_bias[local], b1 = column_bias[local + 1];
        uint32_t top = pack_half2(total[4 * c] * sa0 * sb0 + b0, total[4 * c + 1] * sa0 * sb1 + b1, p.out_dtype);
        uint32_t bottom = pack_half2(total[4 * c + 2] * sa1 * sb0 + b0, total[4 * c + 3] * sa1 * sb1 + b1, p.out_dtype);
        // 64-column chunks of 64 rows x 128 B; 16-byte unit u of row r sits at unit u ^ (r % 8) (TMA SWIZZLE_128B).
        uint8_t* chunk = staged + (c / 8) * 8192 + (((c % 8) ^ (r % 8)) * 16) + (lane % 4) * 4;
        *reinterpret_cast<uint32_t*>(chunk + r * 128) = top;
        *reinterpret_cast<uint32_t*>(chunk + (r + 8) * 128) = bottom;
      }
      fence_proxy_async_shared();
      named_barrier_sync(1 + consumer, 128);
      if (t == 0) {
#pragma unroll
        for (int chunk = 0; chunk < kBN / 64; ++chunk)
          tma_store_2d(&map_out, staged + chunk * 8192, tn * kBN + chunk * 64, tm * kBM + consumer * 64);
        bulk_commit_group();
      }
    } else {
#pragma unroll
      for (int c = 0; c < kBN / 8; ++c) {
        const int local = 8 * c + 2 * (lane % 4);  // tile column of total[4c] (and + 1)
        const float sb0 = column_scale[local], sb1 = column_scale[local + 1], b0 = column_bias[local], b1 = column_bias[local + 1];
        const int col = col_base + 8 * c;
        if (col >= p.n) continue;
        if (row0 < p.m) store_pair(p, row0, col, total[4 * c] * sa0 * sb0 + b0, total[4 * c + 1] * sa0 * sb1 + b1);
        if (row1 < p.m) store_pair(p, row1, col, total[4 * c + 2] * sa1 * sb0 + b0, total[4 * c + 3] * sa1 * sb1 + b1);
      }
    }
    __syncwarp();
    if (lane == 0) mbarrier_arrive(epilogue_empty);  // this warp is done with the tile's epilogue operands
  }
  if (p.tma_store && t == 0) bulk_wait_group<0>();  // shared memory must outlive the last store's reads
#endif
}

// The kernel parameters of a problem: C = alpha * diag(scale_a) (A.B^T) diag(scale_b) + bias (a null scale is 1); 16-bit
// outputs with a 16-byte aligned base and row stride go through the TMA store.
inline Sm90Params params_of(const ms_gemm_desc_t& d, const ms_gemm_operands_t& ops, const float* scale_a, bool a_per_row, const float* scale_b,
                            bool b_per_row) {
  bool half_out = d.out_dtype == MS_DTYPE_BF16 || d.out_dtype == MS_DTYPE_F16;
  bool tma_store = half_out && reinterpret_cast<uintptr_t>(ops.out) % 16 == 0 && (d.n * 2) % 16 == 0;
  return Sm90Params{d.m, d.n, d.k, ops.alpha, scale_a, scale_b, a_per_row, b_per_row, d.has_bias ? ops.bias : nullptr, ops.out, d.out_dtype,
                    tma_store ? 1 : 0, INT_MAX, nullptr, nullptr};
}

// Stream-K tail (work_item), only for problems of at least kStreamKMinWaves full waves and kStreamKMinBlocks K blocks per
// tile. Measured on the H200 (FP8, microscale_selftest, each shape timed with and without the workspace against cuBLASLt
// in the same run): the split made 8192^3, 16384x8192x8192 and 4096x14336x4096 (27-62 waves) 0.2-2.2% faster and 4096^3,
// 4096x4096x14336 and 1024x8192x8192 (3.9-7.8 waves) 1.8-5.7% slower, where it has the larger share of the work. On this
// power-limited part filling the idle SMs of the last wave buys less than the wave count suggests. The K-block floor is a
// guess (a split tile's partial makes a round trip through L2).
constexpr int kStreamKMinWaves = 16, kStreamKMinBlocks = 8;

// The problem's first unit (a tile, or a cluster's `cluster` M-adjacent tiles) split along K (INT_MAX: none) on `ctas` CTAs,
// without the wave floor; the flags (2 per CTA) must fit the workspace's counter area.
inline int stream_k_first_split(int m, int n, int k, int bn, int k_per_block, int ctas, int cluster = 1) {
  const int tiles_m = (m + kBM - 1) / kBM;
  if (2 * ctas * sizeof(int) > kWorkspaceCounterBytes || tiles_m % cluster) return INT_MAX;
  const long units = (long)(tiles_m / cluster) * ((n + bn - 1) / bn);
  return stream_k_dp_tiles(units, (k + k_per_block - 1) / k_per_block, ctas / cluster, kStreamKMinBlocks);
}

// Whether a plan for the problem splits (the heuristic's and the workspace's question, asked once when the plan is made):
// from kStreamKMinWaves full waves on, or on any problem the split can take with MS_STREAM_K=1 (how the tests reach it).
inline bool stream_k_planned(int m, int n, int k, int bn, int k_per_block, int sms) {
  const char* forced = std::getenv("MS_STREAM_K");
  const long tiles = (long)((m + kBM - 1) / kBM) * ((n + bn - 1) / bn);
  const bool enough_waves = (forced && std::strcmp(forced, "1") == 0) || tiles >= (long)kStreamKMinWaves * sms;
  return enough_waves && stream_k_first_split(m, n, k, bn, k_per_block, sms) != INT_MAX;
}

// The plan's workspace bytes for the stream-K partials (past the counter area; 0 when it does not split): one 128 x BN FP32
// slot per CTA.
inline size_t stream_k_partial_bytes(int m, int n, int k, int bn, int k_per_block, int sms) {
  return stream_k_planned(m, n, k, bn, k_per_block, sms) ? (size_t)sms * kBM * bn * sizeof(float) : 0;
}

// Where a run may keep stream-K partials: the plan's workspace (null: none) and the partials' place in it (16-byte aligned).
struct StreamKSpace {
  void* workspace;
  size_t workspace_bytes;
  void* partials;
};

// A run on `ctas` CTAs splits when its plan's workspace holds the partials: the plan decided when it sized them. The flags go
// at the start of the workspace (its zeroed counter area).
inline void use_stream_k(Sm90Params& p, int bn, int k_per_block, int ctas, int cluster, const StreamKSpace& space) {
  if (!space.workspace) return;
  const int first_split = stream_k_first_split(p.m, p.n, p.k, bn, k_per_block, ctas, cluster);
  const size_t end = static_cast<size_t>(static_cast<uint8_t*>(space.partials) - static_cast<uint8_t*>(space.workspace)) +
                     (size_t)ctas * kBM * bn * sizeof(float);
  if (first_split == INT_MAX || end > space.workspace_bytes) return;
  p.dp_tiles = first_split;
  p.flags = static_cast<int*>(space.workspace);
  p.partials = static_cast<float*>(space.partials);
}

// Launch `config` in clusters of `cluster` CTAs along x (`attribute` must outlive the launch).
inline void set_cluster(cudaLaunchConfig_t& config, cudaLaunchAttribute& attribute, int cluster) {
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = cluster, attribute.val.clusterDim.y = 1, attribute.val.clusterDim.z = 1;
  config.attrs = &attribute;
  config.numAttrs = 1;
}

// Clusters of `cluster` CTAs of this kernel that fit on the current device at once (asked once per device: it depends on the
// kernel and the GPU, not on the problem).
template <class Kernel> int co_resident_clusters(Kernel kernel, cudaLaunchConfig_t config, int cluster) {
  static std::atomic<int> known[64];
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= 64) device = 0;
  int clusters = known[device].load(std::memory_order_relaxed);
  if (clusters == 0) {
    config.gridDim = dim3(cluster);
    cudaLaunchAttribute attribute{};
    set_cluster(config, attribute, cluster);
    if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) != cudaSuccess) {
      (void)cudaGetLastError();
      clusters = -1;  // cannot be asked: run without clusters
    }
    known[device].store(clusters == 0 ? -1 : clusters, std::memory_order_relaxed);
  }
  return clusters;
}

template <int kA, int kB, class C>
void launch_typed(const void* a, const void* b, Sm90Params p, int sms, const StreamKSpace& space, cudaStream_t stream) {
  auto kernel = sm90_gemm_kernel<kA, kB, C>;
  const int tiles_m = (p.m + kBM - 1) / kBM, tiles = tiles_m * ((p.n + C::kBN - 1) / C::kBN);
  // Set on every launch: the attribute belongs to the kernel as loaded in the current context, and a process may use several
  // contexts (devices, or an engine's context beside ILGPU's); the call costs about a microsecond.
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmemBytes) != cudaSuccess)
    fail(MS_ERR_CUDA, "", "cudaFuncSetAttribute(MaxDynamicSharedMemorySize = %d) failed", C::kSmemBytes);
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(tiles < sms ? tiles : sms);  // persistent: at most one CTA per SM
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = C::kSmemBytes;
  config.stream = stream;
  cudaLaunchAttribute attribute{};
  if constexpr (C::kCluster > 1) {
    // Pairs need an even number of M tiles, and as many CTAs as whole clusters fit at once (a persistent CTA that waited
    // for a free SM would run its tiles after everyone else's). Otherwise the same tile without the cluster runs, which
    // computes every tile in the same order: the same bytes.
    const int clusters = co_resident_clusters(kernel, config, C::kCluster);
    int ctas = std::min((int)config.gridDim.x, clusters * C::kCluster);
    ctas -= ctas % C::kCluster;
    if (tiles_m % C::kCluster || ctas <= 0) return launch_typed<kA, kB, typename C::Single>(a, b, p, sms, space, stream);
    config.gridDim = dim3(ctas);
    set_cluster(config, attribute, C::kCluster);
  }
  use_stream_k(p, C::kBN, kKPerBlock<kA>, config.gridDim.x, C::kCluster, space);
  constexpr int bytes = kA == kBf16 ? 2 : 1;
  TensorMap ma = make_map(a, p.m, p.k, bytes, kBK / bytes, kBM), mb = make_map(b, p.n, p.k, bytes, kBK / bytes, C::kBN / C::kCluster);
  TensorMap mo{};
  if (p.tma_store) mo = make_map(p.out, p.m, p.n, 2, 64, 64);
  const char* print = std::getenv("MS_PRINT_CONFIGS");
  if (print && *print == '1') {
    const int units = tiles / C::kCluster;
    std::fprintf(stderr, "microscale: sm90 grid %u CTAs (clusters of %d) for %d tiles (%d split along K)\n", config.gridDim.x, C::kCluster, tiles,
                 p.dp_tiles < units ? (units - p.dp_tiles) * C::kCluster : 0);
  }
  check_cuda(cudaLaunchKernelEx(&config, kernel, ma, mb, mo, p), "sm90 GEMM launch");
}

using Launcher = void (*)(const ms_gemm_desc_t&, const void*, const void*, const Sm90Params&, int, const StreamKSpace&, cudaStream_t);
struct ConfigEntry {
  const char* name;
  Launcher launch;
  int bn;
  double us_per_tile_block;  // measured cost of one 128-byte K block of one tile with every SM busy (0: never chosen)
  int cluster = 1;           // CTAs per cluster along M (2: B shared by multicast; only for an even number of M tiles)
};

template <size_t N> const ConfigEntry* find_config(const ConfigEntry (&configs)[N], const char* name) {
  for (const ConfigEntry& c : configs)
    if (std::strcmp(c.name, name) == 0) return &c;
  return nullptr;
}

// Heuristic: every tile costs about the same, and a persistent CTA runs ceil(tiles / SMs) of them (tiles / SMs where the
// stream-K tail splits the last wave), so the estimated time is waves x K blocks x the config's measured cost per tile and
// K block; the cheapest estimate wins (ties: the earlier, smaller tile). Entries with cost 0 are never picked; `fallback`
// is the answer when none has a cost.
template <size_t N>
const ConfigEntry& pick_config(const ConfigEntry (&configs)[N], const ConfigEntry& fallback, int m, int n, int k, int k_per_block, int sms) {
  const ConfigEntry* best = &fallback;
  double best_cost = 0;
  const int k_blocks = (k + k_per_block - 1) / k_per_block, tiles_m = (m + kBM - 1) / kBM;
  for (const ConfigEntry& c : configs) {
    if (c.us_per_tile_block == 0 || tiles_m % c.cluster) continue;
    long tiles = (long)tiles_m * ((n + c.bn - 1) / c.bn);
    const bool split = stream_k_planned(m, n, k, c.bn, k_per_block, sms);
    double waves = split ? (double)tiles / sms : (double)((tiles + sms - 1) / (sms > 0 ? sms : 1));
    double cost = waves * k_blocks * c.us_per_tile_block;
    if (best_cost == 0 || cost < best_cost) { best = &c; best_cost = cost; }
  }
  return *best;
}

}  // namespace

}  // namespace ms
