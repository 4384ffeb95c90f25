// Datacenter Blackwell (sm_100a, B200 class) block-scaled FP4 GEMM family: C = alpha * A.B^T (+ bias), A [M, K] and B [N, K]
// K-major, on tcgen05.mma kind::mxf4nvf4 with the block scales applied by the tensor core (common/tcgen05_sm100.cuh):
//  mxf4: MXFP4 x MXFP4 (UE8M0 per 32, block32)    nvf4: NVFP4 x NVFP4 (UE4M3 per 16, block16; alpha x gA x gB in the epilogue)
// Persistent, warp-specialized, one CTA per SM (cta_group::1), 192 threads:
//  - warp 0: one thread issues the TMA loads of a stage (A and B tiles of 128 rows x 128 bytes = 256 values of K, 128-byte
//    swizzle) and the plain bulk copies of its scale atoms (swizzled 128x4 layout, 512 bytes per 128 rows x 4 blocks) into a
//    ring of kStages stages, each guarded by a full (TMA bytes) and an empty (MMA done) mbarrier;
//  - warp 1: allocates all 512 TMEM columns, then issues per stage the scale-atom copies into TMEM (tcgen05.cp) and four
//    M128 x N128 x K64 MMAs into one of two accumulators (TMEM columns 0-127 / 128-255), committing the stage's empty barrier
//    and, after a tile's last stage, the accumulator's full barrier;
//  - warps 2-5: the epilogue, each reading its TMEM lane quarter (rows 32 (warp % 4) ...) 32 columns at a time, alpha, decode
//    scales and bias in FP32, stored from registers; then releasing the accumulator so the next tile's MMAs overlap it.
// Tiles are visited in groups of 8 M-tiles for L2 reuse. M, N and K tails: TMA zero-fills out-of-range boxes; scale atoms
// past the padded K blocks are not copied (the data there is zero); stores are clipped.
// Built twice: for sm_100a with the real instructions, and for sm_90 with TMEM and the tcgen05 instructions emulated (TMEM
// in the workspace), so the same TMA, descriptors, scale staging, pipeline and epilogue run (and are tested) on an H100 /
// H200. W4A8 (E4M3 x MXFP4, kind::mxf8f6f4) and the 2-SM (cta_group::2, 256 x 128 tiles) variants: see Tile and NOTES-sm100.md.
#ifndef MS_WITH_SM100_FAMILY
#define MS_WITH_SM100_FAMILY 1  // this file is the family: launch.h declares it, not its stubs
#endif
#include <algorithm>
#include <cstring>
#include "common/block_scales.h"
#include "common/formats.cuh"
#include "common/gemm_epilogue.cuh"
#include "common/tcgen05_sm100.cuh"
#include "common/tensor_map.h"
#include "launch.h"
#include "../src/error.h"
#include <cuda.h>
#if CUDA_VERSION >= 12080
static_assert(ms::kMapFp4Unpacked == CU_TENSOR_MAP_DATA_TYPE_16U4_ALIGN16B, "CUtensorMapDataType of unpacked FP4");
#endif

