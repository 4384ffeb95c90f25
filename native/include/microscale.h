/* Microscale native library: the only public header. C99, fixed-width types, no CUDA or C++ types.
 *
 * Every function returns ms_status_t (MS_OK = 0). Details of a failure are kept per thread and read with
 * ms_last_error_message() / ms_last_error_argument() until the next ms_* call on that thread.
 * Device pointers are plain addresses in the caller's current CUDA context; `stream` is a cudaStream_t (NULL: the
 * legacy default stream). The library never calls cudaSetDevice, never creates a context, never synchronizes
 * implicitly (except where a function says it returns a value computed on the device) and never aborts.
 * Number formats, rounding and scale rules: docs/NUMERICS.md (bit-exact where it says so). */
#ifndef MICROSCALE_H
#define MICROSCALE_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  define MS_API __declspec(dllexport)
#else
#  define MS_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define MS_ABI_VERSION 1

typedef int32_t ms_status_t;
enum {
  MS_OK = 0,
  MS_ERR_INVALID_ARGUMENT = 1,
  MS_ERR_MISALIGNED = 2,
  MS_ERR_UNSUPPORTED = 3,
  MS_ERR_ARCH_MISMATCH = 4,
  MS_ERR_CUDA = 5,
  MS_ERR_OUT_OF_MEMORY = 6,
  MS_ERR_ABI_MISMATCH = 7,
  MS_ERR_INTERNAL = 8,
  MS_ERR_NONFINITE = 9
};

/* Quantized formats (same numbering as the managed QuantFormat; MXINT8: int8 in [-127, 127] x E8M0 per 32, NUMERICS.md s8). */
enum { MS_FMT_MXFP4 = 0, MS_FMT_MXFP8 = 1, MS_FMT_NVFP4 = 2, MS_FMT_FP8_TENSOR = 3, MS_FMT_FP8_ROW = 4, MS_FMT_MXINT8 = 5, MS_FMT_DENSE = -1 };
enum { MS_ELEM_E4M3 = 0, MS_ELEM_E5M2 = 1 };               /* FP8 element of MXFP8 / FP8 formats */
enum { MS_RULE_FLOOR = 0, MS_RULE_CEIL = 1 };              /* MX scale exponent rule */
/* Layouts of a quantized tensor (ms_qtensor_t.layout):
   LINEAR: codes row-major [rows, padded_cols], block scales row-major [rows, scale_cols].
   SWIZZLED_128X4: codes as LINEAR; block scales in the 128 x 4 atoms of the Blackwell block-scaled MMA (rows padded to 128,
     scale columns to 4, padding zero).
   TILED_16X128 (MXFP4 / NVFP4 weights, the B operand of a GEMM; written by ms_relayout): codes and block scales in tiles of
     16 rows x 128 values, tile (row / 16, col / 128) at index (row / 16) x ceil(cols / 128) + col / 128, rows and columns
     past the tensor zero. Codes: 1024 bytes per tile, tile row r at byte 64 r, the nibbles within a row as in LINEAR.
     Scales, with g = row % 8 and h = row % 16 / 8: MXFP4 64 bytes per tile, block b (of 4) of a row at byte 2 (4 g + b) + h;
     NVFP4 128 bytes per tile, block b (of 8) at byte 4 (4 g + b / 2) + 2 h + b % 2. The decode GEMM (M <= 64 and more)
     streams it with one 512-byte contiguous piece per warp and load; a GEMM whose B is tiled runs the decode kernel.
   Sizes: ms_qtensor_bytes. */
enum { MS_LAYOUT_LINEAR = 0, MS_LAYOUT_SWIZZLED_128X4 = 1, MS_LAYOUT_TILED_16X128 = 2 };
enum { MS_DTYPE_F32 = 0, MS_DTYPE_BF16 = 1, MS_DTYPE_F16 = 2 };
enum { MS_ROUND_NEAREST = 0, MS_ROUND_STOCHASTIC = 1 };     /* element rounding (NUMERICS.md s7; scales always RNE) */

/* A quantized tensor [rows, cols] (cols = logical K, zero-padded to the block): where its parts live. */
typedef struct ms_qtensor_t {
  uint32_t struct_size;     /* sizeof(ms_qtensor_t) */
  int32_t format;           /* MS_FMT_*, or MS_FMT_DENSE for a dense operand (then `dense` and `dtype` apply) */
  int32_t element;          /* MS_ELEM_* (MXFP8 / FP8 formats) */
  int32_t layout;           /* MS_LAYOUT_* of block_scales */
  int32_t rows;
  int32_t cols;
  int32_t dtype;            /* MS_DTYPE_* of a dense operand */
  int32_t reserved;
  void* data;               /* packed codes: rows x padded_cols x bits / 8 bytes */
  void* block_scales;       /* E8M0 / UE4M3 codes; NULL for FP8 per-tensor / per-row */
  float* decode_scales;     /* NVFP4 g [1], FP8 per-tensor [1], FP8 per-row [rows]; NULL for MX (MXFP4, MXFP8, MXINT8) */
  const void* dense;        /* dense operand [rows, cols] of dtype */
} ms_qtensor_t;

