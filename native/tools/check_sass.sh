#!/usr/bin/env bash
# Proves from the SASS what the kernels claim: for every architecture in the library,
#  - the quantize kernels exchange values with warp shuffles (the FWHT and block reductions);
#  - the generic GEMM accumulates with FFMA;
#  - the decode GEMM multiplies on BF16 tensor cores (HMMA) without local-memory traffic (LDL/STL = spills);
#  - the dual quantizer keeps its chunks in registers (no LDL/STL) and packs E2M1 codes with byte permutes (PRMT);
#  - on sm_90a, the wgmma GEMM runs FP8 (QGMMA) and BF16 (HGMMA) wgmma without spills, and the W4A8 family FP8 wgmma with
#    its A operand (the folded weights) in registers, without spills;
#  - on sm_100a, the sm100 FP4 family issues tcgen05 block-scaled MMAs (UTCOMMA; .4X for NVFP4; UTCQMMA for W4A8; each also in
#    its .2CTA form for the CTA pairs), scale copies into TMEM (UTCCP)
#    and TMEM loads (LDTM) without spills;
#  - on sm_120a, the sm120 FP4 family runs the block-scaled MMAs (OMMA.SF ... E8 for MXFP4, OMMA.SF ... UE4M3.4X for NVFP4,
#    QMMA.SF ... E4M3.E2M1 for W4A8) without spills.
# Usage: check_sass.sh path/to/libmicroscale.so   (exit 1 on any failed claim)
set -uo pipefail
lib="$1"
status=0
archs=$(cuobjdump --list-elf "$lib" | sed -n 's/.*\(sm_[0-9]*a\{0,1\}\).*/\1/p' | sort -u)
[[ -n "$archs" ]] || { echo "FAIL no ELF images in $lib"; exit 1; }
for arch in $archs; do
  sass=$(cuobjdump -sass -arch "$arch" "$lib" 2>/dev/null)
  quant=$(awk '/Function : .*segment_kernel/{on=1} /Function : /&&!/segment_kernel/{on=0} on' <<<"$sass")
  gemm=$(awk '/Function : .*gemm_generic/{on=1} /Function : /&&!/gemm_generic/{on=0} on' <<<"$sass")
  n_shfl=$(grep -c "SHFL.BFLY" <<<"$quant"); n_ffma=$(grep -c "FFMA" <<<"$gemm")
  ok=1
  [[ $n_shfl -gt 0 ]] || ok=0
  [[ $n_ffma -gt 0 ]] || ok=0
  decode=$(awk '/Function : .*decode_gemm/{on=1} /Function : /&&!/decode_gemm/{on=0} on' <<<"$sass")
  n_hmma=$(grep -c "HMMA.16816.F32.BF16" <<<"$decode"); n_dlocal=$(grep -cE "\b(LDL|STL)\b" <<<"$decode")
  [[ $n_hmma -gt 0 && $n_dlocal -eq 0 ]] || ok=0
  extra=" | decode_gemm: $n_hmma HMMA.BF16 (want >0), $n_dlocal LDL/STL (want 0)"
  dual=$(awk '/Function : .*dual_kernel/{on=1} /Function : /&&!/dual_kernel/{on=0} on' <<<"$sass")
  n_prmt=$(grep -c "PRMT" <<<"$dual"); n_qlocal=$(grep -cE "\b(LDL|STL)\b" <<<"$dual")
  [[ $n_prmt -gt 0 && $n_qlocal -eq 0 ]] || ok=0
  extra+=" | dual_quantize: $n_prmt PRMT (want >0), $n_qlocal LDL/STL (want 0)"
  if [[ "$arch" == "sm_90a" ]]; then
    # The Hopper wgmma kernel (FP8 and BF16 families): FP8 wgmma (QGMMA) and BF16 wgmma (HGMMA ... BF16), no local-memory
    # traffic (LDL/STL = spills).
    sm90=$(awk '/Function : .*sm90_gemm_kernel/{on=1} /Function : /&&!/sm90_gemm_kernel/{on=0} on' <<<"$sass")
    n_qgmma=$(grep -c "QGMMA" <<<"$sm90"); n_hgmma=$(grep -cE "HGMMA.*BF16" <<<"$sm90"); n_local=$(grep -cE "\b(LDL|STL)\b" <<<"$sm90")
    [[ $n_qgmma -gt 0 && $n_hgmma -gt 0 && $n_local -eq 0 ]] || ok=0
    extra+=" | sm90_gemm: $n_qgmma QGMMA, $n_hgmma HGMMA.BF16 (want >0), $n_local LDL/STL (want 0)"
    # The W4A8 family: FP8 wgmma with A (the folded weights) from registers, no spills.
    w4a8=$(awk '/Function : .*sm90_w4a8_kernel/{on=1} /Function : /&&!/sm90_w4a8_kernel/{on=0} on' <<<"$sass")
    n_wq=$(grep -cE "QGMMA.*E4M3\.E[45]M[32] R[0-9]+, R[0-9]+, gdesc" <<<"$w4a8"); n_wlocal=$(grep -cE "\b(LDL|STL)\b" <<<"$w4a8")
    [[ $n_wq -gt 0 && $n_wlocal -eq 0 ]] || ok=0
    extra+=" | sm90_w4a8: $n_wq QGMMA with register A (want >0), $n_wlocal LDL/STL (want 0)"
  fi
  if [[ "$arch" == "sm_100a" || "$arch" == "sm_103a" ]]; then
    sm100=$(awk '/Function : .*sm100_fp4_gemm_kernel/{on=1} /Function : /&&!/sm100_fp4_gemm_kernel/{on=0} on' <<<"$sass")
    n_omma=$(grep -c "UTCOMMA" <<<"$sm100"); n_4x=$(grep -cE "UTCOMMA[.A-Z0-9]*\.4X" <<<"$sm100"); n_cp=$(grep -c "UTCCP" <<<"$sm100")
    n_qmma=$(grep -c "UTCQMMA" <<<"$sm100"); n_ldtm=$(grep -c "LDTM" <<<"$sm100"); n_local=$(grep -cE "\b(LDL|STL)\b" <<<"$sm100")
    # The 2-SM variants (cta_group::2): the W4A4 and the W4A8 MMAs in their .2CTA forms.
    n_o2=$(grep -cE "UTCOMMA[.A-Z0-9]*\.2CTA" <<<"$sm100"); n_q2=$(grep -cE "UTCQMMA[.A-Z0-9]*\.2CTA" <<<"$sm100")
    [[ $n_omma -gt $n_4x && $n_4x -gt 0 && $n_qmma -gt 0 && $n_o2 -gt 0 && $n_q2 -gt 0 && $n_cp -gt 0 && $n_ldtm -gt 0 && $n_local -eq 0 ]] || ok=0
    extra+=" | sm100_fp4: $n_omma UTCOMMA ($n_4x .4X; want both kinds), $n_qmma UTCQMMA (W4A8), .2CTA: $n_o2 UTCOMMA $n_q2 UTCQMMA, $n_cp UTCCP, $n_ldtm LDTM (want >0), $n_local LDL/STL (want 0)"
  fi
  if [[ "$arch" == "sm_120a" || "$arch" == "sm_121a" ]]; then
    sm120=$(awk '/Function : .*sm120_fp4_gemm_kernel/{on=1} /Function : /&&!/sm120_fp4_gemm_kernel/{on=0} on' <<<"$sass")
    n_mx=$(grep -cE "OMMA\.SF\.16864\.F32\.E2M1\.E2M1\.E8" <<<"$sm120"); n_nv=$(grep -cE "OMMA\.SF\.16864\.F32\.E2M1\.E2M1\.UE4M3\.4X" <<<"$sm120")
    n_w4a8=$(grep -cE "QMMA\.SF\.16832\.F32\.E4M3\.E2M1\.E8" <<<"$sm120"); n_local=$(grep -cE "\b(LDL|STL)\b" <<<"$sm120")
    [[ $n_mx -gt 0 && $n_nv -gt 0 && $n_w4a8 -gt 0 && $n_local -eq 0 ]] || ok=0
    extra+=" | sm120_fp4: $n_mx OMMA.SF.E8, $n_nv OMMA.SF.UE4M3.4X, $n_w4a8 QMMA.SF.E4M3.E2M1 (want >0), $n_local LDL/STL (want 0)"
  fi
  printf '%s %-8s quantize: %5d SHFL.BFLY (want >0) | gemm_generic: %5d FFMA (want >0)%s\n' \
    "$([[ $ok == 1 ]] && echo PASS || echo FAIL)" "$arch" "$n_shfl" "$n_ffma" "$extra"
  [[ $ok == 1 ]] || status=1
done
exit $status
