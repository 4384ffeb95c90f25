// Hopper BF16 GEMM family (sm_90a) for block-scaled and FP4 operands. Hopper has no FP4 or block-scaled tensor cores, but
// the values these formats hold are BF16 numbers: MXFP4 and MXINT8 values (element x E8M0 scale), NVFP4 element x UE4M3 block
// scale (at most 6 significant bits), FP8 elements, MXFP8 values but for one corner: with E8M0 codes 0-2 (E4M3) or 0-9
// (E5M2) a subnormal element times the scale falls below BF16's smallest subnormal, 2^-133, and is rounded to BF16 (RNE),
// unlike binary32; only blocks whose amax is below 2^-116 can hold such values. So A and B are first dequantized into BF16 in
// the plan's workspace, exactly (but for that corner), then multiplied by the shared wgmma kernel (sm90_gemm_kernel.cuh) with m64nNk16 BF16 wgmma and FP32
// accumulation in the tensor core (no promotion needed: the NUMERICS.md s5 bound holds as for a binary32 sum). What is not
// folded into the BF16 values, the NVFP4 / FP8 per-tensor and FP8 per-row decode scales, is applied in the epilogue. Dense
// BF16 activations (W4A16) are read in place.
// Cost beyond the BF16 GEMM: one pass that reads the quantized operands and writes 2 bytes per value (8192^3: ~0.1 ms next
// to ~1.7 ms). Fusing the dequantization into the producer would remove it; see NOTES-sm90-fp8.md.
#include <algorithm>
#include "sm90_gemm_kernel.cuh"

namespace ms {

namespace {

constexpr int kValuesPerGroup = 8;  // one 16-byte BF16 store
constexpr int kDequantThreads = 256;

// BF16 [rows, q.cols] (row stride q.cols, a multiple of 8) from a quantized operand, without its decode scales: element x
// block scale (E8M0 for MX, UE4M3 for NVFP4) or the bare FP8 element. Exact but for the MXFP8 corner above, which RNE rounds.
// One CTA per row (grid-stride over rows), its threads over the row's groups of 8 values: no 64-bit division per group.
template <int kKind>
__global__ void __launch_bounds__(kDequantThreads) dequantize_bf16_kernel(QuantView q, int rows, uint4* __restrict__ dst) {
  const int groups = q.cols / kValuesPerGroup;
  for (int row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t row_bytes = kKind == kE2M1 ? q.padded_cols / 2 : q.padded_cols;
    const uint8_t* data = q.data + row * row_bytes;
    uint4* out = dst + (int64_t)row * groups;
    for (int group = threadIdx.x; group < groups; group += blockDim.x) {
      const int col = group * kValuesPerGroup;  // rows start 8-byte aligned (padded_cols is a multiple of 8, 16 or 32)
      uint32_t codes[kValuesPerGroup];
      if constexpr (kKind == kE2M1) {
        const uint8_t* at = q.tiled ? q.data + tiled_code_offset(row, col, tiled_col_chunks(q.cols)) : data + col / 2;  // 8 values: 4 bytes in either
        const uint32_t word = __ldg(reinterpret_cast<const uint32_t*>(at));
#pragma unroll
        for (int i = 0; i < kValuesPerGroup; ++i) codes[i] = (word >> (4 * i)) & 0xFu;
      } else {
        const uint2 words = __ldg(reinterpret_cast<const uint2*>(data + col));
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          codes[i] = (words.x >> (8 * i)) & 0xFFu;
          codes[4 + i] = (words.y >> (8 * i)) & 0xFFu;
        }
      }
      float scale = 1.0f;
      if (q.block) {  // the 8 values share one block (blocks of 16 and 32)
        const uint32_t code = scale_code_at(q, row, col / q.block);
        scale = is_mx_format(q.format) ? from_e8m0(code) : from_e4m3(code);
      }
      uint32_t packed[kValuesPerGroup / 2];
#pragma unroll
      for (int i = 0; i < kValuesPerGroup / 2; ++i)
        packed[i] = (uint32_t)to_bf16(decode(codes[2 * i], kKind) * scale) | ((uint32_t)to_bf16(decode(codes[2 * i + 1], kKind) * scale) << 16);
      out[group] = make_uint4(packed[0], packed[1], packed[2], packed[3]);
    }
  }
}

void dequantize_bf16(const ms_qtensor_t& t, int k, void* dst, int sms, cudaStream_t stream) {
  const QuantView q = quant_view_of(t, k);
  const int groups = k / kValuesPerGroup;
  const int threads = std::min(kDequantThreads, (groups + 31) / 32 * 32);
  const int grid = std::min(t.rows, sms * 16);
  auto* out = static_cast<uint4*>(dst);
  switch (q.kind) {
    case kE2M1: dequantize_bf16_kernel<kE2M1><<<grid, threads, 0, stream>>>(q, t.rows, out); break;
    case kE4M3: dequantize_bf16_kernel<kE4M3><<<grid, threads, 0, stream>>>(q, t.rows, out); break;
    case kE5M2: dequantize_bf16_kernel<kE5M2><<<grid, threads, 0, stream>>>(q, t.rows, out); break;
    default: dequantize_bf16_kernel<kInt8><<<grid, threads, 0, stream>>>(q, t.rows, out); break;
  }
  check_cuda(cudaGetLastError(), "BF16 dequantize launch");
}

template <class C>
void launch_config(const ms_gemm_desc_t&, const void* a, const void* b, const Sm90Params& p, int sms, const StreamKSpace& space,
                   cudaStream_t stream) {
  launch_typed<kBf16, kBf16, C>(a, b, p, sms, space, stream);
}

// us_per_tile_block (one 128-byte = 64-value K block of one tile, every SM busy): first estimates from the FP8 family's
// costs (half the tensor-core rate on half the K per block), to be replaced by H100 measurements.
const ConfigEntry kConfigs[] = {
    {"ms_sm90_bf16_gemm_nt_128x128x64_c1x1_s6_ws", launch_config<Config<128, 6, kNone>>, 128, 0.42},
    {"ms_sm90_bf16_gemm_nt_128x256x64_c1x1_s3_ws", launch_config<Config<256, 3, kNone>>, 256, 0.80},
};

bool is_dense_bf16(const ms_qtensor_t& t) { return t.format == MS_FMT_DENSE && t.dtype == MS_DTYPE_BF16; }
bool dequantizable(int format) {
  return format == MS_FMT_MXFP4 || format == MS_FMT_NVFP4 || format == MS_FMT_MXFP8 || format == MS_FMT_MXINT8 || format == MS_FMT_FP8_TENSOR ||
         format == MS_FMT_FP8_ROW;
}
size_t aligned_bytes(int64_t rows, int64_t k) { return ((size_t)(rows * k * 2) + 255) / 256 * 256; }

// The epilogue scale of an operand: its decode scales where the BF16 copy leaves them out (NVFP4 g, FP8 per-tensor / per-row).
const float* epilogue_scale(const ms_qtensor_t& t) {
  return t.format == MS_FMT_NVFP4 || t.format == MS_FMT_FP8_TENSOR || t.format == MS_FMT_FP8_ROW ? t.decode_scales : nullptr;
}

}  // namespace