namespace ms {

namespace {

using sm100::kE4m3E2m1;  // the W4A8 kind: E4M3 activations x MXFP4 weights (kind::mxf8f6f4)
using sm100::kMxf4;
using sm100::kNvf4;

constexpr int kBM = 128, kBN = 128, kRowBytes = 128 /* shared-memory bytes of K per stage row */;
constexpr int kThreads = 192, kEpilogueWarps = 4, kGroupM = 8;
constexpr int kTileBytes = kBM * kRowBytes;  // A's stage in one CTA
constexpr size_t kEmulatedTmemBytes = (size_t)sm100::kTmemLanes * sm100::kTmemColumns * 4;  // per CTA, emulation only

// A stage is 128 bytes of K per row of A and B: FP4 pairs 256 values (four K64 MMAs, packed nibbles), W4A8 128 values (four
// K32 MMAs; E4M3 bytes, and FP4 unpacked to a byte per value in shared memory). Scale atoms per stage and operand: 4 (NVFP4,
// per 16), 2 (MXFP4, per 32), 1 (W4A8, per 32). kCtas 1: a CTA computes a 128 x 128 tile; kCtas 2 (2-SM, cta_group::2): a
// CTA pair computes 256 x 128, each CTA holding its 128 rows of A, half of B (64 rows) and the scales of its A rows and of
// all 128 B rows (the MMA reads SFB from each CTA's TMEM).
template <int kKind, int kCtas> struct Tile {
  static constexpr int kStageK = kKind == kE4m3E2m1 ? 128 : 256, kMmaK = kKind == kE4m3E2m1 ? 32 : 64;
  static constexpr int kMmas = kStageK / kMmaK;
  static constexpr int kAtoms = kKind == kNvf4 ? 4 : kKind == kMxf4 ? 2 : 1;
  static constexpr int kStages = kKind == kE4m3E2m1 ? 5 : 6;
  static constexpr int kPairM = kBM * kCtas, kBRows = kBN / kCtas;  // the MMA's M; the B rows a CTA holds
  static constexpr int kBTileBytes = kBRows * kRowBytes, kPackedBBytes = kBRows * kRowBytes / 2;  // W4A8's B as TMA moves it
  static constexpr int kStageBytes = kTileBytes + kBTileBytes + 2 * kAtoms * kAtomBytes;
  static constexpr int kRingBytes = kStages * kStageBytes;
  // After the ring: A's unit scale atom (W4A8 with FP8 per-token / per-tensor activations: E8M0 1.0), then the barriers and
  // the TMEM address, then (emulation of W4A8 only) the packed FP4 tiles.
  static constexpr int kUnitAtomOffset = kRingBytes, kBarrierOffset = kUnitAtomOffset + kAtomBytes, kStagingOffset = kBarrierOffset + 512;
  static constexpr int smem_bytes(bool emulated) {
    return 1024 /* alignment */ + kStagingOffset + (emulated && kKind == kE4m3E2m1 ? kStages * kPackedBBytes : 0);
  }
  // TMEM columns: two accumulators of kBN columns, then the scales of A and of B (4 columns per atom).
  static constexpr uint32_t kAccumulatorColumns = kBN, kScaleAColumn = 2 * kBN, kScaleBColumn = kScaleAColumn + 4 * kAtoms;
  static_assert(kScaleBColumn + 4 * kAtoms <= sm100::kTmemColumns, "TMEM columns");
  static_assert(smem_bytes(true) <= 232448, "the ring (and the emulation's packed W4A8 tiles) must fit sm_100's shared memory");
};

struct Sm100Params : BlackwellGemmParams {
  uint32_t* emulated_tmem;  // gridDim.x x kEmulatedTmemBytes (sm_90 emulation), else null
};

template <int kKind, int kCtas>
__global__ void __launch_bounds__(kThreads, 1)
sm100_fp4_gemm_kernel(const __grid_constant__ TensorMap map_a, const __grid_constant__ TensorMap map_b, Sm100Params p) {
#ifdef MS_SM100_TILES
  using namespace sm90;
  using T = Tile<kKind, kCtas>;
  constexpr int kAtoms = T::kAtoms, kStages = T::kStages, kStageBytes = T::kStageBytes;
  constexpr uint32_t kAccumulatorColumns = T::kAccumulatorColumns, kScaleAColumn = T::kScaleAColumn, kScaleBColumn = T::kScaleBColumn;
  constexpr bool kPair = kCtas == 2;
  // W4A8's B under the emulation: sm_90's TMA cannot unpack FP4, so the packed tile lands in the staging area and the CTA's
  // MMA warp unpacks it.
#ifdef MS_SM100_EMULATED
  constexpr bool kUnpackInSoftware = kKind == kE4m3E2m1;
#else
  constexpr bool kUnpackInSoftware = false;
#endif
  extern __shared__ __align__(1024) uint8_t smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  uint8_t* unit_atom = smem + T::kUnitAtomOffset;
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + T::kBarrierOffset);
  uint64_t* empty = full + kStages;
  uint64_t* pair_full = empty + kStages;  // rank 0 only: rank 1's stage has landed (2-SM)
  uint64_t* accumulator_full = pair_full + kStages;  // [2]
  uint64_t* accumulator_empty = accumulator_full + 2;
  uint32_t* tmem_slot = reinterpret_cast<uint32_t*>(accumulator_empty + 2);
  auto a_tile = [&](uint32_t s) { return smem + s * kStageBytes; };
  auto b_tile = [&](uint32_t s) { return a_tile(s) + kTileBytes; };
  auto a_atoms = [&](uint32_t s) { return b_tile(s) + T::kBTileBytes; };
  auto b_atoms = [&](uint32_t s) { return a_atoms(s) + kAtoms * kAtomBytes; };
  auto packed_b = [&](uint32_t s) { return smem + T::kStagingOffset + s * T::kPackedBBytes; };

