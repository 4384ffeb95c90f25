// Datacenter Blackwell (sm_100a) tcgen05 building blocks of the sm100 FP4 family, and their software emulation on sm_90,
// where the same tile code runs on an H100 / H200 for the tests. PTX ISA 9.0 s9.7.16 (tcgen05); design study
// shared/design/BLACKWELL-KERNELS.md s3 and s5; NOTES-sm100.md says what the emulation can and cannot vouch for.
//
// Tensor memory (TMEM): 128 lanes x 512 columns of 32-bit cells per CTA, address = lane << 16 | column. The family uses
//  - the accumulator of an M = 128 MMA: lane m = row m, column base + n (FP32, one element per cell);
//  - block scales copied from a 512-byte atom of the swizzled 128x4 layout by tcgen05.cp .32x128b.warpx4: atom row i (16
//    bytes) lands in lanes i, i + 32, i + 64, i + 96, columns c .. c + 3, so lane i + 32 Q, column c + j, byte b holds the scale
//    of row 32 j + i, K block b. The MMA reads row m's scales at lane m, column c + m / 32 (the layout CUTLASS's collective and
//    public sm_100 kernels use; the PTX gives it only as a figure).
// Emulation (sm_90): TMEM is a per-CTA [128][512] u32 buffer in global memory; the MMA warp's 32 lanes compute an issued MMA
// together (natively one thread issues it) and arrive on the commit's mbarrier when done.
#pragma once
#include <cstdint>
#include "ptx_sm90.cuh"
#include "formats.cuh"

#if defined(__CUDA_ARCH__) && (defined(__CUDA_ARCH_FEAT_SM100_ALL) || defined(__CUDA_ARCH_FEAT_SM103_ALL))
#define MS_SM100_NATIVE 1
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 900
#define MS_SM100_EMULATED 1
#endif
#if defined(MS_SM100_NATIVE) || defined(MS_SM100_EMULATED)
#define MS_SM100_TILES 1
#endif

