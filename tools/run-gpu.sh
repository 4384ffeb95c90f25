#!/usr/bin/env bash
# Runs inside the GPU bundle (see ./build.sh bundle) on a machine with an NVIDIA GPU, CUDA's nvcc + cmake + ninja, and no .NET
# SDK: builds libmicroscale with cmake on the target, checks the SASS, runs `microscale verify --full`, the Gpu and Interop
# test categories, the demo and
# the GPU benchmark sweep. Writes logs, the test report and CSV/JSON into OUT_DIR.
#   ./run-gpu.sh OUT_DIR [--archs "90a"] [--skip-bench] [--sanitize [FILTER]] [--tests FILTER] [--parts LIST] [--skip-verify]
#                [--without-sm100]
# --sanitize: instead of the rest, the Gpu tests (or those FILTER selects) under compute-sanitizer's memcheck, racecheck,
# initcheck and synccheck, one log per tool (sanitize-TOOL.log) and a summary line each.
# --without-sm100: leave out the sm_100a tcgen05 FP4 family (-DMICROSCALE_SM100_FAMILY=OFF; see native/NOTES-sm100.md).
# --tests FILTER: only these tests (default: categories Gpu and Interop); --parts LIST: only these gpu-sweep parts (e.g.
# gemm-fp8,gemm-mx), without the selftest timings; --skip-verify: no `verify --full` and no demo (a shorter call).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: run-gpu.sh OUT_DIR [--archs LIST] [--skip-bench]}"; shift
archs="80;90a;100a;120a"; bench=1; sanitize=""; tests="TestCategory=Gpu|TestCategory=Interop"; parts=""; verify=1; sm100=ON
while [[ $# -gt 0 ]]; do
  case "$1" in
    --archs) archs="$2"; shift 2 ;;
    --skip-bench) bench=0; shift ;;
    --tests) tests="$2"; shift 2 ;;
    --parts) parts="$2"; shift 2 ;;
    --skip-verify) verify=0; shift ;;
    --without-sm100) sm100=OFF; shift ;;
    --sanitize) sanitize="TestCategory=Gpu"; shift; if [[ $# -gt 0 && "$1" != --* ]]; then sanitize="$1"; shift; fi ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
status=0
step() { echo; echo "=== $*"; }

step "native build (archs $archs)"
cmake -S "$here/native" -B "$here/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMICROSCALE_CUDA_ARCHS="$archs" \
      -DMICROSCALE_BUILD_BASELINES=ON -DMICROSCALE_BUILD_SELFTEST=ON -DMICROSCALE_SM100_FAMILY=$sm100 -DCMAKE_CUDA_FLAGS=--threads=0 > "$out/native-build.log" 2>&1 || { tail -20 "$out/native-build.log"; exit 1; }
cmake --build "$here/build" >> "$out/native-build.log" 2>&1 || { grep -E "error" "$out/native-build.log" | head -40; exit 1; }
grep -E "registers|spill" "$out/native-build.log" | sort | uniq -c | sort -rn | head -5

step "SASS check"
bash "$here/native/tools/check_sass.sh" "$here/build/libmicroscale.so" | tee "$out/sass-check.txt" || status=1

export MICROSCALE_NATIVE_PATH="$here/build/libmicroscale.so" MICROSCALE_BASELINES_PATH="$here/build/libmicroscale_baselines.so"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
cd "$here/app"

if [[ -n "$sanitize" ]]; then
  # ILGPU and the runtime make their own CUDA calls too; every error reported is counted, ours or not.
  for tool in memcheck racecheck initcheck synccheck; do
    step "compute-sanitizer --tool $tool ($sanitize)"
    compute-sanitizer --tool "$tool" --error-exitcode 99 --print-limit 100 --target-processes all \
      ./Microscale.Tests --filter "$sanitize" --no-ansi > "$out/sanitize-$tool.log" 2>&1; rc=$?
    summary=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$out/sanitize-$tool.log" | tail -n1)
    echo "$tool: exit $rc; ${summary:-no sanitizer summary}" | tee -a "$out/sanitize-summary.txt"
    [[ $rc -eq 0 ]] || status=1
  done
  exit $status
fi

if [[ $verify == 1 ]]; then
  step "verify --full (native)"
  ./Microscale.Cli verify --full --backend native > "$out/verify.log" 2>&1 || status=1
  grep -E "FAIL|^verify" "$out/verify.log" | tail -20
fi

step "tests: $tests"
./Microscale.Tests --filter "$tests" --no-ansi > "$out/gpu-tests.log" 2>&1; rc=$?
grep -E "^(failed|skipped) " "$out/gpu-tests.log" | head -40
total=$(sed -n 's/^ *total: *\([0-9]*\).*/\1/p' "$out/gpu-tests.log" | tail -n1)
failed=$(sed -n 's/^ *failed: *\([0-9]*\).*/\1/p' "$out/gpu-tests.log" | tail -n1)
passed=$(sed -n 's/^ *succeeded: *\([0-9]*\).*/\1/p' "$out/gpu-tests.log" | tail -n1)
skipped=$(sed -n 's/^ *skipped: *\([0-9]*\).*/\1/p' "$out/gpu-tests.log" | tail -n1)
echo "gpu: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped (of ${total:-0}), exit $rc" | tee -a "$out/gpu-tests.log"
[[ $rc -eq 0 && "${total:-0}" -gt 0 ]] || status=1

if [[ $verify == 1 ]]; then
  step "demo"
  ./Microscale.Cli info > "$out/demo.log" 2>&1
  ./Microscale.Cli demo --rows 4096 --columns 4096 --tokens 64 >> "$out/demo.log" 2>&1 || status=1
  tail -25 "$out/demo.log"
fi

if [[ $bench == 1 && -n "$parts" ]]; then
  step "GPU benchmark sweep: $parts"
  ./Microscale.Bench gpu-sweep "$out" --only "$parts" > "$out/bench.log" 2>&1 || status=1
  tail -40 "$out/bench.log"
elif [[ $bench == 1 ]]; then
  step "GPU benchmark sweep"
  ./Microscale.Bench gpu-sweep "$out" > "$out/bench.log" 2>&1 || status=1
  tail -30 "$out/bench.log"
  step "GEMM families vs cuBLASLt (microscale_selftest: CUDA events, median of 50, 4 rotating operand sets)"
  "$here/build/microscale_selftest" 2>&1 | tee -a "$out/bench.log" | tail -32 || status=1
  step "decode GEMM and quantizers (microscale_selftest --decode / --quantize)"
  "$here/build/microscale_selftest" --decode > "$out/selftest-decode.txt" 2>&1 || status=1
  "$here/build/microscale_selftest" --quantize > "$out/selftest-quantize.txt" 2>&1 || status=1
  tail -3 "$out/selftest-decode.txt"; cat "$out/selftest-quantize.txt"
fi
exit $status