  const int warp = __shfl_sync(0xffffffffu, threadIdx.x / 32, 0), lane = threadIdx.x % 32;
  const uint32_t rank = kPair ? sm100::pair_rank() : 0;
  const int tiles_m = (p.m + T::kPairM - 1) / T::kPairM, tiles_n = (p.n + kBN - 1) / kBN, tiles = tiles_m * tiles_n;
  const int first_tile = blockIdx.x / kCtas, tile_step = gridDim.x / kCtas;
  const int k_stages = (p.k + T::kStageK - 1) / T::kStageK;
  const bool unit_a_scales = p.sfa == nullptr;

  if (threadIdx.x == 0) {
    prefetch_tensormap(&map_a);
    prefetch_tensormap(&map_b);
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(&full[s], 1);
      mbarrier_init(&empty[s], 1);  // one tcgen05.commit (for a pair, rank 0's, multicast to both)
      mbarrier_init(&pair_full[s], 1);
    }
    for (int b = 0; b < 2; ++b) {
      mbarrier_init(&accumulator_full[b], 1);
      mbarrier_init(&accumulator_empty[b], kEpilogueWarps * kCtas);  // lane 0 of each epilogue warp (of both CTAs)
    }
    fence_barrier_init();
  }
  if (unit_a_scales && warp >= 2) {  // E8M0 1.0 in every byte; the tensor core reads it through the async proxy
    for (int i = threadIdx.x - 64; i < kAtomBytes / 4; i += kEpilogueWarps * 32) reinterpret_cast<uint32_t*>(unit_atom)[i] = 0x7F7F7F7Fu;
    fence_proxy_async_shared();
  }
  if constexpr (kPair) sm100::cluster_sync();  // both CTAs' barriers exist before either arrives on the other's
  if (warp == 1) {
    sm100::alloc_all<kCtas>(tmem_slot);  // for a pair, the same warp of both CTAs (the same TMEM base in each)
    sm100::fence_before_sync();  // the address it wrote, before the barrier
  }
  __syncthreads();
  sm100::fence_after_sync();
  const uint32_t tmem = *tmem_slot;
  const size_t cta_cells = kEmulatedTmemBytes / 4;
  const sm100::Tmem cells{p.emulated_tmem ? p.emulated_tmem + blockIdx.x * cta_cells : nullptr,
                          p.emulated_tmem && kPair ? p.emulated_tmem + (blockIdx.x ^ 1u) * cta_cells : nullptr, rank};

