// Hopper FP8 GEMM family (sm_90a): FP8 per-tensor / per-row operands (E4M3 or E5M2) read by TMA straight from global
// memory into the shared wgmma kernel (sm90_gemm_kernel.cuh, which describes the pipeline), FP8 partial sums promoted into
// FP32 registers every 128 of K; and MXFP8 x MXFP8 (linear E8M0 scales per 32 on both sides), promoted every 32 of K with
// the blocks' scales. This file holds the family's tile configs, their measured costs and the heuristic.
#include "sm90_gemm_kernel.cuh"
#include "common/block_scales.h"

namespace ms {

namespace {

template <class C>
void launch_config(const ms_gemm_desc_t& d, const void* a, const void* b, const Sm90Params& p, int sms, cudaStream_t stream) {
  bool a5 = d.a_element == MS_ELEM_E5M2, b5 = d.b_element == MS_ELEM_E5M2;
  if (!a5 && !b5) launch_typed<kE4M3, kE4M3, C>(a, b, p, sms, stream);
  else if (!a5) launch_typed<kE4M3, kE5M2, C>(a, b, p, sms, stream);
  else if (!b5) launch_typed<kE5M2, kE4M3, C>(a, b, p, sms, stream);
  else launch_typed<kE5M2, kE5M2, C>(a, b, p, sms, stream);
}

// us_per_tile_block: 8192^3 per-tensor on the H100 (microscale_selftest --sweep, 2026-11-23): time / (waves x K blocks).
const ConfigEntry kConfigs[] = {
    {"ms_sm90_fp8_gemm_nt_128x64x128_c1x1_s8_ws", launch_config<Config<64, 8, kPipelined>>, 64, 0.396},
    {"ms_sm90_fp8_gemm_nt_128x128x128_c1x1_s6_ws", launch_config<Config<128, 6, kPipelined>>, 128, 0.417},
    {"ms_sm90_fp8_gemm_nt_128x192x128_c1x1_s4_ws", launch_config<Config<192, 4, kPerBlock>>, 192, 0.698},
    {"ms_sm90_fp8_gemm_nt_128x256x128_c1x1_s3_ws", launch_config<Config<256, 3, kHalves>>, 256, 0.962},
    // Diagnostic: no promotion (breaks the NUMERICS.md s5 bound); only MS_FORCE_CONFIG runs it.
    {"ms_sm90_fp8_gemm_nt_128x256x128_c1x1_s3_ws_nopromotion", launch_config<Config<256, 3, kNone>>, 256, 0.0},
};
// MXFP8 x MXFP8: one config (its k32 partial sits beside the total, so N is 128; 5 stages leave room for the staged scales).
const ConfigEntry kMxConfig{"ms_sm90_fp8_gemm_nt_128x128x128_c1x1_s5_ws_mx32", launch_config<Config<128, 5, kBlockScaled>>, 128, 0.0};

bool is_fp8(int format) { return format == MS_FMT_FP8_TENSOR || format == MS_FMT_FP8_ROW; }
bool is_mx_pair(const ms_gemm_desc_t& d) {
  return d.a_format == MS_FMT_MXFP8 && d.b_format == MS_FMT_MXFP8 && d.a_layout == MS_LAYOUT_LINEAR && d.b_layout == MS_LAYOUT_LINEAR;
}
const ConfigEntry* find_any(const char* name) {
  if (std::strcmp(name, kMxConfig.name) == 0) return &kMxConfig;
  return find_config(kConfigs, name);
}

}  // namespace

bool sm90_fp8_gemm_can_implement(const ms_gemm_desc_t& d) {
  // TMA row strides are whole 16-byte pieces: FP8 per-tensor / per-row rows are K bytes; MXFP8 rows K padded to 32.
  return (is_fp8(d.a_format) && is_fp8(d.b_format) && d.k % 16 == 0) || is_mx_pair(d);
}

bool sm90_fp8_gemm_by_default(const ms_gemm_desc_t& d) {
  // MXFP8 x MXFP8 stays with the BF16 family (exact BF16 copies, BF16 wgmma) until the k32-promoted FP8 config is measured
  // faster there; until then it runs only when forced (MS_FORCE_CONFIG).
  return sm90_fp8_gemm_can_implement(d) && !is_mx_pair(d);
}

bool sm90_fp8_gemm_has_config(const char* name) { return find_any(name) != nullptr; }

bool sm90_fp8_gemm_config_fits(const ms_gemm_desc_t& d, const char* name) {
  const ConfigEntry* entry = find_any(name);
  return entry && (entry == &kMxConfig) == is_mx_pair(d);
}

size_t sm90_fp8_gemm_workspace_size(const ms_gemm_desc_t& d, const char* config, int sms) {
  // No workspace yet: a split-K last wave that used one was correct but made every shape ~7% slower on the H100
  // (2026-11-23, see NOTES-sm90-fp8.md); the ABI keeps the workspace for it.
  (void)d, (void)config, (void)sms;
  return 0;
}

const char* sm90_fp8_gemm_config(const ms_gemm_desc_t& d, int sms) {
  if (is_mx_pair(d)) return kMxConfig.name;
  // pick_config's wave model picks 128x64 when 128-wide tiles would leave SMs idle (small M x N, e.g. 128x8192) and 128x128
  // elsewhere on the H100; the wider tiles win where their wave count rounds better.
  return pick_config(kConfigs, kConfigs[1], d.m, d.n, d.k, kKPerBlock<kE4M3>, sms).name;
}

void launch_sm90_fp8_gemm(const ms_gemm_desc_t& d, const char* config, const ms_gemm_operands_t& ops, int sms, void* workspace, cudaStream_t stream) {
  if (reinterpret_cast<uintptr_t>(ops.a.data) % 16 || reinterpret_cast<uintptr_t>(ops.b.data) % 16)
    fail(MS_ERR_MISALIGNED, "a", "the sm90 FP8 kernel needs 16-byte aligned A and B data");
  const ConfigEntry* entry = find_any(config);
  if (!entry) fail(MS_ERR_INVALID_ARGUMENT, "config", "no sm90 FP8 GEMM config named %s", config);
  (void)workspace;
  Sm90Params p = params_of(d, ops, ops.a.decode_scales, d.a_format == MS_FMT_FP8_ROW, ops.b.decode_scales, d.b_format == MS_FMT_FP8_ROW);
  if (is_mx_pair(d)) {
    p.scale_a = p.scale_b = nullptr;  // MX operands carry no decode scales
    p.blocks = scale_blocks(MS_FMT_MXFP8, d.k);
    p.a_row_bytes = p.b_row_bytes = padded_k(MS_FMT_MXFP8, d.k);
    p.block_scales_a = static_cast<const uint8_t*>(ops.a.block_scales);
    p.block_scales_b = static_cast<const uint8_t*>(ops.b.block_scales);
  }
  entry->launch(d, ops.a.data, ops.b.data, p, sms, stream);
}

}  // namespace ms
