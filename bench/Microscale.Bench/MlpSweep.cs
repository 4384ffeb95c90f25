using System.Globalization;
using Microscale.Tensors;

namespace Microscale.Bench;

/// <summary>
/// The gated MLP block of a LLaMA-3-8B layer (H 4096, I 14336) in each quantized format on the Native backend
/// (`gpu-sweep OUT_DIR --only mlp`; W4A16 blocks on BF16 activations end to end), against the same block's three projections as cuBLASLt BF16 GEMMs (the SiLU is not
/// counted on the cuBLASLt side). Interleaved on one stream with CUDA events, medians; writes mlp.csv / mlp.json.
/// </summary>
internal static class MlpSweep
{
    public const string Part = "mlp";

    private const int Hidden = 4096, Intermediate = 14336, Warmup = 5, Iterations = 30;
    private static readonly int[] s_tokens = [1, 16, 512];

    // Activations null: W4A16, run on BF16 activations end to end (GatedMlp's BF16 forward).
    private sealed record Block(string Name, QuantFormat Weights, QuantFormat? Activations, int Rotation);

    private static readonly Block[] s_blocks =
    [
        new("W4A4 MXFP4 g32", QuantFormat.Mxfp4, QuantFormat.Mxfp4, 32),
        new("W4A4 NVFP4 g16", QuantFormat.Nvfp4, QuantFormat.Nvfp4, 16),
        new("W4A8 MXFP4 x FP8", QuantFormat.Mxfp4, QuantFormat.Fp8PerRow, 0),
        new("W8A8 FP8 per-row", QuantFormat.Fp8PerRow, QuantFormat.Fp8PerRow, 0),
        new("W4A16 MXFP4 (BF16)", QuantFormat.Mxfp4, null, 0),
        new("W4A16 NVFP4 (BF16)", QuantFormat.Nvfp4, null, 0),
    ];

    private sealed record Row(string Block, int Tokens, double Microseconds, double MicrosecondsPerToken, double CublasBf16Microseconds, double Ratio);

    public static void Run(string outputDirectory)
    {
        if (CublasSession.Open(Part) is not { } session)
            return;
        using (session)
        {
            var (context, cublas, random) = (session.Context, session.Cublas, session.Random);
            using var gate16 = random.Tensor(Intermediate, Hidden, 1);
            using var up16 = random.Tensor(Intermediate, Hidden, 2);
            using var down16 = random.Tensor(Hidden, Intermediate, 3);
            var rows = new List<Row>();
            Console.WriteLine($"Gated MLP H {Hidden} I {Intermediate} vs cuBLASLt BF16 (3 GEMMs) on {context.DeviceName}: median of {Iterations} (CUDA events)");
            Console.WriteLine($"{"block",-20} {"M",5} {"us",10} {"us/token",10} {"cuBLASLt us",12} {"ratio",7}");
            foreach (var block in s_blocks)
            {
                var rotation = block.Rotation > 0 ? HadamardTransform.CreateRandom(block.Rotation, seed: 7) : null;
                QuantizedLinear Layer(DeviceTensor<BFloat16> w)
                {
                    var options = new QuantizationOptions(block.Weights);
                    using var q = rotation is null ? context.Quantize(w, options) : context.QuantizeRotated(w, rotation, options);
                    return QuantizedLinear.FromQuantized(context, q, block.Activations is { } a ? new QuantizationOptions(a) : null, rotation);
                }
                using var mlp = new GatedMlp(context, Layer(gate16), Layer(up16), Layer(down16));
                foreach (int m in s_tokens)
                {
                    using var x = context.CreateTensor<float>(SeededGaussian.Create(m * Hidden, seed: m), m, Hidden);
                    using var y = context.AllocateTensor<float>(m, Hidden);
                    using var x16 = random.Tensor(m, Hidden, 4);
                    using var g16 = context.AllocateTensor<BFloat16>(m, Intermediate);
                    using var u16 = context.AllocateTensor<BFloat16>(m, Intermediate);
                    using var y16 = context.AllocateTensor<BFloat16>(m, Hidden);
                    void Cublas()
                    {
                        cublas.Gemm(0, m, Intermediate, Hidden, x16.DevicePointer(), gate16.DevicePointer(), g16.DevicePointer());
                        cublas.Gemm(0, m, Intermediate, Hidden, x16.DevicePointer(), up16.DevicePointer(), u16.DevicePointer());
                        cublas.Gemm(0, m, Hidden, Intermediate, g16.DevicePointer(), down16.DevicePointer(), y16.DevicePointer());
                    }
                    Action<int> forward = block.Activations is null ? _ => mlp.Forward(x16, y16) : _ => mlp.Forward(x, y);
                    var (us, cublasUs) = session.Interleaved(_ => Cublas(), forward, Warmup, Iterations);
                    var row = new Row(block.Name, m, us, us / m, cublasUs, cublasUs / us);
                    rows.Add(row);
                    Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "{0,-20} {1,5} {2,10:F1} {3,10:F2} {4,12:F1} {5,7:F3}",
                                                    row.Block, row.Tokens, row.Microseconds, row.MicrosecondsPerToken, row.CublasBf16Microseconds, row.Ratio));
                }
            }
            Report.Save(outputDirectory, Part, "block,tokens,us,us_per_token,cublaslt_bf16_us,ratio", rows,
                        r => [r.Block, r.Tokens, r.Microseconds, r.MicrosecondsPerToken, r.CublasBf16Microseconds, r.Ratio]);
        }
    }
}
