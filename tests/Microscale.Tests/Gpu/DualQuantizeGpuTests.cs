namespace Microscale.Tests.Gpu;

/// <summary>
/// The native dual quantizer (both orientations in one read, NUMERICS.md §9) against the reference backend, byte for byte:
/// every format it takes, F32 and BF16 sources, rotations of 16 and 32 with random signs on either side, stochastic rounding
/// on none, one or both sides, tails in both dimensions, swizzled scales, NaN / Inf / huge / tiny values; and the training
/// step that reads it.
/// </summary>
[TestFixture]
[Category("Gpu")]
public sealed class DualQuantizeGpuTests : NativeFixture
{
    private static readonly (int Rows, int Columns)[] s_shapes = [(1, 8), (37, 136), (64, 128), (48, 272), (160, 96), (130, 264), (257, 520), (96, 4096)];

    public static IEnumerable<TestCaseData> Formats() =>
        new[]
        {
            new QuantizationOptions(QuantFormat.Mxfp4),
            new QuantizationOptions(QuantFormat.Mxfp4) { Rule = MxScaleRule.Ceil, Layout = ScaleLayout.Swizzled128x4 },
            new QuantizationOptions(QuantFormat.Mxfp8),
            new QuantizationOptions(QuantFormat.Mxfp8) { Element = Fp8Element.E5M2 },
            new QuantizationOptions(QuantFormat.Nvfp4),
            new QuantizationOptions(QuantFormat.Nvfp4) { Layout = ScaleLayout.Swizzled128x4 },
            new QuantizationOptions(QuantFormat.Nvfp4) { TwoDimensionalBlocks = true },  // rows only; the columns take 1D blocks
        }.Select(o => new TestCaseData(o).SetArgDisplayNames(o.ToString().Replace('/', '-') + (o.Element == Fp8Element.E5M2 ? "-e5m2" : "")));

    // Gaussian values with a heavy tail; with `specials`, a NaN, +-Inf, huge, tiny and an all-zero row.
    private static float[] Input(int rows, int columns, int seed, bool specials)
    {
        var x = Unit.HadamardTests.StudentT3(rows * columns, seed);
        if (!specials)
            return x;
        int n = x.Length;
        x[(7 * seed) % n] = float.NaN;
        x[(13 * seed + 5) % n] = float.PositiveInfinity;
        x[(17 * seed + 9) % n] = float.NegativeInfinity;
        x[(19 * seed + 3) % n] = 3e30f;
        x[(23 * seed + 1) % n] = 1e-38f;
        if (rows > 2)
            Array.Clear(x, columns, columns);
        return x;
    }

    [TestCaseSource(nameof(Formats))]
    public void BothOrientationsEqualTheReference(QuantizationOptions format)
    {
        using var reference = MicroscaleContext.Create(Backend.Reference);
        int cases = 0;
        foreach (var (rows, columns) in s_shapes)
        foreach (bool bf16 in new[] { true, false })
        foreach (int g in new[] { 0, 16, 32 })
        {
            var rowRotation = g != 0 && columns % g == 0 && !format.TwoDimensionalBlocks ? HadamardTransform.CreateRandom(g, rows + g) : null;
            var columnRotation = g != 0 && rows % g == 0 ? HadamardTransform.CreateRandom(g, columns + 3 * g) : null;
            if (g != 0 && rowRotation is null && columnRotation is null)
                continue;
            // Stochastic rounding on neither side, the rows, the columns, both, in turn.
            var stochastic = format with { Rounding = RoundingMode.Stochastic };
            var rowOptions = cases % 4 is 1 or 3 ? stochastic with { Seed = (ulong)(1000 + cases) } : format;
            var columnFormat = format with { TwoDimensionalBlocks = false };
            var columnOptions = cases % 4 is 2 or 3 ? columnFormat with { Rounding = RoundingMode.Stochastic, Seed = (ulong)(2000 + cases) } : columnFormat;
            var values = Input(rows, columns, seed: cases + 1, specials: cases % 3 == 0);
            string what = $"{format} {rows}x{columns} {(bf16 ? "bf16" : "f32")} rows({rowRotation}, {rowOptions}) columns({columnRotation}, {columnOptions})";
            if (bf16)
                Compare(reference, values.Select(v => (BFloat16)v).ToArray(), rows, columns, rowOptions, rowRotation, columnOptions, columnRotation, what);
            else
                Compare(reference, values, rows, columns, rowOptions, rowRotation, columnOptions, columnRotation, what);
            cases++;
        }
        Assert.That(cases, Is.GreaterThan(20));
    }

