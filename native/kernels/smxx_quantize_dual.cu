// Both orientations of a tensor in one read (NUMERICS.md s9): rows = Quantize(src) and columns = Quantize(src^T), each
// with its own format options, block Hadamard rotation (g = 16 or 32, signs) and stochastic rounding (s7), bit-identical
// to quantizing src and its transpose separately. The training GEMMs need both (forward reads X and W along K, dgrad and
// wgrad read W^T, dY^T and X^T); this kernel replaces "transpose, then quantize" and serves single orientations with
// stochastic rounding too.
//
// Tile: kTileRows x kTileCols source values in shared memory (cp.async, double-buffered, persistent CTAs). A thread turns
// 32 values along K into one chunk of codes with no shuffles: the rotation (signs as sign-bit flips, then the FWHT in
// registers in the order of s4), the block amax, the scale and the codes all stay in its registers.
//  - row side: lane = source row, 64 consecutive columns (two chunks, 16-byte FP4 stores);
//  - column side: lane = two adjacent source columns (a 32-bit shared load per row for BF16), 32 rows (one chunk each).
// Each CTA's 4 warps take the tile's 4 row units and/or 4 column units (64 values per thread each), one chunk at a time
// through one call site (the code stays small enough for the instruction cache, the registers under 128).
// E2M1 codes come from three FMAs onto 1.5 * 2^23 and a min (fast_encode.cuh), packed with byte permutes.
// NVFP4 needs the tensor amax of the (rotated) values of each orientation first: the same kernel in amax mode.
// Speed (H100, NOTES-dual-quantize.md): about a third of the copy bandwidth for both orientations; the floor of issue 16
// (0.70) is not met yet.
#include <cuda_runtime_api.h>
#include <cstdint>
#include "common/fast_encode.cuh"
#include "common/stochastic.cuh"
#include "launch.h"
#include "../src/error.h"

