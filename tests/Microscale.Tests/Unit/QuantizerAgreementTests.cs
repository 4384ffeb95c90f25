namespace Microscale.Tests.Unit;

/// <summary>
/// Every backend (ILGPU CPU; category Gpu: ILGPU CUDA and native) against the managed reference on random inputs of awkward shapes, every format,
/// rule, layout and element, and Half / BFloat16 inputs: bit for bit.
/// </summary>
[TestFixture]
public sealed class QuantizerAgreementTests
{
    private static readonly (int Rows, int Columns)[] s_shapes = { (1, 1), (1, 33), (7, 100), (129, 257), (3, 1000) };

    public static IEnumerable<TestCaseData> Options() =>
        from o in Cli.Verify.Verifier.AllOptions()
        from backend in TestBackends.All.Skip(1)
        select TestBackends.Case($"Agree_{o.Format}_{o.Rule}_{o.Layout}_{o.Element}_{backend}", backend, o, backend);

    /// <summary>Gaussian rows over a wide range of magnitudes with specials: the same inputs <c>microscale verify</c> uses.</summary>
    private static float[] Input(int rows, int columns, int seed) => Cli.Verify.Verifier.Input(rows, columns, seed);

    [TestCaseSource(nameof(Options))]
    public void BackendMatchesReference(QuantizationOptions options, Backend backend)
    {
        TestBackends.Require(backend);
        foreach (var (rows, columns) in s_shapes)
        {
            float[] x = Input(rows, columns, rows * 1000 + columns);
            using var reference = Quantizer.Quantize(x, rows, columns, options, Backend.Reference);
            using var ilgpu = Quantizer.Quantize(x, rows, columns, options, backend);
            string what = $"{options} {rows}x{columns}";
            Exact.AssertBytes(reference.Data, ilgpu.Data, what + " data");
            Exact.AssertBytes(reference.BlockScales, ilgpu.BlockScales, what + " block scales");
            Exact.AssertFloats(reference.DecodeScales, ilgpu.DecodeScales, what + " decode scales");
            Exact.AssertFloats(reference.Dequantize(Backend.Reference), ilgpu.Dequantize(backend), what + " dequantized", columns);
        }
    }

    [TestCaseSource(typeof(TestBackends), nameof(TestBackends.Each))]
    public void HalfAndBFloat16InputsEqualTheirExactFloatWidening(Backend backend)
    {
        TestBackends.Require(backend);
        const int rows = 5, columns = 70;
        float[] x = Input(rows, columns, 7);
        var half = x.Select(v => (Half)v).ToArray();
        var bf16 = x.Select(v => (BFloat16)v).ToArray();
        foreach (var format in Enum.GetValues<QuantFormat>())
        {
            var o = new QuantizationOptions(format);
            using var fromHalf = Quantizer.Quantize(half, rows, columns, o, backend);
            using var viaHalf = Quantizer.Quantize(half.Select(v => (float)v).ToArray(), rows, columns, o, Backend.Reference);
            Exact.AssertBytes(viaHalf.Data, fromHalf.Data, $"{format} Half");
            using var fromBf16 = Quantizer.Quantize(bf16, rows, columns, o, backend);
            using var viaBf16 = Quantizer.Quantize(bf16.Select(v => v.ToSingle()).ToArray(), rows, columns, o, Backend.Reference);
            Exact.AssertBytes(viaBf16.Data, fromBf16.Data, $"{format} BFloat16");
            Exact.AssertBytes(viaBf16.BlockScales, fromBf16.BlockScales, $"{format} BFloat16 scales");
        }
    }

    /// <summary>
    /// BF16 activations with K a multiple of 8, the shapes the native BF16 activation quantizer takes (smxx_quantize_bf16.cu):
    /// every format, rule, layout and element unrotated, the FP4 / FP8 activation formats after every rotation size, rows up
    /// to and past 16384 values (FP8 per-row keeps a row in registers up to there), against the reference on the exactly
    /// widened values, bit for bit.
    /// </summary>
    [TestCaseSource(typeof(TestBackends), nameof(TestBackends.Each))]
    public void Bf16ActivationsMatchReferenceWithAndWithoutRotation(Backend backend)
    {
        TestBackends.Require(backend);
        using var context = MicroscaleContext.Create(backend);
        using var reference = MicroscaleContext.Create(Backend.Reference);
        var rotated = new[]
        {
            new QuantizationOptions(QuantFormat.Mxfp4), new QuantizationOptions(QuantFormat.Nvfp4) { Layout = ScaleLayout.Swizzled128x4 },
            new QuantizationOptions(QuantFormat.Mxfp8) { Rule = MxScaleRule.Ceil }, new QuantizationOptions(QuantFormat.Fp8PerRow),
            new QuantizationOptions(QuantFormat.Fp8PerTensor) { Element = Fp8Element.E5M2 },
        };
        var cases = new List<(int Rows, int Columns, int Rotation, QuantizationOptions Options)>();
        foreach (var o in Cli.Verify.Verifier.AllOptions())
        foreach (var (rows, columns) in new[] { (1, 8), (7, 264), (3, 1024) })
            cases.Add((rows, columns, 0, o));
        foreach (var o in rotated)
        foreach (var (rows, columns, g) in new[] { (3, 1024, 16), (2, 512, 32), (5, 768, 64), (4, 1024, 128), (3, 2048, 256), (2, 16384, 0), (1, 16392, 0) })
            cases.Add((rows, columns, g, o));
        foreach (var (rows, columns, g, options) in cases)
        {
            var x = Input(rows, columns, rows * 1000 + columns).Select(v => (BFloat16)v).ToArray();
            var rotation = g == 0 ? null : HadamardTransform.CreateRandom(g, seed: g);
            using var source = context.CreateTensor<BFloat16>(x, rows, columns);
            using var expectedSource = reference.CreateTensor<float>(x.Select(v => v.ToSingle()).ToArray(), rows, columns);
            using var actual = rotation is null ? context.Quantize(source, options) : context.QuantizeRotated(source, rotation, options);
            using var expected = rotation is null ? reference.Quantize(expectedSource, options) : reference.QuantizeRotated(expectedSource, rotation, options);
            using var actualHost = actual.ToHost();
            using var expectedHost = expected.ToHost();
            string what = $"{options} {rows}x{columns} g={g}";
            Exact.AssertBytes(expectedHost.Data, actualHost.Data, what + " data");
            Exact.AssertBytes(expectedHost.BlockScales, actualHost.BlockScales, what + " block scales");
            Exact.AssertFloats(expectedHost.DecodeScales, actualHost.DecodeScales, what + " decode scales");
        }
    }

    [Test]
    public void ExactValuesRoundTripThroughEveryFormat()
    {
        // Powers of two and E2M1 grid points in one block of 32 are exact in every format: dequantize(quantize(x)) == x.
        float[] grid = { 0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f, -0.5f, -1f, -1.5f, -2f, -3f, -4f, -6f, 6f };
        var x = Enumerable.Range(0, 64).Select(i => grid[i % 16] * (i < 32 ? 1f : 0.25f)).ToArray();
        foreach (var format in new[] { QuantFormat.Mxfp4, QuantFormat.Mxfp8 })
        foreach (var backend in new[] { Backend.Reference, Backend.Cpu })
        {
            using var q = Quantizer.Quantize(x, 2, 32, new QuantizationOptions(format), backend);
            Exact.AssertFloats(x, q.Dequantize(backend), $"{format} {backend}");
        }
    }
}