bool sm90_bf16_gemm_can_implement(const ms_gemm_desc_t& d) {
  const bool fp8_pair = (d.a_format == MS_FMT_FP8_TENSOR || d.a_format == MS_FMT_FP8_ROW) && (d.b_format == MS_FMT_FP8_TENSOR || d.b_format == MS_FMT_FP8_ROW);
  const bool a_ok = dequantizable(d.a_format) || (d.a_format == MS_FMT_DENSE && d.a_dtype == MS_DTYPE_BF16);
  // K: the BF16 rows' stride must be a multiple of 16 bytes for TMA. FP8 x FP8 belongs to the FP8 family.
  return !fp8_pair && a_ok && dequantizable(d.b_format) && d.k % 8 == 0;
}

bool sm90_bf16_gemm_has_config(const char* name) { return find_config(kConfigs, name) != nullptr; }

const char* sm90_bf16_gemm_config(const ms_gemm_desc_t& d, int sms) {
  return pick_config(kConfigs, kConfigs[1], d.m, d.n, d.k, kKPerBlock<kBf16>, sms).name;
}

size_t sm90_bf16_gemm_workspace_size(const ms_gemm_desc_t& d, const char* config, int sms) {
  // Counters (the stream-K flags among them), the BF16 copies, then the stream-K partials.
  const ConfigEntry* entry = find_config(kConfigs, config);
  const size_t partials = entry ? stream_k_partial_bytes(d.m, d.n, d.k, entry->bn, kKPerBlock<kBf16>, sms) : 0;
  return kWorkspaceCounterBytes + (d.a_format == MS_FMT_DENSE ? 0 : aligned_bytes(d.m, d.k)) + aligned_bytes(d.n, d.k) + partials;
}

bool sm90_bf16_gemm_operands_aligned(const ms_gemm_operands_t& ops) {
  auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return (is_dense_bf16(ops.a) ? aligned(ops.a.dense) : aligned(ops.a.data)) && aligned(ops.b.data);
}

void launch_sm90_bf16_gemm(const ms_gemm_desc_t& d, const char* config, const ms_gemm_operands_t& ops, int sms, void* workspace, size_t workspace_bytes,
                           cudaStream_t stream) {
  const ConfigEntry* entry = find_config(kConfigs, config);
  if (!entry) fail(MS_ERR_INVALID_ARGUMENT, "config", "no sm90 BF16 GEMM config named %s", config);
  if (!workspace) fail(MS_ERR_INVALID_ARGUMENT, "workspace", "the sm90 BF16 GEMM needs its workspace");
  // Past the decode counters, which stay untouched (zero).
  uint8_t* free = static_cast<uint8_t*>(workspace) + kWorkspaceCounterBytes;
  const void* a = ops.a.dense;
  if (!is_dense_bf16(ops.a)) {
    dequantize_bf16(ops.a, d.k, free, sms, stream);
    a = free;
    free += aligned_bytes(d.m, d.k);
  }
  dequantize_bf16(ops.b, d.k, free, sms, stream);
  Sm90Params p = params_of(d, ops, epilogue_scale(ops.a), ops.a.format == MS_FMT_FP8_ROW, epilogue_scale(ops.b), ops.b.format == MS_FMT_FP8_ROW);
  entry->launch(d, a, free, p, sms, StreamKSpace{workspace, workspace_bytes, free + aligned_bytes(d.n, d.k)}, stream);
}

}  // namespace ms
