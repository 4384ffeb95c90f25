// The C ABI (include/microscale.h): argument checks with messages naming the argument and its value, then the launch.
// Every body is MS_API_BEGIN ... MS_API_END, so no C++ exception crosses the ABI.
#include <cuda_runtime_api.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>

#include "../kernels/launch.h"
#include "driver.h"
#include "error.h"

#ifndef MS_VERSION_STRING
#define MS_VERSION_STRING "0.1.0"
#endif

namespace {

bool is_mx(int f) { return f == MS_FMT_MXFP4 || f == MS_FMT_MXFP8 || f == MS_FMT_MXINT8; }
bool is_block_format(int f) { return is_mx(f) || f == MS_FMT_NVFP4; }
bool is_fp4(int f) { return f == MS_FMT_MXFP4 || f == MS_FMT_NVFP4; }
int block_size(int f) { return f == MS_FMT_NVFP4 ? 16 : is_mx(f) ? 32 : 0; }
int padded_cols(int f, int cols) { int b = block_size(f); return b ? (cols + b - 1) / b * b : cols; }
int element_kind(int f, int element) { return is_fp4(f) ? 0 : f == MS_FMT_MXINT8 ? 3 : element == MS_ELEM_E5M2 ? 2 : 1; }  // formats.cuh kinds
int dtype_size(int dtype) { return dtype == MS_DTYPE_F32 ? 4 : 2; }

const char* format_name(int f) {
  switch (f) {
    case MS_FMT_MXFP4: return "mxfp4";
    case MS_FMT_MXFP8: return "mxfp8";
    case MS_FMT_NVFP4: return "nvfp4";
    case MS_FMT_FP8_TENSOR: return "fp8-tensor";
    case MS_FMT_FP8_ROW: return "fp8-row";
    case MS_FMT_MXINT8: return "mxint8";
    case MS_FMT_DENSE: return "dense";
    default: return "unknown";
  }
}

void check_aligned(const void* p, size_t alignment, const char* arg) {
  if (reinterpret_cast<uintptr_t>(p) % alignment != 0)
    ms::fail(MS_ERR_MISALIGNED, arg, "%s: must be %zu-byte aligned, got address %p", arg, alignment, p);
}

void check_struct(uint32_t got, size_t expected, const char* arg) {
  if (got < expected)
    ms::fail(MS_ERR_ABI_MISMATCH, arg, "%s: struct_size %u is smaller than this library's %zu (ABI %d)", arg, got, expected, MS_ABI_VERSION);
}

// The description of t without its pointers (format, element, layout, shape); false for a dense operand.
bool check_qtensor_shape(const ms_qtensor_t* t, const char* arg) {
  MS_CHECK_ARG(t != nullptr, arg, "%s: must not be NULL", arg);
  check_struct(t->struct_size, sizeof(ms_qtensor_t), arg);
  MS_CHECK_ARG(t->rows >= 1 && t->cols >= 1, arg, "%s: rows and cols must be >= 1, got [%d, %d]", arg, t->rows, t->cols);
  if (t->format == MS_FMT_DENSE) return false;
  MS_CHECK_ARG(t->format >= MS_FMT_MXFP4 && t->format <= MS_FMT_MXINT8, arg, "%s: unknown format %d", arg, t->format);
  MS_CHECK_ARG(t->element == MS_ELEM_E4M3 || (t->element == MS_ELEM_E5M2 && !is_fp4(t->format) && t->format != MS_FMT_MXINT8), arg,
               "%s: element %d does not apply to %s", arg, t->element, format_name(t->format));
  MS_CHECK_ARG(t->layout == MS_LAYOUT_LINEAR || (t->layout == MS_LAYOUT_SWIZZLED_128X4 && is_block_format(t->format)) ||
                   (t->layout == MS_LAYOUT_TILED_16X128 && is_fp4(t->format)),
               arg, "%s: layout %d does not apply to %s", arg, t->layout, format_name(t->format));
  return true;
}

void check_qtensor(const ms_qtensor_t* t, const char* arg) {
  if (!check_qtensor_shape(t, arg)) {
    MS_CHECK_ARG(t->dtype >= MS_DTYPE_F32 && t->dtype <= MS_DTYPE_F16, arg, "%s: unknown dtype %d", arg, t->dtype);
    MS_CHECK_ARG(t->dense != nullptr, arg, "%s.dense: must not be NULL", arg);
    check_aligned(t->dense, dtype_size(t->dtype), arg);
    return;
  }
  MS_CHECK_ARG(t->data != nullptr, arg, "%s.data: must not be NULL", arg);
  if (is_block_format(t->format)) MS_CHECK_ARG(t->block_scales != nullptr, arg, "%s.block_scales: must not be NULL for %s", arg, format_name(t->format));
  if (!is_mx(t->format)) {
    MS_CHECK_ARG(t->decode_scales != nullptr, arg, "%s.decode_scales: must not be NULL for %s", arg, format_name(t->format));
    check_aligned(t->decode_scales, 4, arg);
  }
}

// Quantizers and the GGUF repack write the linear or swizzled layouts only.
void check_not_tiled(const ms_qtensor_t* t, const char* arg) {
  MS_CHECK_ARG(t->layout != MS_LAYOUT_TILED_16X128, arg, "%s.layout: this writes the linear or swizzled layout; ms_relayout makes the tiled one", arg);
}

// The desc's fields added after the first ABI: those a caller's older, shorter struct ends before read as their defaults.
static_assert(MS_QUANTIZE_DUAL_WORKSPACE_BYTES == ms::kDualWorkspaceBytes, "the header states the dual workspace");
constexpr size_t kQuantizeDescV1 = offsetof(ms_quantize_desc_t, rounding);
int32_t rounding_of(const ms_quantize_desc_t* desc) { return desc->struct_size >= sizeof(ms_quantize_desc_t) ? desc->rounding : MS_ROUND_NEAREST; }
bool two_d_of(const ms_quantize_desc_t* desc) { return desc->struct_size >= sizeof(ms_quantize_desc_t) && desc->two_d_blocks != 0; }

ms::QuantizeLaunch launch_of(const ms_quantize_desc_t* desc, const void* src, const ms_qtensor_t* dst, int rows, int cols) {
  ms::QuantizeLaunch q{};
  q.rows = rows;
  q.cols = cols;
  q.format = dst ? dst->format : -1;
  q.padded_cols = dst ? padded_cols(dst->format, cols) : cols;
  q.scale_cols = dst && block_size(dst->format) ? q.padded_cols / block_size(dst->format) : 0;
  q.kind = dst ? element_kind(dst->format, dst->element) : 0;
  q.rule = desc->rule;
  q.swizzled = dst && dst->layout == MS_LAYOUT_SWIZZLED_128X4;
  q.src_dtype = desc->src_dtype;
  q.hadamard = desc->hadamard_block;
  q.signs = desc->hadamard_signs;
  q.src = src;
  q.stochastic = rounding_of(desc) == MS_ROUND_STOCHASTIC;
  q.seed = q.stochastic ? desc->seed : 0;
  q.two_d = two_d_of(desc);
  if (dst) {
    q.data = static_cast<uint8_t*>(dst->data);
    q.block_scales = static_cast<uint8_t*>(dst->block_scales);
    q.decode_scales = dst->decode_scales;
  }
  return q;
}

void check_quantize_desc(const ms_quantize_desc_t* desc, const void* src, int cols) {
  MS_CHECK_ARG(desc != nullptr, "desc", "desc: must not be NULL");
  check_struct(desc->struct_size, kQuantizeDescV1, "desc");
  MS_CHECK_ARG(rounding_of(desc) == MS_ROUND_NEAREST || rounding_of(desc) == MS_ROUND_STOCHASTIC, "desc.rounding",
               "desc.rounding: unknown rounding %d", rounding_of(desc));
  MS_CHECK_ARG(desc->rule == MS_RULE_FLOOR || desc->rule == MS_RULE_CEIL, "desc.rule", "desc.rule: unknown rule %d", desc->rule);
  MS_CHECK_ARG(desc->src_dtype >= MS_DTYPE_F32 && desc->src_dtype <= MS_DTYPE_F16, "desc.src_dtype", "desc.src_dtype: unknown dtype %d", desc->src_dtype);
  int g = desc->hadamard_block;
  MS_CHECK_ARG(g == 0 || g == 16 || g == 32 || g == 64 || g == 128 || g == 256, "desc.hadamard_block",
               "desc.hadamard_block: must be 0, 16, 32, 64, 128 or 256, got %d", g);
  MS_CHECK_ARG(g == 0 || cols % g == 0, "src", "src: K (%d) must be a multiple of the Hadamard block (%d)", cols, g);
  if (desc->hadamard_signs) check_aligned(desc->hadamard_signs, 4, "desc.hadamard_signs");
  MS_CHECK_ARG(src != nullptr, "src", "src: must not be NULL");
  check_aligned(src, dtype_size(desc->src_dtype), "src");
}

size_t amax_bytes(const ms_qtensor_t* dst) {
  if (is_mx(dst->format)) return 0;
  if (dst->format == MS_FMT_NVFP4) return ms::kDualWorkspaceBytes;  // stochastic and 2D launches take it through the dual kernel
  return sizeof(int) * (dst->format == MS_FMT_FP8_ROW ? (size_t)dst->rows : 1);
}

// The options of a desc that depend on the destination: stochastic rounding (FP formats), 2D blocks (NVFP4, unrotated).
void check_options_apply(const ms_quantize_desc_t* desc, const ms_qtensor_t* dst, const char* arg) {
  MS_CHECK_ARG(rounding_of(desc) == MS_ROUND_NEAREST || dst->format != MS_FMT_MXINT8, arg,
               "%s.rounding: stochastic rounding is defined for the FP formats only, not %s", arg, format_name(dst->format));
  MS_CHECK_ARG(!two_d_of(desc) || (dst->format == MS_FMT_NVFP4 && desc->hadamard_block == 0), arg,
               "%s.two_d_blocks: 16 x 16 blocks apply to unrotated nvfp4 only, not %s%s", arg, format_name(dst->format),
               desc->hadamard_block ? " with a rotation" : "");
}

// The operand pairs of NUMERICS.md s5 (the same table as the managed GemmPairs).
bool pair_supported(const ms_gemm_desc_t& d) {
  int a = d.a_format, b = d.b_format;
  if (a == MS_FMT_DENSE) return is_fp4(b) || b == MS_FMT_FP8_TENSOR || b == MS_FMT_FP8_ROW;  // W4A16, W8A16
  if (a == MS_FMT_MXFP4 && b == MS_FMT_MXFP4) return true;
  if (a == MS_FMT_NVFP4 && b == MS_FMT_NVFP4) return true;
  if (is_fp4(b) && (a == MS_FMT_FP8_ROW || a == MS_FMT_FP8_TENSOR || a == MS_FMT_MXFP8) && d.a_element == MS_ELEM_E4M3) return true;
  if ((a == MS_FMT_FP8_TENSOR || a == MS_FMT_FP8_ROW) && (b == MS_FMT_FP8_TENSOR || b == MS_FMT_FP8_ROW)) return true;
  return (a == MS_FMT_MXFP8 && b == MS_FMT_MXFP8) || (a == MS_FMT_MXINT8 && b == MS_FMT_MXINT8);
}

}  // namespace