namespace ms {
namespace {

constexpr int kTileRows = 64, kTileCols = 128;  // source values per tile
constexpr int kThreads = 128;
constexpr int kChunk = 32;                       // values along K per thread and chunk
constexpr int kPadBytes = 16;                    // per shared row: conflict-free 16-byte row reads (stride = 4 banks mod 32)
constexpr int kMinBlocksPerSm = 4;  // <= 128 registers; the launch fills the SMs as the occupancy allows

enum Family { kMxfp4 = 0, kMxfp8 = 1, kNvfp4 = 2 };
enum Pass { kQuantize = 0, kAmax = 1 };

struct Side {
  int on, kind, rule, g;
  int two_d;          // NVFP4 rows side: block amax over 16 rows x 16 (NUMERICS.md s9), one scale for the tile's rows
  float c;            // 1/sqrt(g)
  int stochastic;
  uint64_t seed;
  int k, padded_k, scale_cols, swizzled, out_rows;
  uint8_t* data;
  uint8_t* scales;
  float* decode_scale;  // NVFP4: the tensor's g, written by the amax pass
  const float* signs;  // g values of +-1 (device), or null for all +1
};

struct Params {
  const void* src;
  int rows, cols, tiles_c, tiles;
  Side side[2];  // 0: rows (src), 1: columns (src^T)
  int* amax;     // NVFP4 amax pass: binary32 bits of each side's finite amax
};

template <typename T>
struct TileShape {
  static constexpr int kRowBytes = kTileCols * (int)sizeof(T) + kPadBytes;
  static constexpr int kBytes = kTileRows * kRowBytes;
};

__device__ __forceinline__ void cp_async16(void* smem, const void* global, bool valid) {
  const uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(s), "l"(global), "r"(valid ? 16 : 0));
}

// The tile's source values (zeros past the tensor) into shared memory: 16-byte pieces, rows of kTileCols.
template <typename T>
__device__ __forceinline__ void load_tile(const Params& p, int tile, uint8_t* smem) {
  constexpr int kPieces = kTileCols * (int)sizeof(T) / 16, kPerPiece = 16 / (int)sizeof(T);
  const int r0 = (tile / p.tiles_c) * kTileRows, c0 = (tile % p.tiles_c) * kTileCols;
  const T* src = static_cast<const T*>(p.src);
  for (int i = threadIdx.x; i < kTileRows * kPieces; i += kThreads) {
    const int r = i / kPieces, piece = i % kPieces, row = r0 + r, col = c0 + piece * kPerPiece;
    const bool valid = row < p.rows && col < p.cols;
    cp_async16(smem + r * TileShape<T>::kRowBytes + piece * 16, valid ? src + (int64_t)row * p.cols + col : src, valid);
  }
  asm volatile("cp.async.commit_group;");
}

__device__ __forceinline__ float max_nan(float a, float b) {
  float r;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
}

// The block Hadamard rotation of NUMERICS.md s4 of each g-block of the chunk, in its order: signs (sign-bit flips, exact
// like the multiply; bit e of `negative`: sign (e mod g) is -1), the FWHT stages below g, then x c. g-blocks past K (zero
// padding, never rotated) are set to +0.
__device__ __forceinline__ void rotate(const Side& s, uint32_t negative, int k0, float (&v)[kChunk]) {
#pragma unroll
  for (int e = 0; e < kChunk; ++e) v[e] = __uint_as_float(__float_as_uint(v[e]) ^ (((negative >> e) & 1u) << 31));
#pragma unroll
  for (int stride = 1; stride < kChunk; stride <<= 1) {
    if (stride >= s.g) break;
#pragma unroll
    for (int e = 0; e < kChunk; ++e)
      if ((e & stride) == 0) {
        const float a = v[e], b = v[e + stride];
        v[e] = __fadd_rn(a, b);
        v[e + stride] = __fsub_rn(a, b);
      }
  }
  // K is a multiple of g (16 or 32): the chunk's first half is in K when k0 is, its second half when k0 + 16 is.
  const bool first_in = k0 < s.k, second_in = k0 + 16 < s.k;
  float c;  // in a register (an opaque move): left to itself the compiler reloads s.c from the constant bank per value
  asm("mov.b32 %0, %1;" : "=f"(c) : "f"(s.c));
#pragma unroll
  for (int e = 0; e < kChunk; ++e) v[e] = (e < 16 ? first_in : second_in) ? __fmul_rn(v[e], c) : 0.0f;
}

// max |v| over the finite values of v[first .. first + N); sets non_finite when the range holds NaN or Inf. A pairwise
// tree (log2 N deep): the asm max is opaque to the compiler, which would otherwise keep a chain N deep.
template <int N>
__device__ __forceinline__ float range_amax(const float (&v)[kChunk], int first, bool& non_finite) {
  float t[N];
#pragma unroll
  for (int e = 0; e < N; ++e) t[e] = fabsf(v[first + e]);
#pragma unroll
  for (int level = 1; level < N; level <<= 1)
#pragma unroll
    for (int e = 0; e < N; e += 2 * level) t[e] = max_nan(t[e], t[e + level]);
  float m = t[0];
  non_finite = !(m <= 3.40282347e38f);
  if (non_finite) {  // rare: the finite values only (the NVFP4 tensor amax ignores the others)
    m = 0.0f;
#pragma unroll
    for (int e = 0; e < N; ++e) m = isfinite(v[first + e]) ? fmaxf(m, fabsf(v[first + e])) : m;
  }
  return m;
}

// The codes and scale bytes of one chunk (32 values along K starting at k0, rotated already) of output row `row`.
template <Family F>
// `stored`: false for a row past the tensor that a 2D tile still reads as zeros (it takes part in the tile's amax only).
__device__ __forceinline__ void quantize_chunk(const Side& s, int row, int k0, bool stored, float (&v)[kChunk]) {
  constexpr int kBlock = F == kNvfp4 ? 16 : 32;
  uint32_t random_lo[4], random_hi[4];  // the random bytes of the chunk's two groups of 16 (s7)
  if (s.stochastic) {
    const uint64_t group = ((uint64_t)row * s.padded_k + k0) >> 4;
    random_group(s.seed, group, random_lo);
    random_group(s.seed, group + 1, random_hi);
  }
  uint32_t packed[8];  // FP4: 4 words; FP8: 8 words
#pragma unroll
  for (int b = 0; b < kChunk / kBlock; ++b) {
    bool non_finite;
    float amax = range_amax<kBlock>(v, b * kBlock, non_finite);
    if (F == kNvfp4 && s.two_d) {  // the 16 lanes of a 16-row tile (rows 16 t .. 16 t + 15: lanes 0-15 or 16-31)
      for (int o = 1; o < 16; o <<= 1) {
        amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, o));
        non_finite |= __shfl_xor_sync(0xFFFFFFFFu, (int)non_finite, o) != 0;
      }
    }
    float factor = 0.0f;  // MX: x 2^-e; NVFP4: / d; 0: every code +0
    uint32_t code;
    if (F == kNvfp4) {
      const float g = *s.decode_scale;
      code = non_finite ? kUE4M3Nan : nv_block_scale(amax, g);
      if (!non_finite && code != 0) factor = __fmul_rn(from_e4m3(code), g);
    } else if (non_finite) {
      code = kE8M0Nan;
    } else if (amax == 0.0f) {
      code = 0;
    } else {
      const int e = mx_exponent(amax, s.rule, s.kind);
      factor = pow2(-e);
      code = (uint32_t)(e + 127);
    }
    if (stored && k0 + b * kBlock < s.padded_k) s.scales[scale_offset(row, (k0 >> (F == kNvfp4 ? 4 : 5)) + b, s.scale_cols, s.swizzled)] = (uint8_t)code;
    constexpr int kWords = F == kMxfp8 ? kBlock / 4 : kBlock / 8;
    if (factor == 0.0f) {  // zero or non-finite block: +0 codes (lanes rarely differ here)
#pragma unroll
      for (int w = 0; w < kWords; ++w) packed[b * kWords + w] = 0u;
      continue;
    }
    // The scaled values (exact for MX; NVFP4: x / d, Markstein's two FMAs on the magnitude when d allows, checked once).
    const Divider div(F == kNvfp4 ? factor : 1.0f);
    const bool plain = div.fast && div.scale == 1.0f;
#pragma unroll
    for (int e = b * kBlock; e < (b + 1) * kBlock; ++e) {
      if (F != kNvfp4) v[e] = __fmul_rn(v[e], factor);
      else v[e] = plain ? copysignf(divide(fabsf(v[e]), div.d, div.y), v[e]) : div(v[e]);
    }
    if (F == kMxfp8) {
#pragma unroll
      for (int w = 0; w < kWords; ++w) {
        const int e = b * kBlock + 4 * w;
        float x[4] = {v[e], v[e + 1], v[e + 2], v[e + 3]};
        if (s.stochastic) {
          const uint32_t word = e < 16 ? random_lo[e >> 2] : random_hi[(e >> 2) - 4];
#pragma unroll
          for (int j = 0; j < 4; ++j) x[j] = fp8_value_sr(x[j], (word >> (8 * j)) & 0xFFu, s.kind);
        }
        packed[b * kWords + w] = fp8x2(x[0], x[1], s.kind) | (fp8x2(x[2], x[3], s.kind) << 16);
      }
    } else {
#pragma unroll
      for (int w = 0; w < kWords; ++w) {
        const int e = b * kBlock + 8 * w;
        uint32_t m[8];
        if (s.stochastic) {
          const uint32_t lo = e < 16 ? random_lo[e >> 2] : random_hi[(e >> 2) - 4];
          const uint32_t hi = e < 16 ? random_lo[(e >> 2) + 1] : random_hi[(e >> 2) - 3];
#pragma unroll
          for (int j = 0; j < 8; ++j) m[j] = e2m1_code_sr(v[e + j], ((j < 4 ? lo : hi) >> (8 * (j & 3))) & 0xFFu);
          packed[b * kWords + w] = pack_e2m1(m, nullptr);
        } else {
#pragma unroll
          for (int j = 0; j < 8; ++j) m[j] = e2m1_magnitude(v[e + j]);
          packed[b * kWords + w] = pack_e2m1(m, &v[e]);
        }
      }
    }
  }
  // Stores: MX chunks are whole (padded K is a multiple of 32); NVFP4 rows may end half-way (padded K a multiple of 16).
  if (!stored) return;
  if (F == kMxfp8) {
    if (k0 >= s.padded_k) return;
    uint4* out = reinterpret_cast<uint4*>(s.data + (int64_t)row * s.padded_k + k0);
    out[0] = make_uint4(packed[0], packed[1], packed[2], packed[3]);
    out[1] = make_uint4(packed[4], packed[5], packed[6], packed[7]);
  } else {
    uint8_t* out = s.data + (((int64_t)row * s.padded_k + k0) >> 1);
    if (k0 + 16 < s.padded_k && (s.padded_k & 31) == 0) *reinterpret_cast<uint4*>(out) = make_uint4(packed[0], packed[1], packed[2], packed[3]);
    else {
      if (k0 < s.padded_k) *reinterpret_cast<uint2*>(out) = make_uint2(packed[0], packed[1]);
      if (k0 + 16 < s.padded_k) *reinterpret_cast<uint2*>(out + 8) = make_uint2(packed[2], packed[3]);
    }
  }
}

