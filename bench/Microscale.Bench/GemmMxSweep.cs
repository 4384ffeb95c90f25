using System.Globalization;
using ILGPU.Runtime;
using Microscale.Tensors;

namespace Microscale.Bench;

/// <summary>
/// Block-scaled and FP4 GEMMs (MXINT8, MXFP8, MXFP4, NVFP4 pairs, MXFP8 x MXFP4, BF16 x MXFP4, and W4A8 with the MXFP4 weights
/// folded exactly into FP8 per-row, which runs the FP8 kernels) on the Native backend against
/// cuBLAS BF16 and cuBLASLt FP8 per-tensor on the same values (`gpu-sweep OUT_DIR --only gemm-mx`), BF16 output, and where cuBLASLt
/// has one for the pair (MXFP4, NVFP4, MXFP8: its block-scaled matmuls, Blackwell GPUs only) against that on the same quantized bytes.
/// Operands use the swizzled 128x4 scale layout, the one cuBLASLt reads. On Hopper these run the sm90 BF16 family (operands
/// dequantized exactly into BF16, then BF16 wgmma), so cuBLAS BF16 is the ceiling to compare with and FP8 the faster but coarser
/// alternative; on sm_120 the FP4 pairs run the block-scaled sm120 family. Each Microscale mode is timed interleaved with each
/// baseline (<see cref="CublasSession.Interleaved"/>, CUDA events, median, <see cref="OperandSets.Count"/> rotating operand sets);
/// ratio = baseline time / Microscale time. Writes gemm-mx.csv / gemm-mx.json.
/// </summary>
internal static class GemmMxSweep
{
    public const string Part = "gemm-mx";

    private const int Warmup = 5;
    private const int Iterations = 30;

    /// <summary>Operands of a mode: A's format (null: the BF16 values themselves) and B's, and the msb_gemm dtype of cuBLASLt's
    /// block-scaled matmul of the pair (null: none). <paramref name="Fold"/>: B quantized to MXFP4, then folded exactly into FP8
    /// per-row on the host (<see cref="Offline.Fp4Fold"/>), so the FP8 kernels run W4A8.</summary>
    private sealed record Mode(string Name, QuantFormat? A, QuantFormat B, int? BlockScaledBaseline = null, bool Fold = false);

    private static readonly Mode[] s_modes =
    [
        new("mxint8 x mxint8", QuantFormat.Mxint8, QuantFormat.Mxint8), new("mxfp8 x mxfp8", QuantFormat.Mxfp8, QuantFormat.Mxfp8, 5),
        new("mxfp4 x mxfp4", QuantFormat.Mxfp4, QuantFormat.Mxfp4, 4), new("nvfp4 x nvfp4", QuantFormat.Nvfp4, QuantFormat.Nvfp4, 3),
        new("mxfp8 x mxfp4", QuantFormat.Mxfp8, QuantFormat.Mxfp4), new("bf16 x mxfp4", null, QuantFormat.Mxfp4),
        new("w4a8 folded", QuantFormat.Fp8PerRow, QuantFormat.Mxfp4, Fold: true),
    ];

