// Stream-K tail of a persistent GEMM (CUTLASS's data-parallel + stream-K hybrid), host-visible so descriptor_test.cpp can
// check the decomposition. The first dp_tiles tiles go to the CTAs round-robin, whole; the last S tiles (grid <= S < 2 x
// grid) are cut along K into one run of S x k_blocks / grid K blocks per CTA, so the last wave leaves no SM idle. A run of at
// least k_blocks blocks meets a tile at most twice, so a tile is whole or split in two: its head (from K block 0) ends CTA
// b's run, its tail starts CTA b + 1's. A CTA does its head first (FP32 partial to the workspace, then a flag) and its tail
// last (waits for the flag, adds the partial: always the same order, so results do not depend on timing); no CTA waits for
// one that is itself waiting.
#pragma once
#include <climits>

namespace ms {

enum Part { kWhole, kHead, kTail };
// One unit of a CTA's work: K blocks [kb0, kb1) of a tile.
struct Work {
  int tile, kb0, kb1, part;
};

// The first tile split along K, or INT_MAX when every tile runs whole: with more tiles than CTAs and a partial last wave,
// every wave but the last full one runs whole and the rest is split; tiles of fewer than `min_blocks` K blocks are not.
// (stream_k_item runs in every role's loop, in 32-bit arithmetic: units x grid < 2^31, which 2 grid^2 k_blocks bounds.)
inline int stream_k_dp_tiles(long tiles, int k_blocks, int grid, int min_blocks) {
  if (grid <= 0 || tiles <= grid || tiles % grid == 0 || k_blocks < min_blocks || 2LL * grid * grid * k_blocks >= INT_MAX) return INT_MAX;
  return (int)(tiles / grid - 1) * grid;
}

// Item i of CTA `cta`'s work (in the order it runs them), false past its last.
__host__ __device__ inline bool stream_k_item(int dp_tiles, int tiles, int k_blocks, int grid, int cta, int i, Work& w) {
  const int tile = cta + i * grid;
  if (tile < dp_tiles && tile < tiles) { w = Work{tile, 0, k_blocks, kWhole}; return true; }
  if (dp_tiles >= tiles) return false;
  int j = i - dp_tiles / grid;  // the item in this CTA's stream-K run (dp_tiles is a multiple of the grid)
  const int units = (tiles - dp_tiles) * k_blocks;
  const int u0 = units * cta / grid, u1 = units * (cta + 1) / grid;
  const int first = u0 / k_blocks, last = (u1 - 1) / k_blocks;
  const int tail_kb0 = u0 - first * k_blocks, head_kb1 = u1 - last * k_blocks;
  const bool tail = tail_kb0 != 0, head = head_kb1 != k_blocks;
  if (head) {
    if (j == 0) { w = Work{dp_tiles + last, 0, head_kb1, kHead}; return true; }
    --j;
  }
  const int whole_first = first + (tail ? 1 : 0), wholes = last + (head ? 0 : 1) - whole_first;
  if (j < wholes) { w = Work{dp_tiles + whole_first + j, 0, k_blocks, kWhole}; return true; }
  if (tail && j == wholes) { w = Work{dp_tiles + first, tail_kb0, k_blocks, kTail}; return true; }
  return false;
}

}  // namespace ms
