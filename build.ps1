# Microscale build entry point for Windows / PowerShell. Same verbs as build.sh:
#   ./build.ps1 build | test [--gpu] | demo [args] | bench [args] | pack
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
    "pack" { dotnet pack src/Gemm -c Release -o artifacts/packages; dotnet pack src/Cli -c Release -o artifacts/packages }
    default { Write-Error "usage: ./build.ps1 build|test [--gpu]|demo|bench|pack"; exit 2 }
}
