// Hopper W4A8 GEMM family (sm_90a, issue 7): FP8 E4M3 activations (per-tensor or per-token scales) x MXFP4 weights
// kept at 4 bits per weight in memory, on FP8 tensor cores. C [m, n] = alpha diag(sa) A W^T + bias, computed as its transpose
// D = W A^T so that the weights are wgmma's A operand, read from registers (CUTLASS's mixed-input "RS" scheme):
//  - warpgroup 0 (producer, setmaxnreg 40): one thread TMA-loads each K block of 128 values into a ring of kStages stages:
//    the activation tile (kBT tokens x 128 bytes, 128-byte swizzle, wgmma's B descriptor) and the weights' packed codes
//    (128 rows x 64 bytes, unswizzled); its second warp loads each tile's epilogue operands (token scales, biases);
//  - warpgroups 1 and 2 (consumers, setmaxnreg 232) each own 64 weight rows. A thread reads the two rows of its wgmma A
//    fragment (rows g and g + 8 of its warp's 16, 16-byte broadcast loads of the whole 64-byte row) and folds its 8 values per
//    row and MX block exactly into E4M3 (common/fp4_fold.h, two prmt per four values) against the row's base: the largest
//    exponent of the row's nonzero blocks in this K block, minus 6; the block's wgmma (one k32 step per MX block) takes it
//    from registers. So every K block is a partial sum of exact products, promoted into the FP32 total as
//    total += partial x 2^(base - 133) per row (NUMERICS.md s5: FP8 tensor-core sums promoted every 128 of K). A block more
//    than 14 binades below its row's base cannot fold at that base: it is left to another pass over the same stage with the
//    next base down (rare; the warpgroup agrees on passes with one barrier reduction per K block; every pass is exact);
//    a NaN block scale makes the row's scale, so its column of C, NaN;
//  - the next K block (or pass) is folded while the tensor cores run the current one (two fragment sets); promotion
//    follows each block's wait while the other warpgroup's wgmma keeps the tensor cores busy;
//  - epilogue: C = D^T x token scale + bias, stored straight from registers (each warp writes 8 consecutive weight columns
//    of 4 token rows per instruction).
// Requirements (else the BF16 family runs the pair): MXFP4 weights in the linear layout, K a multiple of 128, 16-byte
// aligned activations and codes, 4-byte aligned block scales. Tiles are visited in groups of 8 weight tiles.
#include <cuda_runtime_api.h>
#include <algorithm>
#include <cstring>
#include "common/formats.cuh"
#include "common/fp4_fold.h"
#include "common/gemm_epilogue.cuh"
#include "common/ptx_sm90.cuh"
#include "common/tensor_map.h"
#include "launch.h"
#include "../src/driver.h"
#include "../src/error.h"

