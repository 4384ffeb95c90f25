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

// A 2D tensor map over a row-major [rows, cols] matrix of `element_bytes` elements with a box of box_cols x box_rows and
// 128-byte swizzle (box_cols * element_bytes must be 128); out-of-range elements of a box read as zero. CUtensorMapDataType:
// 0 UINT8, 1 UINT16.
inline TensorMap make_map(const void* base, int rows, int cols, int element_bytes, int box_cols, int box_rows) {
  static EncodeTiled encode = reinterpret_cast<EncodeTiled>(Driver::get().symbol("cuTensorMapEncodeTiled"));
  if (!encode) fail(MS_ERR_CUDA, "", "cuTensorMapEncodeTiled is not available from the CUDA driver");
  TensorMap map;
  uint64_t dims[2] = {(uint64_t)cols, (uint64_t)rows};
  uint64_t strides[1] = {(uint64_t)cols * element_bytes};
  uint32_t box[2] = {(uint32_t)box_cols, (uint32_t)box_rows};
  uint32_t element_strides[2] = {1, 1};
  const int data_type = element_bytes == 1 ? 0 : 1, interleave_none = 0, swizzle_128b = 3, l2_promotion_256b = 3, oob_fill_zero = 0;
  int result = encode(&map, data_type, 2, const_cast<void*>(base), dims, strides, box, element_strides, interleave_none, swizzle_128b,
                      l2_promotion_256b, oob_fill_zero);
  if (result != 0) fail(MS_ERR_CUDA, "", "cuTensorMapEncodeTiled failed with CUresult %d (rows %d, cols %d)", result, rows, cols);
  return map;
}

}  // namespace ms
