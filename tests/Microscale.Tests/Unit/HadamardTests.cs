using Microscale.IO;

namespace Microscale.Tests.Unit;

/// <summary>Hadamard rotation and fused rotate-then-quantize against hadamard.safetensors, bit for bit, on every CPU backend.</summary>
[TestFixture]
public sealed class HadamardTests
{
    private static readonly int[] s_sizes = { 16, 32, 64, 128, 256 };

    public static IEnumerable<TestCaseData> Cases() =>
        from g in s_sizes
        from backend in TestBackends.All
        select TestBackends.Case($"Hadamard_g{g}_{backend}", backend, g, backend);

    [TestCaseSource(nameof(Cases))]
    public void RotationAndFusedQuantizationMatchGolden(int g, Backend backend)
    {
        TestBackends.Require(backend);
        using var f = SafeTensorsFile.Open(Golden.PathOf("hadamard.safetensors"));
        var info = f.GetInfo($"x_g{g}");
        int rows = (int)info.Shape[0], columns = (int)info.Shape[1];
        float[] x = f.Read<float>($"x_g{g}");
        var signed = HadamardTransform.Create(g, f.Read<float>($"signs_g{g}"));
        using var context = MicroscaleContext.Create(backend);
        using var input = context.CreateTensor<float>(x, rows, columns);

        using (var y = context.HadamardRotate(input, signed))
            Exact.AssertFloats(f.Read<float>($"y_g{g}"), y.ToArray(), $"y_g{g}", columns);
        using (var y = context.HadamardRotate(input, HadamardTransform.Create(g)))
            Exact.AssertFloats(f.Read<float>($"y_nosign_g{g}"), y.ToArray(), $"y_nosign_g{g}", columns);

        using (var nv = context.QuantizeRotated(input, signed, new QuantizationOptions(QuantFormat.Nvfp4)))
        using (var host = nv.ToHost())
        {
            Exact.AssertFloats(f.Read<float>($"y_g{g}_nvfp4_g"), host.DecodeScales, "nvfp4 g");
            Exact.AssertBytes(f.Read<byte>($"y_g{g}_nvfp4_s"), host.BlockScales, "nvfp4 s");
            Exact.AssertBytes(f.Read<byte>($"y_g{g}_nvfp4_q"), host.Data, "nvfp4 q");
        }
        using (var mx = context.QuantizeRotated(input, signed, new QuantizationOptions(QuantFormat.Mxfp4)))
        using (var host = mx.ToHost())
        {
            Exact.AssertBytes(f.Read<byte>($"y_g{g}_mxfp4_s"), host.BlockScales, "mxfp4 s");
            Exact.AssertBytes(f.Read<byte>($"y_g{g}_mxfp4_q"), host.Data, "mxfp4 q");
        }
    }

    public static IEnumerable<TestCaseData> FusedCases() =>
        from options in new[]
        {
            new QuantizationOptions(QuantFormat.Mxfp8) { Rule = MxScaleRule.Ceil },
            new QuantizationOptions(QuantFormat.Mxfp4) { Layout = ScaleLayout.Swizzled128x4 },
            new QuantizationOptions(QuantFormat.Nvfp4) { Layout = ScaleLayout.Swizzled128x4 },
            new QuantizationOptions(QuantFormat.Fp8PerTensor),
            new QuantizationOptions(QuantFormat.Fp8PerRow) { Element = Fp8Element.E5M2 },
        }
        from g in s_sizes
        from backend in TestBackends.All.Skip(1)
        select TestBackends.Case($"Fused_{options.ToString().Replace('/', '_')}_g{g}_{backend}", backend, options, g, backend);