namespace ms::sm100 {

constexpr int kTmemLanes = 128, kTmemColumns = 512;

// The block-scaled MMAs of the family: kind::mxf4nvf4 with NVFP4 (UE4M3 per 16, .block16 = 4X) or MXFP4 (UE8M0 per 32,
// .block32 = 2X) operands, K 64; kind::mxf8f6f4 with E4M3 A x unpacked E2M1 B (UE8M0 per 32, .block32 = 1X), K 32.
enum MmaKind { kMxf4 = 0, kNvf4 = 1, kE4m3E2m1 = 2 };


// Shared-memory matrix descriptor (PTX s9.7.16.4.1): start >> 4 (bits 0-13), leading byte offset >> 4 (16-29), stride byte
// offset >> 4 (32-45), fixed 0b001 (46-48), base offset 0 (49-51), swizzle (61-63: 0 none, 2 128-byte).
constexpr uint64_t kSwizzleNone = 0, kSwizzle128B = 2;
constexpr __host__ __device__ uint64_t smem_descriptor(uint32_t smem_address, uint32_t leading_bytes, uint32_t stride_bytes, uint64_t swizzle) {
  return (uint64_t)((smem_address & 0x3FFFFu) >> 4) | (uint64_t)((leading_bytes & 0x3FFFFu) >> 4) << 16 |
         (uint64_t)((stride_bytes & 0x3FFFFu) >> 4) << 32 | (uint64_t)1 << 46 | swizzle << 61;
}
// A K-major operand tile of 128-byte rows written by TMA with 128-byte swizzle (8-row atoms of 1024 bytes; the leading byte
// offset is unused), starting `k_bytes` into its rows.
constexpr __host__ __device__ uint64_t operand_descriptor(uint32_t tile_address, uint32_t k_bytes) {
  return smem_descriptor(tile_address + k_bytes, 16, 1024, kSwizzle128B);
}
// A 512-byte scale atom for tcgen05.cp .32x128b: 32 rows of 16 bytes, no swizzle, 8-row groups 128 bytes apart.
constexpr __host__ __device__ uint64_t scale_atom_descriptor(uint32_t atom_address) { return smem_descriptor(atom_address, 0, 128, kSwizzleNone); }

// Instruction descriptor of kind::mxf4nvf4 (PTX s9.7.16.4.2, tables 43 / 44): E2M1 A and B (bits 7-9, 10-11), K-major
// (transpose bits 15, 16 zero), N >> 3 (17-22), scale type (23: 1 UE8M0, 0 UE4M3), M >> 7 (27-28), and the scale ids: the
// byte of each TMEM scale word this MMA's blocks start at (SFB 4-5, SFA 29-30; 4X: 0; 2X: 0 or 2, a half-word).
constexpr __host__ __device__ uint32_t mxf4nvf4_descriptor(int m, int n, bool ue8m0, uint32_t sfa_id, uint32_t sfb_id) {
  return 1u << 7 | 1u << 10 | (uint32_t)(n >> 3) << 17 | (ue8m0 ? 1u : 0u) << 23 | (uint32_t)(m >> 7) << 27 | (sfa_id & 3u) << 29 |
         (sfb_id & 3u) << 4;
}

// Instruction descriptor of kind::mxf8f6f4 for E4M3 A x E2M1 B (W4A8; atype 0 = E4M3 at bits 7-9, btype 5 = E2M1 at 10-12),
// UE8M0 scales (bit 23), K-major, N >> 3, M >> 7, and the scale ids (1X: the byte of the TMEM scale word, 0..3).
constexpr __host__ __device__ uint32_t e4m3_e2m1_descriptor(int m, int n, uint32_t sfa_id, uint32_t sfb_id) {
  return 0u << 7 | 5u << 10 | (uint32_t)(n >> 3) << 17 | 1u << 23 | (uint32_t)(m >> 7) << 27 | (sfa_id & 3u) << 29 | (sfb_id & 3u) << 4;
}

// FP4 under kind::mxf8f6f4 sits in shared memory unpacked (TMA CU_TENSOR_MAP_DATA_TYPE_16U4_ALIGN16B): every 16 values are
// their 8 packed bytes (even K in the low nibble) followed by 8 bytes of padding, so a row of K values takes K bytes, as E4M3
// does. The byte (of a row, from the slice start) that holds value k, in its nibble k % 2:
constexpr __host__ __device__ int unpacked_fp4_byte(int k) { return 16 * (k / 16) + (k % 16) / 2; }

// The shared-memory address the MMA reads for row r, byte b (of the K slice the descriptor starts at) of a K-major operand,
// as the emulation models it: rows of 128 bytes in 8-row groups `stride` bytes apart, and with 128-byte swizzle the 16-byte
// unit (address bits 4-6) XORed with address bits 7-9 (atoms 1024-byte aligned), the pattern TMA's SWIZZLE_128B writes.
constexpr __host__ __device__ uint32_t operand_address(uint64_t desc, int r, int b) {
  const uint32_t start = (uint32_t)(desc & 0x3FFFu) << 4, stride = (uint32_t)((desc >> 32) & 0x3FFFu) << 4;
  const uint32_t address = start + (uint32_t)(r / 8) * stride + (uint32_t)(r % 8) * 128 + (uint32_t)b;
  return (desc >> 61) == kSwizzle128B ? address ^ (((address >> 7) & 7u) << 4) : address;
}

#ifdef MS_SM100_TILES
// CTA pairs (cta_group::2, the 2-SM variant): a cluster of two CTAs; rank 0 issues the MMAs (M = 256), which read A's rows
// 0-127 from rank 0's shared memory and 128-255 from rank 1's, B's first half from rank 0 and second from rank 1 (same
// offsets), write rows 128 r .. + 127 into rank r's TMEM, and take each rank's scales from its own TMEM.
__device__ __forceinline__ uint32_t pair_rank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
  return r;
}
// The shared::cluster address of this CTA's `p` in CTA `rank` of the cluster.
__device__ __forceinline__ uint32_t cluster_address(const void* p, uint32_t rank) {
  uint32_t r;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"(sm90::smem_addr(p)), "r"(rank));
  return r;
}
// Arrives on the mbarrier at `bar`'s offset in CTA `rank` (release at cluster scope: what this thread saw is published).
__device__ __forceinline__ void arrive_on_rank(uint64_t* bar, uint32_t rank) {
  asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];" ::"r"(cluster_address(bar, rank)) : "memory");
}
// Waits for a phase of a barrier that another CTA of the cluster arrives on (acquire at cluster scope).
__device__ __forceinline__ void wait_cluster(uint64_t* bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\nwait_%=:\n"
      "mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra wait_%=;\n}" ::"r"(sm90::smem_addr(bar)), "r"(parity) : "memory");
}
// All threads of both CTAs.
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}