    private void Compare<T>(MicroscaleContext reference, T[] values, int rows, int columns, QuantizationOptions rowOptions, HadamardTransform? rowRotation,
                            QuantizationOptions columnOptions, HadamardTransform? columnRotation, string what) where T : unmanaged
    {
        using var source = Context.CreateTensor<T>(values, rows, columns);
        using var both = Context.QuantizeBothOrientations(source, rowOptions, rowRotation, columnOptions, columnRotation);
        Assert.That(Context.LastQuantizeKernel, Is.EqualTo("ms_smxx_quantize_dual"), what);
        using var hostSource = reference.CreateTensor<T>(values, rows, columns);
        using var expectedRows = rowRotation is null ? reference.Quantize(hostSource, rowOptions) : reference.QuantizeRotated(hostSource, rowRotation, rowOptions);
        using var expectedColumns = reference.QuantizeTransposed(hostSource, columnOptions, columnRotation);
        foreach (var (want, actual, side) in new[] { (expectedRows, both.Rows, "rows"), (expectedColumns, both.Columns, "columns") })
        {
            using var expected = want.ToHost();
            using var host = actual.ToHost();
            Exact.AssertFloats(expected.DecodeScales, host.DecodeScales, $"{what}: {side} decode scales");
            Exact.AssertBytes(expected.BlockScales, host.BlockScales, $"{what}: {side} block scales");
            Exact.AssertBytes(expected.Data, host.Data, $"{what}: {side} codes", (int)expected.Spec.DataBytes(1, expected.Columns));
        }
    }

    [Test]
    public void TransposedAndStochasticQuantizeTakeTheDualKernelWhereItApplies()
    {
        using var source = Context.CreateTensor<BFloat16>(SeededGaussian.Create(64 * 256, 4).Select(v => (BFloat16)v).ToArray(), 64, 256);
        using (Context.QuantizeTransposed(source, new QuantizationOptions(QuantFormat.Mxfp4), HadamardTransform.CreateRandom(32, 1))) { }
        Assert.That(Context.LastQuantizeKernel, Is.EqualTo("ms_smxx_quantize_dual"));
        using (Context.Quantize(source, new QuantizationOptions(QuantFormat.Nvfp4) { Rounding = RoundingMode.Stochastic, Seed = 5 })) { }
        Assert.That(Context.LastQuantizeKernel, Is.EqualTo("ms_smxx_quantize"), "ms_quantize routes it to the dual kernel inside");
        // Rotations past 32 and FP8 per-row transposes still work, through the transpose-then-quantize path.
        using var wide = Context.QuantizeTransposed(source, new QuantizationOptions(QuantFormat.Mxfp4), HadamardTransform.CreateRandom(64, 1));
        using var rowwise = Context.QuantizeTransposed(source, new QuantizationOptions(QuantFormat.Fp8PerRow));
        Assert.That((wide.Rows, wide.Columns, rowwise.Rows, rowwise.Columns), Is.EqualTo((256, 64, 256, 64)));
    }

    [TestCase("quartet")]
    [TestCase("nvfp4")]
    public void SavedOperandsGiveTheStatelessStepBitForBit(string name)
    {
        var recipe = name == "quartet" ? TrainingRecipe.Quartet(7) : TrainingRecipe.Nvfp4(7);
        const int tokens = 256, features = 128, outputs = 96;
        using var x = Context.CreateTensor<float>(SeededGaussian.Create(tokens * features, 1), tokens, features);
        using var w = Context.CreateTensor<float>(SeededGaussian.Create(outputs * features, 2).Select(v => v * 0.1f).ToArray(), outputs, features);
        using var dy = Context.CreateTensor<float>(SeededGaussian.Create(tokens * outputs, 3).Select(v => v * 0.01f).ToArray(), tokens, outputs);
        Unit.LinearTrainingTests.AssertSavedStepIsTheStatelessStep(Context, recipe, x, w, dy);
    }
}