/* Quantization request: source [rows, cols] of src_dtype, optional block Hadamard rotation first. */
typedef struct ms_quantize_desc_t {
  uint32_t struct_size;     /* sizeof(ms_quantize_desc_t) */
  int32_t rule;             /* MS_RULE_* (MX formats) */
  int32_t src_dtype;        /* MS_DTYPE_* */
  int32_t hadamard_block;   /* 0 (none) or 16, 32, 64, 128, 256 (cols must be a multiple) */
  const float* hadamard_signs; /* device, hadamard_block values of +-1, or NULL for all +1 */
  /* Since 0.2 (a caller whose struct_size ends before them gets round-to-nearest): */
  int32_t rounding;         /* MS_ROUND_*; stochastic for the FP formats only (not MXINT8) */
  int32_t two_d_blocks;     /* 1: NVFP4 block amax over 16 rows x 16 (NUMERICS.md s9), unrotated, f32/bf16 sources */
  uint64_t seed;            /* key of the stochastic rounding's Philox random bytes */
} ms_quantize_desc_t;

typedef struct ms_gemm_desc_t {
  uint32_t struct_size;     /* sizeof(ms_gemm_desc_t) */
  int32_t m, n, k;
  int32_t a_format, a_element, a_layout, a_dtype;   /* a_format MS_FMT_DENSE: dense activations of a_dtype */
  int32_t b_format, b_element, b_layout;            /* b_layout MS_LAYOUT_TILED_16X128: the plan runs the decode kernel
                                                        (any M) and every run's b must be tiled; otherwise b must not be */
  int32_t out_dtype;        /* MS_DTYPE_* */
  int32_t has_bias;         /* bias: float [n] */
  int32_t flags;            /* MS_GEMM_* bits (0: none). Callers built before this field pass a smaller struct_size: read as 0 */
} ms_gemm_desc_t;

/* The caller promises that B (the weights) is not written by any work still running on the stream when the GEMM is
   launched. On sm_90+ the decode kernel (M <= 64) then starts streaming B while the previous kernel on the stream finishes
   (programmatic dependent launch); everything else it reads or writes still waits for that kernel. Breaking the promise
   gives undefined results. Other kernels ignore the flag. */
#define MS_GEMM_STATIC_WEIGHTS 1

typedef struct ms_gemm_operands_t {
  uint32_t struct_size;     /* sizeof(ms_gemm_operands_t) */
  float alpha;
  ms_qtensor_t a;
  ms_qtensor_t b;
  void* out;                /* [m, n] of out_dtype, row-major */
  const float* bias;        /* [n] or NULL */
} ms_gemm_operands_t;

typedef struct ms_gemm_plan ms_gemm_plan;  /* opaque */

MS_API int32_t ms_abi_version(void);
MS_API const char* ms_version(void);
/* Thread-local detail of the last failure on this thread; library-owned, valid until the next ms_* call here. */
MS_API const char* ms_last_error_message(void);
MS_API const char* ms_last_error_argument(void);
/* The current context's device: compute capability (e.g. 90) and a comma-separated list of kernel families it runs. */
MS_API ms_status_t ms_query(int32_t* out_sm, char* families, size_t families_capacity);

/* Bytes of device workspace ms_quantize needs (amax scratch); 0 for MX formats. */
MS_API ms_status_t ms_quantize_workspace_size(const ms_qtensor_t* dst, const ms_quantize_desc_t* desc, size_t* out_bytes);
/* Quantizes src into dst (bit-exact, NUMERICS.md s3/s4/s6, non-finite policy Propagate). */
MS_API ms_status_t ms_quantize(const ms_quantize_desc_t* desc, const void* src, const ms_qtensor_t* dst,
                               void* workspace, size_t workspace_bytes, void* stream);
/* Both orientations of src [rows, cols] in one read (NUMERICS.md s9): row_dst [rows, cols] = Quantize(src) with row_desc,
   col_dst [cols, rows] = Quantize(src^T) with col_desc, whose Hadamard block runs along src's rows; bytes equal the two
   separate quantizations. Either destination may be NULL (with its desc). Formats MXFP4, MXFP8, NVFP4 (both sides the same
   format), src F32 or BF16 (the same src_dtype in both descs), cols a multiple of 16 bytes of src, src and data 16-byte
   aligned, Hadamard blocks 0, 16 or 32. workspace: MS_QUANTIZE_DUAL_WORKSPACE_BYTES, 4-byte aligned (NVFP4 tensor amax). */
