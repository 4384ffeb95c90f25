// Hopper FP8 GEMM family (sm_90a): FP8 per-tensor / per-row operands (E4M3 or E5M2) read by TMA straight from global
// memory into the shared wgmma kernel (sm90_gemm_kernel.cuh, which describes the pipeline), FP8 partial sums promoted into
// FP32 registers every 128 of K. This file holds the family's tile configs, their measured costs and the heuristic.
#include "sm90_gemm_kernel.cuh"

namespace ms {

namespace {

template <class C>
void launch_config(const ms_gemm_desc_t& d, const void* a, const void* b, const Sm90Params& p, int sms, const StreamKSpace& space,
                   cudaStream_t stream) {
  bool a5 = d.a_element == MS_ELEM_E5M2, b5 = d.b_element == MS_ELEM_E5M2;
  if (!a5 && !b5) launch_typed<kE4M3, kE4M3, C>(a, b, p, sms, space, stream);
  else if (!a5) launch_typed<kE4M3, kE5M2, C>(a, b, p, sms, space, stream);
  else if (!b5) launch_typed<kE5M2, kE4M3, C>(a, b, p, sms, space, stream);
  else launch_typed<kE5M2, kE5M2, C>(a, b, p, sms, space, stream);
}

// us_per_tile_block: 8192^3 per-tensor on the H100 (microscale_selftest --sweep, 2026-11-23): time / (waves x K blocks).
// (A 128x256 config as two promoted m64n128 halves, 0.962 us, never won and was dropped on 2026-12-02.)
const ConfigEntry kConfigs[] = {
    {"ms_sm90_fp8_gemm_nt_128x64x128_c1x1_s8_ws", launch_config<Config<64, 8, kPipelined>>, 64, 0.396},
    {"ms_sm90_fp8_gemm_nt_128x128x128_c1x1_s6_ws", launch_config<Config<128, 6, kPipelined>>, 128, 0.417},
    {"ms_sm90_fp8_gemm_nt_128x192x128_c1x1_s4_ws", launch_config<Config<192, 4, kPerBlock>>, 192, 0.698},
    // CTA pairs along M sharing B by TMA multicast: as fast as 128x128 alone on the H200, not faster (NOTES-sm90-fp8.md,
    // 2026-12-02), so forced-only.
    {"ms_sm90_fp8_gemm_nt_128x128x128_c2x1_s6_ws", launch_config<Config<128, 6, kPipelined, 2>>, 128, 0.0, 2},
    // Diagnostic: no promotion (breaks the NUMERICS.md s5 bound); only MS_FORCE_CONFIG runs it.
    {"ms_sm90_fp8_gemm_nt_128x256x128_c1x1_s3_ws_nopromotion", launch_config<Config<256, 3, kNone>>, 256, 0.0},
};

}  // namespace

bool sm90_fp8_gemm_can_implement(const ms_gemm_desc_t& d) {
  bool fp8 = (d.a_format == MS_FMT_FP8_TENSOR || d.a_format == MS_FMT_FP8_ROW) && (d.b_format == MS_FMT_FP8_TENSOR || d.b_format == MS_FMT_FP8_ROW);
  return fp8 && d.k % 16 == 0;
}

bool sm90_fp8_gemm_has_config(const char* name) { return find_config(kConfigs, name) != nullptr; }

size_t sm90_fp8_gemm_workspace_size(const ms_gemm_desc_t& d, const char* config, int sms) {
  // The stream-K tail's flags (in the counter area) and partials; without the workspace every tile runs whole.
  const ConfigEntry* entry = find_config(kConfigs, config);
  const size_t partials = entry ? stream_k_partial_bytes(d.m, d.n, d.k, entry->bn, kKPerBlock<kE4M3>, sms) : 0;
  return partials ? kWorkspaceCounterBytes + partials : 0;
}

const char* sm90_fp8_gemm_config(const ms_gemm_desc_t& d, int sms) {
  // pick_config's wave model picks 128x64 when 128-wide tiles would leave SMs idle (small M x N, e.g. 128x8192) and 128x128
  // elsewhere on the H100; the wider tiles win where their wave count rounds better.
  return pick_config(kConfigs, kConfigs[1], d.m, d.n, d.k, kKPerBlock<kE4M3>, sms).name;
}

void launch_sm90_fp8_gemm(const ms_gemm_desc_t& d, const char* config, const ms_gemm_operands_t& ops, int sms, void* workspace, size_t workspace_bytes,
                          cudaStream_t stream) {
  if (reinterpret_cast<uintptr_t>(ops.a.data) % 16 || reinterpret_cast<uintptr_t>(ops.b.data) % 16)
    fail(MS_ERR_MISALIGNED, "a", "the sm90 FP8 kernel needs 16-byte aligned A and B data");
  const ConfigEntry* entry = find_config(kConfigs, config);
  if (!entry) fail(MS_ERR_INVALID_ARGUMENT, "config", "no sm90 FP8 GEMM config named %s", config);
  Sm90Params p = params_of(d, ops, ops.a.decode_scales, d.a_format == MS_FMT_FP8_ROW, ops.b.decode_scales, d.b_format == MS_FMT_FP8_ROW);
  const StreamKSpace space{workspace, workspace_bytes, workspace ? static_cast<uint8_t*>(workspace) + kWorkspaceCounterBytes : nullptr};
  entry->launch(d, ops.a.data, ops.b.data, p, sms, space, stream);
}

}  // namespace ms