// Chunk `part` (0 or 1) of a warp's unit on one side into v: on the row side the unit's halves (lane = source row
// tile_r + r0 + lane, columns c0 + 32 part ..), on the column side its two columns (lane = source columns c0 + 2 lane +
// part, rows r0 ..). Sets the output row and K index; false when the chunk lies outside the output.
template <typename T>
__device__ __forceinline__ bool gather(const Params& p, const uint8_t* tile, bool column, int part, int r0, int c0, int lane, int tile_r, int tile_c,
                                       float (&v)[kChunk], int& row, int& k0) {
  constexpr int kRowBytes = TileShape<T>::kRowBytes;
  if (!column) {
    row = tile_r + r0 + lane;
    k0 = tile_c + c0 + part * kChunk;
    if (k0 >= p.side[0].padded_k) return false;  // the same for every lane
    if (row >= p.rows) {  // 2D tiles: the lane still takes part in its tile's amax, with zeros
      if (!p.side[0].two_d) return false;
#pragma unroll
      for (int e = 0; e < kChunk; ++e) v[e] = 0.0f;
      return true;
    }
    const uint8_t* base = tile + (r0 + lane) * kRowBytes + (c0 + part * kChunk) * (int)sizeof(T);
    if constexpr (sizeof(T) == 2) {
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const uint4 w = *reinterpret_cast<const uint4*>(base + q * 16);
        const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          v[q * 8 + 2 * j] = __uint_as_float(words[j] << 16);
          v[q * 8 + 2 * j + 1] = __uint_as_float(words[j] & 0xFFFF0000u);
        }
      }
    } else {
#pragma unroll
      for (int q = 0; q < 8; ++q) {
        const float4 w = *reinterpret_cast<const float4*>(base + q * 16);
        v[4 * q] = w.x;
        v[4 * q + 1] = w.y;
        v[4 * q + 2] = w.z;
        v[4 * q + 3] = w.w;
      }
    }
    return true;
  }
  const int second = part;
  row = tile_c + c0 + 2 * lane + second;
  k0 = tile_r + r0;
  if (row >= p.cols || k0 >= p.side[1].padded_k) return false;
  const uint8_t* base = tile + r0 * kRowBytes + (c0 + 2 * lane) * (int)sizeof(T);
  const uint32_t high_half = second ? 0x3244u : 0x1044u;  // prmt: this column's BF16 into the high half, zeros below