// Where a TMEM address lives in the emulated TMEM of this CTA (and, for a CTA pair, of the other one).
struct Tmem {
  uint32_t* emulated;       // this CTA's [128][512] cells (emulation only; null natively)
  uint32_t* emulated_peer;  // the pair's other CTA's (2-SM emulation), else null
  uint32_t rank;            // in the CTA pair; 0 for one CTA
  __device__ __forceinline__ uint32_t* cell(uint32_t address) const { return cell_of(rank, address); }
  __device__ __forceinline__ uint32_t* cell_of(uint32_t cta, uint32_t address) const {
    return (cta == rank ? emulated : emulated_peer) + (address >> 16) * kTmemColumns + (address & 0xFFFFu);
  }
};

// Allocates all 512 columns (the whole warp calls it; for a pair, the same warp of both CTAs) and writes the base address to
// *slot; relinquishes the permit.
template <int kCtas = 1>
__device__ __forceinline__ void alloc_all(uint32_t* slot) {
#ifdef MS_SM100_NATIVE
  if constexpr (kCtas == 2) {
    asm volatile("tcgen05.alloc.cta_group::2.sync.aligned.shared::cta.b32 [%0], %1;" ::"r"(sm90::smem_addr(slot)), "r"(kTmemColumns) : "memory");
    asm volatile("tcgen05.relinquish_alloc_permit.cta_group::2.sync.aligned;" ::: "memory");
  } else {
    asm volatile("tcgen05.alloc.cta_group::1.sync.aligned.shared::cta.b32 [%0], %1;" ::"r"(sm90::smem_addr(slot)), "r"(kTmemColumns) : "memory");
    asm volatile("tcgen05.relinquish_alloc_permit.cta_group::1.sync.aligned;" ::: "memory");
  }
#else
  if (threadIdx.x % 32 == 0) *slot = 0;
#endif
}
template <int kCtas = 1>
__device__ __forceinline__ void dealloc_all(uint32_t base) {
#ifdef MS_SM100_NATIVE
  if constexpr (kCtas == 2) asm volatile("tcgen05.dealloc.cta_group::2.sync.aligned.b32 %0, %1;" ::"r"(base), "r"(kTmemColumns) : "memory");
  else asm volatile("tcgen05.dealloc.cta_group::1.sync.aligned.b32 %0, %1;" ::"r"(base), "r"(kTmemColumns) : "memory");
#endif
}

// Orders tcgen05 operations against thread synchronization (mbarrier waits / arrives, __syncthreads).
__device__ __forceinline__ void fence_before_sync() {
#ifdef MS_SM100_NATIVE
  asm volatile("tcgen05.fence::before_thread_sync;" ::: "memory");
#else
  __threadfence();
#endif
}
__device__ __forceinline__ void fence_after_sync() {
#ifdef MS_SM100_NATIVE
  asm volatile("tcgen05.fence::after_thread_sync;" ::: "memory");
#else
  __threadfence();
#endif
}

#ifdef MS_SM100_EMULATED
// This CTA's shared-memory object `p` as CTA `cta` of the pair has it (the same offset), as a generic pointer.
template <class T> __device__ __forceinline__ T* in_cta(T* p, uint32_t cta, uint32_t rank) {
  if (cta == rank) return p;
  uint64_t generic;
  asm volatile("mapa.u64 %0, %1, %2;" : "=l"(generic) : "l"(reinterpret_cast<uint64_t>(p)), "r"(cta));
  return reinterpret_cast<T*>(generic);
}
#endif

