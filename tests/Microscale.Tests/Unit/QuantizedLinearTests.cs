namespace Microscale.Tests.Unit;

/// <summary>
/// <see cref="QuantizedLinear"/>: the layer's output equals its parts run by hand (quantize the activations, rotated when the
/// layer rotates, then the GEMM with bias) bit for bit, stays close to the float layer (so a rotation cancels), reuses its
/// buffers, and refuses bad shapes by name.
/// </summary>
[TestFixture]
public sealed class QuantizedLinearTests
{
    private const int Tokens = 6, In = 128, Out = 40;

    public static IEnumerable<TestCaseData> Layers()
    {
        var cases = new (string Name, QuantizationOptions Weights, QuantizationOptions? Activations, int Rotation, double MaxRelativeError)[]
        {
            ("W4A4_MXFP4_g32", new(QuantFormat.Mxfp4), new(QuantFormat.Mxfp4), 32, 0.25),
            ("W4A4_NVFP4_g16", new(QuantFormat.Nvfp4), new(QuantFormat.Nvfp4), 16, 0.2),
            ("W4A8_MXFP4_FP8row", new(QuantFormat.Mxfp4), new(QuantFormat.Fp8PerRow), 0, 0.2),
            ("W8A8_FP8row", new(QuantFormat.Fp8PerRow), new(QuantFormat.Fp8PerRow), 0, 0.06),
            ("W4A16_NVFP4", new(QuantFormat.Nvfp4), null, 0, 0.15),
        };
        foreach (var backend in TestBackends.All)
            foreach (var c in cases)
                yield return TestBackends.Case($"{c.Name}_{backend}", backend, c.Weights, c.Activations, c.Rotation, c.MaxRelativeError, backend);
    }

    [TestCaseSource(nameof(Layers))]
    public void ForwardIsTheQuantizedPipelineAndCloseToFloat(QuantizationOptions weights, QuantizationOptions? activations, int rotationBlock,
                                                             double maxRelativeError, Backend backend)
    {
        TestBackends.Require(backend);
        using var context = MicroscaleContext.Create(backend);
        var w = SeededGaussian.Create(Out * In, seed: 1);
        var x = SeededGaussian.Create(Tokens * In, seed: 2);
        var bias = SeededGaussian.Create(Out, seed: 3);
        var rotation = rotationBlock == 0 ? null : HadamardTransform.CreateRandom(rotationBlock, seed: 4);
        using var layer = QuantizedLinear.Quantize(context, w, Out, In, weights, activations, rotation, bias);
        Assert.That((layer.InFeatures, layer.OutFeatures), Is.EqualTo((In, Out)));

        // The same steps by hand.
        using var biasTensor = context.CreateTensor<float>(bias, 1, Out);
        using var expected = context.AllocateTensor<float>(Tokens, Out);
        using var actual = context.AllocateTensor<float>(Tokens, Out);
        if (activations is null)
        {
            var x16 = x.Select(v => (BFloat16)v).ToArray();
            using var input = context.CreateTensor<BFloat16>(x16, Tokens, In);
            layer.Forward(input, actual);
            context.Gemm(input, layer.Weight, expected, new GemmOptions { Bias = biasTensor });
        }
        else
        {
            using var input = context.CreateTensor<float>(x, Tokens, In);
            layer.Forward(input, actual);
            layer.Forward(input, actual); // the second call reuses the activation buffer
            using var qa = rotation is null ? context.Quantize(input, activations) : context.QuantizeRotated(input, rotation, activations);
            context.Gemm(qa, layer.Weight, expected, new GemmOptions { Bias = biasTensor });
        }
        var got = actual.ToArray();
        Assert.That(got, Is.EqualTo(expected.ToArray()), "the layer runs exactly its quantize + GEMM steps");

        // Close to the float layer: a rotation applied to one side only would be off by ~100%.
        double error = 0, norm = 0;
        for (int t = 0; t < Tokens; t++)
        {
            for (int o = 0; o < Out; o++)
            {
                double y = bias[o];
                for (int i = 0; i < In; i++)
                    y += (double)x[t * In + i] * w[o * In + i];
                error += (got[t * Out + o] - y) * (got[t * Out + o] - y);
                norm += y * y;
            }
        }
        Assert.That(Math.Sqrt(error / norm), Is.LessThan(maxRelativeError), layer.Pair);
    }