enum class GemmFamily { Generic, Sm90Fp8, Sm90W4a8, Sm90Bf16, Sm100Fp4, Sm120Fp4, Decode };

struct ms_gemm_plan {
  ms_gemm_desc_t desc;
  GemmFamily family;
  std::string name;
  size_t workspace_bytes;  // what ms_gemm_plan_workspace_size reported (runs never use more)
  bool emulated;           // a Blackwell family forced onto sm_90: its tensor-core instructions emulated in software (tests)
  int sm;                  // compute capability of the device the plan was made for
};

namespace {

// Compute capability of the current context's device, or 0 when no context is current.
int current_sm() {
  const ms::Driver& driver = ms::Driver::get();
  void* context = nullptr;
  int device = 0, major = 0, minor = 0;
  if (!driver.ctx_get_current || driver.ctx_get_current(&context) != 0 || !context) return 0;
  if (driver.ctx_get_device(&device) != 0 || driver.device_get_attribute(&major, 75, device) != 0 ||
      driver.device_get_attribute(&minor, 76, device) != 0)
    return 0;
  return major * 10 + minor;
}

// Above this many tokens the sm90 BF16 family beats the decode kernel on the pairs both run (H100, gpu-sweep mx part).
constexpr int kDecodeTokensOnHopper = 64;
// Up to this many tokens the sm90 W4A8 family (4-bit weights folded in the kernel) runs FP8 x MXFP4; above, the BF16 family
// (weights dequantized into the workspace once per call, then BF16 wgmma) is faster. H200, microscale_selftest --w4a8:
// 128 and 1024 tokens x 8192^2: 60 and 249 us against 196 and 288; 4096^3: 256 against 232 (NOTES-sm90-fp8.md).
constexpr int kW4a8TokensOnHopper = 1024;
// Up to this many tokens the decode kernel (weights streamed once, split K) takes the pairs the Blackwell FP4 families also
// run: a 128-row tile would leave most of each block-scaled MMA idle. A judgement, not a measurement (no Blackwell GPU at hand).
constexpr int kDecodeTokensOnBlackwell = 16;

bool is_sm100(int sm) { return sm == 100 || sm == 103; }
bool is_sm120(int sm) { return sm == 120 || sm == 121; }

// The heuristic: the fastest family that can run the problem on a device of compute capability `sm` with `sms`
// multiprocessors.
GemmFamily default_family(const ms_gemm_desc_t& d, int sm, int sms, std::string& name) {
  // Tiled weights (MS_LAYOUT_TILED_16X128) run on the decode kernel, the sm_90 BF16 family (its dequantization pass reads
  // them) and the generic kernel only.
  const bool tiled = d.b_layout == MS_LAYOUT_TILED_16X128;
  const bool sm90 = sm == 90 && !tiled && ms::sm90_fp8_gemm_can_implement(d);
  const bool sm90_w4a8 = sm == 90 && ms::sm90_w4a8_gemm_can_implement(d) && d.m <= kW4a8TokensOnHopper;  // before the BF16 family
  const bool sm90_bf16 = sm == 90 && ms::sm90_bf16_gemm_can_implement(d);
  const bool sm100 = is_sm100(sm) && !tiled && ms::sm100_fp4_gemm_can_implement(d);
  const bool sm120 = is_sm120(sm) && !tiled && ms::sm120_fp4_gemm_can_implement(d);
  // Decode (any M; built for small M); on Hopper FP8 x FP8 only up to 16 tokens and the BF16 family's pairs up to
  // kDecodeTokensOnHopper (wgmma tiles take over above); on Blackwell the FP4 families' pairs up to kDecodeTokensOnBlackwell.
  const bool decode = sm >= 80 && ms::decode_gemm_can_implement(d) && (d.m <= 16 || !sm90) && (d.m <= kDecodeTokensOnHopper || !sm90_bf16) &&
                      (d.m <= kDecodeTokensOnBlackwell || !(sm100 || sm120));
  GemmFamily family = decode     ? GemmFamily::Decode
                      : sm90     ? GemmFamily::Sm90Fp8
                      : sm90_w4a8 ? GemmFamily::Sm90W4a8
                      : sm90_bf16 ? GemmFamily::Sm90Bf16
                      : sm100    ? GemmFamily::Sm100Fp4
                      : sm120    ? GemmFamily::Sm120Fp4
                                 : GemmFamily::Generic;
  switch (family) {
    case GemmFamily::Sm90Fp8: name = ms::sm90_fp8_gemm_config(d, sms); break;
    case GemmFamily::Sm90W4a8: name = ms::sm90_w4a8_gemm_config(d, sms); break;
    case GemmFamily::Sm90Bf16: name = ms::sm90_bf16_gemm_config(d, sms); break;
    case GemmFamily::Sm100Fp4: name = ms::sm100_fp4_gemm_config(d); break;
    case GemmFamily::Sm120Fp4: name = ms::sm120_fp4_gemm_config(d); break;
    case GemmFamily::Decode: name = ms::decode_gemm_config(d); break;
    default: name = ms::kGemmGenericName; break;
  }
  return family;
}

// The family and config for the current device (compute capability sm): the heuristic, or what MS_FORCE_CONFIG pins by name ("generic" or a
// family's config name; it fails loudly when that cannot run here). The Blackwell FP4 configs (sm100, sm120) also run on
// sm_90, with their tensor-core instructions emulated in software: only forced, for the tests.
GemmFamily choose_family(const ms_gemm_desc_t& d, int sm, std::string& name) {
  const char* forced = std::getenv("MS_FORCE_CONFIG");
  GemmFamily family = default_family(d, sm, ms::Driver::get().multiprocessors(), name);
  if (forced && *forced) {
    auto refuse = [&] { ms::fail(MS_ERR_UNSUPPORTED, "MS_FORCE_CONFIG", "MS_FORCE_CONFIG=%s cannot run this problem on this device", forced); };
    name = forced;
    if (std::strcmp(forced, "generic") == 0 || std::strcmp(forced, ms::kGemmGenericName) == 0) {
      family = GemmFamily::Generic;
      name = ms::kGemmGenericName;
    } else if (std::strcmp(forced, "decode") == 0 || std::strncmp(forced, "ms_sm80_decode", 14) == 0) {
      if (!(sm >= 80 && ms::decode_gemm_can_implement(d))) refuse();
      family = GemmFamily::Decode;
      name = ms::decode_gemm_config(d);
    } else if (d.b_layout == MS_LAYOUT_TILED_16X128 && !ms::sm90_bf16_gemm_has_config(forced)) {
      refuse();  // tiled weights: decode, sm90 BF16 or generic only
    } else if (ms::sm90_fp8_gemm_has_config(forced)) {
      if (!(sm == 90 && ms::sm90_fp8_gemm_can_implement(d))) refuse();
      family = GemmFamily::Sm90Fp8;
    } else if (ms::sm90_w4a8_gemm_has_config(forced)) {
      if (!(sm == 90 && ms::sm90_w4a8_gemm_can_implement(d))) refuse();
      family = GemmFamily::Sm90W4a8;
    } else if (ms::sm90_bf16_gemm_has_config(forced)) {
      if (!(sm == 90 && ms::sm90_bf16_gemm_can_implement(d))) refuse();
      family = GemmFamily::Sm90Bf16;
    } else if (ms::sm100_fp4_gemm_has_config(forced)) {
      if (!((sm == 90 || is_sm100(sm)) && ms::sm100_fp4_gemm_can_implement(d) && ms::sm100_fp4_gemm_config_fits(d, forced))) refuse();
      family = GemmFamily::Sm100Fp4;
    } else if (ms::sm120_fp4_gemm_has_config(forced)) {
      if (!((sm == 90 || is_sm120(sm)) && ms::sm120_fp4_gemm_can_implement(d) && ms::sm120_fp4_gemm_config_fits(d, forced))) refuse();
      family = GemmFamily::Sm120Fp4;
    } else {
      ms::fail(MS_ERR_INVALID_ARGUMENT, "MS_FORCE_CONFIG", "MS_FORCE_CONFIG=%s names no GEMM config", forced);
    }
  }
  const char* print = std::getenv("MS_PRINT_CONFIGS");
  if (print && *print == '1')
    std::fprintf(stderr, "microscale: gemm m=%d n=%d k=%d %s x %s -> %s\n", d.m, d.n, d.k, format_name(d.a_format), format_name(d.b_format), name.c_str());
  return family;
}

// ms_gemm_desc_t before `flags` (callers built against that header pass this struct_size).
constexpr size_t kGemmDescV1 = offsetof(ms_gemm_desc_t, flags);
constexpr int32_t kKnownGemmFlags = MS_GEMM_STATIC_WEIGHTS;

// Checks the caller's description and returns it with every field this library knows (flags 0 when the caller's struct
// ends before them).
ms_gemm_desc_t checked_gemm_desc(const ms_gemm_desc_t* desc) {
  MS_CHECK_ARG(desc != nullptr, "desc", "desc: must not be NULL");
  check_struct(desc->struct_size, kGemmDescV1, "desc");
  ms_gemm_desc_t d{};
  std::memcpy(&d, desc, kGemmDescV1);
  d.struct_size = sizeof d;
  d.flags = desc->struct_size >= sizeof(ms_gemm_desc_t) ? desc->flags : 0;
  MS_CHECK_ARG((d.flags & ~kKnownGemmFlags) == 0, "desc.flags", "desc.flags: unknown bits 0x%x", (unsigned)(d.flags & ~kKnownGemmFlags));
  MS_CHECK_ARG(d.m >= 1 && d.n >= 1 && d.k >= 1, "desc", "desc: m, n, k must be >= 1, got %d, %d, %d", d.m, d.n, d.k);
  MS_CHECK_ARG(d.out_dtype >= MS_DTYPE_F32 && d.out_dtype <= MS_DTYPE_F16, "desc.out_dtype", "desc.out_dtype: unknown dtype %d", d.out_dtype);
  MS_CHECK_ARG(d.a_layout == MS_LAYOUT_LINEAR || d.a_layout == MS_LAYOUT_SWIZZLED_128X4, "desc.a_layout",
               "desc.a_layout: must be linear (0) or swizzled (1), got %d (the tiled layout is for weights, b)", d.a_layout);
  MS_CHECK_ARG(d.b_layout >= MS_LAYOUT_LINEAR && d.b_layout <= MS_LAYOUT_TILED_16X128, "desc.b_layout", "desc.b_layout: unknown layout %d", d.b_layout);
  MS_CHECK_ARG(d.b_layout != MS_LAYOUT_TILED_16X128 || is_fp4(d.b_format), "desc.b_layout", "desc.b_layout: the tiled layout applies to mxfp4 and nvfp4, not %s",
               format_name(d.b_format));
  if (!pair_supported(d))
    ms::fail(MS_ERR_UNSUPPORTED, "desc", "no GEMM for activations %s (element %d) with weights %s", format_name(d.a_format),
             d.a_element, format_name(d.b_format));
  return d;
}

void copy_name(const std::string& name, char* out, size_t capacity) {
  MS_CHECK_ARG(out != nullptr && capacity > name.size(), "name", "name: needs %zu bytes", name.size() + 1);
  std::memcpy(out, name.c_str(), name.size() + 1);
}

}  // namespace

