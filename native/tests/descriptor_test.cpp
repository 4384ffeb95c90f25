// Host checks (g++, no CUDA) of the Blackwell families' shared-memory layouts, the sm90 stream-K decomposition and the
// FP4 fold. sm100 (common/tcgen05_sm100.cuh): the shared-memory and instruction descriptors against the PTX ISA's field
// tables, and the emulated MMA's operand reads against where TMA's 128-byte swizzle writes each byte, for every row and
// K step of a stage. sm120 (common/sm120_tile_layout.h): the stage swizzles are bijections and every fragment load the
// kernel issues (ldmatrix phases, W4A8's 8- and 4-byte loads) is free of shared-memory bank conflicts. The sm90
// stream-K tail (common/stream_k.h): every K block of every tile is done once, a split tile has one head and one tail
// on consecutive CTAs, heads run first and tails last. The FP4 -> FP8 fold (common/fp4_fold.h): every E2M1 code at
// every shift in [-8, 6] lands on the exact E4M3 value (also in its prmt form, fold8), and a row's fold base keeps
// every nonzero block in range or reports the row. Run by .ci/run.
//   g++ -std=c++17 -Inative/include -Inative/kernels native/tests/descriptor_test.cpp -o t && ./t
#define __host__
#define __device__
#define __forceinline__ inline
#include <cstdio>
#include <initializer_list>
#include "common/tcgen05_sm100.cuh"
#include "common/sm120_tile_layout.h"
#include "common/stream_k.h"
#include "common/formats.cuh"
#include "common/fp4_fold.h"
#include <cmath>
#include <vector>
#include <set>