// One 512-byte scale atom (shared memory, scale_atom_descriptor) into TMEM columns column .. column + 3 of every lane quarter;
// for a pair, each CTA's atom at that offset into its own TMEM. The whole MMA warp calls it; natively lane 0 issues it.
template <int kCtas = 1>
__device__ __forceinline__ void copy_scale_atom(const Tmem& tmem, uint32_t column_address, const uint8_t* atom) {
#ifdef MS_SM100_NATIVE
  (void)tmem;
  if (threadIdx.x % 32 == 0) {
    if constexpr (kCtas == 2)
      asm volatile("tcgen05.cp.cta_group::2.32x128b.warpx4 [%0], %1;" ::"r"(column_address), "l"(scale_atom_descriptor(sm90::smem_addr(atom))) : "memory");
    else
      asm volatile("tcgen05.cp.cta_group::1.32x128b.warpx4 [%0], %1;" ::"r"(column_address), "l"(scale_atom_descriptor(sm90::smem_addr(atom))) : "memory");
  }
#else
  const int lane = threadIdx.x % 32;
  __syncwarp();  // the warp's previous MMA no longer reads these cells
  for (uint32_t cta = 0; cta < (uint32_t)kCtas; ++cta) {
    const uint32_t* words = reinterpret_cast<const uint32_t*>(in_cta(atom, cta, tmem.rank));
    for (int quarter = 0; quarter < 4; ++quarter)
      for (int j = 0; j < 4; ++j) *tmem.cell_of(cta, column_address + ((uint32_t)(32 * quarter + lane) << 16) + j) = words[lane * 4 + j];
  }
  __threadfence();
  __syncwarp();
#endif
}

#ifdef MS_SM100_EMULATED
// The shared-memory byte of row r, byte b of a K-major operand tile described by `desc` (operand_address), in the window of
// the CTA whose addresses have no bits above the descriptor's 18 (a single CTA, or rank 0 of a pair, which issues the MMAs).
__device__ __forceinline__ const uint8_t* operand_byte(uint64_t desc, int r, int b) {
  return static_cast<const uint8_t*>(__cvta_shared_to_generic(operand_address(desc, r, b)));
}
// ... for a pair: A row r (0-255) from CTA r / 128; B row n (0..N-1) from CTA n / (N / 2) (each holds half of B).
template <int kCtas> struct PairOperands {
  uint32_t rank;
  int n;  // the MMA's N
  __device__ __forceinline__ const uint8_t* a(uint64_t desc, int r, int b) const { return in_cta(operand_byte(desc, r % 128, b), (uint32_t)(r / 128), rank); }
  __device__ __forceinline__ const uint8_t* b(uint64_t desc, int r, int k) const {
    const int half = kCtas == 2 ? n / 2 : n;
    return in_cta(operand_byte(desc, r % half, k), (uint32_t)(r / half), rank);
  }
};
// sm_90's TMA has no 16U4_ALIGN16B: the emulation loads the packed FP4 tile (rows of 64 bytes = 128 values) plainly and the MMA
// warp writes it where a 16U4_ALIGN16B + SWIZZLE_128B load would (unpacked_fp4_byte, operand_address; zero padding).
// The unit is written at its offset from `tile`: the descriptor keeps only 18 bits of the address, and a cluster CTA's
// shared::cta addresses carry more (rank 1 writing through a descriptor-derived address wrote into rank 0; compute-sanitizer
// on an H200, 2026-12-02). The offset is exact because the tile is 1024-byte aligned.
__device__ __forceinline__ void unpack_fp4_tile(const uint8_t* packed, uint8_t* tile, int rows) {
  const uint32_t base = sm90::smem_addr(tile), low_bits = base & 0x3FFF0u;
  __syncwarp();
  for (int u = threadIdx.x % 32; u < rows * 8; u += 32) {
    const int r = u / 8, granule = u % 8;
    const uint2 data = *reinterpret_cast<const uint2*>(packed + r * 64 + granule * 8);
    uint4* dst = reinterpret_cast<uint4*>(tile + (operand_address(operand_descriptor(base, 0), r, 16 * granule) - low_bits));
    *dst = make_uint4(data.x, data.y, 0u, 0u);
  }
  __syncwarp();
}
__device__ __forceinline__ double scale_value(uint32_t code, bool ue4m3) {
  if (ue4m3) return (double)from_e4m3(code & 0x7Fu);
  return code == 0xFFu ? __longlong_as_double(0x7FF8000000000000ll) : ldexp(1.0, (int)code - 127);
}
#endif

