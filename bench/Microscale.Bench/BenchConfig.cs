using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Csv;
using BenchmarkDotNet.Exporters.Json;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace Microscale.Bench;

/// <summary>
/// How the BenchmarkDotNet suite runs: in process (so it runs from the self-contained bundle, where no SDK can build a child
/// project), results as GitHub Markdown, CSV and JSON under artifacts/benchmarks, and a throughput column: GB/s of bytes
/// moved for the quantizers, TFLOPS for GEMMs, computed from each benchmark's own work (<see cref="IWork"/>).
/// </summary>
internal sealed class BenchConfig : ManualConfig
{
    public BenchConfig()
    {
        // One process, 3 warm-ups and 10 measured iterations: enough for device-resident kernels, bearable for the CPU backends.
        AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithLaunchCount(1).WithWarmupCount(3).WithIterationCount(10));
        AddColumnProvider(DefaultColumnProviders.Instance);
        AddColumn(new ThroughputColumn());
        AddExporter(MarkdownExporter.GitHub, CsvExporter.Default, JsonExporter.Full);
        AddLogger(BenchmarkDotNet.Loggers.ConsoleLogger.Default);
        ArtifactsPath = Path.Combine("artifacts", "benchmarks");
    }
}

/// <summary>A benchmark class says how much work one invocation does, for the throughput column.</summary>
internal interface IWork
{
    /// <summary>Bytes read and written (quantizers) or 0.</summary>
    double Bytes { get; }

    /// <summary>Floating-point operations (GEMMs) or 0.</summary>
    double Flops { get; }
}

/// <summary>GB/s or TFLOPS of the mean time, from the benchmark instance's <see cref="IWork"/> at the case's parameters.</summary>
internal sealed class ThroughputColumn : IColumn
{
    public string Id => nameof(ThroughputColumn);
    public string ColumnName => "Throughput";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => false;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "GB/s of bytes moved (quantizers) or TFLOPS (GEMMs), from the mean time";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics is not { } statistics || Activator.CreateInstance(benchmarkCase.Descriptor.Type) is not IWork work)
            return "-";
        foreach (var parameter in benchmarkCase.Parameters.Items)
            benchmarkCase.Descriptor.Type.GetProperty(parameter.Name)?.SetValue(work, parameter.Value);
        double seconds = statistics.Mean * 1e-9;
        return work.Flops > 0
            ? string.Format(CultureInfo.InvariantCulture, "{0:F3} TFLOPS", work.Flops / seconds / 1e12)
            : string.Format(CultureInfo.InvariantCulture, "{0:F2} GB/s", work.Bytes / seconds / 1e9);
    }

    public override string ToString() => ColumnName;
}
