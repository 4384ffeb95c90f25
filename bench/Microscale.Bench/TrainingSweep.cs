using System.Globalization;
using Microscale.Tensors;

namespace Microscale.Bench;

/// <summary>
/// One training step's three GEMMs of a 4096×4096 linear layer at 8192 tokens (`gpu-sweep OUT_DIR --only training`):
/// <see cref="LinearTraining"/> forward + backward with each recipe (quantization included) against the same three GEMMs as
/// cuBLASLt BF16. CUDA events around each side, medians; writes training.csv / training.json. Hopper has no FP4 tensor
/// cores: FP4 recipes run the sm90 BF16 family there (operands dequantized to BF16, then BF16 wgmma).
/// </summary>
internal static class TrainingSweep
{
    public const string Part = "training";

    private const int Tokens = 8192, Features = 4096, Iterations = 5;

    private sealed record Row(string Recipe, double Microseconds, double CublasBf16Microseconds, double Ratio);

    public static void Run(string outputDirectory)
    {
        if (CublasSession.Open(Part) is not { } session)
            return;
        using (session)
        {
            var (context, cublas, random) = (session.Context, session.Cublas, session.Random);
            using var x16 = random.Tensor(Tokens, Features, 1);
            using var w16 = random.Tensor(Features, Features, 2);
            using var dy16 = random.Tensor(Tokens, Features, 3);
            using var x = context.CreateTensor<float>(SeededGaussian.Create(Tokens * Features, 1), Tokens, Features);
            using var w = context.CreateTensor<float>(SeededGaussian.Create(Features * Features, 2), Features, Features);
            using var dy = context.CreateTensor<float>(SeededGaussian.Create(Tokens * Features, 3), Tokens, Features);
            using var y16 = context.AllocateTensor<BFloat16>(Tokens, Features);
            using var dx16 = context.AllocateTensor<BFloat16>(Tokens, Features);
            using var dw16 = context.AllocateTensor<BFloat16>(Features, Features);
            // cuBLASLt's TN GEMM takes both operands K-major: dgrad and wgrad read Wᵀ and dYᵀ, Xᵀ; BF16 copies of those stand in
            // (transposes a framework keeps anyway), so only the GEMMs are timed.
            void Cublas()
            {
                cublas.Gemm(0, Tokens, Features, Features, x16.DevicePointer(), w16.DevicePointer(), y16.DevicePointer());
                cublas.Gemm(0, Tokens, Features, Features, dy16.DevicePointer(), w16.DevicePointer(), dx16.DevicePointer());
                cublas.Gemm(0, Features, Features, Tokens, dy16.DevicePointer(), x16.DevicePointer(), dw16.DevicePointer());
            }
            var rows = new List<Row>();
            Console.WriteLine($"Training step of a {Features}x{Features} layer at {Tokens} tokens (3 GEMMs) vs cuBLASLt BF16 on {context.DeviceName}");
            foreach (var recipe in new[] { TrainingRecipe.Quartet(1), TrainingRecipe.Nvfp4(1) })
            foreach (bool saved in new[] { true, false })
            {
                // Saved: X and W quantized once in both orientations in the forward pass, dY once in the backward pass (what a
                // framework does); stateless: each GEMM quantizes its own operands.
                void Step()
                {
                    if (saved)
                    {
                        var (y, operands) = LinearTraining.ForwardForBackward(context, recipe, x, w);
                        y.Dispose();
                        using (operands)
                        {
                            var (dx, dw) = LinearTraining.Backward(context, recipe, operands, dy);
                            dx.Dispose();
                            dw.Dispose();
                        }
                    }
                    else
                    {
                        using var y = LinearTraining.Forward(context, recipe, x, w);
                        var (dx, dw) = LinearTraining.Backward(context, recipe, x, w, dy);
                        dx.Dispose();
                        dw.Dispose();
                    }
                }
                string name = recipe.Name + (saved ? ", saved operands" : ", stateless");
                var (us, cublasUs) = session.Interleaved(_ => Cublas(), _ => Step(), warmup: 1, Iterations);
                rows.Add(new Row(name, us, cublasUs, cublasUs / us));
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "{0,-76} {1,10:F1} us  cuBLASLt BF16 {2,10:F1} us  ratio {3,6:F3}",
                                                name, us, cublasUs, cublasUs / us));
            }
            Report.Save(outputDirectory, Part, "recipe,us,cublaslt_bf16_us,ratio", rows, r => [r.Recipe, r.Microseconds, r.CublasBf16Microseconds, r.Ratio]);
        }
    }
}
