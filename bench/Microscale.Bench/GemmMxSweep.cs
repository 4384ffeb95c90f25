using System.Globalization;
using ILGPU.Runtime;
using Microscale.Tensors;

namespace Microscale.Bench;

/// <summary>
/// Block-scaled and FP4 GEMMs (MXINT8, MXFP8, MXFP4, NVFP4 pairs and BF16 x MXFP4) on the Native backend against cuBLAS BF16 and
/// cuBLASLt FP8 per-tensor on the same values (`gpu-sweep OUT_DIR --only gemm-mx`), BF16 output. On Hopper these run the sm90 BF16
/// family (operands dequantized exactly into BF16, then BF16 wgmma), so cuBLAS BF16 is the ceiling to compare with and FP8 the
/// faster but coarser alternative. Each Microscale mode is timed interleaved with each baseline (<see cref="CublasSession.Interleaved"/>,
/// CUDA events, median, <see cref="OperandSets.Count"/> rotating operand sets); ratio = baseline time / Microscale time. Writes
/// gemm-mx.csv / gemm-mx.json.
/// </summary>
internal static class GemmMxSweep
{
    public const string Part = "gemm-mx";

    private const int Warmup = 5;
    private const int Iterations = 30;

    /// <summary>Operands of a mode: A's format (null: the BF16 values themselves) and B's.</summary>
    private sealed record Mode(string Name, QuantFormat? A, QuantFormat B);

    private static readonly Mode[] s_modes =
    [
        new("mxint8 x mxint8", QuantFormat.Mxint8, QuantFormat.Mxint8), new("mxfp8 x mxfp8", QuantFormat.Mxfp8, QuantFormat.Mxfp8),
        new("mxfp4 x mxfp4", QuantFormat.Mxfp4, QuantFormat.Mxfp4), new("nvfp4 x nvfp4", QuantFormat.Nvfp4, QuantFormat.Nvfp4),
        new("bf16 x mxfp4", null, QuantFormat.Mxfp4),
    ];

    private sealed record Row(string Shape, string Operands, string Kernel, double Microseconds, double Tflops, double Bf16Microseconds,
                              double RatioBf16, double Fp8Microseconds, double RatioFp8);

    public static void Run(string outputDirectory)
    {
        if (CublasSession.Open(Part) is not { } session)
            return;
        using (session)
        {
            var rows = Sweep(session);
            foreach (var mode in s_modes)
            {
                var mine = rows.Where(r => r.Operands == mode.Name).ToList();
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "geometric mean, {0}: {1:F3} x cuBLAS BF16, {2:F3} x cuBLASLt FP8", mode.Name,
                                                Report.GeometricMean(mine.Select(r => r.RatioBf16)), Report.GeometricMean(mine.Select(r => r.RatioFp8))));
            }
            Report.Save(outputDirectory, Part, "shape,operands,kernel,us,tflops,cublas_bf16_us,ratio_bf16,cublaslt_fp8_us,ratio_fp8", rows,
                        r => [r.Shape, r.Operands, r.Kernel, r.Microseconds, r.Tflops, r.Bf16Microseconds, r.RatioBf16, r.Fp8Microseconds, r.RatioFp8]);
        }
    }

    private static List<Row> Sweep(CublasSession session)
    {
        var (context, random, cublas) = (session.Context, session.Random, session.Cublas);
        var rows = new List<Row>();
        Console.WriteLine($"Block-scaled GEMMs vs cuBLAS BF16 and cuBLASLt FP8 (per-tensor), BF16 out, on {context.DeviceName}: median of {Iterations} (CUDA events), {OperandSets.Count} rotating operand sets");
        Console.WriteLine($"{"shape",-17} {"operands",-16} {"kernel",-44} {"us",9} {"TFLOPS",7} {"BF16 us",9} {"x BF16",7} {"FP8 us",9} {"x FP8",7}");
        foreach (var (m, n, k) in GemmFp8Sweep.Shapes)
        {
            using var sources = new OperandSets<DeviceTensor<BFloat16>>(i => random.Tensor(m, k, (ulong)(2 * i)), i => random.Tensor(n, k, (ulong)(2 * i + 1)));
            var fp8Options = new QuantizationOptions(QuantFormat.Fp8PerTensor);
            using var fp8 = new OperandSets<QuantizedTensor>(i => context.Quantize(sources.A[i], fp8Options), i => context.Quantize(sources.B[i], fp8Options));
            using var c = context.AllocateTensor<BFloat16>(m, n);
            nint output = c.DevicePointer();
            void Bf16(int i) => cublas.Gemm(0, m, n, k, sources.A[i % OperandSets.Count].DevicePointer(), sources.B[i % OperandSets.Count].DevicePointer(), output);
            // One scale pair for every set keeps msb_gemm on one cuBLASLt plan (see GemmFp8Sweep); scale values do not change the time.
            nint aScale = Address(fp8.A[0].Storage.DecodeScales), bScale = Address(fp8.B[0].Storage.DecodeScales);
            void Fp8(int i) =>
                cublas.Gemm(1, m, n, k, Address(fp8.A[i % OperandSets.Count].Storage.Data), Address(fp8.B[i % OperandSets.Count].Storage.Data), output, aScale, bScale);

            foreach (var mode in s_modes)
            {
                var a = mode.A is { } af ? sources.A.Select(t => context.Quantize(t, new QuantizationOptions(af))).ToArray() : null;
                var b = sources.B.Select(t => context.Quantize(t, new QuantizationOptions(mode.B))).ToArray();
                void Microscale(int i)
                {
                    int set = i % OperandSets.Count;
                    if (a is null)
                        context.Gemm(sources.A[set], b[set], c);
                    else
                        context.Gemm(a[set], b[set], c);
                }
                var (us, bf16Us) = session.Interleaved(Bf16, Microscale, Warmup, Iterations);
                var (_, fp8Us) = session.Interleaved(Fp8, Microscale, Warmup, Iterations);
                double flops = 2.0 * m * n * k;
                var row = new Row($"{m}x{n}x{k}", mode.Name, context.LastGemmKernel, us, flops / us / 1e6, bf16Us, bf16Us / us, fp8Us, fp8Us / us);
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "{0,-17} {1,-16} {2,-44} {3,9:F1} {4,7:F1} {5,9:F1} {6,7:F3} {7,9:F1} {8,7:F3}",
                                                row.Shape, row.Operands, row.Kernel, row.Microseconds, row.Tflops, row.Bf16Microseconds, row.RatioBf16,
                                                row.Fp8Microseconds, row.RatioFp8));
                rows.Add(row);
                foreach (var t in b.Concat(a ?? []))
                    t.Dispose();
            }
        }
        return rows;
    }

    private static nint Address<T>(TensorStorage<T> storage) where T : unmanaged => storage.View.LoadEffectiveAddressAsPtr();
}