// D [128 x N] (+)= A [128 x K] . B [N x K]^T with block scales, kind::mxf4nvf4 (kBlock16: NVFP4, UE4M3 per 16, scale_vec
// 4X; else MXFP4, UE8M0 per 32, 2X). Emulation: every D element is C + the scaled block sums (each exact in binary32),
// accumulated in binary64 and rounded once; the PTX leaves the hardware's order and precision open (at least binary32).
// The whole MMA warp calls it; natively lane 0 issues it.
// kind::mxf8f6f4 (E4M3 x E2M1): the same with one UE8M0 block of 32 per MMA (the scale id picks its byte), K 32.
// kCtas 2: the pair's MMA (M = 256), issued by rank 0 (see pair_rank).
#define MS_TCGEN05_MMA(GROUP, KIND)                                                                                          \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %4, 0;\n"                                                                  \
               "tcgen05.mma.cta_group::" GROUP ".kind::" KIND " [%0], %1, %2, %3, [%5], [%6], p;\n}" ::"r"(d_address),        \
               "l"(desc_a), "l"(desc_b), "r"(idesc), "r"(accumulate ? 1u : 0u), "r"(sfa_address), "r"(sfb_address) : "memory")
template <int kKind, int kN, int kCtas = 1>
__device__ __forceinline__ void mma(const Tmem& tmem, uint32_t d_address, uint64_t desc_a, uint64_t desc_b, uint32_t idesc, uint32_t sfa_address,
                                    uint32_t sfb_address, bool accumulate) {
  constexpr bool kBlock16 = kKind == kNvf4;
#ifdef MS_SM100_NATIVE
  (void)tmem;
  if (threadIdx.x % 32 == 0) {
    if constexpr (kCtas == 2) {
      if constexpr (kKind == kE4m3E2m1) MS_TCGEN05_MMA("2", "mxf8f6f4.block_scale.block32");
      else if constexpr (kBlock16) MS_TCGEN05_MMA("2", "mxf4nvf4.block_scale.block16");
      else MS_TCGEN05_MMA("2", "mxf4nvf4.block_scale.block32");
    } else {
      if constexpr (kKind == kE4m3E2m1) MS_TCGEN05_MMA("1", "mxf8f6f4.block_scale.block32");
      else if constexpr (kBlock16) MS_TCGEN05_MMA("1", "mxf4nvf4.block_scale.block16");
      else MS_TCGEN05_MMA("1", "mxf4nvf4.block_scale.block32");
    }
  }
#else
  constexpr int kBlocks = kKind == kE4m3E2m1 ? 1 : kBlock16 ? 4 : 2, kBlockK = kKind == kE4m3E2m1 ? 32 : 64 / kBlocks;
  const uint32_t sfa_id = (idesc >> 29) & 3u, sfb_id = (idesc >> 4) & 3u;
  const int lane = threadIdx.x % 32;
  __syncwarp();  // the scale cells of the warp's copies are written
  const PairOperands<kCtas> operands{tmem.rank, kN};
  // Row m of the M = 128 kCtas result lives in CTA m / 128, lane m % 128, with that CTA's scales (it holds SFB for all N).
  auto cell = [&](int m, uint32_t address_at_lane_0) { return tmem.cell_of((uint32_t)(m / 128), address_at_lane_0 + ((uint32_t)(m % 128) << 16)); };
  if constexpr (kKind == kE4m3E2m1) {
    // E4M3 x E2M1 products have at most 6 significant bits; a block of 32 sums exactly in binary64.
    for (int e = lane; e < 128 * kCtas * kN; e += 32) {
      const int m = e / kN, n = e % kN, lm = m % 128;
      uint32_t* d = cell(m, d_address + n);
      const uint32_t sfa = *cell(m, sfa_address + lm / 32), sfb = *tmem.cell_of((uint32_t)(m / 128), sfb_address + ((uint32_t)n << 16) + n / 32);
      double part = 0.0;
      for (int k = 0; k < kBlockK; ++k) {
        const uint32_t a = *operands.a(desc_a, m, k), b = (*operands.b(desc_b, n, unpacked_fp4_byte(k)) >> (4 * (k % 2))) & 0xFu;
        part += (double)from_e4m3(a) * (double)from_e2m1(b);
      }
      const double acc = (accumulate ? (double)__uint_as_float(*d) : 0.0) +
                         part * scale_value((sfa >> (8 * sfa_id)) & 0xFFu, false) * scale_value((sfb >> (8 * sfb_id)) & 0xFFu, false);
      *d = __float_as_uint((float)acc);
    }
  } else {
    for (int e = lane; e < 128 * kCtas * kN; e += 32) {
      const int m = e / kN, n = e % kN, lm = m % 128;
      uint32_t* d = cell(m, d_address + n);
      const uint32_t sfa = *cell(m, sfa_address + lm / 32), sfb = *tmem.cell_of((uint32_t)(m / 128), sfb_address + ((uint32_t)n << 16) + n / 32);
      double acc = accumulate ? (double)__uint_as_float(*d) : 0.0;
      for (int q = 0; q < kBlocks; ++q) {
        float part = 0.0f;
        for (int k = q * kBlockK; k < (q + 1) * kBlockK; ++k) {
          const uint32_t a = (*operands.a(desc_a, m, k / 2) >> (4 * (k % 2))) & 0xFu, b = (*operands.b(desc_b, n, k / 2) >> (4 * (k % 2))) & 0xFu;
          part += from_e2m1(a) * from_e2m1(b);
        }
        const uint32_t byte_a = sfa_id + q, byte_b = sfb_id + q;  // the scale id is the byte this MMA's blocks start at (4X: 0)
        acc += (double)part * scale_value((sfa >> (8 * byte_a)) & 0xFFu, kBlock16) * scale_value((sfb >> (8 * byte_b)) & 0xFFu, kBlock16);
      }
      *d = __float_as_uint((float)acc);
    }
  }
#endif
}