  if (warp == 0) {
    if (lane == 0) {
      // Each CTA loads its own rows of A, its half of B, its A rows' scale atoms and all of the tile's B scale atoms.
      uint32_t stage = 0, phase = 0;
      for (int tile = first_tile; tile < tiles; tile += tile_step) {
        int tm, tn;
        tile_coords<kGroupM>(tile, tiles_m, tiles_n, tm, tn);
        const int a_row = tm * T::kPairM + (int)rank * kBM, b_row = tn * kBN + (int)rank * T::kBRows;
        const int a_atom_row = tm * kCtas + (int)rank;  // 128-row blocks of the swizzled scales
        for (int kt = 0; kt < k_stages; ++kt) {
          mbarrier_wait(&empty[stage], phase ^ 1);
          const int first = kt * kAtoms, atoms = min(kAtoms, p.atoms_per_tile_row - first);
          // Transaction bytes are what TMA moves: W4A8's FP4 tile counts its packed bytes also when unpacked into twice that.
          const int b_bytes = kKind == kE4m3E2m1 ? T::kPackedBBytes : T::kBTileBytes;
          // A pair's rank 1 with all its rows past M has no scale atoms in A's swizzled scales: none are loaded (its rows'
          // results are discarded).
          const bool load_sfa = !unit_a_scales && a_row < p.m;
          mbarrier_arrive_expect_tx(&full[stage], kTileBytes + b_bytes + (load_sfa ? 2 : 1) * atoms * kAtomBytes);
          tma_load_2d(a_tile(stage), &map_a, &full[stage], kt * kRowBytes, a_row);
          // B's K coordinate: bytes (FP4 pairs), or values (W4A8: unpacked natively, bytes of packed rows when emulated).
          const int b_k = kKind != kE4m3E2m1 ? kt * kRowBytes : kUnpackInSoftware ? kt * kRowBytes / 2 : kt * T::kStageK;
          tma_load_2d(kUnpackInSoftware ? packed_b(stage) : b_tile(stage), &map_b, &full[stage], b_k, b_row);
          if (load_sfa)
            bulk_load(a_atoms(stage), p.sfa + ((int64_t)a_atom_row * p.atoms_per_tile_row + first) * kAtomBytes, atoms * kAtomBytes, &full[stage]);
          bulk_load(b_atoms(stage), p.sfb + ((int64_t)tn * p.atoms_per_tile_row + first) * kAtomBytes, atoms * kAtomBytes, &full[stage]);
          if (++stage == kStages) { stage = 0; phase ^= 1; }
        }
      }
    }
  } else if (warp == 1 && rank == 1) {
    // 2-SM, rank 1: no MMAs here; tell rank 0 when each of this CTA's stages has landed (rank 0 waits on both CTAs').
    uint32_t stage = 0, phase = 0;
    for (int tile = first_tile; tile < tiles; tile += tile_step) {
      for (int kt = 0; kt < k_stages; ++kt) {
        mbarrier_wait(&full[stage], phase);
#ifdef MS_SM100_EMULATED
        if constexpr (kUnpackInSoftware) sm100::unpack_fp4_tile(packed_b(stage), b_tile(stage), T::kBRows);
        __threadfence();
#endif
        __syncwarp();
        if (lane == 0) sm100::arrive_on_rank(&pair_full[stage], 0);
        if (++stage == kStages) { stage = 0; phase ^= 1; }
      }
    }
  } else if (warp == 1) {
    uint32_t stage = 0, phase = 0;
    int local = 0;
    for (int tile = first_tile; tile < tiles; tile += tile_step, ++local) {
      const int buffer = local & 1;
      // The epilogue (of both CTAs) has read this accumulator.
      if constexpr (kPair) sm100::wait_cluster(&accumulator_empty[buffer], ((local >> 1) & 1) ^ 1);
      else mbarrier_wait(&accumulator_empty[buffer], ((local >> 1) & 1) ^ 1);
      sm100::fence_after_sync();
      const uint32_t accumulator = tmem + buffer * kAccumulatorColumns;
      for (int kt = 0; kt < k_stages; ++kt) {
        mbarrier_wait(&full[stage], phase);
        if constexpr (kPair) sm100::wait_cluster(&pair_full[stage], phase);
        sm100::fence_after_sync();
        // A last stage past the padded K blocks has fewer atoms: its MMAs there (zero data) take the last atom's scales, which
        // belong to the same rows (a stale atom could hold another tile's NaN).
        const int atoms = min(kAtoms, p.atoms_per_tile_row - kt * kAtoms);
        for (int x = 0; x < kAtoms; ++x) {
          const int from = min(x, atoms - 1);
          sm100::copy_scale_atom<kCtas>(cells, tmem + kScaleAColumn + 4 * x, unit_a_scales ? unit_atom : a_atoms(stage) + from * kAtomBytes);
          sm100::copy_scale_atom<kCtas>(cells, tmem + kScaleBColumn + 4 * x, b_atoms(stage) + from * kAtomBytes);
        }
#ifdef MS_SM100_EMULATED
        if constexpr (kUnpackInSoftware) sm100::unpack_fp4_tile(packed_b(stage), b_tile(stage), T::kBRows);
#endif
        const uint32_t a_address = smem_addr(a_tile(stage)), b_address = smem_addr(b_tile(stage));
#pragma unroll
        for (int k = 0; k < T::kMmas; ++k) {
          // Each MMA advances 32 bytes into the rows. NVFP4: atom k (4 blocks of 16 = this MMA's K); MXFP4: atom k / 2, its
          // blocks 2 (k % 2) and + 1 (scale id = the half-word's byte); W4A8: atom 0, block k (scale id = byte k).
          const uint32_t atom = kKind == kNvf4 ? k : kKind == kMxf4 ? k / 2 : 0, id = kKind == kNvf4 ? 0 : kKind == kMxf4 ? 2 * (k % 2) : k;
          const uint32_t idesc = kKind == kE4m3E2m1 ? sm100::e4m3_e2m1_descriptor(T::kPairM, kBN, id, id)
                                                    : sm100::mxf4nvf4_descriptor(T::kPairM, kBN, kKind == kMxf4, id, id);
          sm100::mma<kKind, kBN, kCtas>(cells, accumulator, sm100::operand_descriptor(a_address, 32 * k),
                                        sm100::operand_descriptor(b_address, 32 * k), idesc, tmem + kScaleAColumn + 4 * atom,
                                        tmem + kScaleBColumn + 4 * atom, kt > 0 || k > 0);
        }
        sm100::commit<kCtas>(&empty[stage]);  // the stage's shared memory (of both CTAs) is free once these MMAs have read it
        if (++stage == kStages) { stage = 0; phase ^= 1; }
      }
      sm100::commit<kCtas>(&accumulator_full[buffer]);
    }
  } else {
    // Epilogue: warp w reads TMEM lanes 32 (w % 4) .. + 31, i.e. rows of the CTA's 128, one per thread.
    const int quarter = warp % 4, row_in_tile = 32 * quarter + lane;
    const float alpha = p.alpha * (p.scale_a && !p.a_per_row ? p.scale_a[0] : 1.0f) * (p.scale_b ? p.scale_b[0] : 1.0f);
    int local = 0;
    for (int tile = first_tile; tile < tiles; tile += tile_step, ++local) {
      const int buffer = local & 1;
      int tm, tn;
      tile_coords<kGroupM>(tile, tiles_m, tiles_n, tm, tn);
      if constexpr (kPair) sm100::wait_cluster(&accumulator_full[buffer], (local >> 1) & 1);
      else mbarrier_wait(&accumulator_full[buffer], (local >> 1) & 1);
      sm100::fence_after_sync();
      const int row = tm * T::kPairM + (int)rank * kBM + row_in_tile;
      const float row_alpha = p.a_per_row && row < p.m ? alpha * p.scale_a[row] : alpha;
#pragma unroll 1
      for (int chunk = 0; chunk < kBN / 32; ++chunk) {
        float v[32];
        sm100::load_32_columns(cells, tmem + ((uint32_t)(32 * quarter) << 16) + buffer * kAccumulatorColumns + 32 * chunk, v);
        if (chunk == kBN / 32 - 1) {  // the accumulator is in registers: the next tile's MMAs may overwrite it
          sm100::fence_before_sync();
          __syncwarp();
          if (lane == 0) {
            if constexpr (kPair) sm100::arrive_on_rank(&accumulator_empty[buffer], 0);
            else mbarrier_arrive(&accumulator_empty[buffer]);
          }
        }
        // No early exit for rows past M: the next tcgen05.ld is .sync.aligned, the whole warp must reach it together.
        if (row < p.m) {
#pragma unroll
          for (int j = 0; j < 32; j += 2) {
            const int col = tn * kBN + 32 * chunk + j;
            if (col >= p.n) break;
            const float b0 = p.bias ? p.bias[col] : 0.0f, b1 = p.bias && col + 1 < p.n ? p.bias[col + 1] : 0.0f;
            store_pair(p, row, col, v[j] * row_alpha + b0, v[j + 1] * row_alpha + b1);
          }
        }
        __syncwarp();
      }
    }
  }
  __syncthreads();
  // A pair: no CTA leaves while the other may still arrive on its barriers or its MMAs read the other's shared memory.
  if constexpr (kPair) sm100::cluster_sync();
  if (warp == 1) {
    sm100::fence_after_sync();  // every tcgen05 operation of the other warps is ordered before the dealloc
    sm100::dealloc_all<kCtas>(tmem);
  }
#endif
}

