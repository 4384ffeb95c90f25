// Shared-memory layout of the sm120 FP4 family's stage tiles (sm120_fp4_gemm_nt.cu), host-visible for
// native/tests/descriptor_test.cpp, which checks that every fragment load the kernel issues is free of bank conflicts.
#pragma once
#include "formats.cuh"

namespace ms::sm120 {

constexpr int kFp4StageRowBytes = 64;    // 128 FP4 values of K per stage row
constexpr int kE4m3StageRowBytes = 128;  // 128 E4M3 values (W4A8's activations)

// Offset of 16-byte piece p of tile row r. FP4 rows: piece p ^ ((r / 2) % 4), so the 8 rows of an ldmatrix (or of W4A8's B
// loads) hit 8 different 16-byte bank groups. E4M3 rows: the 32-byte half-chunk p / 2 is XORed with r % 4, so W4A8's 8-byte
// loads (rows g, bytes 8t of a 32-byte chunk) cover all banks in each half-warp.
MS_HD int fp4_offset(int r, int p) { return r * kFp4StageRowBytes + ((p ^ ((r >> 1) & 3)) << 4); }
MS_HD int e4m3_offset(int r, int p) { return r * kE4m3StageRowBytes + ((((p >> 1) ^ (r & 3)) << 1 | (p & 1)) << 4); }

}  // namespace ms::sm120
