using BenchmarkDotNet.Attributes;

namespace Microscale.Bench;

/// <summary>
/// Managed API end to end (host copies included): the ILGPU backends against the managed reference in the same run.
/// Kernel-level GPU sweeps with CUDA events come with the native library.
/// </summary>
[MemoryDiagnoser]
public class QuantizeBench : IWork
{
    private float[] _x = Array.Empty<float>();

    /// <inheritdoc/>
    public double Bytes => Shape.Rows * (double)Shape.Columns * 4 + Shape.Rows * (double)Shape.Columns * (Format == QuantFormat.Fp8PerRow ? 1 : 0.5);

    /// <inheritdoc/>
    public double Flops => 0;

    /// <summary>Weight shapes named after real layers (rows × K).</summary>
    public static IEnumerable<(string Name, int Rows, int Columns)> Shapes() =>
        new[] { ("llama3-8b.q_proj.1024rows", 1024, 4096), ("decode-token", 1, 4096) };

    [ParamsSource(nameof(Shapes))]
    public (string Name, int Rows, int Columns) Shape { get; set; }

    [Params(QuantFormat.Mxfp4, QuantFormat.Nvfp4, QuantFormat.Fp8PerRow)]
    public QuantFormat Format { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _x = SeededGaussian.Create(Shape.Rows * Shape.Columns, seed: 1);
        using (Quantizer.Quantize(_x, Shape.Rows, Shape.Columns, new QuantizationOptions(Format), Backend.Cpu)) { } // kernel compile
    }

    [Benchmark(Baseline = true)]
    public int Reference() => Run(Backend.Reference);

    [Benchmark]
    public int IlgpuCpu() => Run(Backend.Cpu);

    private int Run(Backend backend)
    {
        using var q = Quantizer.Quantize(_x, Shape.Rows, Shape.Columns, new QuantizationOptions(Format), backend);
        return q.Data.Length;
    }
}