struct KindConfig {
  const char* name;
  int kind;
  int ctas;  // 1: one CTA per 128 x 128 tile; 2: a CTA pair (cta_group::2) per 256 x 128
};
const KindConfig kConfigs[] = {
    {"ms_sm100_fp4_gemm_nt_mxf4_128x128x256_1sm_s6", kMxf4, 1},
    {"ms_sm100_fp4_gemm_nt_nvf4_128x128x256_1sm_s6", kNvf4, 1},
    {"ms_sm100_fp4_gemm_nt_w4a8_128x128x128_1sm_s5", kE4m3E2m1, 1},
    {"ms_sm100_fp4_gemm_nt_mxf4_256x128x256_2sm_s6", kMxf4, 2},
    {"ms_sm100_fp4_gemm_nt_nvf4_256x128x256_2sm_s6", kNvf4, 2},
    {"ms_sm100_fp4_gemm_nt_w4a8_256x128x128_2sm_s5", kE4m3E2m1, 2},
};
// The 2-SM variant from this many rows of A on (untimed: no Blackwell GPU at hand; each CTA then loads half of B's tile).
constexpr int kPairFromRows = 1024;

const KindConfig* find_config(const char* name) {
  for (const KindConfig& c : kConfigs)
    if (std::strcmp(c.name, name) == 0) return &c;
  return nullptr;
}