    /// <summary>Fused rotate+quantize is byte-identical to quantizing the rotated tensor and to the reference, for every format.</summary>
    [TestCaseSource(nameof(FusedCases))]
    public void FusedEqualsRotateThenQuantize(QuantizationOptions options, int g, Backend backend)
    {
        TestBackends.Require(backend);
        const int rows = 5;
        int columns = 3 * g;
        var x = SeededGaussian.Create(rows * columns, seed: g);
        x[7] = 3e38f; // rotation overflows this block to Inf: a non-finite block after rotation
        var h = HadamardTransform.CreateRandom(g, seed: 11);
        using var reference = MicroscaleContext.Create(Backend.Reference);
        using var referenceInput = reference.CreateTensor<float>(x, rows, columns);
        using var expected = reference.Quantize(reference.HadamardRotate(referenceInput, h), options).ToHost();
        using var context = MicroscaleContext.Create(backend);
        using var input = context.CreateTensor<float>(x, rows, columns);
        using var rotated = context.HadamardRotate(input, h);
        Exact.AssertFloats(reference.HadamardRotate(referenceInput, h).ToArray(), rotated.ToArray(), $"{backend} rotated", columns);
        using var twoStep = context.Quantize(rotated, options).ToHost();
        using var fused = context.QuantizeRotated(input, h, options).ToHost();
        foreach (var (name, q) in new[] { ("two-step", twoStep), ("fused", fused) })
        {
            Exact.AssertBytes(expected.Data, q.Data, $"{backend} {name} data");
            Exact.AssertBytes(expected.BlockScales, q.BlockScales, $"{backend} {name} scales");
            Exact.AssertFloats(expected.DecodeScales, q.DecodeScales, $"{backend} {name} decode scales");
        }
    }

    [TestCaseSource(typeof(TestBackends), nameof(TestBackends.Each))]
    public void HalfAndBFloat16InputsRotateTheirExactWidening(Backend backend)
    {
        TestBackends.Require(backend);
        var x = SeededGaussian.Create(4 * 64, seed: 3);
        var half = x.Select(v => (Half)v).ToArray();
        var bf16 = x.Select(v => (BFloat16)v).ToArray();
        var h = HadamardTransform.CreateRandom(32, seed: 5);
        {
            using var context = MicroscaleContext.Create(backend);
            using var fromHalf = context.CreateTensor<Half>(half, 4, 64);
            using var viaHalf = context.CreateTensor<float>(half.Select(v => (float)v).ToArray(), 4, 64);
            Exact.AssertFloats(context.HadamardRotate(viaHalf, h).ToArray(), context.HadamardRotate(fromHalf, h).ToArray(), $"{backend} Half");
            using var fromBf16 = context.CreateTensor<BFloat16>(bf16, 4, 64);
            using var viaBf16 = context.CreateTensor<float>(bf16.Select(v => v.ToSingle()).ToArray(), 4, 64);
            Exact.AssertFloats(context.HadamardRotate(viaBf16, h).ToArray(), context.HadamardRotate(fromBf16, h).ToArray(), $"{backend} BFloat16");
        }
    }

    [Test]
    public void RotationIsOrthogonal()
    {
        // H_g / sqrt(g) is orthogonal and symmetric, so rotating twice (no signs) returns x up to rounding.
        var x = SeededGaussian.Create(2 * 256, seed: 9);
        using var context = MicroscaleContext.Create(Backend.Cpu);
        using var input = context.CreateTensor<float>(x, 2, 256);
        var h = HadamardTransform.Create(256);
        using var once = context.HadamardRotate(input, h);
        using var twice = context.HadamardRotate(once, h);
        var back = twice.ToArray();
        for (int i = 0; i < x.Length; i++)
            Assert.That(back[i], Is.EqualTo(x[i]).Within(1e-5f * 16), $"element {i}");
    }