#pragma unroll
  for (int r = 0; r < kChunk; ++r) {
    if constexpr (sizeof(T) == 2) {
      const uint32_t pair = *reinterpret_cast<const uint32_t*>(base + r * kRowBytes);  // a 32-bit load: both columns' banks
      v[r] = __uint_as_float(prmt(pair, 0u, high_half));
    } else {
      v[r] = reinterpret_cast<const float*>(base + r * kRowBytes)[second];
    }
  }
  return true;
}

template <typename T, Family F, Pass P>
__global__ void __launch_bounds__(kThreads, kMinBlocksPerSm) dual_kernel(Params p) {
  extern __shared__ __align__(16) uint8_t smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float amax0 = 0.0f, amax1 = 0.0f;
  // Bit e: sign (e mod g) of a side's rotation is -1 (a ballot of the signs, once).
  const Side& s0 = p.side[0];
  const Side& s1 = p.side[1];
  const uint32_t negative0 = __ballot_sync(0xFFFFFFFFu, s0.on && s0.g && s0.signs && s0.signs[lane % max(s0.g, 1)] < 0.0f);
  const uint32_t negative1 = __ballot_sync(0xFFFFFFFFu, s1.on && s1.g && s1.signs && s1.signs[lane % max(s1.g, 1)] < 0.0f);
  // Jobs 0, 1: the row side's two chunks; 2, 3: the column side's (see gather). One call site for all of them keeps the
  // kernel small and its registers few (templating on the side doubles the code and spills).
  const int first_job = s0.on ? 0 : 2, end_job = s1.on ? 4 : 2;
  // The warp's units: the (32-row half, 64-column half) = (warp >> 1, warp & 1) of the tile, on each side.
  const int r0 = (warp >> 1) * 32, c0 = (warp & 1) * 64;
  int buffer = 0;
  if (blockIdx.x < p.tiles) load_tile<T>(p, blockIdx.x, smem);
  for (int tile = blockIdx.x; tile < p.tiles; tile += gridDim.x) {
    const int next = tile + gridDim.x;
    if (next < p.tiles) {
      load_tile<T>(p, next, smem + (buffer ^ 1) * TileShape<T>::kBytes);
      asm volatile("cp.async.wait_group 1;");
    } else {
      asm volatile("cp.async.wait_group 0;");
    }
    __syncthreads();
    const uint8_t* t = smem + buffer * TileShape<T>::kBytes;
    const int tile_r = (tile / p.tiles_c) * kTileRows, tile_c = (tile % p.tiles_c) * kTileCols;
#pragma unroll 1
    for (int job = first_job; job < end_job; ++job) {
      float v[kChunk];
      int row, k0;
      const bool column = job >= 2;
      if (!gather<T>(p, t, column, job & 1, r0, c0, lane, tile_r, tile_c, v, row, k0)) continue;
      const Side& s = column ? s1 : s0;
      if (s.g) rotate(s, column ? negative1 : negative0, k0, v);
      if (P == kQuantize) {
        quantize_chunk<F>(s, row, k0, column || row < p.rows, v);
      } else {
        bool non_finite;
        const float m = range_amax<kChunk>(v, 0, non_finite);
        if (column) amax1 = fmaxf(amax1, m);
        else amax0 = fmaxf(amax0, m);
      }
    }
    __syncthreads();  // the buffer is refilled by the next iteration's prefetch
    buffer ^= 1;
  }
  if (P == kAmax) {
#pragma unroll
    for (int side = 0; side < 2; ++side) {
      float m = side ? amax1 : amax0;
      for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xFFFFFFFFu, m, o));
      if (lane == 0 && m > 0.0f) atomicMax(&p.amax[side], (int)__float_as_uint(m));
    }
  }
}