namespace ms {

namespace {

constexpr int kBW = 128;        // weight rows per tile (wgmma M: 64 per consumer warpgroup)
constexpr int kBK = 128;        // K values per stage: one 128-byte activation row, four MX blocks of weights
constexpr int kCodeBytes = 64;  // packed codes of one weight row per K block
constexpr int kThreads = 384, kConsumerWarps = 8, kGroup = 8, kSmemLimit = 232448;
constexpr int kSpan = kFoldMaxShift - kFoldMinShift;  // 14 binades fold exactly below a base

template <int kBT_, int kStages_> struct W4a8Config {
  static constexpr int kBT = kBT_, kStages = kStages_;  // tokens per tile, pipeline depth
  static constexpr int kTileX = kBT * kBK, kStageBytes = kTileX + kBW * kCodeBytes;
  static constexpr int kSmemBytes = kStages * kStageBytes + 1024 /* alignment */ + (2 * kStages + 2) * 8 /* barriers */ +
                                    16 * 8 /* fold tables */ + (kBT + kBW) * 4 /* token scales, biases */;
  static_assert(kSmemBytes <= kSmemLimit, "shared memory");
  static_assert(kBT == 64 || kBT == 128, "wgmma N");
};

struct W4a8Params {
  int m, n, k;
  float alpha;
  const float* __restrict__ scale_a;  // FP8 decode scales of A: [1] or [m]; null: 1
  int a_per_row;
  const uint8_t* __restrict__ w_scales;  // E8M0 block scales [n][k / 32]
  const float* __restrict__ bias;        // [n] or null
  void* out;
  int out_dtype;
};

#ifdef MS_SM90_ENABLED
// Lane q's share of wgmma's A fragment in one weight row of the K block, as packed codes: word s holds MX block s's values
// 4q .. 4q + 3 (nibbles 0-3) and 16 + 4q .. 16 + 4q + 3 (nibbles 4-7), bytes 2q, 2q + 1 and 8 + 2q, 9 + 2q of the block's 16
// (the quad reads the whole 64-byte row: broadcast loads, no bank conflicts). fold8 turns a word into the fragment's two
// registers. (A prepacked order with each lane's words contiguous measured no faster: NOTES-sm90-fp8.md.)
__device__ __forceinline__ void lane_words(const uint8_t* row, int q, uint32_t (&words)[4]) {
#pragma unroll
  for (int s = 0; s < 4; ++s) {
    const uint4 b = sm90::lds128(row + 16 * s);
    words[s] = __byte_perm(q < 2 ? b.x : b.y, q < 2 ? b.z : b.w, (q & 1) ? 0x7632 : 0x5410);
  }
}

// 2^(base - 133), the promotion scale of a row folded at base in [0, 254] (NaN for a NaN block scale), from its bits:
// exponent field base - 6, or for base < 7 the subnormal's single mantissa bit.
__device__ __forceinline__ float row_scale(int base, bool nan) {
  return nan ? __int_as_float(0x7FC00000) : __int_as_float(base >= 7 ? (base - 6) << 23 : 1 << (base + 16));
}

// The fast fold of a K block: each row's base is its largest block exponent, and every block is within kFastSpan binades of
// it, so that the fold table of each block is two multiply-adds (fold_lut_normal). Returns whether one of this thread's
// rows is outside that (a wider span, a block of zeros far below the others, or a NaN scale with others): then the
// warpgroup redoes the K block with fold_pass.
constexpr int kFastSpan = kFoldMaxShift - kFoldMinNormalShift;
__device__ __forceinline__ bool fold_fast(const uint8_t* rows, const uint32_t (&exponents)[2], int q, uint32_t (&f)[4][4], float (&scale)[2]) {
  bool wide = false;
#pragma unroll
  for (int u = 0; u < 2; ++u) {
    uint32_t words[4];
    lane_words(rows + u * 8 * kCodeBytes, q, words);
    int e[4];
#pragma unroll
    for (int s = 0; s < 4; ++s) e[s] = (exponents[u] >> (8 * s)) & 0xFF;
    const int base = max(max(e[0], e[1]), max(e[2], e[3])), lowest = min(min(e[0], e[1]), min(e[2], e[3]));
    wide |= base - lowest > kFastSpan;
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      fold8(words[s], fold_lut_normal(e[s] - base + kFoldMaxShift), f[s][u], f[s][2 + u]);
    }
    scale[u] = row_scale(base, base == 0xFF);
  }
  return wide;
}

// One exact fold pass of this thread's two weight rows (`rows`: row g, and row g + 8 eight rows of codes on) over the K block,
// for any exponents: each row's blocks of this pass are the nonzero ones with exponent below ceiling[u] (256 at a K block's
// first pass); base = the largest of them; those at most kSpan binades below it fold at shift e - base + 6, the rest fold to
// zero here and wait for the next pass (ceiling = base - kSpan). exponents[u]: byte s the E8M0 code of block s. A NaN scale
// makes the row's scale NaN. Returns whether a block is left.
__device__ __forceinline__ bool fold_pass(const uint8_t* rows, const uint32_t (&exponents)[2], int (&ceiling)[2], const FoldLut* tables, int q,
                                          uint32_t (&f)[4][4], float (&scale)[2]) {
  uint32_t w[2][4];
  uint32_t nonzero = 0;  // bit 4u + s: block s of row u has a nonzero code (in any lane of the quad)
#pragma unroll
  for (int u = 0; u < 2; ++u) {
    lane_words(rows + u * 8 * kCodeBytes, q, w[u]);
#pragma unroll
    for (int s = 0; s < 4; ++s) nonzero |= (w[u][s] & 0x77777777u) ? 1u << (4 * u + s) : 0u;
  }
  nonzero |= __shfl_xor_sync(0xffffffffu, nonzero, 1);
  nonzero |= __shfl_xor_sync(0xffffffffu, nonzero, 2);
  bool more = false;
#pragma unroll
  for (int u = 0; u < 2; ++u) {
    const uint32_t (&words)[4] = w[u];
    int base = -1;
    bool nan = false;
    uint32_t active = 0;
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      const int e = (exponents[u] >> (8 * s)) & 0xFF;
      nan |= e == 0xFF;
      if (((nonzero >> (4 * u + s)) & 1) && e < ceiling[u]) { active |= 1u << s; base = max(base, e); }
    }
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      const int e = (exponents[u] >> (8 * s)) & 0xFF;
      const bool in_pass = (active >> s) & 1, take = in_pass && e >= base - kSpan;
      more |= in_pass && !take && !nan;
      fold8(take ? words[s] : 0u, tables[take ? e - base + kSpan : 0], f[s][u], f[s][2 + u]);
    }
    ceiling[u] = base - kSpan;
    scale[u] = base < 0 && !nan ? 0.0f : row_scale(base, nan);
  }
  return more;
}

