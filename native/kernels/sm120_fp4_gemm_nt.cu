// GeForce Blackwell (sm_120a, RTX 5090 class) block-scaled FP4 GEMM family: C = alpha * A.B^T (+ bias), A [M, K] and B [N, K]
// K-major ("NT"), with the block scales applied by the tensor core (mma.sync ... block_scale, common/mma_sm120.cuh):
//  mxf4: MXFP4 x MXFP4 (W4A4, UE8M0 per 32)    nvf4: NVFP4 x NVFP4 (W4A4, UE4M3 per 16; alpha x gA x gB in the epilogue)
//  w4a8: E4M3 activations (MXFP8, or FP8 per-token / per-tensor with unit block scales and the decode scale in the
//        epilogue) x MXFP4 weights, through kind::mxf8f6f4 (one E2M1 value per byte in the instruction's register).
// Tiles: a CTA computes 128 x 128 of C with 8 warps (2 along M x 4 along N, 64 x 32 each: 4 x 4 MMA tiles), K in stages of
// 128 values through a cp.async ring in shared memory (zero-filled past M, N and K). Operands are stored in shared memory
// with a 16-byte XOR swizzle chosen so that every fragment load below is free of bank conflicts; FP4 fragments come
// straight from ldmatrix (the k64 layouts are the 8x8 b16 matrix layouts), W4A8's E4M3 rows by 8-byte loads and its
// E2M1 by 4-byte loads widened to the padded container (see load_w4a8). Block scales are read from the swizzled 128x4
// layout (NUMERICS.md s3), whose 512-byte atoms (128 rows x 4 blocks) are exactly one stage of MX scales (two of NVFP4);
// operands with linear scales are first swizzled into the plan's workspace.
// Built twice: for sm_120a with the real instructions, and for sm_90 with the instructions emulated in software, so the
// same loads, swizzles, scale indexing and epilogue run (and are tested) on an H100 / H200. NOTES-sm120.md says what that
// proves and what only Blackwell hardware can.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include "common/formats.cuh"
#include "common/gemm_epilogue.cuh"
#include "common/mma_sm120.cuh"
#include "common/sm120_tile_layout.h"
#include "common/block_scales.h"
#include "launch.h"
#include "../src/error.h"

