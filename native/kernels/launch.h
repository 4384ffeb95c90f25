// Host-side entry points of the kernel families (what src/api_*.cpp calls). One function per family operation.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <cuda_runtime_api.h>
#include "microscale.h"

namespace ms {

// What a quantize / rotate / check launch needs, resolved from the C ABI structs.
struct QuantizeLaunch {
  int rows, cols, padded_cols, scale_cols;
  int format;        // MS_FMT_*; -1 for rotate-only
  int kind;          // element kind: 0 e2m1, 1 e4m3, 2 e5m2
  int rule;          // 0 floor, 1 ceil
  int swizzled;
  int src_dtype;
  int hadamard;      // 0 or g
  const float* signs;
  const void* src;
  uint8_t* data;
  uint8_t* block_scales;
  float* decode_scales;
  int* amax_workspace;  // rows ints (per-row) or 1
  int stochastic;       // NUMERICS.md s7 rounding of the elements, keyed by seed
  uint64_t seed;
  int two_d;            // NVFP4 16 x 16 blocks (NUMERICS.md s9): the dual kernel only
};

// One orientation of a dual quantization: the format and options of its destination.
struct DualSide {
  int on, format, kind, rule, swizzled, hadamard, stochastic;
  int two_d;  // NVFP4 16 x 16 blocks (row side only)
  uint64_t seed;
  const float* signs;
  uint8_t* data;
  uint8_t* block_scales;
  float* decode_scales;
};

// The side a single-orientation launch describes.
inline DualSide dual_side_of(const QuantizeLaunch& q) {
  return DualSide{1, q.format, q.kind, q.rule, q.swizzled, q.hadamard, q.stochastic, q.two_d, q.seed, q.signs, q.data, q.block_scales,
                  q.decode_scales};
}

// Both orientations of src [rows, cols] in one read (smxx_quantize_dual.cu): side[0] = Quantize(src) [rows, cols],
// side[1] = Quantize(src^T) [cols, rows]; either may be off.
struct DualLaunch {
  const void* src;
  int src_dtype, rows, cols;
  DualSide side[2];
  int* amax_workspace;  // 2 ints (NVFP4 tensor amax of each side)
};

void launch_quantize(const QuantizeLaunch& q, int multiprocessors, cudaStream_t stream);
// The bandwidth-bound BF16 activation quantizer (smxx_quantize_bf16.cu); false when the launch is not one it takes (then
// launch_quantize uses the generic kernels). Rows: FP8 per-row, one pass. Segments: MX, NVFP4 and FP8 per-tensor, after
// the tensor scale is in q.decode_scales.
bool launch_quantize_bf16_rows(const QuantizeLaunch& q, cudaStream_t stream);
// The tensor amax (NVFP4, FP8 per-tensor) of BF16 rows the segment kernel takes, into q.amax_workspace[0] (zeroed first).
bool launch_quantize_bf16_amax(const QuantizeLaunch& q, int multiprocessors, cudaStream_t stream);
bool launch_quantize_bf16_segments(const QuantizeLaunch& q, int multiprocessors, cudaStream_t stream);
// The tile kernel of both orientations (smxx_quantize_dual.cu) takes MXFP4, MXFP8 and NVFP4 from F32 or BF16 sources
// (K a multiple of 4 / 8, 16-byte aligned source and data) with rotations of 16 or 32; launch_quantize uses it for a
// stochastically rounded launch it takes.
bool dual_quantize_eligible(const QuantizeLaunch& q);
constexpr size_t kDualWorkspaceBytes = 2 * sizeof(int);
void launch_quantize_dual(const DualLaunch& d, int multiprocessors, cudaStream_t stream);
// Zeroes the swizzled 128x4 scale layout of [rows, scale_cols] scales, padding included (quantizers write only real blocks).
void clear_swizzled_scales(uint8_t* block_scales, int rows, int scale_cols, cudaStream_t stream);
// Writes the first non-finite row-major index (or INT64_MAX) of the (rotated) source to *device_index.
void launch_find_nonfinite(const QuantizeLaunch& q, unsigned long long* device_index, cudaStream_t stream);
void launch_rotate(const QuantizeLaunch& q, float* dst, cudaStream_t stream);
void launch_dequantize(const ms_qtensor_t& q, float* dst, cudaStream_t stream);
// Bytes of a quantized tensor's codes and block scales in its layout (include/microscale.h, ms_qtensor_bytes).
size_t qtensor_data_bytes(const ms_qtensor_t& t);
size_t qtensor_scale_bytes(const ms_qtensor_t& t);
// src's codes and block scales into dst's layout (smxx_relayout.cu); the same format and shape, every dst byte written.
void launch_relayout(const ms_qtensor_t& src, const ms_qtensor_t& dst, cudaStream_t stream);

// GGUF MXFP4 (32 values per block) / NVFP4 (64) blocks of a [rows, cols] tensor into dst (MXFP4 / NVFP4, data 16-byte aligned).
void launch_gguf_repack(int values_per_block, const void* src, int rows, int cols, const ms_qtensor_t& dst, float global_scale, int multiprocessors,
                        cudaStream_t stream);

// The first bytes of every GEMM workspace: the decode plans' split-K counters. Every plan leaves them zero, so one
// workspace serves every plan in turn (microscale.h).
constexpr size_t kWorkspaceCounterBytes = 16384;

// Hopper FP8 tensor-core GEMM (sm_90a wgmma + TMA) for FP8 per-tensor / per-row pairs. Configs are named
// ms_sm90_fp8_gemm_nt_<BM>x<BN>x<BK>_c1x1_s<stages>_ws[_variant]; the heuristic picks one from the problem and SM count.
bool sm90_fp8_gemm_can_implement(const ms_gemm_desc_t& desc);
bool sm90_fp8_gemm_has_config(const char* name);
const char* sm90_fp8_gemm_config(const ms_gemm_desc_t& desc, int multiprocessors);
// Device workspace the config needs for this problem (0 when it needs none: the stream-K tail's partials, see
// sm90_gemm_kernel.cuh); without it, or with fewer than that many `workspace_bytes`, every tile runs whole.
size_t sm90_fp8_gemm_workspace_size(const ms_gemm_desc_t& desc, const char* config, int multiprocessors);
void launch_sm90_fp8_gemm(const ms_gemm_desc_t& desc, const char* config, const ms_gemm_operands_t& ops, int multiprocessors, void* workspace,
                          size_t workspace_bytes, cudaStream_t stream);

// Hopper BF16 tensor-core GEMM (sm_90a wgmma + TMA) for block-scaled and FP4 operands: A and B dequantized into BF16 in the
// workspace (exact), then the shared sm90 kernel (sm90_bf16_gemm_nt.cu). Configs ms_sm90_bf16_gemm_nt_<BM>x<BN>x<BK>_...;
// it needs the workspace (sm90_bf16_gemm_workspace_size) and 16-byte aligned operands, else the caller runs another kernel.
bool sm90_bf16_gemm_can_implement(const ms_gemm_desc_t& desc);
bool sm90_bf16_gemm_has_config(const char* name);
const char* sm90_bf16_gemm_config(const ms_gemm_desc_t& desc, int multiprocessors);
size_t sm90_bf16_gemm_workspace_size(const ms_gemm_desc_t& desc, const char* config, int multiprocessors);
bool sm90_bf16_gemm_operands_aligned(const ms_gemm_operands_t& ops);
void launch_sm90_bf16_gemm(const ms_gemm_desc_t& desc, const char* config, const ms_gemm_operands_t& ops, int multiprocessors, void* workspace,
                           size_t workspace_bytes, cudaStream_t stream);

// Hopper W4A8 GEMM (sm90_w4a8_gemm_nt.cu): FP8 E4M3 per-tensor / per-token activations x MXFP4 weights (linear layout, K a
// multiple of 128), the weights' 4-bit codes folded exactly into E4M3 wgmma register fragments in the kernel. Configs
// ms_sm90_w4a8_gemm_nt_<tokens>x128x128_s<stages>; no workspace. Misaligned operands (16-byte codes and activations, 4-byte
// scales) make the caller run another kernel.
bool sm90_w4a8_gemm_can_implement(const ms_gemm_desc_t& desc);
bool sm90_w4a8_gemm_has_config(const char* name);
const char* sm90_w4a8_gemm_config(const ms_gemm_desc_t& desc, int multiprocessors);
bool sm90_w4a8_gemm_operands_aligned(const ms_gemm_operands_t& ops);
void launch_sm90_w4a8_gemm(const ms_gemm_desc_t& desc, const char* config, const ms_gemm_operands_t& ops, int multiprocessors, cudaStream_t stream);

// GeForce Blackwell block-scaled FP4 GEMM (sm120_fp4_gemm_nt.cu): MXFP4 x MXFP4, NVFP4 x NVFP4 and E4M3 (MXFP8, FP8 per-token /
// per-tensor) x MXFP4 on mma.sync ... block_scale; one config per pair, ms_sm120_fp4_gemm_nt_<kind>_128x128x128_w2x4_s<stages>.
// Runs natively on sm_120 / sm_121, and on sm_90 with the MMA emulated in software (for the tests, only when forced).
// Linear block scales are swizzled into the workspace first (size from sm120_fp4_gemm_workspace_size).
bool sm120_fp4_gemm_can_implement(const ms_gemm_desc_t& desc);
bool sm120_fp4_gemm_has_config(const char* name);
const char* sm120_fp4_gemm_config(const ms_gemm_desc_t& desc);  // null when no config takes the pair
bool sm120_fp4_gemm_config_fits(const ms_gemm_desc_t& desc, const char* name);
size_t sm120_fp4_gemm_workspace_size(const ms_gemm_desc_t& desc);
bool sm120_fp4_gemm_operands_aligned(const ms_gemm_operands_t& ops);  // else the caller runs another kernel
void launch_sm120_fp4_gemm(const ms_gemm_desc_t& desc, const ms_gemm_operands_t& ops, void* workspace, cudaStream_t stream);

// Datacenter Blackwell block-scaled FP4 GEMM (sm100_fp4_gemm_nt.cu): MXFP4 x MXFP4 and NVFP4 x NVFP4 on tcgen05.mma
// kind::mxf4nvf4, and W4A8 (MXFP8 / FP8 per-token / per-tensor E4M3 x MXFP4) on kind::mxf8f6f4; persistent, one CTA per
// 128 x 128 tile (1sm) or a CTA pair per 256 x 128 (2sm, cta_group::2, from 1024 rows of A); configs
// ms_sm100_fp4_gemm_nt_{mxf4,nvf4}_{128x128x256_1sm,256x128x256_2sm}_s6, ..._w4a8_{128x128x128_1sm,256x128x128_2sm}_s5. Runs natively on sm_100 / sm_103,
// and on sm_90 with TMEM and tcgen05 emulated in software (`emulated`: TMEM lives in the workspace; tests only, when forced).
// Linear block scales are swizzled into the workspace first.
// Left out with -DMICROSCALE_SM100_FAMILY=OFF; then no problem is one it can implement.
#ifdef MS_WITH_SM100_FAMILY
bool sm100_fp4_gemm_can_implement(const ms_gemm_desc_t& desc);
bool sm100_fp4_gemm_has_config(const char* name);
const char* sm100_fp4_gemm_config(const ms_gemm_desc_t& desc);  // null when no config takes the pair
bool sm100_fp4_gemm_config_fits(const ms_gemm_desc_t& desc, const char* name);
size_t sm100_fp4_gemm_workspace_size(const ms_gemm_desc_t& desc, int multiprocessors, bool emulated);
bool sm100_fp4_gemm_operands_aligned(const ms_gemm_operands_t& ops);  // else the caller runs another kernel
void launch_sm100_fp4_gemm(const ms_gemm_desc_t& desc, const char* config, const ms_gemm_operands_t& ops, int multiprocessors, bool emulated,
                           void* workspace, cudaStream_t stream);
#else
inline bool sm100_fp4_gemm_can_implement(const ms_gemm_desc_t&) { return false; }
inline bool sm100_fp4_gemm_has_config(const char*) { return false; }
inline const char* sm100_fp4_gemm_config(const ms_gemm_desc_t&) { return nullptr; }
inline bool sm100_fp4_gemm_config_fits(const ms_gemm_desc_t&, const char*) { return false; }
inline size_t sm100_fp4_gemm_workspace_size(const ms_gemm_desc_t&, int, bool) { return 0; }
inline bool sm100_fp4_gemm_operands_aligned(const ms_gemm_operands_t&) { return false; }
inline void launch_sm100_fp4_gemm(const ms_gemm_desc_t&, const char*, const ms_gemm_operands_t&, int, bool, void*, cudaStream_t) {}
#endif

// Decode GEMM (sm_80+, M <= 64): BF16 or FP8 activations x FP4 (MX / NV) or FP8 (per-tensor / per-row) weights, weights
// streamed once (sm80_decode_gemm_nt.cu). The workspace (size from decode_gemm_workspace_size) lets it split K over CTAs;
// it must be zero-filled before its first use and every run leaves its counter area zero. `programmatic` (sm_90+): launched
// as a programmatic dependent of the previous kernel on the stream (desc.flags MS_GEMM_STATIC_WEIGHTS: B read before it ends).
bool decode_gemm_can_implement(const ms_gemm_desc_t& desc);
std::string decode_gemm_config(const ms_gemm_desc_t& desc);
size_t decode_gemm_workspace_size(const ms_gemm_desc_t& desc, int multiprocessors);
bool decode_gemm_operands_aligned(const ms_gemm_operands_t& ops);  // else the caller runs the generic kernel
void launch_decode_gemm(const ms_gemm_desc_t& desc, const ms_gemm_operands_t& ops, int multiprocessors, void* workspace, size_t workspace_bytes,
                        bool programmatic, cudaStream_t stream);

// The generic CUDA-core GEMM for every pair (any sm >= 80).
void launch_gemm_generic(const ms_gemm_desc_t& desc, const ms_gemm_operands_t& ops, cudaStream_t stream);
extern const char* const kGemmGenericName;

}  // namespace ms