template <int kBT>
__device__ __forceinline__ void mma_rs(float (&d)[kBT / 2], const uint32_t (&a)[4], uint64_t desc_x, int scale_d) {
  if constexpr (kBT == 64) sm90::wgmma_m64n64k32_rs_e4m3_e4m3(d, a, desc_x, scale_d);
  else sm90::wgmma_m64n128k32_rs_e4m3_e4m3(d, a, desc_x, scale_d);
}

// Keeps a fragment set in its registers until here (wgmma reads them asynchronously until its wait).
__device__ __forceinline__ void hold(uint32_t (&f)[4][4]) {
#pragma unroll
  for (int s = 0; s < 4; ++s)
#pragma unroll
    for (int i = 0; i < 4; ++i) asm volatile("" : "+r"(f[s][i])::"memory");
}
#endif

template <class C>
__global__ void __launch_bounds__(kThreads, 1)
sm90_w4a8_kernel(const __grid_constant__ TensorMap map_x, const __grid_constant__ TensorMap map_w, W4a8Params p) {
#ifdef MS_SM90_ENABLED
  using namespace sm90;
  constexpr int kBT = C::kBT, kStages = C::kStages, kStageBytes = C::kStageBytes;
  extern __shared__ __align__(1024) uint8_t smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + kStages * kStageBytes);
  uint64_t* empty = full + kStages;
  uint64_t* epilogue_full = empty + kStages;
  uint64_t* epilogue_empty = epilogue_full + 1;
  FoldLut* tables = reinterpret_cast<FoldLut*>(epilogue_empty + 1);  // shifts -8 .. 6
  float* token_scale = reinterpret_cast<float*>(tables + 16);       // alpha x the token's decode scale
  float* weight_bias = token_scale + kBT;
  const int warpgroup = __shfl_sync(0xffffffffu, threadIdx.x / 128, 0);
  const int tiles_w = (p.n + kBW - 1) / kBW, tiles = tiles_w * ((p.m + kBT - 1) / kBT), k_blocks = p.k / kBK;
  auto item = [&](int i, int& tw, int& tt) {
    const int tile = blockIdx.x + i * gridDim.x;
    if (tile >= tiles) return false;
    tile_coords<kGroup>(tile, tiles_w, (p.m + kBT - 1) / kBT, tw, tt);
    return true;
  };

  if (threadIdx.x == 0) {
    prefetch_tensormap(&map_x);
    prefetch_tensormap(&map_w);
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(&full[s], 1);
      mbarrier_init(&empty[s], kConsumerWarps);
    }
    mbarrier_init(epilogue_full, 32);
    mbarrier_init(epilogue_empty, kConsumerWarps);
    fence_barrier_init();
  }
  if (threadIdx.x <= kSpan) tables[threadIdx.x] = fold_lut((int)threadIdx.x + kFoldMinShift);
  __syncthreads();

  uint32_t stage = 0, phase = 0;
  auto advance = [&] {
    if (++stage == kStages) { stage = 0; phase ^= 1; }
  };

  if (warpgroup == 0) {
    setmaxnreg_dec<40>();
    int tw, tt;
    if (threadIdx.x == 0) {
      for (int i = 0; item(i, tw, tt); ++i)
        for (int kb = 0; kb < k_blocks; ++kb, advance()) {
          mbarrier_wait(&empty[stage], phase ^ 1);
          uint8_t* s = smem + stage * kStageBytes;
          mbarrier_arrive_expect_tx(&full[stage], kStageBytes);
          tma_load_2d(s, &map_x, &full[stage], kb * kBK, tt * kBT);
          tma_load_2d(s + C::kTileX, &map_w, &full[stage], kb * kCodeBytes, tw * kBW);
        }
    } else if (threadIdx.x / 32 == 1) {
      const int lane = threadIdx.x % 32;
      uint32_t parity = 0;
      for (int i = 0; item(i, tw, tt); ++i, parity ^= 1) {
        mbarrier_wait(epilogue_empty, parity ^ 1);
        for (int j = lane; j < kBT; j += 32) {
          const int token = tt * kBT + j;
          token_scale[j] = token < p.m ? p.alpha * (p.scale_a ? p.scale_a[p.a_per_row ? token : 0] : 1.0f) : 0.0f;
        }
        for (int j = lane; j < kBW; j += 32) {
          const int row = tw * kBW + j;
          weight_bias[j] = p.bias && row < p.n ? p.bias[row] : 0.0f;
        }
        mbarrier_arrive(epilogue_full);
      }
    }
    return;
  }

  setmaxnreg_inc<232>();
  const int consumer = warpgroup - 1, t = threadIdx.x % 128, warp = t / 32, lane = t % 32, g = lane / 4, q = lane % 4;
  const int local_row = consumer * 64 + warp * 16 + g;  // this thread's weight rows in the tile: local_row and local_row + 8
  const uint64_t desc_x0 = sw128_desc(smem);
  const int scale_cols = p.k / 32;
  float total[kBT / 2], part[kBT / 2];
  uint32_t frag0[4][4], frag1[4][4];
  uint32_t epilogue_parity = 0;
  int tw, tt;
  for (int i = 0; item(i, tw, tt); ++i, epilogue_parity ^= 1) {
    const int row0 = tw * kBW + local_row;
    // The four E8M0 codes of each of the thread's rows in K block kb (0 past N: those rows' codes read as zeros).
    auto exponents_of = [&](int kb, uint32_t (&e)[2]) {
#pragma unroll
      for (int u = 0; u < 2; ++u)
        e[u] = row0 + 8 * u < p.n ? __ldg(reinterpret_cast<const uint32_t*>(p.w_scales + (size_t)(row0 + 8 * u) * scale_cols) + kb) : 0u;
    };
    uint32_t e_now[2], e_next[2] = {0, 0};
    exponents_of(0, e_now);
    if (k_blocks > 1) exponents_of(1, e_next);
    int ceiling[2] = {256, 256};
    bool fresh = true;  // the next pass starts a K block: wait for its stage
    int done = 0;       // K blocks whose last pass has been folded
    struct Pending { uint32_t stage; bool last; float scale[2]; };
    // Folds the next pass into f; the warpgroup agrees on whether its K block needs another.
    auto prepare = [&](uint32_t (&f)[4][4]) {
      Pending pending;
      const uint8_t* rows = smem + stage * kStageBytes + C::kTileX + local_row * kCodeBytes;
      bool passes = !fresh, more = false;
      if (fresh) {
        // A K block's first fold is the fast one, unless a row of the warpgroup needs the exact passes.
        mbarrier_wait(&full[stage], phase);
        passes = named_barrier_or(1 + consumer, 128, fold_fast(rows, e_now, q, f, pending.scale));
      }
      if (passes) more = named_barrier_or(1 + consumer, 128, fold_pass(rows, e_now, ceiling, tables, q, f, pending.scale));
      pending.stage = stage;
      pending.last = !more;
      fresh = !more;
      if (!more) {
        advance();
        ++done;
        e_now[0] = e_next[0], e_now[1] = e_next[1];
        if (done + 1 < k_blocks) exponents_of(done + 1, e_next);
        ceiling[0] = ceiling[1] = 256;
      }
      return pending;
    };
    auto launch = [&](const uint32_t (&f)[4][4], const Pending& pending) {
      fence_operand(part);
      wgmma_fence();
      const uint64_t desc = desc_x0 + pending.stage * (kStageBytes / 16);  // both warpgroups read every token
#pragma unroll
      for (int s = 0; s < 4; ++s) mma_rs<kBT>(part, f[s], desc + 2 * s, s > 0 ? 1 : 0);
      wgmma_commit();
    };
    // wgmma D layout (m64nNk32, f32): part[4c + {0, 1}] at (row g, token 8c + 2q + {0, 1}), part[4c + {2, 3}] at row g + 8.
    auto finish = [&](const Pending& pending) {
      fence_operand(part);
      if (pending.last && lane == 0) mbarrier_arrive(&empty[pending.stage]);
#pragma unroll
      for (int c = 0; c < kBT / 8; ++c) {
        total[4 * c] = fmaf(part[4 * c], pending.scale[0], total[4 * c]);
        total[4 * c + 1] = fmaf(part[4 * c + 1], pending.scale[0], total[4 * c + 1]);
        total[4 * c + 2] = fmaf(part[4 * c + 2], pending.scale[1], total[4 * c + 2]);
        total[4 * c + 3] = fmaf(part[4 * c + 3], pending.scale[1], total[4 * c + 3]);
      }
    };
#pragma unroll
    for (int j = 0; j < kBT / 2; ++j) total[j] = 0.0f;
    Pending p0 = prepare(frag0), p1;
    for (;;) {
      launch(frag0, p0);
      const bool next1 = done < k_blocks;  // another K block, or another pass of this one
      if (next1) p1 = prepare(frag1);
      wgmma_wait<0>();
      hold(frag0);
      finish(p0);
      if (!next1) break;
      launch(frag1, p1);
      const bool next0 = done < k_blocks;
      if (next0) p0 = prepare(frag0);
      wgmma_wait<0>();
      hold(frag1);
      finish(p1);
      if (!next0) break;
    }

    // Epilogue: C[token][row] = D[row][token] x token scale + bias.
    mbarrier_wait(epilogue_full, epilogue_parity);
    const float bias0 = weight_bias[local_row], bias1 = weight_bias[local_row + 8];
    const int row1 = row0 + 8;
#pragma unroll
    for (int c = 0; c < kBT / 8; ++c) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int local = 8 * c + 2 * q + j, token = tt * kBT + local;
        if (token >= p.m) continue;
        const float s = token_scale[local];
        const float v0 = total[4 * c + j] * s + bias0, v1 = total[4 * c + 2 + j] * s + bias1;
        const int64_t at = (int64_t)token * p.n;
        if (p.out_dtype == MS_DTYPE_F32) {
          float* out = static_cast<float*>(p.out) + at;
          if (row0 < p.n) out[row0] = v0;
          if (row1 < p.n) out[row1] = v1;
        } else {
          uint16_t* out = static_cast<uint16_t*>(p.out) + at;
          const uint32_t pair = pack_half2(v0, v1, p.out_dtype);
          if (row0 < p.n) out[row0] = (uint16_t)pair;
          if (row1 < p.n) out[row1] = (uint16_t)(pair >> 16);
        }
      }
    }
    __syncwarp();
    if (lane == 0) mbarrier_arrive(epilogue_empty);
  }