static int failures = 0;
#define EXPECT(cond)                                                  \
  do {                                                                \
    if (!(cond)) { std::printf("FAIL %s:%d %s\n", __FILE__, __LINE__, #cond); ++failures; } \
  } while (0)

int main() {
  using namespace ms::sm100;
  // Shared-memory descriptor (PTX s9.7.16.4.1): start >> 4 at 0, LBO >> 4 at 16, SBO >> 4 at 32, 0b001 at 46, swizzle at 61.
  const uint64_t d = smem_descriptor(0x1230, 0x40, 0x400, kSwizzle128B);
  EXPECT((d & 0x3FFF) == 0x123);
  EXPECT(((d >> 16) & 0x3FFF) == 0x4);
  EXPECT(((d >> 32) & 0x3FFF) == 0x40);
  EXPECT(((d >> 46) & 7) == 1);
  EXPECT(((d >> 49) & 7) == 0);
  EXPECT((d >> 61) == 2);
  EXPECT(scale_atom_descriptor(0x800) == ((0x800 >> 4) | (uint64_t)(128 >> 4) << 32 | (uint64_t)1 << 46));
  // Instruction descriptor (tables 43 / 44): E2M1 x E2M1, N >> 3 at 17, M >> 7 at 27, UE8M0 bit 23, scale ids at 29 / 4.
  EXPECT(mxf4nvf4_descriptor(128, 128, false, 0, 0) == (1u << 7 | 1u << 10 | 16u << 17 | 1u << 27));
  EXPECT(mxf4nvf4_descriptor(128, 256, true, 2, 2) == (1u << 7 | 1u << 10 | 32u << 17 | 1u << 23 | 1u << 27 | 2u << 29 | 2u << 4));
  // kind::mxf8f6f4, E4M3 (atype 0) x E2M1 (btype 5 at bits 10-12), UE8M0, 1X scale ids = the byte.
  EXPECT(e4m3_e2m1_descriptor(128, 128, 3, 1) == (5u << 10 | 16u << 17 | 1u << 23 | 1u << 27 | 3u << 29 | 1u << 4));
  // Unpacked FP4 (16U4_ALIGN16B): 16 values = 8 packed bytes + 8 bytes of padding; value k's byte, nibble k % 2.
  for (int k = 0; k < 128; ++k) {
    const int b = unpacked_fp4_byte(k);
    EXPECT(b / 16 == k / 16 && b % 16 < 8 && b % 16 == (k % 16) / 2);
  }
  EXPECT(unpacked_fp4_byte(31) == 23 && unpacked_fp4_byte(32) == 32);  // a K32 MMA's slice is 32 bytes, as for E4M3
  // TMA SWIZZLE_128B writes byte c of box row r at base + 128 r + (c ^ 16 (r % 8)) (base 1024-aligned); the MMA of K step s
  // reads row r, byte b through operand_descriptor(base, 32 s): the same byte for every row, step and byte.
  for (uint32_t base : {0x0u, 0x4000u, 0x1C400u})
    for (int s = 0; s < 4; ++s)
      for (int r = 0; r < 128; ++r)
        for (int b = 0; b < 32; ++b) {
          const uint32_t c = 32 * s + b, written = base + 128 * r + (c ^ (16 * (r % 8)));
          if (operand_address(operand_descriptor(base, 32 * s), r, b) != written) {
            std::printf("FAIL operand read base %#x step %d row %d byte %d: %#x, TMA wrote %#x\n", base, s, r, b,
                        operand_address(operand_descriptor(base, 32 * s), r, b), written);
            return 1;
          }
        }
  // sm120: each 16-byte piece of a 128-row stage tile lands at its own offset inside the tile.
  using ms::sm120::e4m3_offset;
  using ms::sm120::fp4_offset;
  for (int e4m3 = 0; e4m3 < 2; ++e4m3) {
    std::set<int> seen;
    const int pieces = e4m3 ? 8 : 4, row_bytes = e4m3 ? 128 : 64;
    for (int r = 0; r < 128; ++r)
      for (int q = 0; q < pieces; ++q) {
        const int o = e4m3 ? e4m3_offset(r, q) : fp4_offset(r, q);
        EXPECT(o % 16 == 0 && o >= 0 && o < 128 * row_bytes && o / row_bytes == r);
        seen.insert(o);
      }
    EXPECT((int)seen.size() == 128 * pieces);
  }
  // Bank groups: an access phase is conflict-free when its byte ranges cover distinct 4-byte banks (32 banks).
  auto conflict_free = [](const int* offsets, int count, int bytes) {
    std::set<int> banks;
    for (int i = 0; i < count; ++i)
      for (int b = 0; b < bytes; b += 4) banks.insert((offsets[i] + b) / 4 % 32);
    return (int)banks.size() == count * bytes / 4;
  };
  for (int r0 = 0; r0 < 128; r0 += 8) {
    for (int q = 0; q < 4; ++q) {  // an ldmatrix matrix: 8 FP4 rows, one 16-byte piece each
      int rows[8];
      for (int i = 0; i < 8; ++i) rows[i] = fp4_offset(r0 + i, q);
      EXPECT(conflict_free(rows, 8, 16));
    }
    for (int s = 0; s < 4; ++s) {
      int b_loads[32], a_loads[2][16];  // W4A8 step s: B words (lane g, t), A 8-byte loads per half-warp
      for (int lane = 0; lane < 32; ++lane) {
        const int g = lane / 4, t = lane % 4;
        b_loads[lane] = fp4_offset(r0 + g, s) + 4 * t;
        a_loads[g / 4][(g % 4) * 4 + t] = e4m3_offset(r0 + g, 2 * s) + 8 * t;
      }
      EXPECT(conflict_free(b_loads, 32, 4));
      EXPECT(conflict_free(a_loads[0], 16, 8) && conflict_free(a_loads[1], 16, 8));
    }
  }
  // Stream-K: problems with a partial last wave on 132 and 114 CTAs, K from 8 to 130 blocks.
  for (int grid : {132, 114})
    for (int tiles : {grid + 1, grid + 12, 2 * grid - 1, 4096, 3584, 1024, 8192, 31 * grid + 4})
      for (int k_blocks : {8, 9, 17, 64, 130}) {
        const int dp = ms::stream_k_dp_tiles(tiles, k_blocks, grid, 8);
        EXPECT(dp != INT_MAX && dp % grid == 0 && tiles - dp >= grid && tiles - dp < 2 * grid);
        std::vector<int> done((size_t)tiles * k_blocks, 0), head_cta(tiles, -1), head_end(tiles, -1), tail_cta(tiles, -1), tail_begin(tiles, -1);
        for (int cta = 0; cta < grid; ++cta) {
          ms::Work w{};
          int items = 0, blocks = 0;
          for (int i = 0; ms::stream_k_item(dp, tiles, k_blocks, grid, cta, i, w); ++i, ++items) {
            EXPECT(w.tile >= 0 && w.tile < tiles && 0 <= w.kb0 && w.kb0 < w.kb1 && w.kb1 <= k_blocks);
            EXPECT((w.part == ms::kWhole) == (w.kb0 == 0 && w.kb1 == k_blocks));
            EXPECT(w.part != ms::kHead || (w.kb0 == 0 && i == dp / grid));   // a head starts at K 0 and runs first
            EXPECT(w.part != ms::kTail || w.kb1 == k_blocks);                // a tail ends the tile
            if (w.part == ms::kHead) head_cta[w.tile] = cta, head_end[w.tile] = w.kb1;
            if (w.part == ms::kTail) tail_cta[w.tile] = cta, tail_begin[w.tile] = w.kb0;
            for (int kb = w.kb0; kb < w.kb1; ++kb) ++done[(size_t)w.tile * k_blocks + kb];
            if (w.tile >= dp) blocks += w.kb1 - w.kb0;
          }
          const int units = (tiles - dp) * k_blocks;
          EXPECT(blocks == units * (cta + 1) / grid - units * cta / grid);  // balanced runs
        }
        for (int v : done) EXPECT(v == 1);
        for (int t = 0; t < tiles; ++t) {
          EXPECT((head_cta[t] < 0) == (tail_cta[t] < 0));
          if (head_cta[t] >= 0) EXPECT(tail_cta[t] == head_cta[t] + 1 && tail_begin[t] == head_end[t]);
        }
      }
  EXPECT(ms::stream_k_dp_tiles(132, 64, 132, 8) == INT_MAX && ms::stream_k_dp_tiles(264, 64, 132, 8) == INT_MAX);  // full waves
  EXPECT(ms::stream_k_dp_tiles(100, 64, 132, 8) == INT_MAX && ms::stream_k_dp_tiles(200, 7, 132, 8) == INT_MAX);  // one wave; short K
  EXPECT(ms::stream_k_dp_tiles(4096, 64, 132, 8) == 30 * 132);
  for (int tiles : {1, 100, 132, 300}) {  // no split: CTA c runs tiles c, c + grid, ... whole
    int count = 0;
    for (int cta = 0; cta < 132; ++cta) {
      ms::Work w{};
      for (int i = 0; ms::stream_k_item(INT_MAX, tiles, 9, 132, cta, i, w); ++i, ++count)
        EXPECT(w.tile == cta + i * 132 && w.tile < tiles && w.part == ms::kWhole && w.kb0 == 0 && w.kb1 == 9);
    }
    EXPECT(count == tiles);
  }

  // FP4 -> FP8 fold: exact for every code and shift (the value from the E4M3 decoder against E2M1 x 2^d in double, signs
  // included); one shift past either end is not representable for some code.
  for (int d = ms::kFoldMinShift; d <= ms::kFoldMaxShift; ++d)
    for (uint32_t code = 0; code < 16; ++code) {
      const uint8_t folded = ms::fold_e2m1_to_e4m3(code, d);
      EXPECT((double)ms::from_e4m3(folded) == std::ldexp((double)ms::from_e2m1(code), d));
      EXPECT((folded & 0x80) == ((code & 8) << 4) && (folded & 0x7F) != 0x7F);  // the sign kept; never NaN
    }
  EXPECT(std::ldexp(6.0, ms::kFoldMaxShift + 1) > 448.0 && std::ldexp(0.5, ms::kFoldMinShift - 1) < std::ldexp(1.0, -9));
  // fold8 (prmt form) against the scalar fold: every code in every nibble position at every shift, over a pseudo-random
  // background of the other seven codes.
  uint32_t seed = 12345;
  for (int d = ms::kFoldMinShift; d <= ms::kFoldMaxShift; ++d) {
    const ms::FoldLut lut = ms::fold_lut(d);
    for (int position = 0; position < 8; ++position)
      for (uint32_t code = 0; code < 16; ++code)
        for (int trial = 0; trial < 8; ++trial) {
          seed = seed * 1664525u + 1013904223u;
          const uint32_t packed = (seed & ~(0xFu << (4 * position))) | code << (4 * position);
          uint32_t lo = 0, hi = 0;
          ms::fold8(packed, lut, lo, hi);
          for (int v = 0; v < 8; ++v) {
            const uint32_t got = ((v < 4 ? lo : hi) >> (8 * (v % 4))) & 0xFF;
            EXPECT(got == ms::fold_e2m1_to_e4m3((packed >> (4 * v)) & 0xF, d));
          }
        }
  }
  {
    // Fold bases: blocks of 32 codes; a nonzero code (2 = 1.0) in every block unless zeroed.
    uint8_t codes[4 * 16], scales[4];
    auto row = [&](int s0, int s1, int s2, int s3, bool zero_first) {
      const int s[4] = {s0, s1, s2, s3};
      for (int b = 0; b < 4; ++b) {
        scales[b] = (uint8_t)s[b];
        for (int i = 0; i < 16; ++i) codes[b * 16 + i] = zero_first && b == 0 ? 0x88 : 0x22;  // (0x88: two negative zeros)
      }
    };
    int base = -1;
    row(127, 130, 120, 134, false);  // span 14: folds, base 134 - 6 = 128, shifts -8..6
    EXPECT(ms::fold_row_base(scales, codes, 4, base) && base == 128 && ms::fold_shift(120, base) == -8 && ms::fold_shift(134, base) == 6);
    row(127, 130, 119, 134, false);  // span 15: does not fold
    EXPECT(!ms::fold_row_base(scales, codes, 4, base));
    row(1, 130, 125, 134, true);     // the far block holds only zeros: folds, its shift clamped
    EXPECT(ms::fold_row_base(scales, codes, 4, base) && base == 128 && ms::fold_shift(1, base) == -8);
    row(127, 0xFF, 127, 127, false);  // a NaN scale never folds
    EXPECT(!ms::fold_row_base(scales, codes, 4, base));
    row(127, 3, 250, 127, false);
    for (auto& c : codes) c = 0;
    EXPECT(ms::fold_row_base(scales, codes, 4, base) && base == 0);  // zeros fold whatever their (finite) scales
    // A folded row reproduces the MXFP4 values: E4M3(fold) x 2^(base - 127) == E2M1 x 2^(e - 127), every code of the row.
    row(122, 127, 131, 133, false);
    for (int i = 0; i < 64; ++i) codes[i] = (uint8_t)(i * 37 + 11);
    EXPECT(ms::fold_row_base(scales, codes, 4, base));
    for (int b = 0; b < 4; ++b)
      for (int v = 0; v < 32; ++v) {
        const uint32_t code = (codes[b * 16 + v / 2] >> (4 * (v % 2))) & 0xF;
        const double mx = std::ldexp((double)ms::from_e2m1(code), scales[b] - 127);
        const double fp8 = std::ldexp((double)ms::from_e4m3(ms::fold_e2m1_to_e4m3(code, ms::fold_shift(scales[b], base))), base - 127);
        EXPECT(mx == fp8);
      }
  }

  // MS_LAYOUT_TILED_16X128 (common/formats.cuh): codes and scales of every (row, col) land on distinct bytes inside the tiled
  // size, and where the decode kernel reads them: lane L = 4 g + t of a warp reads the 16 bytes at 16 L (row g) and 512 + 16 L
  // (row g + 8) of each 1024-byte tile, its values 32 t ... 32 t + 31 of the tile's K range, and their scales at 2 L (MX:
  // rows g, g + 8) or 4 L (NVFP4: blocks 2 t, 2 t + 1 of row g, then of row g + 8).
  for (int rows : {16, 40}) {
    for (int cols : {128, 160, 512}) {
      const int chunks = ms::tiled_col_chunks(cols), row_tiles = (rows + 15) / 16;
      std::vector<int> code_bytes((size_t)row_tiles * chunks * 1024, 0);
      for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; c += 2) {
          const int64_t at = ms::tiled_code_offset(r, c, chunks);
          EXPECT(at >= 0 && at < (int64_t)code_bytes.size() && ms::tiled_code_offset(r, c + 1, chunks) == at);
          if (at >= 0 && at < (int64_t)code_bytes.size()) ++code_bytes[at];
          const int lane = (r % 8) * 4 + (c % 128) / 32, half = r % 16 / 8;
          EXPECT(at == ms::tiled_tile(r, c, chunks) * 1024 + half * 512 + lane * 16 + (c % 32) / 2);
        }
      for (int v : code_bytes) EXPECT(v <= 1);
      for (int block : {32, 16}) {
        const int per_tile = 16 * 128 / block;
        std::vector<int> scale_bytes((size_t)row_tiles * chunks * per_tile, 0);
        for (int r = 0; r < rows; ++r)
          for (int b = 0; b < (cols + block - 1) / block; ++b) {
            const int64_t at = ms::tiled_scale_offset(r, b, block, chunks);
            EXPECT(at >= 0 && at < (int64_t)scale_bytes.size());
            if (at >= 0 && at < (int64_t)scale_bytes.size()) ++scale_bytes[at];
            const int t = (b * block % 128) / 32, lane = (r % 8) * 4 + t, half = r % 16 / 8;
            const int64_t expected = ms::tiled_tile(r, b * block, chunks) * per_tile +
                                     (block == 32 ? lane * 2 + half : lane * 4 + half * 2 + (b % 2));
            EXPECT(at == expected);
          }
        for (int v : scale_bytes) EXPECT(v <= 1);
      }
    }
  }

  std::printf("%s: descriptor, swizzle, bank-conflict, stream-K, FP4-fold and tiled-layout checks\n", failures ? "FAIL" : "PASS");
  return failures ? 1 : 0;
}