// The kind of a pair, or -1: MXFP4², NVFP4², or E4M3 activations (MXFP8, or FP8 per-token / per-tensor with unit block
// scales and the decode scale in the epilogue) x MXFP4 weights.
int kind_of(const ms_gemm_desc_t& d) {
  static_assert(kMxf4 == 0 && kNvf4 == 1 && kE4m3E2m1 == 2, "kinds in blackwell_fp4_pair's order");
  return blackwell_fp4_pair(d);
}

template <int kKind, int kCtas>
void launch_kind(const TensorMap& map_a, const TensorMap& map_b, const Sm100Params& p, int multiprocessors, bool emulated, cudaStream_t stream) {
  auto kernel = sm100_fp4_gemm_kernel<kKind, kCtas>;
  const int smem = Tile<kKind, kCtas>::smem_bytes(emulated);
  // Per launch: the attribute belongs to the kernel as loaded in the current context (several contexts may be in use).
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) != cudaSuccess)
    fail(MS_ERR_CUDA, "", "cudaFuncSetAttribute(MaxDynamicSharedMemorySize = %d) failed", smem);
  const int tiles = ((p.m + kBM * kCtas - 1) / (kBM * kCtas)) * ((p.n + kBN - 1) / kBN);
  // Persistent: one CTA (pair) per SM (pair of SMs).
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(kCtas * std::min(tiles, std::max(1, multiprocessors / kCtas)));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = kCtas;
  cluster.val.clusterDim.y = 1;
  cluster.val.clusterDim.z = 1;
  config.attrs = &cluster;
  config.numAttrs = kCtas == 2 ? 1 : 0;
  check_cuda(cudaLaunchKernelEx(&config, kernel, map_a, map_b, p), "sm100 FP4 GEMM launch");
}

template <int kKind>
void launch_ctas(int ctas, const TensorMap& map_a, const TensorMap& map_b, const Sm100Params& p, int multiprocessors, bool emulated, cudaStream_t stream) {
  if (ctas == 2) return launch_kind<kKind, 2>(map_a, map_b, p, multiprocessors, emulated, stream);
  launch_kind<kKind, 1>(map_a, map_b, p, multiprocessors, emulated, stream);
}

}  // namespace

bool sm100_fp4_gemm_can_implement(const ms_gemm_desc_t& d) {
  const int kind = kind_of(d);
  if (kind < 0) return false;
  // TMA row strides are whole 16-byte pieces: FP4 K padded to a multiple of 32 values; W4A8's E4M3 rows a multiple of 16
  // bytes, and its unpacking FP4 loads whole 128-value boxes (K padded to a multiple of 128, as CUTLASS asks too).
  if (kind != kE4m3E2m1) return padded_k(d.b_format, d.k) % 32 == 0;
  return blackwell_a_row_bytes(d) % 16 == 0 && padded_k(d.b_format, d.k) % 128 == 0;
}

bool sm100_fp4_gemm_has_config(const char* name) { return find_config(name) != nullptr; }

const char* sm100_fp4_gemm_config(const ms_gemm_desc_t& d) {
  const int kind = kind_of(d);
  const KindConfig* chosen = nullptr;
  for (const KindConfig& c : kConfigs)
    if (c.kind == kind && (!chosen || (c.ctas == 2 && d.m >= kPairFromRows))) chosen = &c;
  return chosen ? chosen->name : nullptr;
}