// Makes `bar` arrive once every tcgen05 operation this thread (natively lane 0) issued before has completed. The whole MMA
// warp calls it.
// For a pair, it arrives on the barrier at `bar`'s offset in both CTAs.
template <int kCtas = 1>
__device__ __forceinline__ void commit(uint64_t* bar) {
#ifdef MS_SM100_NATIVE
  if (threadIdx.x % 32 == 0) {
    if constexpr (kCtas == 2)
      asm volatile("tcgen05.commit.cta_group::2.mbarrier::arrive::one.shared::cluster.multicast::cluster.b64 [%0], %1;"
                   ::"r"(sm90::smem_addr(bar)), "h"((uint16_t)0b11) : "memory");
    else
      asm volatile("tcgen05.commit.cta_group::1.mbarrier::arrive::one.shared::cluster.b64 [%0];" ::"r"(sm90::smem_addr(bar)) : "memory");
  }
#else
  __syncwarp();
  __threadfence();
  if (threadIdx.x % 32 == 0) {
    if constexpr (kCtas == 2) {
      arrive_on_rank(bar, 0);
      arrive_on_rank(bar, 1);
    } else {
      sm90::mbarrier_arrive(bar);
    }
  }
#endif
}

// 32 consecutive columns of this warp's 32 lanes (.32x32b.x32: thread t gets lane (address >> 16) + t), then waits for them.
__device__ __forceinline__ void load_32_columns(const Tmem& tmem, uint32_t address, float (&v)[32]) {
#ifdef MS_SM100_NATIVE
  (void)tmem;
  uint32_t r[32];
  asm volatile(
      "tcgen05.ld.sync.aligned.32x32b.x32.b32 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, "
      "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, [%32];\n"
      "tcgen05.wait::ld.sync.aligned;"  // in the same statement: the registers are undefined until the wait
      : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]), "=r"(r[4]), "=r"(r[5]), "=r"(r[6]), "=r"(r[7]), "=r"(r[8]), "=r"(r[9]), "=r"(r[10]),
        "=r"(r[11]), "=r"(r[12]), "=r"(r[13]), "=r"(r[14]), "=r"(r[15]), "=r"(r[16]), "=r"(r[17]), "=r"(r[18]), "=r"(r[19]), "=r"(r[20]),
        "=r"(r[21]), "=r"(r[22]), "=r"(r[23]), "=r"(r[24]), "=r"(r[25]), "=r"(r[26]), "=r"(r[27]), "=r"(r[28]), "=r"(r[29]), "=r"(r[30]),
        "=r"(r[31])
      : "r"(address)
      : "memory");
#pragma unroll
  for (int j = 0; j < 32; ++j) v[j] = __uint_as_float(r[j]);
#else
  const uint32_t lane_address = address + ((uint32_t)(threadIdx.x % 32) << 16);
#pragma unroll
  for (int j = 0; j < 32; ++j) v[j] = __uint_as_float(*tmem.cell(lane_address + j));
#endif
}
#endif

}  // namespace ms::sm100
