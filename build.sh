#!/usr/bin/env bash
# Microscale build entry point. Verbs: build | test [--gpu] | demo [args] | bench [args] | pack | native [cmake args] | bundle
# Needs the .NET 10 SDK. Same verbs in build.ps1.
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

verb="${1:-build}"
shift || true

# Runs the NUnit suite (Microsoft.Testing.Platform) and ends with "N passed, N failed[, N skipped]".
# Fails when any test fails or when no test ran.
run_tests() {
  local filter="$1" log
  shift
  log="$(mktemp)"
  set +e
  dotnet test --project tests/Microscale.Tests -c Release --filter "$filter" "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  local total failed succeeded skipped
  total=$(sed -n 's/^ *total: *\([0-9]*\).*/\1/p' "$log" | tail -n1)
  failed=$(sed -n 's/^ *failed: *\([0-9]*\).*/\1/p' "$log" | tail -n1)
  succeeded=$(sed -n 's/^ *succeeded: *\([0-9]*\).*/\1/p' "$log" | tail -n1)
  skipped=$(sed -n 's/^ *skipped: *\([0-9]*\).*/\1/p' "$log" | tail -n1)
  rm -f "$log"
  echo "${succeeded:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
  if [[ $rc -ne 0 ]]; then return "$rc"; fi
  if [[ -z "$total" || "$total" -eq 0 ]]; then echo "error: no test ran" >&2; return 1; fi
}

case "$verb" in
  build) dotnet build Microscale.slnx -c Release "$@" ;;
  test)
    if [[ "${1:-}" == "--gpu" ]]; then shift; run_tests "TestCategory=Gpu" "$@"
    else run_tests "TestCategory!=Gpu" "$@"; fi ;;
  demo) dotnet run --project src/Cli -c Release -- demo "$@" ;;
  bench) dotnet run --project bench/Microscale.Bench -c Release -- "$@" ;;
  pack)
    dotnet pack src/Interop -c Release -o artifacts/packages && dotnet pack src/Gemm -c Release -o artifacts/packages &&
      dotnet pack src/Cli -c Release -o artifacts/packages || exit 1
    # The native runtime package needs libmicroscale.so from ./build.sh native (a machine with nvcc).
    if [[ -f artifacts/native/libmicroscale.so ]]; then dotnet pack src/Runtime -c Release -o artifacts/packages -p:NativeRid=linux-x64
    else echo "skipping Microscale.Runtime.linux-x64: no artifacts/native/libmicroscale.so (./build.sh native builds it)"; fi ;;
  native)
    # Needs nvcc and cmake. Extra arguments go to cmake's configure step, e.g. -DMICROSCALE_CUDA_ARCHS=120a.
    cmake -S native -B artifacts/native -DCMAKE_BUILD_TYPE=Release "$@" && cmake --build artifacts/native -j
    echo "built artifacts/native/libmicroscale.so; export MICROSCALE_NATIVE_PATH=$PWD/artifacts/native/libmicroscale.so to use it" ;;
  bundle)
    # One archive for a GPU machine without the .NET SDK: self-contained linux-x64 tests, benchmarks and CLI sharing one
    # runtime folder, the native sources, and run-gpu.sh (builds the native library there, runs Gpu tests, demo, benchmarks).
    stage=.bundle/stage
    rm -rf "$stage" && mkdir -p "$stage"
    for project in tests/Microscale.Tests bench/Microscale.Bench src/Cli; do
      dotnet publish "$project" -c Release -r linux-x64 --self-contained -p:PublishReadyToRun=false -o "$stage/app" --nologo -v quiet
    done
    # Not needed on the GPU machine, and the bundle must travel with the working tree under 64 MiB: the debugger's and
    # crash-dump helpers, and BenchmarkDotNet's disassembler (its DisassemblyDiagnoser is not used).
    rm -f "$stage"/app/{libmscordaccore.so,libmscordbi.so,createdump,libcapstone.so}
    mkdir -p "$stage/native" && cp -r native/CMakeLists.txt native/include native/src native/kernels native/bench native/tests native/tools "$stage/native/"
    cp tools/run-gpu.sh "$stage/run-gpu.sh"
    tar -C "$stage" -cf - . | xz -T0 -6 > .bundle/microscale-gpu.tar.xz
    ls -l .bundle/microscale-gpu.tar.xz
    echo "on the GPU machine: mkdir b && tar -C b -xJf microscale-gpu.tar.xz && b/run-gpu.sh OUT_DIR" ;;
  *) echo "usage: ./build.sh build|test [--gpu]|demo|bench|pack|native|bundle" >&2; exit 2 ;;
esac
