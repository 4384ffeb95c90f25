// TMA tensor maps (CUtensorMap, encoded through the driver API) for the families that load tiles with cp.async.bulk.tensor:
// the Hopper wgmma kernel (sm90_gemm_kernel.cuh) and the datacenter Blackwell family (sm100_fp4_gemm_nt.cu).
#pragma once
#include <cstdint>
#include "microscale.h"
#include "../../src/driver.h"
#include "../../src/error.h"

namespace ms {

struct alignas(64) TensorMap { uint64_t opaque[16]; };  // CUtensorMap

using EncodeTiled = int (*)(TensorMap*, int, uint32_t, void*, const uint64_t*, const uint64_t*, const uint32_t*, const uint32_t*, int, int, int, int);

// CUtensorMapDataType and CUtensorMapSwizzle values used here.
enum MapDataType { kMapU8 = 0, kMapU16 = 1, kMapFp4Unpacked = 14 /* 16U4_ALIGN16B: 16 FP4 + 8 bytes of padding in shared memory */ };
enum MapSwizzle { kMapSwizzleNone = 0, kMapSwizzle128B = 3 };

// A 2D tensor map over a row-major [rows, cols] matrix (cols in elements, rows row_bytes apart) with a box of box_cols x
// box_rows; out-of-range elements of a box read as zero.
inline TensorMap make_map(const void* base, int rows, int cols, int64_t row_bytes, MapDataType type, int box_cols, int box_rows, MapSwizzle swizzle) {
  static EncodeTiled encode = reinterpret_cast<EncodeTiled>(Driver::get().symbol("cuTensorMapEncodeTiled"));
  if (!encode) fail(MS_ERR_CUDA, "", "cuTensorMapEncodeTiled is not available from the CUDA driver");
  TensorMap map;
  uint64_t dims[2] = {(uint64_t)cols, (uint64_t)rows};
  uint64_t strides[1] = {(uint64_t)row_bytes};
  uint32_t box[2] = {(uint32_t)box_cols, (uint32_t)box_rows};
  uint32_t element_strides[2] = {1, 1};
  const int interleave_none = 0, l2_promotion_256b = 3, oob_fill_zero = 0;
  int result = encode(&map, type, 2, const_cast<void*>(base), dims, strides, box, element_strides, interleave_none, swizzle,
                      l2_promotion_256b, oob_fill_zero);
  if (result != 0) fail(MS_ERR_CUDA, "", "cuTensorMapEncodeTiled failed with CUresult %d (rows %d, cols %d, type %d)", result, rows, cols, (int)type);
  return map;
}
// ... of 1- or 2-byte elements with 128-byte swizzle (box_cols * element_bytes must be 128).
inline TensorMap make_map(const void* base, int rows, int cols, int element_bytes, int box_cols, int box_rows) {
  return make_map(base, rows, cols, (int64_t)cols * element_bytes, element_bytes == 1 ? kMapU8 : kMapU16, box_cols, box_rows, kMapSwizzle128B);
}

}  // namespace ms