    private sealed record Row(string Shape, string Operands, string Kernel, double Microseconds, double Tflops, double Bf16Microseconds,
                              double RatioBf16, double Fp8Microseconds, double RatioFp8, double BlockScaledMicroseconds, double RatioBlockScaled);

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
                var blockScaled = mine.Where(r => !double.IsNaN(r.RatioBlockScaled)).ToList();
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "geometric mean, {0}: {1:F3} x cuBLAS BF16, {2:F3} x cuBLASLt FP8{3}", mode.Name,
                                                Report.GeometricMean(mine.Select(r => r.RatioBf16)), Report.GeometricMean(mine.Select(r => r.RatioFp8)),
                                                blockScaled.Count == 0 ? "" : string.Format(CultureInfo.InvariantCulture, ", {0:F3} x cuBLASLt block-scaled",
                                                                                            Report.GeometricMean(blockScaled.Select(r => r.RatioBlockScaled)))));
            }
            Report.Save(outputDirectory, Part, "shape,operands,kernel,us,tflops,cublas_bf16_us,ratio_bf16,cublaslt_fp8_us,ratio_fp8,cublaslt_block_scaled_us,ratio_block_scaled",
                        rows, r => [r.Shape, r.Operands, r.Kernel, r.Microseconds, r.Tflops, r.Bf16Microseconds, r.RatioBf16, r.Fp8Microseconds, r.RatioFp8,
                                    r.BlockScaledMicroseconds, r.RatioBlockScaled]);
        }
    }

    private static List<Row> Sweep(CublasSession session)
    {
        var (context, random, cublas) = (session.Context, session.Random, session.Cublas);
        var rows = new List<Row>();
        Console.WriteLine($"Block-scaled GEMMs vs cuBLAS BF16 and cuBLASLt FP8 (per-tensor), BF16 out, on {context.DeviceName}: median of {Iterations} (CUDA events), {OperandSets.Count} rotating operand sets");
        Console.WriteLine($"{"shape",-17} {"operands",-16} {"kernel",-46} {"us",9} {"TFLOPS",7} {"BF16 us",9} {"x BF16",7} {"FP8 us",9} {"x FP8",7} {"BS us",9} {"x BS",7}");
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
                var a = mode.A is { } af ? sources.A.Select(t => context.Quantize(t, Swizzled(af))).ToArray() : null;
                var b = sources.B.Select(t => mode.Fold ? Folded(context, t) : context.Quantize(t, Swizzled(mode.B))).ToArray();
                void Microscale(int i)
                {
                    int set = i % OperandSets.Count;
                    if (a is null)
                        context.Gemm(sources.A[set], b[set], c);
                    else
                        context.Gemm(a[set], b[set], c);
                }
                // Folded weights: cuBLASLt FP8 reads the very bytes Microscale reads (FP8 codes of E2M1 values draw less power than
                // random FP8 codes, so other bytes would time differently); the per-row scale vectors' first values stand in for
                // the per-tensor scales (values do not change the time).
                void Fp8SameBytes(int i)
                {
                    var (qa, qb) = (a![i % OperandSets.Count].Storage, b[i % OperandSets.Count].Storage);
                    cublas.Gemm(1, m, n, k, Address(qa.Data), Address(qb.Data), output, Address(a[0].Storage.DecodeScales), Address(b[0].Storage.DecodeScales));
                }
                var (us, bf16Us) = session.Interleaved(Bf16, Microscale, Warmup, Iterations);
                var (_, fp8Us) = session.Interleaved(mode.Fold ? Fp8SameBytes : Fp8, Microscale, Warmup, Iterations);
                double blockScaledUs = double.NaN;
                if (mode.BlockScaledBaseline is { } dtype && a is not null)
                {
                    void BlockScaled(int i)
                    {
                        var (qa, qb) = (a[i % OperandSets.Count].Storage, b[i % OperandSets.Count].Storage);
                        cublas.Gemm(dtype, m, n, k, Address(qa.Data), Address(qb.Data), output, Address(qa.BlockScales), Address(qb.BlockScales));
                    }
                    if (BlockScaledRuns(dtype, BlockScaled))
                        (_, blockScaledUs) = session.Interleaved(BlockScaled, Microscale, Warmup, Iterations);
                }
                double flops = 2.0 * m * n * k;
                var row = new Row($"{m}x{n}x{k}", mode.Name, context.LastGemmKernel, us, flops / us / 1e6, bf16Us, bf16Us / us, fp8Us, fp8Us / us,
                                  blockScaledUs, blockScaledUs / us);
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "{0,-17} {1,-16} {2,-46} {3,9:F1} {4,7:F1} {5,9:F1} {6,7:F3} {7,9:F1} {8,7:F3} {9,9} {10,7}",
                                                row.Shape, row.Operands, row.Kernel, row.Microseconds, row.Tflops, row.Bf16Microseconds, row.RatioBf16,
                                                row.Fp8Microseconds, row.RatioFp8, double.IsNaN(blockScaledUs) ? "n/a" : blockScaledUs.ToString("F1", CultureInfo.InvariantCulture),
                                                double.IsNaN(blockScaledUs) ? "n/a" : row.RatioBlockScaled.ToString("F3", CultureInfo.InvariantCulture)));
                rows.Add(row);
                foreach (var t in b.Concat(a ?? []))
                    t.Dispose();
            }
        }
        return rows;
    }

    private static nint Address<T>(TensorStorage<T> storage) where T : unmanaged => storage.View.LoadEffectiveAddressAsPtr();

    // MXFP4 weights folded into FP8 per-row (the same values; random weights always fold, Fp4Fold refuses any that would not).
    private static QuantizedTensor Folded(MicroscaleContext context, DeviceTensor<BFloat16> weights)
    {
        using var mx = context.Quantize(weights, new QuantizationOptions(QuantFormat.Mxfp4));
        using var host = Offline.Fp4Fold.ToFp8PerRow(mx);
        return context.Upload(host);
    }

    private static QuantizationOptions Swizzled(QuantFormat format) =>
        new(format) { Layout = format is QuantFormat.Mxfp4 or QuantFormat.Nvfp4 or QuantFormat.Mxfp8 or QuantFormat.Mxint8 ? ScaleLayout.Swizzled128x4 : ScaleLayout.Linear };

    private static readonly HashSet<int> s_refusedBlockScaled = [];

    /// <summary>Whether cuBLASLt runs its block-scaled matmul <paramref name="dtype"/> here (it has none before Blackwell): one try of
    /// <paramref name="call"/>; says so once if not.</summary>
    private static bool BlockScaledRuns(int dtype, Action<int> call)
    {
        if (s_refusedBlockScaled.Contains(dtype))
            return false;
        try
        {
            call(0);
            return true;
        }
        catch (InvalidOperationException ex)
        {
            s_refusedBlockScaled.Add(dtype);
            Console.WriteLine($"cuBLASLt block-scaled matmul {dtype} not available here ({ex.Message}): no such column");
            return false;
        }
    }
}
