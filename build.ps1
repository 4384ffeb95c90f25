# Microscale build entry point for Windows / PowerShell. Same verbs as build.sh:
#   ./build.ps1 build | test [--gpu] | demo [args] | bench [args] | pack | native [cmake args] | bundle
param([Parameter(Position = 0)][string]$Verb = "build", [Parameter(ValueFromRemainingArguments = $true)][string[]]$Rest = @())
$ErrorActionPreference = "Stop"
Set-Location $PSScriptRoot
$env:DOTNET_CLI_TELEMETRY_OPTOUT = "1"; $env:DOTNET_NOLOGO = "1"

function Invoke-Tests([string]$Filter, [string[]]$Extra) {
    $log = & dotnet test --project tests/Microscale.Tests -c Release --filter $Filter @Extra 2>&1 | Tee-Object -Variable lines
    $rc = $LASTEXITCODE
    $get = { param($name) ($lines | Select-String "^\s*${name}:\s*(\d+)" | Select-Object -Last 1).Matches.Groups[1].Value }
    $total = & $get "total"; $failed = & $get "failed"; $passed = & $get "succeeded"; $skipped = & $get "skipped"
    if (-not $passed) { $passed = 0 }; if (-not $failed) { $failed = 0 }; if (-not $skipped) { $skipped = 0 }
    Write-Output "$passed passed, $failed failed, $skipped skipped"
    if ($rc -ne 0) { exit $rc }
    if (-not $total -or [int]$total -eq 0) { Write-Error "no test ran"; exit 1 }
}

switch ($Verb) {
    "build" { dotnet build Microscale.slnx -c Release @Rest }
    "test" {
        if ($Rest.Count -gt 0 -and $Rest[0] -eq "--gpu") { Invoke-Tests "TestCategory=Gpu" ($Rest | Select-Object -Skip 1) }
        else { Invoke-Tests "TestCategory!=Gpu" $Rest }
    }
    "demo" { dotnet run --project src/Cli -c Release -- demo @Rest }
    "bench" { dotnet run --project bench/Microscale.Bench -c Release -- @Rest }
    "pack" {
        foreach ($project in "src/Interop", "src/Gemm", "src/Cli") {
            dotnet pack $project -c Release -o artifacts/packages; if ($LASTEXITCODE) { exit $LASTEXITCODE }
        }
        # The native runtime package needs microscale.dll from ./build.ps1 native (multi-config generators put it in Release/).
        $dll = @("artifacts/native/microscale.dll", "artifacts/native/Release/microscale.dll") | Where-Object { Test-Path $_ } | Select-Object -First 1
        if ($dll) { dotnet pack src/Runtime -c Release -o artifacts/packages -p:NativeRid=win-x64 "-p:NativeLibrary=$((Resolve-Path $dll).Path)" }
        else { Write-Output "skipping Microscale.Runtime.win-x64: no artifacts/native/microscale.dll (./build.ps1 native builds it)" }
    }
    "native" {
        # Needs nvcc and cmake; builds microscale.dll (extra arguments go to cmake's configure step).
        cmake -S native -B artifacts/native -DCMAKE_BUILD_TYPE=Release @Rest; if ($LASTEXITCODE) { exit $LASTEXITCODE }
        cmake --build artifacts/native --config Release
    }
    "bundle" {
        # Same content as build.sh bundle (linux-x64 self-contained apps + native sources + run-gpu.sh), as .tar.gz.
        $stage = ".bundle/stage"
        Remove-Item -Recurse -Force $stage -ErrorAction SilentlyContinue
        foreach ($project in "tests/Microscale.Tests", "bench/Microscale.Bench", "src/Cli") {
            dotnet publish $project -c Release -r linux-x64 --self-contained -o "$stage/app" --nologo -v quiet
        }
        New-Item -ItemType Directory -Force "$stage/native" | Out-Null
        Copy-Item -Recurse native/CMakeLists.txt, native/include, native/src, native/kernels, native/bench, native/tests, native/tools "$stage/native/"
        Copy-Item tools/run-gpu.sh "$stage/run-gpu.sh"
        tar -C $stage -czf .bundle/microscale-gpu.tar.gz .
    }
    default { Write-Error "usage: ./build.ps1 build|test [--gpu]|demo|bench|pack|native|bundle"; exit 2 }
}