namespace ms {

namespace {

using sm120::Kind;
using sm120::kMxf4;
using sm120::kNvf4;
using sm120::kW4A8;

constexpr int kBM = 128, kBN = 128, kBK = 128 /* K values per stage */, kWarpsM = 2, kWarpsN = 4, kThreads = 32 * kWarpsM * kWarpsN;
constexpr int kWarpTileM = kBM / kWarpsM, kWarpTileN = kBN / kWarpsN, kMTiles = kWarpTileM / 16, kNTiles = kWarpTileN / 8;
constexpr int kFp4RowBytes = sm120::kFp4StageRowBytes;  // one stage of an FP4 row
static_assert(kBK == sm120::kE4m3StageRowBytes && kBK / 2 == kFp4RowBytes, "stage rows hold kBK values");
constexpr int kSmemLimitSm120 = 101376; // sm_120's opt-in shared memory per block (smaller than the H100's)
constexpr int kGroupM = 8;

template <int kKind> struct Tile {
  static constexpr int kARowBytes = kKind == kW4A8 ? kBK : kFp4RowBytes;  // A is E4M3 in w4a8
  static constexpr int kBlock = kKind == kNvf4 ? 16 : 32;
  static constexpr int kAtoms = kBK / kBlock / 4;                          // scale atoms per 128 rows and stage
  static constexpr int kStages = kKind == kW4A8 ? 3 : 4;
  static constexpr int kABytes = kBM * kARowBytes, kBBytes = kBN * kFp4RowBytes, kScaleBytes = kAtoms * kAtomBytes;
  static constexpr int kStageBytes = kABytes + kBBytes + 2 * kScaleBytes;
  static constexpr int kSmemBytes = kStages * kStageBytes;
  static_assert(kSmemBytes <= kSmemLimitSm120, "the ring must fit sm_120's shared memory");
};

struct Sm120Params : BlackwellGemmParams {
  const uint8_t* a;
  const uint8_t* b;
  int64_t a_row_bytes, b_row_bytes;  // row strides (padded K)
};

#ifdef MS_SM120_TILES
__device__ __forceinline__ uint32_t smem_addr(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

// 16 bytes global -> shared, zero-filled when !valid (src must still be a mapped address).
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(smem_addr(dst)), "l"(src), "r"(valid ? 16 : 0) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory"); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(p)));
}

using sm120::e4m3_offset;
using sm120::fp4_offset;

// Copies stage `kt` of rows [row0, row0 + 128) of an operand (row stride row_bytes, stage_row_bytes per row and stage) into
// `dst` with `offset` as the swizzle, zero-filling rows >= rows and bytes past the row.
template <int kStageRowBytes, class Offset>
__device__ __forceinline__ void load_rows(uint8_t* dst, const uint8_t* src, int rows, int64_t row_bytes, int row0, int kt, Offset offset) {
  constexpr int kPieces = kStageRowBytes / 16, kPerThread = 128 * kPieces / kThreads;
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    const int index = threadIdx.x + i * kThreads, r = index / kPieces, p = index % kPieces;
    const int64_t byte = (int64_t)kt * kStageRowBytes + p * 16;
    const bool valid = row0 + r < rows && byte < row_bytes;
    cp_async_16(dst + offset(r, p), valid ? src + (int64_t)(row0 + r) * row_bytes + byte : src, valid);
  }
}

// The scale atoms of stage kt of 128-row tile `tile` (kAtoms consecutive atoms of the swizzled layout), zero past the
// layout's padded K blocks (zero data there too).
template <int kAtoms>
__device__ __forceinline__ void load_scales(uint8_t* dst, const uint8_t* scales, int tile, int atoms_per_tile_row, int kt, int first_thread) {
  const int index = threadIdx.x - first_thread;
  if (index < 0 || index >= kAtoms * kAtomBytes / 16) return;
  const int atom = kt * kAtoms + index / (kAtomBytes / 16);
  const bool valid = atom < atoms_per_tile_row;
  const uint8_t* src = scales + ((int64_t)tile * atoms_per_tile_row + atom) * kAtomBytes + (index % (kAtomBytes / 16)) * 16;
  cp_async_16(dst + index * 16, valid ? src : scales, valid);
}

// The scale word of tile row r in an atom: its 4 consecutive K blocks.
__device__ __forceinline__ uint32_t scale_word(const uint8_t* atom, int r) {
  return *reinterpret_cast<const uint32_t*>(atom + (r % 32) * 16 + (r / 32) * 4);
}

// Four E2M1 nibbles (16 bits) -> four bytes holding them in bits [5:2], the kind::mxf8f6f4 container.
__device__ __forceinline__ void widen_fp4(uint32_t word, uint32_t& low, uint32_t& high) {
  const uint32_t even = word & 0x0F0F0F0Fu, odd = (word >> 4) & 0x0F0F0F0Fu;  // nibbles 0,2,4,6 and 1,3,5,7
  low = __byte_perm(even, odd, 0x5140) << 2;                                  // nibbles 0..3
  high = __byte_perm(even, odd, 0x7362) << 2;                                 // nibbles 4..7
}

#endif

template <int kKind>
__global__ void __launch_bounds__(kThreads, 1) sm120_fp4_gemm_kernel(Sm120Params p) {
#ifdef MS_SM120_TILES
  using T = Tile<kKind>;
  extern __shared__ __align__(128) uint8_t smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int warp_m = warp % kWarpsM, warp_n = warp / kWarpsM;
  const int tiles_m = (p.m + kBM - 1) / kBM, tiles_n = (p.n + kBN - 1) / kBN;
  int tm, tn;
  tile_coords<kGroupM>(blockIdx.x, tiles_m, tiles_n, tm, tn);
  const int k_tiles = (p.k + kBK - 1) / kBK;

  auto stage_base = [&](int s) { return smem + s * T::kStageBytes; };
  auto load_stage = [&](int kt) {
    uint8_t* base = stage_base(kt % T::kStages);
    if constexpr (kKind == kW4A8) load_rows<T::kARowBytes>(base, p.a, p.m, p.a_row_bytes, tm * kBM, kt, e4m3_offset);
    else load_rows<T::kARowBytes>(base, p.a, p.m, p.a_row_bytes, tm * kBM, kt, fp4_offset);
    load_rows<kFp4RowBytes>(base + T::kABytes, p.b, p.n, p.b_row_bytes, tn * kBN, kt, fp4_offset);
    uint8_t* scales = base + T::kABytes + T::kBBytes;
    constexpr int kScaleThreads = T::kScaleBytes / 16;
    if (p.sfa) load_scales<T::kAtoms>(scales, p.sfa, tm, p.atoms_per_tile_row, kt, 0);
    load_scales<T::kAtoms>(scales + T::kScaleBytes, p.sfb, tn, p.atoms_per_tile_row, kt, kScaleThreads);
  };

  float acc[kMTiles][kNTiles][4];
#pragma unroll
  for (int i = 0; i < kMTiles; ++i)
#pragma unroll
    for (int j = 0; j < kNTiles; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

#pragma unroll
  for (int s = 0; s < T::kStages - 1; ++s) {
    if (s < k_tiles) load_stage(s);
    cp_async_commit();
  }

  // Rows of this thread's scale words: A row g + 8 (t % 2) of each MMA tile (lanes t = 2, 3 repeat lanes 0, 1; thread-id-a
  // 0 reads lanes t = 0, 1), B column g (lane t = 0 is read).
  const int a_row = warp_m * kWarpTileM + g + 8 * (t & 1), b_row = warp_n * kWarpTileN + g;
  // ldmatrix row addresses: lane l feeds row l % 8 of matrix l / 8.
  const int ld_row = lane & 7, ld_matrix = lane >> 3;

#pragma unroll 1
  for (int kt = 0; kt < k_tiles; ++kt) {
    cp_async_wait<T::kStages - 2>();
    __syncthreads();  // stage kt is in; every warp is done with the stage the next load overwrites
    if (kt + T::kStages - 1 < k_tiles) load_stage(kt + T::kStages - 1);
    cp_async_commit();

    const uint8_t* sa = stage_base(kt % T::kStages);
    const uint8_t* sb = sa + T::kABytes;
    const uint8_t* sfa = sb + T::kBBytes;
    const uint8_t* sfb = sfa + T::kScaleBytes;
    uint32_t a_scales[kMTiles][T::kAtoms], b_scales[kNTiles][T::kAtoms];
#pragma unroll
    for (int x = 0; x < T::kAtoms; ++x) {
#pragma unroll
      for (int i = 0; i < kMTiles; ++i) a_scales[i][x] = p.sfa ? scale_word(sfa + x * kAtomBytes, a_row + 16 * i) : 0x7F7F7F7Fu;
#pragma unroll
      for (int j = 0; j < kNTiles; ++j) b_scales[j][x] = scale_word(sfb + x * kAtomBytes, b_row + 8 * j);
    }

    if constexpr (kKind == kW4A8) {
      // k32 steps. The instruction's K order within a 32-value block is free (one scale per block), so thread t takes K values
      // 8t..8t+7 of the block: A row bytes 8t..8t+7 as (a0, a2) and (a1, a3), B's packed word t widened as (b0, b1).
#pragma unroll
      for (int s = 0; s < kBK / 32; ++s) {
        uint32_t a[kMTiles][4], b[kNTiles][2];
#pragma unroll
        for (int i = 0; i < kMTiles; ++i) {
          const int r = warp_m * kWarpTileM + 16 * i + g;
          const uint2 top = *reinterpret_cast<const uint2*>(sa + e4m3_offset(r, 2 * s) + 8 * t);
          const uint2 bottom = *reinterpret_cast<const uint2*>(sa + e4m3_offset(r + 8, 2 * s) + 8 * t);
          a[i][0] = top.x; a[i][2] = top.y; a[i][1] = bottom.x; a[i][3] = bottom.y;
        }
#pragma unroll
        for (int j = 0; j < kNTiles; ++j) {
          const int r = warp_n * kWarpTileN + 8 * j + g;
          widen_fp4(*reinterpret_cast<const uint32_t*>(sb + fp4_offset(r, s) + 4 * t), b[j][0], b[j][1]);
        }
#pragma unroll
        for (int i = 0; i < kMTiles; ++i)
#pragma unroll
          for (int j = 0; j < kNTiles; ++j) {
            if (s == 0) sm120::mma<kW4A8, 0>(acc[i][j], a[i], b[j], a_scales[i][0], b_scales[j][0]);
            else if (s == 1) sm120::mma<kW4A8, 1>(acc[i][j], a[i], b[j], a_scales[i][0], b_scales[j][0]);
            else if (s == 2) sm120::mma<kW4A8, 2>(acc[i][j], a[i], b[j], a_scales[i][0], b_scales[j][0]);
            else sm120::mma<kW4A8, 3>(acc[i][j], a[i], b[j], a_scales[i][0], b_scales[j][0]);
          }
      }
    } else {
      // k64 steps: A by one ldmatrix.x4 per MMA tile (matrices: rows +0 / +8 x pieces 2s / 2s+1), B by one per two n8 tiles.
#pragma unroll
      for (int s = 0; s < kBK / 64; ++s) {
        uint32_t a[kMTiles][4], b[kNTiles][2];
#pragma unroll
        for (int i = 0; i < kMTiles; ++i) {
          const int r = warp_m * kWarpTileM + 16 * i + ld_row + 8 * (ld_matrix & 1);
          ldmatrix_x4(a[i], sa + fp4_offset(r, 2 * s + (ld_matrix >> 1)));
        }
#pragma unroll
        for (int j = 0; j < kNTiles; j += 2) {
          const int r = warp_n * kWarpTileN + 8 * j + ld_row + 8 * (ld_matrix >> 1);
          uint32_t four[4];
          ldmatrix_x4(four, sb + fp4_offset(r, 2 * s + (ld_matrix & 1)));
          b[j][0] = four[0]; b[j][1] = four[1]; b[j + 1][0] = four[2]; b[j + 1][1] = four[3];
        }
#pragma unroll
        for (int i = 0; i < kMTiles; ++i)
#pragma unroll
          for (int j = 0; j < kNTiles; ++j) {
            if constexpr (kKind == kNvf4) sm120::mma<kNvf4, 0>(acc[i][j], a[i], b[j], a_scales[i][s], b_scales[j][s]);
            else if (s == 0) sm120::mma<kMxf4, 0>(acc[i][j], a[i], b[j], a_scales[i][0], b_scales[j][0]);
            else sm120::mma<kMxf4, 2>(acc[i][j], a[i], b[j], a_scales[i][0], b_scales[j][0]);
          }
      }
    }
  }
  cp_async_wait<0>();

  // Epilogue: alpha x the per-tensor decode scales (x A's per-row scale) + bias, stored from registers.
  const float alpha = p.alpha * (p.scale_b ? p.scale_b[0] : 1.0f) * (p.scale_a && !p.a_per_row ? p.scale_a[0] : 1.0f);
#pragma unroll
  for (int i = 0; i < kMTiles; ++i) {
    const int row0 = tm * kBM + warp_m * kWarpTileM + 16 * i + g, row1 = row0 + 8;
    const float s0 = p.a_per_row && row0 < p.m ? alpha * p.scale_a[row0] : alpha;
    const float s1 = p.a_per_row && row1 < p.m ? alpha * p.scale_a[row1] : alpha;
#pragma unroll
    for (int j = 0; j < kNTiles; ++j) {
      const int col = tn * kBN + warp_n * kWarpTileN + 8 * j + 2 * t;
      if (col >= p.n) continue;
      const float b0 = p.bias ? p.bias[col] : 0.0f, b1 = p.bias && col + 1 < p.n ? p.bias[col + 1] : 0.0f;
      if (row0 < p.m) store_pair(p, row0, col, acc[i][j][0] * s0 + b0, acc[i][j][1] * s0 + b1);
      if (row1 < p.m) store_pair(p, row1, col, acc[i][j][2] * s1 + b0, acc[i][j][3] * s1 + b1);
    }
  }
#endif
}

struct KindConfig {
  const char* name;
  int kind;
};
const KindConfig kConfigs[] = {
    {"ms_sm120_fp4_gemm_nt_mxf4_128x128x128_w2x4_s4", kMxf4},
    {"ms_sm120_fp4_gemm_nt_nvf4_128x128x128_w2x4_s4", kNvf4},
    {"ms_sm120_fp4_gemm_nt_w4a8_128x128x128_w2x4_s3", kW4A8},
};

// The kind of a pair, or -1.
int kind_of(const ms_gemm_desc_t& d) {
  static_assert(kMxf4 == 0 && kNvf4 == 1 && kW4A8 == 2, "kinds in blackwell_fp4_pair's order");
  return blackwell_fp4_pair(d);
}

template <int kKind> void launch_kind(const Sm120Params& p, cudaStream_t stream) {
  auto kernel = sm120_fp4_gemm_kernel<kKind>;
  constexpr int smem = Tile<kKind>::kSmemBytes;
  // Per launch: the attribute belongs to the kernel as loaded in the current context (several contexts may be in use).
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) != cudaSuccess)
    fail(MS_ERR_CUDA, "", "cudaFuncSetAttribute(MaxDynamicSharedMemorySize = %d) failed", smem);
  const int tiles = ((p.m + kBM - 1) / kBM) * ((p.n + kBN - 1) / kBN);
  kernel<<<tiles, kThreads, smem, stream>>>(p);
  check_cuda(cudaGetLastError(), "sm120 FP4 GEMM launch");
}

}  // namespace