#define MS_QUANTIZE_DUAL_WORKSPACE_BYTES 8
MS_API ms_status_t ms_quantize_dual(const void* src, int32_t rows, int32_t cols, const ms_quantize_desc_t* row_desc, const ms_qtensor_t* row_dst,
                                    const ms_quantize_desc_t* col_desc, const ms_qtensor_t* col_dst, void* workspace, size_t workspace_bytes,
                                    void* stream);
/* Row-major index of the first NaN/Inf of the (rotated) source, or -1: synchronizes `stream` to return it. */
MS_API ms_status_t ms_find_first_nonfinite(const ms_quantize_desc_t* desc, const void* src, int32_t rows, int32_t cols,
                                           void* workspace, size_t workspace_bytes, void* stream, int64_t* out_index);
MS_API ms_status_t ms_dequantize(const ms_qtensor_t* src, float* dst, void* stream);
/* Block Hadamard rotation of [rows, cols] src (src_dtype) into float dst; bit-exact order of NUMERICS.md s4. */
MS_API ms_status_t ms_hadamard_rotate(const ms_quantize_desc_t* desc, const void* src, int32_t rows, int32_t cols, float* dst,
                                      void* stream);

/* GGUF (ggml) blocks on the device -> dst in Microscale's layout: ggml_type 39 (MXFP4, 17-byte blocks of 32 values) into an
   MXFP4 dst, 40 (NVFP4, 36-byte blocks of 64) into an NVFP4 dst whose decode scale becomes global_scale. dst->cols must be
   a multiple of the block; src holds rows * cols / block blocks; dst->data 16-byte aligned. Values decode as ggml's
   dequantize_row_* decodes them (E2M1 -0 becomes +0; UE4M3 scales lose bit 7, 0x7F reads as 0); scale bytes ggml rejects
   (E8M0 0xFF, UE4M3 0xFF) become NaN scales. */
MS_API ms_status_t ms_gguf_repack(int32_t ggml_type, const void* src, const ms_qtensor_t* dst, float global_scale, void* stream);

/* Bytes of t's codes and block scales in its format and layout (t->data and t->block_scales may be NULL here). */
MS_API ms_status_t ms_qtensor_bytes(const ms_qtensor_t* t, size_t* out_data_bytes, size_t* out_scale_bytes);
/* Copies src into dst's layout: the same format, element, rows and cols, codes and block scales (decode_scales are neither
   read nor written: dst may share src's). Any layout to any other that applies to the format (MS_LAYOUT_TILED_16X128: MXFP4
   and NVFP4 only); every byte of dst is written, padding zero. src and dst must not overlap. */
MS_API ms_status_t ms_relayout(const ms_qtensor_t* src, const ms_qtensor_t* dst, void* stream);

/* GEMM C = alpha * A.B^T + bias: validate and pick a kernel once (plan), then run it many times. */
MS_API ms_status_t ms_gemm_plan_create(const ms_gemm_desc_t* desc, ms_gemm_plan** out_plan);
/* The kernel a plan for desc would run on a device of compute capability sm (e.g. 90, 100, 120) with `multiprocessors`
   multiprocessors, whatever device is current (the dispatch table: sm_12x -> the sm120 block-scaled FP4 family, sm_90 ->
   the Hopper families, else decode / generic); MS_FORCE_CONFIG does not apply. Needs no CUDA context. */
MS_API ms_status_t ms_gemm_kernel_for(const ms_gemm_desc_t* desc, int32_t sm, int32_t multiprocessors, char* name, size_t capacity);
MS_API ms_status_t ms_gemm_plan_name(const ms_gemm_plan* plan, char* name, size_t capacity);
/* Device workspace the plan can use (0 for some plans): decode plans up to 64 tokens split K over CTAs with it; the sm_90
   BF16 plans (block-scaled operands above 64 tokens) dequantize A and B into it, (M + N) x K x 2 bytes and more.
   ms_gemm_plan_run accepts NULL instead and then runs without it (correct, possibly much slower). A workspace must be
   256-byte aligned, zero-filled before its first use with any plan (every run leaves it reusable: its first 16 KiB, the
   counters, return to zero), and not used by anything else until the run's stream has passed it. One workspace may serve
   every plan in turn. */
MS_API ms_status_t ms_gemm_plan_workspace_size(const ms_gemm_plan* plan, size_t* out_bytes);
MS_API ms_status_t ms_gemm_plan_run(const ms_gemm_plan* plan, const ms_gemm_operands_t* ops, void* workspace, void* stream);
MS_API void ms_gemm_plan_destroy(ms_gemm_plan* plan);   /* NULL-safe, cannot fail */

#ifdef __cplusplus
}
#endif
#endif /* MICROSCALE_H */