extern "C" {

MS_API int32_t ms_abi_version(void) { return MS_ABI_VERSION; }
MS_API const char* ms_version(void) { return MS_VERSION_STRING; }

MS_API ms_status_t ms_query(int32_t* out_sm, char* families, size_t families_capacity) {
  MS_API_BEGIN
  MS_CHECK_ARG(out_sm != nullptr, "out_sm", "out_sm: must not be NULL");
  *out_sm = 0;
  ms::require_current_context();
  const ms::Driver& driver = ms::Driver::get();
  int device = 0, major = 0, minor = 0;
  const int kMajor = 75, kMinor = 76;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR
  if (driver.ctx_get_device(&device) != 0 || driver.device_get_attribute(&major, kMajor, device) != 0 ||
      driver.device_get_attribute(&minor, kMinor, device) != 0)
    ms::fail(MS_ERR_CUDA, "", "could not read the current device's compute capability");
  *out_sm = major * 10 + minor;
  std::string list = *out_sm >= 80 ? "quantize,hadamard,dequantize,gemm_generic" : "";
  if (*out_sm >= 80) list += ",gemm_decode";
  if (*out_sm == 90) list += ",gemm_sm90_fp8,gemm_sm90_w4a8,gemm_sm90_bf16,gemm_sm100_fp4_emulated,gemm_sm120_fp4_emulated";  // emulated: only forced (tests)
  if (is_sm100(*out_sm)) list += ",gemm_sm100_fp4";
  if (is_sm120(*out_sm)) list += ",gemm_sm120_fp4";
  if (families && families_capacity) {
    std::strncpy(families, list.c_str(), families_capacity - 1);
    families[families_capacity - 1] = '\0';
  }
  MS_API_END
}

MS_API ms_status_t ms_quantize_workspace_size(const ms_qtensor_t* dst, const ms_quantize_desc_t* desc, size_t* out_bytes) {
  MS_API_BEGIN
  MS_CHECK_ARG(out_bytes != nullptr, "out_bytes", "out_bytes: must not be NULL");
  *out_bytes = 0;
  (void)desc;
  check_qtensor(dst, "dst");
  MS_CHECK_ARG(dst->format != MS_FMT_DENSE, "dst", "dst: must be a quantized format");
  *out_bytes = amax_bytes(dst);
  MS_API_END
}

MS_API ms_status_t ms_quantize(const ms_quantize_desc_t* desc, const void* src, const ms_qtensor_t* dst, void* workspace,
                               size_t workspace_bytes, void* stream) {
  MS_API_BEGIN
  check_qtensor(dst, "dst");
  MS_CHECK_ARG(dst->format != MS_FMT_DENSE, "dst", "dst: must be a quantized format");
  check_not_tiled(dst, "dst");
  check_quantize_desc(desc, src, dst->cols);
  check_options_apply(desc, dst, "desc");
  size_t needed = amax_bytes(dst);
  MS_CHECK_ARG(workspace_bytes >= needed && (needed == 0 || workspace != nullptr), "workspace",
               "workspace: needs %zu bytes, got %zu", needed, workspace_bytes);
  if (needed) check_aligned(workspace, 4, "workspace");
  ms::require_current_context(stream);
  ms::QuantizeLaunch q = launch_of(desc, src, dst, dst->rows, dst->cols);
  q.amax_workspace = static_cast<int*>(workspace);
  if (q.two_d && !ms::dual_quantize_eligible(q))
    ms::fail(MS_ERR_UNSUPPORTED, "desc.two_d_blocks", "desc.two_d_blocks: 16 x 16 blocks need an f32 or bf16 source with rows of whole 16-byte "
             "pieces, 16-byte aligned src and data");
  ms::launch_quantize(q, ms::Driver::get().multiprocessors(), static_cast<cudaStream_t>(stream));
  MS_API_END
}

MS_API ms_status_t ms_quantize_dual(const void* src, int32_t rows, int32_t cols, const ms_quantize_desc_t* row_desc, const ms_qtensor_t* row_dst,
                                    const ms_quantize_desc_t* col_desc, const ms_qtensor_t* col_dst, void* workspace, size_t workspace_bytes,
                                    void* stream) {
  MS_API_BEGIN
  MS_CHECK_ARG(rows >= 1 && cols >= 1, "rows", "rows and cols must be >= 1, got [%d, %d]", rows, cols);
  MS_CHECK_ARG(row_dst != nullptr || col_dst != nullptr, "row_dst", "row_dst and col_dst: at least one must not be NULL");
  ms::DualLaunch d{};
  d.src = src;
  d.rows = rows;
  d.cols = cols;
  const ms_quantize_desc_t* descs[2] = {row_desc, col_desc};
  const ms_qtensor_t* dsts[2] = {row_dst, col_dst};
  const char* desc_args[2] = {"row_desc", "col_desc"};
  const char* dst_args[2] = {"row_dst", "col_dst"};
  int format = -1;
  for (int i = 0; i < 2; ++i) {
    if (!dsts[i]) continue;
    const ms_qtensor_t* dst = dsts[i];
    const ms_quantize_desc_t* desc = descs[i];
    check_qtensor(dst, dst_args[i]);
    check_not_tiled(dst, dst_args[i]);
    const int out_rows = i == 0 ? rows : cols, k = i == 0 ? cols : rows;
    MS_CHECK_ARG(dst->rows == out_rows && dst->cols == k, dst_args[i], "%s: must be [%d, %d], got [%d, %d]", dst_args[i], out_rows, k, dst->rows,
                 dst->cols);
    MS_CHECK_ARG(dst->format == MS_FMT_MXFP4 || dst->format == MS_FMT_MXFP8 || dst->format == MS_FMT_NVFP4, dst_args[i],
                 "%s: the dual quantizer writes mxfp4, mxfp8 or nvfp4, not %s", dst_args[i], format_name(dst->format));
    MS_CHECK_ARG(format < 0 || dst->format == format, dst_args[i], "%s: both destinations must have one format (%s and %s)", dst_args[i],
                 format_name(format), format_name(dst->format));
    format = dst->format;
    MS_CHECK_ARG(desc != nullptr, desc_args[i], "%s: must not be NULL", desc_args[i]);
    check_quantize_desc(desc, src, k);
    check_options_apply(desc, dst, desc_args[i]);
    MS_CHECK_ARG(i == 0 || !two_d_of(desc), desc_args[i],
                 "%s.two_d_blocks: the dual quantizer writes 16 x 16 blocks on the row side only", desc_args[i]);
    MS_CHECK_ARG(desc->src_dtype == MS_DTYPE_F32 || desc->src_dtype == MS_DTYPE_BF16, desc_args[i], "%s.src_dtype: must be f32 or bf16, got %d",
                 desc_args[i], desc->src_dtype);
    MS_CHECK_ARG(i == 0 || !row_dst || desc->src_dtype == row_desc->src_dtype, desc_args[i], "%s.src_dtype: must equal row_desc.src_dtype",
                 desc_args[i]);
    MS_CHECK_ARG(desc->hadamard_block <= 32, desc_args[i], "%s.hadamard_block: the dual quantizer rotates blocks of 16 or 32, got %d",
                 desc_args[i], desc->hadamard_block);
    check_aligned(dst->data, 16, dst_args[i]);
    d.src_dtype = desc->src_dtype;
    ms::QuantizeLaunch q = launch_of(desc, src, dst, dst->rows, dst->cols);
    d.side[i] = ms::dual_side_of(q);
  }
  MS_CHECK_ARG(cols % (d.src_dtype == MS_DTYPE_BF16 ? 8 : 4) == 0, "cols", "cols: must be a multiple of 16 bytes of the source (%d values), got %d",
               d.src_dtype == MS_DTYPE_BF16 ? 8 : 4, cols);
  check_aligned(src, 16, "src");
  const bool nvfp4 = format == MS_FMT_NVFP4;
  MS_CHECK_ARG(!nvfp4 || (workspace != nullptr && workspace_bytes >= ms::kDualWorkspaceBytes), "workspace", "workspace: needs %zu bytes, got %zu",
               ms::kDualWorkspaceBytes, workspace_bytes);
  if (nvfp4) check_aligned(workspace, 4, "workspace");
  ms::require_current_context(stream);
  d.amax_workspace = static_cast<int*>(workspace);
  ms::launch_quantize_dual(d, ms::Driver::get().multiprocessors(), static_cast<cudaStream_t>(stream));
  MS_API_END
}

MS_API ms_status_t ms_find_first_nonfinite(const ms_quantize_desc_t* desc, const void* src, int32_t rows, int32_t cols,
                                           void* workspace, size_t workspace_bytes, void* stream, int64_t* out_index) {
  MS_API_BEGIN
  MS_CHECK_ARG(out_index != nullptr, "out_index", "out_index: must not be NULL");
  *out_index = -1;
  MS_CHECK_ARG(rows >= 1 && cols >= 1, "rows", "rows and cols must be >= 1, got [%d, %d]", rows, cols);
  check_quantize_desc(desc, src, cols);
  MS_CHECK_ARG(workspace != nullptr && workspace_bytes >= 8, "workspace", "workspace: needs 8 bytes, got %zu", workspace_bytes);
  check_aligned(workspace, 8, "workspace");
  ms::require_current_context(stream);
  auto s = static_cast<cudaStream_t>(stream);
  unsigned long long init = ULLONG_MAX, found = 0;
  ms::check_cuda(cudaMemcpyAsync(workspace, &init, 8, cudaMemcpyHostToDevice, s), "cudaMemcpyAsync(workspace)");
  ms::launch_find_nonfinite(launch_of(desc, src, nullptr, rows, cols), static_cast<unsigned long long*>(workspace), s);
  ms::check_cuda(cudaMemcpyAsync(&found, workspace, 8, cudaMemcpyDeviceToHost, s), "cudaMemcpyAsync(index)");
  ms::check_cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  *out_index = found == ULLONG_MAX ? -1 : (int64_t)found;
  MS_API_END
}

MS_API ms_status_t ms_dequantize(const ms_qtensor_t* src, float* dst, void* stream) {
  MS_API_BEGIN
  check_qtensor(src, "src");
  MS_CHECK_ARG(src->format != MS_FMT_DENSE, "src", "src: must be a quantized format");
  MS_CHECK_ARG(dst != nullptr, "dst", "dst: must not be NULL");
  check_aligned(dst, 4, "dst");
  ms::require_current_context(stream);
  ms::launch_dequantize(*src, dst, static_cast<cudaStream_t>(stream));
  MS_API_END
}

MS_API ms_status_t ms_hadamard_rotate(const ms_quantize_desc_t* desc, const void* src, int32_t rows, int32_t cols, float* dst, void* stream) {
  MS_API_BEGIN
  MS_CHECK_ARG(rows >= 1 && cols >= 1, "rows", "rows and cols must be >= 1, got [%d, %d]", rows, cols);
  check_quantize_desc(desc, src, cols);
  MS_CHECK_ARG(desc->hadamard_block != 0, "desc.hadamard_block", "desc.hadamard_block: a rotation needs a block size");
  MS_CHECK_ARG(dst != nullptr, "dst", "dst: must not be NULL");
  check_aligned(dst, 4, "dst");
  ms::require_current_context(stream);
  ms::launch_rotate(launch_of(desc, src, nullptr, rows, cols), dst, static_cast<cudaStream_t>(stream));
  MS_API_END
}

MS_API ms_status_t ms_gguf_repack(int32_t ggml_type, const void* src, const ms_qtensor_t* dst, float global_scale, void* stream) {
  MS_API_BEGIN
  const int kMxfp4 = 39, kNvfp4 = 40;  // ggml_type values
  MS_CHECK_ARG(ggml_type == kMxfp4 || ggml_type == kNvfp4, "ggml_type", "ggml_type: %d is neither MXFP4 (39) nor NVFP4 (40)", ggml_type);
  check_qtensor(dst, "dst");
  check_not_tiled(dst, "dst");
  const int block = ggml_type == kMxfp4 ? 32 : 64;
  MS_CHECK_ARG(dst->format == (ggml_type == kMxfp4 ? MS_FMT_MXFP4 : MS_FMT_NVFP4), "dst", "dst: GGUF %s blocks convert to %s, not %s",
               ggml_type == kMxfp4 ? "MXFP4" : "NVFP4", ggml_type == kMxfp4 ? "mxfp4" : "nvfp4", format_name(dst->format));
  MS_CHECK_ARG(dst->cols % block == 0, "dst", "dst: cols %d is not a multiple of the GGUF block of %d", dst->cols, block);
  MS_CHECK_ARG(src != nullptr, "src", "src: must not be NULL");
  check_aligned(dst->data, 16, "dst");
  MS_CHECK_ARG(ggml_type == kMxfp4 || (std::isfinite(global_scale) && global_scale > 0), "global_scale",
               "global_scale: must be positive and finite, got %g", (double)global_scale);
  ms::require_current_context(stream);
  ms::launch_gguf_repack(block, src, dst->rows, dst->cols, *dst, global_scale, ms::Driver::get().multiprocessors(),
                         static_cast<cudaStream_t>(stream));
  MS_API_END
}

MS_API ms_status_t ms_qtensor_bytes(const ms_qtensor_t* t, size_t* out_data_bytes, size_t* out_scale_bytes) {
  MS_API_BEGIN
  MS_CHECK_ARG(out_data_bytes != nullptr, "out_data_bytes", "out_data_bytes: must not be NULL");
  MS_CHECK_ARG(out_scale_bytes != nullptr, "out_scale_bytes", "out_scale_bytes: must not be NULL");
  *out_data_bytes = *out_scale_bytes = 0;
  MS_CHECK_ARG(check_qtensor_shape(t, "t"), "t", "t: must be a quantized format");
  *out_data_bytes = ms::qtensor_data_bytes(*t);
  *out_scale_bytes = ms::qtensor_scale_bytes(*t);
  MS_API_END
}

MS_API ms_status_t ms_relayout(const ms_qtensor_t* src, const ms_qtensor_t* dst, void* stream) {
  MS_API_BEGIN
  check_qtensor(src, "src");
  check_qtensor(dst, "dst");
  MS_CHECK_ARG(src->format != MS_FMT_DENSE, "src", "src: must be a quantized format");
  MS_CHECK_ARG(dst->format == src->format && dst->element == src->element, "dst", "dst: format %s (element %d) differs from src's %s (element %d)",
               format_name(dst->format), dst->element, format_name(src->format), src->element);
  MS_CHECK_ARG(dst->rows == src->rows && dst->cols == src->cols, "dst", "dst: must be [%d, %d] like src, got [%d, %d]", src->rows, src->cols,
               dst->rows, dst->cols);
  MS_CHECK_ARG(dst->data != src->data && (!is_block_format(src->format) || dst->block_scales != src->block_scales), "dst",
               "dst: must not share src's codes or block scales");
  ms::require_current_context(stream);
  ms::launch_relayout(*src, *dst, static_cast<cudaStream_t>(stream));
  MS_API_END
}

MS_API ms_status_t ms_gemm_plan_create(const ms_gemm_desc_t* desc, ms_gemm_plan** out_plan) {
  MS_API_BEGIN
  MS_CHECK_ARG(out_plan != nullptr, "out_plan", "out_plan: must not be NULL");
  *out_plan = nullptr;
  const ms_gemm_desc_t full = checked_gemm_desc(desc);
  desc = &full;
  std::string name;
  const int sm = current_sm();
  GemmFamily family = choose_family(*desc, sm, name);
  const int sms = ms::Driver::get().multiprocessors();
  const bool emulated = (family == GemmFamily::Sm100Fp4 || family == GemmFamily::Sm120Fp4) && sm == 90;
  size_t workspace_bytes = family == GemmFamily::Sm90Fp8    ? ms::sm90_fp8_gemm_workspace_size(*desc, name.c_str(), sms)
                           : family == GemmFamily::Sm90Bf16 ? ms::sm90_bf16_gemm_workspace_size(*desc, name.c_str(), sms)
                           : family == GemmFamily::Sm100Fp4 ? ms::sm100_fp4_gemm_workspace_size(*desc, sms, emulated)
                           : family == GemmFamily::Sm120Fp4 ? ms::sm120_fp4_gemm_workspace_size(*desc)
                           : family == GemmFamily::Decode   ? ms::decode_gemm_workspace_size(*desc, sms)
                                                            : 0;
  auto* plan = new ms_gemm_plan{*desc, family, name, workspace_bytes, emulated, sm};
  *out_plan = plan;
  MS_API_END
}

MS_API ms_status_t ms_gemm_kernel_for(const ms_gemm_desc_t* desc, int32_t sm, int32_t multiprocessors, char* name, size_t capacity) {
  MS_API_BEGIN
  const ms_gemm_desc_t full = checked_gemm_desc(desc);
  desc = &full;
  MS_CHECK_ARG(sm >= 0, "sm", "sm: must be a compute capability such as 90 or 120, got %d", sm);
  MS_CHECK_ARG(multiprocessors >= 1, "multiprocessors", "multiprocessors: must be >= 1, got %d", multiprocessors);
  std::string chosen;
  default_family(*desc, sm, multiprocessors, chosen);
  copy_name(chosen, name, capacity);
  MS_API_END
}

MS_API ms_status_t ms_gemm_plan_name(const ms_gemm_plan* plan, char* name, size_t capacity) {
  MS_API_BEGIN
  MS_CHECK_ARG(plan != nullptr, "plan", "plan: must not be NULL");
  copy_name(plan->name, name, capacity);
  MS_API_END
}

MS_API ms_status_t ms_gemm_plan_workspace_size(const ms_gemm_plan* plan, size_t* out_bytes) {
  MS_API_BEGIN
  MS_CHECK_ARG(plan != nullptr, "plan", "plan: must not be NULL");
  MS_CHECK_ARG(out_bytes != nullptr, "out_bytes", "out_bytes: must not be NULL");
  *out_bytes = plan->workspace_bytes;
  MS_API_END
}

MS_API ms_status_t ms_gemm_plan_run(const ms_gemm_plan* plan, const ms_gemm_operands_t* ops, void* workspace, void* stream) {
  MS_API_BEGIN
  MS_CHECK_ARG(plan != nullptr, "plan", "plan: must not be NULL");
  MS_CHECK_ARG(ops != nullptr, "ops", "ops: must not be NULL");
  check_struct(ops->struct_size, sizeof(ms_gemm_operands_t), "ops");
  const ms_gemm_desc_t& d = plan->desc;
  check_qtensor(&ops->a, "a");
  check_qtensor(&ops->b, "b");
  MS_CHECK_ARG(ops->a.format == d.a_format && ops->b.format == d.b_format, "ops", "ops: formats (%s, %s) differ from the plan's (%s, %s)",
               format_name(ops->a.format), format_name(ops->b.format), format_name(d.a_format), format_name(d.b_format));
  MS_CHECK_ARG(ops->a.rows == d.m && ops->a.cols == d.k, "a", "a: must be [%d, %d], got [%d, %d]", d.m, d.k, ops->a.rows, ops->a.cols);
  MS_CHECK_ARG(ops->b.rows == d.n && ops->b.cols == d.k, "b", "b: must be [%d, %d], got [%d, %d]", d.n, d.k, ops->b.rows, ops->b.cols);
  MS_CHECK_ARG(ops->a.format == MS_FMT_DENSE || ops->a.layout != MS_LAYOUT_TILED_16X128, "a.layout", "a.layout: the tiled layout is for weights (b)");
  MS_CHECK_ARG((ops->b.layout == MS_LAYOUT_TILED_16X128) == (d.b_layout == MS_LAYOUT_TILED_16X128), "b.layout",
               "b.layout: %d, but the plan was made for %s weights (desc.b_layout %d)", ops->b.layout,
               d.b_layout == MS_LAYOUT_TILED_16X128 ? "tiled" : "untiled", d.b_layout);
  MS_CHECK_ARG(ops->out != nullptr, "out", "out: must not be NULL");
  check_aligned(ops->out, dtype_size(d.out_dtype), "out");
  MS_CHECK_ARG(!d.has_bias || ops->bias != nullptr, "bias", "bias: must not be NULL when the plan has a bias");
  if (d.has_bias) check_aligned(ops->bias, 4, "bias");
  if (workspace) check_aligned(workspace, 256, "workspace");
  ms::require_current_context(stream);
  const int sms = ms::Driver::get().multiprocessors();
  if (plan->family == GemmFamily::Sm90Fp8)
    ms::launch_sm90_fp8_gemm(d, plan->name.c_str(), *ops, sms, workspace, workspace ? plan->workspace_bytes : 0, static_cast<cudaStream_t>(stream));
  else if (plan->family == GemmFamily::Sm90W4a8 && ms::sm90_w4a8_gemm_operands_aligned(*ops))
    ms::launch_sm90_w4a8_gemm(d, plan->name.c_str(), *ops, sms, static_cast<cudaStream_t>(stream));
  else if (plan->family == GemmFamily::Sm90Bf16 && workspace && ms::sm90_bf16_gemm_operands_aligned(*ops))
    ms::launch_sm90_bf16_gemm(d, plan->name.c_str(), *ops, sms, workspace, plan->workspace_bytes, static_cast<cudaStream_t>(stream));
  else if (plan->family == GemmFamily::Sm100Fp4 && (workspace || plan->workspace_bytes == 0) && ms::sm100_fp4_gemm_operands_aligned(*ops))
    ms::launch_sm100_fp4_gemm(d, plan->name.c_str(), *ops, sms, plan->emulated, workspace, static_cast<cudaStream_t>(stream));
  else if (plan->family == GemmFamily::Sm120Fp4 && (workspace || plan->workspace_bytes == 0) && ms::sm120_fp4_gemm_operands_aligned(*ops))
    ms::launch_sm120_fp4_gemm(d, *ops, workspace, static_cast<cudaStream_t>(stream));
  else if (plan->family == GemmFamily::Decode && ms::decode_gemm_operands_aligned(*ops))
    ms::launch_decode_gemm(d, *ops, sms, workspace, workspace ? plan->workspace_bytes : 0, plan->sm >= 90, static_cast<cudaStream_t>(stream));
  else
    ms::launch_gemm_generic(d, *ops, static_cast<cudaStream_t>(stream));
  MS_API_END
}

MS_API void ms_gemm_plan_destroy(ms_gemm_plan* plan) { delete plan; }

}  // extern "C"