bool sm120_fp4_gemm_can_implement(const ms_gemm_desc_t& d) {
  const int kind = kind_of(d);
  if (kind < 0) return false;
  // Rows must be whole 16-byte pieces for cp.async: FP4 K padded to a multiple of 32, E4M3 K a multiple of 16.
  const bool fp4_rows = padded_k(d.b_format, d.k) % 32 == 0 && (kind == kW4A8 || padded_k(d.a_format, d.k) % 32 == 0);
  const bool fp8_rows = kind != kW4A8 || blackwell_a_row_bytes(d) % 16 == 0;
  return fp4_rows && fp8_rows;
}

bool sm120_fp4_gemm_has_config(const char* name) {
  for (const KindConfig& c : kConfigs)
    if (std::strcmp(c.name, name) == 0) return true;
  return false;
}

const char* sm120_fp4_gemm_config(const ms_gemm_desc_t& d) {
  const int kind = kind_of(d);
  for (const KindConfig& c : kConfigs)
    if (c.kind == kind) return c.name;
  return nullptr;
}

bool sm120_fp4_gemm_config_fits(const ms_gemm_desc_t& d, const char* name) {
  const char* own = sm120_fp4_gemm_config(d);
  return own && std::strcmp(own, name) == 0;
}

size_t sm120_fp4_gemm_workspace_size(const ms_gemm_desc_t& d) {
  const size_t parts = swizzled_scales_workspace(d);
  return parts ? kWorkspaceCounterBytes + parts : 0;
}

