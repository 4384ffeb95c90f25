using System.CommandLine;
using System.Text.Json;
using Microscale.Cli.Verify;
using Spectre.Console;

namespace Microscale.Cli.Commands;

/// <summary><c>microscale verify</c>: is Microscale right on this machine's GPU? Every operation and pair against the reference.</summary>
internal static class VerifyCommand
{
    public static Command Create()
    {
        var backend = new Option<string>("--backend") { Description = "native | cuda | cpu | auto (default: the best GPU backend, else cpu)", DefaultValueFactory = _ => "auto" };
        var quick = new Option<bool>("--quick") { Description = "Small shapes only (default)" };
        var full = new Option<bool>("--full") { Description = "Add large and odd shapes (M=1 with K=4096, K=7168, K=16384)" };
        var json = new Option<FileInfo?>("--json-file") { Description = "Also write every result as JSON to this file" };
        var golden = new Option<DirectoryInfo?>("--golden") { Description = "Folder of the golden vectors (default: golden/ beside the tool, else tests/golden)" };
        var command = new Command("verify", "Check every operation and GEMM pair of a backend against the reference; exit 1 on any failure")
        {
            backend, quick, full, json, golden,
        };
        command.SetAction(r => CliOutput.Run(r, report =>
        {
            if (r.GetValue(quick) && r.GetValue(full))
                throw new ArgumentException("--quick and --full exclude each other.", "--full");
            return Run(report, PairPresets.ParseBackend(r.GetValue(backend)!), r.GetValue(full), r.GetValue(json), r.GetValue(golden));
        }));
        return command;
    }

    internal static string? FindGolden(DirectoryInfo? given)
    {
        if (given is not null)
            return given.Exists ? given.FullName : throw new DirectoryNotFoundException($"--golden: '{given.FullName}' does not exist.");
        foreach (string candidate in new[] { Path.Combine(AppContext.BaseDirectory, "golden"), Path.Combine(Environment.CurrentDirectory, "tests", "golden") })
            if (File.Exists(Path.Combine(candidate, "codecs.safetensors")))
                return candidate;
        return null;
    }

    internal static int Run(CliOutput report, Backend requested, bool full, FileInfo? json, DirectoryInfo? goldenDirectory)
    {
        Backend backend = requested;
        if (requested == Backend.Auto)
        {
            var statuses = MicroscaleRuntime.DescribeBackends();
            backend = statuses.First(s => s.Backend == Backend.Native).IsAvailable ? Backend.Native
                    : statuses.First(s => s.Backend == Backend.Cuda).IsAvailable ? Backend.Cuda
                    : Backend.Cpu;
            if (backend == Backend.Cpu)
                AnsiConsole.MarkupLine($"[yellow]No GPU backend here ({Markup.Escape(statuses.First(s => s.Backend == Backend.Cuda).Detail)}): verifying the ILGPU CPU backend.[/]");
        }
        string? golden = FindGolden(goldenDirectory);
        using (var probe = MicroscaleContext.Create(backend))
            AnsiConsole.MarkupLine($"Verifying [bold]{backend}[/] on {Markup.Escape(probe.DeviceName)} ({(full ? "full" : "quick")}) against the reference");

        if (Console.IsOutputRedirected)
            AnsiConsole.Profile.Width = 220; // logs: keep one row per case
        var results = Verifier.Run(backend, full, golden);
        var table = new Table().AddColumns("Group", "Case", "Kernel", "Result", "Worst", "Detail");
        foreach (var r in results)
            table.AddRow(r.Group, Markup.Escape(r.Case), Markup.Escape(r.Kernel), r.Passed ? "[green]pass[/]" : "[red]FAIL[/]",
                         $"{r.Worst:G4} {r.Measure}", Markup.Escape(r.Detail));
        AnsiConsole.Write(table);
        int failed = results.Count(r => !r.Passed);
        Console.WriteLine($"verify {backend}: {results.Count - failed} passed, {failed} failed");
        report.Set("backend", backend);
        report.Set("passed", results.Count - failed);
        report.Set("failed", failed);
        report.Set("results", results);
        if (json is not null)
            File.WriteAllText(json.FullName, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
        return failed == 0 ? 0 : 1;
    }
}