__global__ void decode_scales_kernel(Params p) {
  const int side = threadIdx.x;
  if (side < 2 && p.side[side].on) *p.side[side].decode_scale = tensor_decode_scale(u2f((uint32_t)p.amax[side]), 2688.0f);
}

template <typename T, Family F, Pass P>
void launch_pass(const Params& p, int multiprocessors, cudaStream_t stream) {
  const int bytes = 2 * TileShape<T>::kBytes;
  auto kernel = dual_kernel<T, F, P>;
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), "cudaFuncSetAttribute(dual quantize)");
  int per_sm = 0;
  check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, bytes), "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  const int resident = multiprocessors * (per_sm > 0 ? per_sm : 1);
  kernel<<<p.tiles < resident ? p.tiles : resident, kThreads, bytes, stream>>>(p);
  check_cuda(cudaGetLastError(), "dual quantize launch");
}

template <typename T, Family F>
void launch_family(Params& p, int multiprocessors, cudaStream_t stream) {
  if (F == kNvfp4) {
    check_cuda(cudaMemsetAsync(p.amax, 0, 2 * sizeof(int), stream), "cudaMemsetAsync(workspace)");
    launch_pass<T, F, kAmax>(p, multiprocessors, stream);
    decode_scales_kernel<<<1, 32, 0, stream>>>(p);
    check_cuda(cudaGetLastError(), "decode scale launch");
  }
  launch_pass<T, F, kQuantize>(p, multiprocessors, stream);
}

