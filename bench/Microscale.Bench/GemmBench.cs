using BenchmarkDotNet.Attributes;

namespace Microscale.Bench;

/// <summary>
/// The managed GEMM and QuantizedLinear on every ILGPU / native backend this machine has: device-resident
/// operands, one Gemm or Forward per invocation, synchronized. The throughput column gives TFLOPS (2·M·N·K per invocation).
/// </summary>
public class GemmBench : IWork
{
    private MicroscaleContext _context = null!;
    private QuantizedTensor _a = null!, _b = null!;
    private DeviceTensor<BFloat16> _x = null!, _y = null!;
    private QuantizedLinear _linear = null!;
    private DeviceTensor<float> _c = null!;

    /// <summary>The ILGPU and native backends available here (Reference's float64 GEMM is a check, not a contender), or those
    /// named in MICROSCALE_BENCH_BACKENDS (comma-separated, e.g. "native,cuda" to leave the slow CPU backend out on a GPU host).</summary>
    public static IEnumerable<Backend> Backends()
    {
        var chosen = Environment.GetEnvironmentVariable("MICROSCALE_BENCH_BACKENDS")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return MicroscaleRuntime.DescribeBackends()
            .Where(b => b.IsAvailable && b.Backend != Backend.Reference)
            .Where(b => chosen is null || chosen.Contains(b.Backend.ToString(), StringComparer.OrdinalIgnoreCase))
            .Select(b => b.Backend);
    }

    [ParamsSource(nameof(Backends))]
    public Backend Backend { get; set; }

    /// <summary>Tokens M of a 4096 × 4096 layer.</summary>
    [Params(16, 256)]
    public int M { get; set; }

    [Params("W4A4 MXFP4", "W8A8 FP8 per-row", "W4A16 NVFP4")]
    public string Pair { get; set; } = "";

    private const int N = 4096, K = 4096;

    /// <inheritdoc/>
    public double Bytes => 0;

    /// <inheritdoc/>
    public double Flops => 2.0 * M * N * K;

    [GlobalSetup]
    public void Setup()
    {
        _context = MicroscaleContext.Create(Backend);
        var (weights, activations) = Pair switch
        {
            "W4A4 MXFP4" => (new QuantizationOptions(QuantFormat.Mxfp4), new QuantizationOptions(QuantFormat.Mxfp4)),
            "W8A8 FP8 per-row" => (new QuantizationOptions(QuantFormat.Fp8PerRow), new QuantizationOptions(QuantFormat.Fp8PerRow)),
            _ => (new QuantizationOptions(QuantFormat.Nvfp4), (QuantizationOptions?)null),
        };
        var w = SeededGaussian.Create(N * K, seed: 1);
        var x = SeededGaussian.Create(M * K, seed: 2).Select(v => (BFloat16)v).ToArray();
        using var wt = _context.CreateTensor<float>(w, N, K);
        _x = _context.CreateTensor<BFloat16>(x, M, K);
        _y = _context.AllocateTensor<BFloat16>(M, N);
        _c = _context.AllocateTensor<float>(M, N);
        _b = _context.Quantize(wt, weights);
        _a = activations is null ? null! : _context.Quantize(_x, activations);
        _linear = QuantizedLinear.Quantize(_context, w, N, K, weights, activations);
    }

    /// <summary>C = A·Bᵀ on quantized operands already on the device (W4A16: BF16 activations).</summary>
    [Benchmark]
    public void Gemm()
    {
        if (_a is null)
            _context.Gemm(_x, _b, _c);
        else
            _context.Gemm(_a, _b, _c);
        _context.Synchronize();
    }

    /// <summary>QuantizedLinear.Forward: quantize the BF16 activations on the fly, then the GEMM.</summary>
    [Benchmark]
    public void LinearForward()
    {
        _linear.Forward(_x, _y);
        _context.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _linear?.Dispose();
        _a?.Dispose();
        _b?.Dispose();
        _c?.Dispose();
        _x?.Dispose();
        _y?.Dispose();
        _context?.Dispose();
    }
}