#endif
}

template <class C>
void launch_config(const W4a8Params& p, const void* x, const void* codes, int sms, cudaStream_t stream) {
  auto kernel = sm90_w4a8_kernel<C>;
  // Set on every launch: the attribute belongs to the kernel as loaded in the current context (see sm90_gemm_kernel.cuh).
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmemBytes) != cudaSuccess)
    fail(MS_ERR_CUDA, "", "cudaFuncSetAttribute(MaxDynamicSharedMemorySize = %d) failed", C::kSmemBytes);
  const int tiles = ((p.n + kBW - 1) / kBW) * ((p.m + C::kBT - 1) / C::kBT);
  const TensorMap mx = make_map(x, p.m, p.k, 1, kBK, C::kBT);
  const TensorMap mw = make_map(codes, p.n, p.k / 2, (int64_t)p.k / 2, kMapU8, kCodeBytes, kBW, kMapSwizzleNone);
  kernel<<<std::min(tiles, sms), kThreads, C::kSmemBytes, stream>>>(mx, mw, p);
  check_cuda(cudaGetLastError(), "sm90 W4A8 GEMM launch");
}

struct W4a8Entry {
  const char* name;
  void (*launch)(const W4a8Params&, const void*, const void*, int, cudaStream_t);
  int tokens;                // kBT
  double us_per_tile_block;  // cost of one tile's K block with every SM busy (first estimates, H200 measurements to follow)
};