Family family_of(const DualSide& s) { return s.format == kFmtNvfp4 ? kNvfp4 : s.format == kFmtMxfp8 ? kMxfp8 : kMxfp4; }

}  // namespace

bool dual_quantize_eligible(const QuantizeLaunch& q) {
  const bool format = q.format == kFmtMxfp4 || q.format == kFmtMxfp8 || q.format == kFmtNvfp4;
  const int granule = q.src_dtype == 1 ? 8 : 4;
  if (q.two_d && (q.format != kFmtNvfp4 || q.hadamard != 0)) return false;
  return format && (q.src_dtype == 0 || q.src_dtype == 1) && q.cols % granule == 0 && reinterpret_cast<uintptr_t>(q.src) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(q.data) % 16 == 0 && (q.hadamard == 0 || q.hadamard == 16 || q.hadamard == 32);
}

void launch_quantize_dual(const DualLaunch& d, int multiprocessors, cudaStream_t stream) {
  Params p{};
  p.src = d.src;
  p.rows = d.rows;
  p.cols = d.cols;
  p.tiles_c = (d.cols + kTileCols - 1) / kTileCols;
  p.tiles = ((d.rows + kTileRows - 1) / kTileRows) * p.tiles_c;
  p.amax = d.amax_workspace;
  for (int i = 0; i < 2; ++i) {
    const DualSide& in = d.side[i];
    Side& s = p.side[i];
    s.on = in.on;
    if (!in.on) continue;
    s.kind = in.kind;
    s.rule = in.rule;
    s.g = in.hadamard;
    s.c = in.hadamard ? (float)(1.0 / std::sqrt((double)in.hadamard)) : 1.0f;
    s.stochastic = in.stochastic;
    s.seed = in.seed;
    s.k = i == 0 ? d.cols : d.rows;
    s.out_rows = i == 0 ? d.rows : d.cols;
    const int block = in.format == kFmtNvfp4 ? 16 : 32;
    s.padded_k = (s.k + block - 1) / block * block;
    s.scale_cols = s.padded_k / block;
    s.swizzled = in.swizzled;
    s.data = in.data;
    s.scales = in.block_scales;
    s.decode_scale = in.decode_scales;
    s.signs = in.signs;
    s.two_d = in.two_d;
    if (in.swizzled) clear_swizzled_scales(in.block_scales, s.out_rows, s.scale_cols, stream);
  }
  const Family f = family_of(d.side[d.side[0].on ? 0 : 1]);
  if (d.src_dtype == 1) {
    if (f == kMxfp4) launch_family<uint16_t, kMxfp4>(p, multiprocessors, stream);
    else if (f == kMxfp8) launch_family<uint16_t, kMxfp8>(p, multiprocessors, stream);
    else launch_family<uint16_t, kNvfp4>(p, multiprocessors, stream);
  } else {
    if (f == kMxfp4) launch_family<float, kMxfp4>(p, multiprocessors, stream);
    else if (f == kMxfp8) launch_family<float, kMxfp8>(p, multiprocessors, stream);
    else launch_family<float, kNvfp4>(p, multiprocessors, stream);
  }
}

}  // namespace ms