    /// <remarks>
    /// MXFP4's power-of-two scales waste up to a binade on a block with one outlier, which rotation removes. NVFP4's fine
    /// UE4M3 scales over 16 values already adapt to outliers: on this data a g = 16 rotation does not help it (relative error
    /// 0.142 rotated vs 0.134 plain), as MR-GPTQ reports, so the claim is tested for MXFP4.
    /// </remarks>
    [TestCase(32)]
    [TestCase(128)]
    public void RotationLowersMxfp4GemmErrorOnHeavyTailedWeights(int g)
    {
        // Student-t(3) weights have outliers that FP4 blocks clip or crush; a random Hadamard transform spreads them out.
        const int m = 16, n = 64, k = 512;
        var a = SeededGaussian.Create(m * k, seed: 1);
        var w = StudentT3(n * k, seed: 2);
        var (exact, _) = GemmBounds.Reference(a, w, m, n, k);
        using var context = MicroscaleContext.Create(Backend.Cpu);
        using var at = context.CreateTensor<float>(a, m, k);
        using var wt = context.CreateTensor<float>(w, n, k);
        foreach (var format in new[] { QuantFormat.Mxfp4 })
        {
            var o = new QuantizationOptions(format);
            using var qa = context.Quantize(at, o);
            using var qw = context.Quantize(wt, o);
            var h = HadamardTransform.CreateRandom(g, seed: 3);
            using var ra = context.QuantizeRotated(at, h, o);
            using var rw = context.QuantizeRotated(wt, h, o);
            double plain = RelativeError(exact, context.Gemm(qa, qw).ToArray());
            double rotated = RelativeError(exact, context.Gemm(ra, rw).ToArray());
            Assert.That(rotated, Is.LessThan(plain * 0.9), $"{format} g={g}: rotated {rotated:F4} vs plain {plain:F4}");
        }
    }

    private static double RelativeError(double[] exact, float[] actual)
    {
        double num = 0, den = 0;
        for (int i = 0; i < exact.Length; i++)
        {
            num += (actual[i] - exact[i]) * (actual[i] - exact[i]);
            den += exact[i] * exact[i];
        }
        return Math.Sqrt(num / den);
    }

    /// <summary>Student-t with 3 degrees of freedom: Z / sqrt(χ²₃ / 3).</summary>
    internal static float[] StudentT3(int count, int seed)
    {
        var z = SeededGaussian.Create(count * 4, seed);
        var t = new float[count];
        for (int i = 0; i < count; i++)
        {
            double chi = (z[4 * i + 1] * z[4 * i + 1] + z[4 * i + 2] * z[4 * i + 2] + z[4 * i + 3] * z[4 * i + 3]) / 3.0;
            t[i] = (float)(z[4 * i] / Math.Sqrt(chi));
        }
        return t;
    }

    [Test]
    public void InvalidTransformsAndShapesNameTheArgument()
    {
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => HadamardTransform.Create(24))!.ParamName, Is.EqualTo("blockSize"));
        Assert.That(Assert.Throws<ArgumentException>(() => HadamardTransform.Create(16, new float[15]))!.ParamName, Is.EqualTo("signs"));
        var bad = Enumerable.Repeat(1f, 16).ToArray();
        bad[3] = 0.5f;
        Assert.That(Assert.Throws<ArgumentException>(() => HadamardTransform.Create(16, bad))!.ParamName, Is.EqualTo("signs"));
        using var context = MicroscaleContext.Create(Backend.Reference);
        using var x = context.AllocateTensor<float>(2, 48);
        Assert.That(Assert.Throws<ArgumentException>(() => context.HadamardRotate(x, HadamardTransform.Create(32)))!.ParamName, Is.EqualTo("source"));
        Assert.That(Assert.Throws<ArgumentException>(() => context.QuantizeRotated(x, HadamardTransform.Create(32), new QuantizationOptions(QuantFormat.Mxfp4)))!.ParamName, Is.EqualTo("source"));
        using var wrong = context.AllocateTensor<float>(2, 32);
        Assert.That(Assert.Throws<ArgumentException>(() => context.HadamardRotate(x, HadamardTransform.Create(16), wrong))!.ParamName, Is.EqualTo("destination"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => context.HadamardRotate(x, null!))!.ParamName, Is.EqualTo("rotation"));
    }
}