bool sm120_fp4_gemm_operands_aligned(const ms_gemm_operands_t& ops) {
  auto aligned = [](const void* p, size_t n) { return reinterpret_cast<uintptr_t>(p) % n == 0; };
  auto scales_ok = [&](const ms_qtensor_t& t) {
    return !has_block_scales(t.format) || t.layout == MS_LAYOUT_LINEAR || aligned(t.block_scales, 16);
  };
  return aligned(ops.a.data, 16) && aligned(ops.b.data, 16) && scales_ok(ops.a) && scales_ok(ops.b);
}

void launch_sm120_fp4_gemm(const ms_gemm_desc_t& d, const ms_gemm_operands_t& ops, void* workspace, cudaStream_t stream) {
  const int kind = kind_of(d);
  if (kind < 0) fail(MS_ERR_UNSUPPORTED, "desc", "the sm120 FP4 family has no kernel for this pair");
  if (sm120_fp4_gemm_workspace_size(d) && !workspace)
    fail(MS_ERR_INVALID_ARGUMENT, "workspace", "the sm120 FP4 GEMM needs its workspace to swizzle linear block scales");
  uint8_t* free = workspace ? static_cast<uint8_t*>(workspace) + kWorkspaceCounterBytes : nullptr;  // the decode counters stay zero
  const Sm120Params p{blackwell_gemm_params(d, ops, free, stream), static_cast<const uint8_t*>(ops.a.data),
                      static_cast<const uint8_t*>(ops.b.data), blackwell_a_row_bytes(d), padded_k(d.b_format, d.k) / 2};
  switch (kind) {
    case kMxf4: launch_kind<kMxf4>(p, stream); break;
    case kNvf4: launch_kind<kNvf4>(p, stream); break;
    default: launch_kind<kW4A8>(p, stream); break;
  }
}

}  // namespace ms