    [TestCaseSource(typeof(TestBackends), nameof(TestBackends.EachIlgpu))]
    public void ManyTokenCountsEvictAndStayCorrect(Backend backend)
    {
        TestBackends.Require(backend);
        using var context = MicroscaleContext.Create(backend);
        using var layer = QuantizedLinear.Quantize(context, SeededGaussian.Create(Out * In, 5), Out, In, new(QuantFormat.Mxfp4), new(QuantFormat.Mxfp4));
        var first = new Dictionary<int, float[]>();
        foreach (int tokens in new[] { 1, 2, 3, 4, 5, 6, 1, 2 })
        {
            using var input = context.CreateTensor<float>(SeededGaussian.Create(tokens * In, seed: tokens), tokens, In);
            using var output = layer.Forward(input);
            var values = output.ToArray();
            if (first.TryGetValue(tokens, out var earlier))
                Assert.That(values, Is.EqualTo(earlier), $"{tokens} tokens after eviction");
            else
                first[tokens] = values;
        }
    }

    [Test]
    public void BadArgumentsAreNamed()
    {
        using var context = MicroscaleContext.Create(Backend.Reference);
        var w = SeededGaussian.Create(Out * In, 1);
        var mx = new QuantizationOptions(QuantFormat.Mxfp4);
        Assert.Throws<NotSupportedException>(() => QuantizedLinear.Quantize(context, w, Out, In, mx, new QuantizationOptions(QuantFormat.Nvfp4)));
        Assert.That(Assert.Throws<ArgumentException>(() => QuantizedLinear.Quantize(context, w, Out, In, mx, null, HadamardTransform.Create(32)))!.ParamName,
                    Is.EqualTo("rotation"));
        Assert.That(Assert.Throws<ArgumentException>(() => QuantizedLinear.Quantize(context, w, Out, In, mx, mx, HadamardTransform.Create(256)))!.ParamName,
                    Is.EqualTo("rotation"));
        Assert.That(Assert.Throws<ArgumentException>(() => QuantizedLinear.Quantize(context, w, Out, In, mx, mx, bias: new float[3]))!.ParamName,
                    Is.EqualTo("bias"));
        var layer = QuantizedLinear.Quantize(context, w, Out, In, mx, mx);
        using var wrongIn = context.AllocateTensor<float>(2, In + 32);
        using var input = context.AllocateTensor<float>(2, In);
        using var wrongOut = context.AllocateTensor<float>(3, Out);
        Assert.That(Assert.Throws<ArgumentException>(() => layer.Forward(wrongIn))!.ParamName, Is.EqualTo("input"));
        Assert.That(Assert.Throws<ArgumentException>(() => layer.Forward(input, wrongOut))!.ParamName, Is.EqualTo("output"));
        layer.Dispose();
        layer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => layer.Forward(input).Dispose());
    }

    [Test]
    public void CheckpointWeightsMakeTheSameLayer()
    {
        using var context = MicroscaleContext.Create(Backend.Cpu);
        var w = SeededGaussian.Create(Out * In, 7);
        var nv = new QuantizationOptions(QuantFormat.Nvfp4);
        using var quantized = QuantizedLinear.Quantize(context, w, Out, In, nv, nv);
        using var host = Quantizer.Quantize(w, Out, In, nv);
        using var loaded = QuantizedLinear.FromQuantized(context, host, nv);
        using var input = context.CreateTensor<float>(SeededGaussian.Create(3 * In, 8), 3, In);
        using var a = quantized.Forward(input);
        using var b = loaded.Forward(input);
        Assert.That(b.ToArray(), Is.EqualTo(a.ToArray()));
        Assert.That(host.IsDisposed, Is.False, "the caller keeps its tensor");
    }
}
