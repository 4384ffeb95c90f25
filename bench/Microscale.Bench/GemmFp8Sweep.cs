using System.Globalization;
using ILGPU.Runtime;
using Microscale.Tensors;

namespace Microscale.Bench;

/// <summary>
/// FP8 GEMM against cuBLASLt FP8, BF16 output, on the Native backend (`gpu-sweep OUT_DIR --only gemm-fp8`): per-tensor and per-row
/// scales on random operands. The two libraries run interleaved on one stream, timed with CUDA events, so that both see the same
/// clocks (an H100 runs power-limited on random data); the protocol is microscale_selftest's, so the numbers compare. Prints a
/// table and the geometric mean of the ratio (cuBLASLt time / Microscale time, above 1: Microscale faster) per scaling mode, and
/// writes gemm-fp8.csv / gemm-fp8.json.
/// </summary>
internal static class GemmFp8Sweep
{
    public const string Part = "gemm-fp8";

    private const int Warmup = 10;
    private static readonly TimeSpan WarmupTime = TimeSpan.FromSeconds(3);
    private const int Iterations = 50;

    /// <summary>The seven shapes of the Hopper FP8 issue (M, N, K); the block-scaled sweep uses them too, so the tables compare.</summary>
    internal static readonly (int M, int N, int K)[] Shapes =
    [
        (8192, 8192, 8192), (4096, 4096, 4096), (16384, 8192, 8192), (4096, 14336, 4096), (4096, 4096, 14336), (1024, 8192, 8192),
        (128, 8192, 8192),
    ];

    /// <summary>A scaling mode: Microscale's format for A and B, and msb_gemm's dtype with the same scales.</summary>
    private sealed record Mode(string Name, QuantFormat Format, int BaselineDType);

    private static readonly Mode[] s_modes = [new("per-tensor", QuantFormat.Fp8PerTensor, 1), new("per-row", QuantFormat.Fp8PerRow, 2)];

    private sealed record Row(string Shape, string Scales, string Kernel, double Microseconds, double Tflops, double CublasMicroseconds,
                              double CublasTflops, double Ratio);

    public static void Run(string outputDirectory)
    {
        if (CublasSession.Open(Part) is not { } session)
            return;
        using (session)
        {
            var rows = Sweep(session);
            foreach (var mode in s_modes)
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "geometric mean ratio cuBLASLt / Microscale, {0}: {1:F3}", mode.Name,
                                                Report.GeometricMean(rows.Where(r => r.Scales == mode.Name).Select(r => r.Ratio))));
            Report.Save(outputDirectory, Part, "shape,scales,kernel,us,tflops,cublaslt_us,cublaslt_tflops,ratio", rows,
                        r => [r.Shape, r.Scales, r.Kernel, r.Microseconds, r.Tflops, r.CublasMicroseconds, r.CublasTflops, r.Ratio]);
        }
    }

    private static List<Row> Sweep(CublasSession session)
    {
        var (context, random) = (session.Context, session.Random);
        var rows = new List<Row>();
        Console.WriteLine($"FP8 GEMM vs cuBLASLt FP8, BF16 out, on {context.DeviceName}: median of {Iterations} (CUDA events), {OperandSets.Count} rotating operand sets");
        Console.WriteLine($"{"shape",-17} {"scales",-10} {"kernel",-46} {"us",10} {"TFLOPS",8} {"cuBLASLt us",12} {"cuBLASLt TFLOPS",15} {"ratio",7}");
        bool warmedUp = false;
        foreach (var (m, n, k) in Shapes)
        {
            // The same BF16 values for both modes; each mode quantizes them afresh.
            using var sources = new OperandSets<DeviceTensor<BFloat16>>(i => random.Tensor(m, k, (ulong)(2 * i)), i => random.Tensor(n, k, (ulong)(2 * i + 1)));
            using var c = context.AllocateTensor<BFloat16>(m, n);
            foreach (var mode in s_modes)
            {
                var options = new QuantizationOptions(mode.Format);
                using var operands = new OperandSets<QuantizedTensor>(i => context.Quantize(sources.A[i], options), i => context.Quantize(sources.B[i], options));
                var row = Measure(session, operands, c, mode, warmUpFirst: !warmedUp);
                warmedUp = true;
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "{0,-17} {1,-10} {2,-46} {3,10:F1} {4,8:F1} {5,12:F1} {6,15:F1} {7,7:F3}",
                                                row.Shape, row.Scales, row.Kernel, row.Microseconds, row.Tflops, row.CublasMicroseconds, row.CublasTflops, row.Ratio));
                rows.Add(row);
            }
        }
        return rows;
    }

    /// <summary>cuBLASLt and Microscale interleaved (<see cref="CublasSession.Interleaved"/>), iteration i on operand set i % 4.</summary>
    private static Row Measure(CublasSession session, OperandSets<QuantizedTensor> q, DeviceTensor<BFloat16> c, Mode mode, bool warmUpFirst)
    {
        var (context, cublas) = (session.Context, session.Cublas);
        int m = q.A[0].Rows, n = q.B[0].Rows, k = q.A[0].Columns;
        string shape = $"{m}x{n}x{k}";
        nint output = c.DevicePointer();
        // msb_gemm keeps its cuBLASLt plan for one (shape, scale pointers); set 0's scales on every call keep it on that plan instead
        // of a heuristic query per call (microscale_selftest shares one scale buffer too). Scale values do not change the time.
        nint aScales = Address(q.A[0].Storage.DecodeScales);
        nint bScales = Address(q.B[0].Storage.DecodeScales);
        bool baseline = true;
        void Cublas(int set)
        {
            if (!baseline)
                return;
            try
            {
                cublas.Gemm(mode.BaselineDType, m, n, k, Address(q.A[set].Storage.Data), Address(q.B[set].Storage.Data), output, aScales, bScales);
            }
            catch (InvalidOperationException e) // e.g. row-wise scales before cuBLASLt 12.9: no baseline, Microscale is still timed
            {
                Console.WriteLine($"cuBLASLt {mode.Name} {shape}: {e.Message}");
                baseline = false;
            }
        }
        void Microscale(int set) => context.Gemm(q.A[set], q.B[set], c);

        if (warmUpFirst)
        {
            // A GPU that was idle runs its first seconds at other clocks and power than the rest of the sweep (the first
            // shape measured 0.81 where later runs give 0.98): both libraries run untimed for a while before anything is timed.
            var clock = System.Diagnostics.Stopwatch.StartNew();
            for (int i = 0; clock.Elapsed < WarmupTime; i++)
            {
                Cublas(i % OperandSets.Count);
                Microscale(i % OperandSets.Count);
                if (i % 16 == 15)
                    context.Synchronize();
            }
            context.Synchronize();
        }
        var (us, cublasUs) = session.Interleaved(i => Cublas(i % OperandSets.Count), i => Microscale(i % OperandSets.Count), Warmup, Iterations);
        if (!baseline)
            cublasUs = double.NaN;
        double flops = 2.0 * m * n * k;
        return new Row(shape, mode.Name, context.LastGemmKernel, us, flops / us / 1e6, cublasUs, flops / cublasUs / 1e6, cublasUs / us);
    }

    private static nint Address<T>(TensorStorage<T> storage) where T : unmanaged => storage.View.LoadEffectiveAddressAsPtr();
}
