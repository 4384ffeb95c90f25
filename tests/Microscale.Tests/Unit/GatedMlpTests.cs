namespace Microscale.Tests.Unit;

/// <summary><see cref="GatedMlp"/> against a float64 gated MLP: the quantized block's relative error stays within what its
/// formats allow, on every backend, and shapes that do not chain are refused.</summary>
[TestFixture]
public sealed class GatedMlpTests
{
    private const int Hidden = 64, Intermediate = 160, Tokens = 3;

    public static IEnumerable<TestCaseData> Blocks()
    {
        var cases = new (string Name, QuantFormat Weights, QuantFormat Activations, int Rotation, double MaxRelativeError)[]
        {
            ("MXFP4_g32", QuantFormat.Mxfp4, QuantFormat.Mxfp4, 32, 0.35),
            ("NVFP4", QuantFormat.Nvfp4, QuantFormat.Nvfp4, 0, 0.3),
            ("FP8row", QuantFormat.Fp8PerRow, QuantFormat.Fp8PerRow, 0, 0.08),
        };
        foreach (var backend in TestBackends.All)
            foreach (var c in cases)
                yield return TestBackends.Case($"{c.Name}_{backend}", backend, c.Weights, c.Activations, c.Rotation, c.MaxRelativeError, backend);
    }

    [TestCaseSource(nameof(Blocks))]
    public void CloseToTheFloatBlock(QuantFormat weights, QuantFormat activations, int rotationBlock, double maxRelativeError, Backend backend)
    {
        TestBackends.Require(backend);
        using var context = MicroscaleContext.Create(backend);
        var (gate, up, down, x) = Weights();
        var rotation = rotationBlock == 0 ? null : HadamardTransform.CreateRandom(rotationBlock, seed: 5);
        using var mlp = GatedMlp.Quantize(context, gate, up, down, Hidden, Intermediate, new(weights), new(activations), rotation);
        using var input = context.CreateTensor<float>(x, Tokens, Hidden);
        using var output = mlp.Forward(input);
        mlp.Forward(input, output); // again, reusing the buffers
        Assert.That(RelativeError(output.ToArray(), gate, up, down, x), Is.LessThan(maxRelativeError), mlp.Pair);
    }

    public static IEnumerable<TestCaseData> Bf16Blocks()
    {
        // W4A16 reads the BF16 activations as they are; W4A4 quantizes them. The BF16 rounding of x and of the SiLU product
        // adds about 2^-9 relative to each.
        var cases = new (string Name, QuantFormat Weights, QuantFormat? Activations, int Rotation, double MaxRelativeError)[]
        {
            ("W4A16_NVFP4", QuantFormat.Nvfp4, null, 0, 0.25),
            ("W4A16_MXFP4", QuantFormat.Mxfp4, null, 0, 0.3),
            ("W4A4_MXFP4_g32", QuantFormat.Mxfp4, QuantFormat.Mxfp4, 32, 0.35),
        };
        foreach (var backend in TestBackends.All)
            foreach (var c in cases)
                yield return TestBackends.Case($"{c.Name}_{backend}", backend, c.Weights, c.Activations, c.Rotation, c.MaxRelativeError, backend);
    }

    /// <summary>BF16 in and out (the SiLU product rounded to BF16 for the down projection), W4A16 included.</summary>
    [TestCaseSource(nameof(Bf16Blocks))]
    public void Bf16BlockCloseToTheFloatBlock(QuantFormat weights, QuantFormat? activations, int rotationBlock, double maxRelativeError, Backend backend)
    {
        TestBackends.Require(backend);
        using var context = MicroscaleContext.Create(backend);
        var (gate, up, down, x) = Weights();
        var rotation = rotationBlock == 0 ? null : HadamardTransform.CreateRandom(rotationBlock, seed: 5);
        using var mlp = GatedMlp.Quantize(context, gate, up, down, Hidden, Intermediate, new(weights),
                                          activations is { } a ? new QuantizationOptions(a) : null, rotation);
        var x16 = x.Select(v => (BFloat16)v).ToArray();
        using var input = context.CreateTensor<BFloat16>(x16, Tokens, Hidden);
        using var output = mlp.Forward(input);
        mlp.Forward(input, output); // again, reusing the buffers
        var y = output.ToArray().Select(v => (float)v).ToArray();
        Assert.That(RelativeError(y, gate, up, down, x16.Select(v => (float)v).ToArray()), Is.LessThan(maxRelativeError), mlp.Pair);
    }

    private static (float[] Gate, float[] Up, float[] Down, float[] X) Weights() =>
        (SeededGaussian.Create(Intermediate * Hidden, 1).Select(v => v / 8).ToArray(),
         SeededGaussian.Create(Intermediate * Hidden, 2).Select(v => v / 8).ToArray(),
         SeededGaussian.Create(Hidden * Intermediate, 3).Select(v => v / 12).ToArray(),
         SeededGaussian.Create(Tokens * Hidden, 4));

    // ‖y − y_ref‖ / ‖y_ref‖ against the block in float64.
    private static double RelativeError(float[] y, float[] gate, float[] up, float[] down, float[] x)
    {
        double error = 0, norm = 0;
        for (int t = 0; t < Tokens; t++)
        {
            var h = new double[Intermediate];
            for (int i = 0; i < Intermediate; i++)
            {
                double g = 0, u = 0;
                for (int k = 0; k < Hidden; k++)
                {
                    g += (double)gate[i * Hidden + k] * x[t * Hidden + k];
                    u += (double)up[i * Hidden + k] * x[t * Hidden + k];
                }
                h[i] = g / (1 + Math.Exp(-g)) * u;
            }
            for (int o = 0; o < Hidden; o++)
            {
                double expected = 0;
                for (int i = 0; i < Intermediate; i++)
                    expected += down[o * Intermediate + i] * h[i];
                error += (y[t * Hidden + o] - expected) * (y[t * Hidden + o] - expected);
                norm += expected * expected;
            }
        }
        return Math.Sqrt(error / norm);
    }

    [Test]
    public void LayersThatDoNotChainAreRefused()
    {
        using var context = MicroscaleContext.Create(Backend.Reference);
        var mx = new QuantizationOptions(QuantFormat.Mxfp4);
        QuantizedLinear Layer(int outF, int inF) => QuantizedLinear.Quantize(context, new float[outF * inF], outF, inF, mx, mx);
        using var gate = Layer(96, 64);
        using var up = Layer(96, 64);
        using var down = Layer(64, 128);
        Assert.That(Assert.Throws<ArgumentException>(() => _ = new GatedMlp(context, gate, up, down))!.ParamName, Is.EqualTo("down"));
    }
}