bool sm100_fp4_gemm_config_fits(const ms_gemm_desc_t& d, const char* name) {
  const KindConfig* c = find_config(name);
  return c && c->kind == kind_of(d);
}

size_t sm100_fp4_gemm_workspace_size(const ms_gemm_desc_t& d, int multiprocessors, bool emulated) {
  const size_t parts = swizzled_scales_workspace(d);
  const size_t tmem = emulated ? (size_t)multiprocessors * kEmulatedTmemBytes : 0;
  return parts + tmem ? kWorkspaceCounterBytes + parts + tmem : 0;
}

bool sm100_fp4_gemm_operands_aligned(const ms_gemm_operands_t& ops) {
  auto aligned = [](const void* p, uintptr_t n = 16) { return reinterpret_cast<uintptr_t>(p) % n == 0; };
  auto scales_ok = [&](const ms_qtensor_t& t) { return !has_block_scales(t.format) || t.layout == MS_LAYOUT_LINEAR || aligned(t.block_scales); };
  // TMA's unpacking FP4 type (W4A8 weights) wants a 32-byte aligned base.
  const bool w4a8 = ops.a.format != MS_FMT_MXFP4 && ops.a.format != MS_FMT_NVFP4;
  return aligned(ops.a.data) && aligned(ops.b.data, w4a8 ? 32 : 16) && scales_ok(ops.a) && scales_ok(ops.b);
}

void launch_sm100_fp4_gemm(const ms_gemm_desc_t& d, const char* config, const ms_gemm_operands_t& ops, int multiprocessors, bool emulated,
                           void* workspace, cudaStream_t stream) {
  const int kind = kind_of(d);
  const KindConfig* chosen = find_config(config);
  if (kind < 0 || !chosen || chosen->kind != kind) fail(MS_ERR_UNSUPPORTED, "desc", "the sm100 FP4 family has no kernel %s for this pair", config);
  const int ctas = chosen->ctas, b_rows = kBN / ctas;
  if (sm100_fp4_gemm_workspace_size(d, multiprocessors, emulated) && !workspace)
    fail(MS_ERR_INVALID_ARGUMENT, "workspace", "the sm100 FP4 GEMM needs its workspace");
  uint8_t* free = workspace ? static_cast<uint8_t*>(workspace) + kWorkspaceCounterBytes : nullptr;  // the decode counters stay zero
  Sm100Params p{blackwell_gemm_params(d, ops, free, stream), nullptr};
  p.emulated_tmem = emulated ? reinterpret_cast<uint32_t*>(free) : nullptr;  // after the swizzled scales
  const int a_bytes = blackwell_a_row_bytes(d), b_bytes = padded_k(d.b_format, d.k) / 2;
  const TensorMap map_a = make_map(ops.a.data, d.m, a_bytes, a_bytes, kMapU8, kRowBytes, kBM, kMapSwizzle128B);
  if (kind != kE4m3E2m1) {
    const TensorMap map_b = make_map(ops.b.data, d.n, b_bytes, b_bytes, kMapU8, kRowBytes, b_rows, kMapSwizzle128B);
    if (kind == kMxf4) launch_ctas<kMxf4>(ctas, map_a, map_b, p, multiprocessors, emulated, stream);
    else launch_ctas<kNvf4>(ctas, map_a, map_b, p, multiprocessors, emulated, stream);
    return;
  }
  // W4A8's FP4 weights: natively unpacked by TMA into 128 bytes per 128 values (columns in values); the emulation loads the
  // packed rows (64 bytes per stage) and unpacks them itself.
  const TensorMap map_b = emulated ? make_map(ops.b.data, d.n, b_bytes, b_bytes, kMapU8, kRowBytes / 2, b_rows, kMapSwizzleNone)
                                   : make_map(ops.b.data, d.n, 2 * b_bytes, b_bytes, kMapFp4Unpacked, Tile<kE4m3E2m1, 1>::kStageK, b_rows, kMapSwizzle128B);
  launch_ctas<kE4m3E2m1>(ctas, map_a, map_b, p, multiprocessors, emulated, stream);
}

}  // namespace ms