// Named <tokens>x<weights>x<K> like the other families' <BM>x<BN>x<BK>.
const W4a8Entry kConfigs[] = {
    {"ms_sm90_w4a8_gemm_nt_64x128x128_s12", launch_config<W4a8Config<64, 12>>, 64, 0.23},
    {"ms_sm90_w4a8_gemm_nt_128x128x128_s8", launch_config<W4a8Config<128, 8>>, 128, 0.42},
};

const W4a8Entry* find(const char* name) {
  for (const W4a8Entry& c : kConfigs)
    if (std::strcmp(c.name, name) == 0) return &c;
  return nullptr;
}

}  // namespace

bool sm90_w4a8_gemm_can_implement(const ms_gemm_desc_t& d) {
  const bool fp8_a = d.a_format == MS_FMT_FP8_TENSOR || d.a_format == MS_FMT_FP8_ROW;
  return fp8_a && d.a_element == MS_ELEM_E4M3 && d.b_format == MS_FMT_MXFP4 && d.b_layout == MS_LAYOUT_LINEAR && d.k % kBK == 0;
}

bool sm90_w4a8_gemm_has_config(const char* name) { return find(name) != nullptr; }

// The wave model of the other sm90 families: ceil(tiles / SMs) waves x K blocks x the config's cost; ties go to the first.
const char* sm90_w4a8_gemm_config(const ms_gemm_desc_t& d, int sms) {
  const W4a8Entry* best = &kConfigs[1];
  double best_cost = 0;
  for (const W4a8Entry& c : kConfigs) {
    const long tiles = (long)((d.n + kBW - 1) / kBW) * ((d.m + c.tokens - 1) / c.tokens);
    const double cost = (double)((tiles + sms - 1) / std::max(sms, 1)) * (d.k / kBK) * c.us_per_tile_block;
    if (best_cost == 0 || cost < best_cost) { best = &c; best_cost = cost; }
  }
  return best->name;
}

bool sm90_w4a8_gemm_operands_aligned(const ms_gemm_operands_t& ops) {
  return reinterpret_cast<uintptr_t>(ops.a.data) % 16 == 0 && reinterpret_cast<uintptr_t>(ops.b.data) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(ops.b.block_scales) % 4 == 0;
}

void launch_sm90_w4a8_gemm(const ms_gemm_desc_t& d, const char* config, const ms_gemm_operands_t& ops, int sms, cudaStream_t stream) {
  const W4a8Entry* entry = find(config);
  if (!entry) fail(MS_ERR_INVALID_ARGUMENT, "config", "no sm90 W4A8 GEMM config named %s", config);
  const W4a8Params p{d.m, d.n, d.k, ops.alpha, ops.a.decode_scales, d.a_format == MS_FMT_FP8_ROW ? 1 : 0,
                     static_cast<const uint8_t*>(ops.b.block_scales), d.has_bias ? ops.bias : nullptr, ops.out, d.out_dtype};
  entry->launch(p, ops.a.data, ops.b.data, sms, stream);
}

}  // namespace ms
