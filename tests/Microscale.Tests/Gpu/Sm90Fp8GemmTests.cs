namespace Microscale.Tests.Gpu;

/// <summary>
/// The Hopper FP8 GEMM (sm_90a wgmma, native/kernels/sm90_fp8_gemm_nt.cu) against the float64 reference within its
/// NUMERICS.md §5 bound: per-tensor and per-row scales and their mixes, E4M3 and E5M2, FP32 / BF16 / FP16 outputs, alpha and
/// bias, M = 1, M / N / K tails, both store paths (TMA store when a BF16/FP16 row is a multiple of 16 bytes, direct stores
/// otherwise), more tiles than SMs, and every tile config forced through MS_FORCE_CONFIG. Runs only on an sm_90 device.
/// </summary>
[TestFixture]
[Category("Gpu")]
public sealed class Sm90Fp8GemmTests : NativeFixture
{
    private static readonly string[] s_configs =
    {
        "ms_sm90_fp8_gemm_nt_128x64x128_c1x1_s8_ws", "ms_sm90_fp8_gemm_nt_128x128x128_c1x1_s6_ws",
        "ms_sm90_fp8_gemm_nt_128x192x128_c1x1_s4_ws", "ms_sm90_fp8_gemm_nt_128x128x128_c2x1_s6_ws",
    };

    // M = 1; odd N (direct stores); N a multiple of 8 but not of the tile (TMA store clipping); K not a multiple of 128; an
    // odd number of M tiles with several tiles per CTA at K = 4112.
    private static readonly (int M, int N, int K)[] s_shapes = { (1, 128, 128), (7, 130, 272), (200, 264, 1040), (333, 776, 4112), (129, 136, 16) };

    [SetUp]
    public void RequireSm90()
    {
        if (Sm != 90)
            Assert.Ignore("the sm90 FP8 kernel needs an sm_90 GPU");
    }

    public static IEnumerable<TestCaseData> ScalingCases()
    {
        var e5m2 = Fp8Element.E5M2;
        yield return new TestCaseData(new QuantizationOptions(QuantFormat.Fp8PerTensor), new QuantizationOptions(QuantFormat.Fp8PerTensor)).SetName("{m}_tensor_tensor");
        yield return new TestCaseData(new QuantizationOptions(QuantFormat.Fp8PerRow), new QuantizationOptions(QuantFormat.Fp8PerRow)).SetName("{m}_row_row");
        yield return new TestCaseData(new QuantizationOptions(QuantFormat.Fp8PerTensor), new QuantizationOptions(QuantFormat.Fp8PerRow)).SetName("{m}_tensor_row");
        yield return new TestCaseData(new QuantizationOptions(QuantFormat.Fp8PerRow) { Element = e5m2 }, new QuantizationOptions(QuantFormat.Fp8PerRow)).SetName("{m}_rowE5M2_row");
        yield return new TestCaseData(new QuantizationOptions(QuantFormat.Fp8PerRow), new QuantizationOptions(QuantFormat.Fp8PerTensor) { Element = e5m2 }).SetName("{m}_row_tensorE5M2");
    }

    /// <summary>The heuristic's config, every output type, alpha and bias.</summary>
    [TestCaseSource(nameof(ScalingCases))]
    public void WithinBoundForEveryScalingModeAndOutput(QuantizationOptions aOptions, QuantizationOptions bOptions)
    {
        foreach (var (m, n, k) in s_shapes)
            RunAndCheck(aOptions, bOptions, m, n, k, expectedKernel: null, outputs: 3);
    }

    /// <summary>Every tile config (the heuristic may never pick some for these shapes): per-row scales, bias, FP32 and BF16.</summary>
    [Test]
    public void EveryTileConfigWithinBound()
    {
        foreach (var config in s_configs)
        {
            NativeEnvironment.Set("MS_FORCE_CONFIG", config);
            foreach (var (m, n, k) in s_shapes)
                RunAndCheck(new(QuantFormat.Fp8PerRow), new(QuantFormat.Fp8PerRow), m, n, k, expectedKernel: config, outputs: 2);
        }
    }

    /// <summary>More tiles than SMs with a partial last wave, the stream-K tail on (MS_STREAM_K=1: by default it waits for 16
    /// waves) splits the last tiles along K over every CTA: on a 132-SM H100 / H200, the heuristic's 128x128 on 1100x1928x1040 has
    /// 144 tiles, all split; 128x64 forced has 279: 132 whole, then 147 split. Within the bound, and a second run gives the same
    /// bytes (a tile's head partial is always added by its tail, so timing cannot change the sum; the flags return to zero).
    /// The 2-CTA cluster needs an even number of M tiles: at M = 1280 its 10 x 16 tiles make 80 pairs for 66 clusters, all
    /// split.</summary>
    [TestCase(null, 1100)]
    [TestCase("ms_sm90_fp8_gemm_nt_128x64x128_c1x1_s8_ws", 1100)]
    [TestCase("ms_sm90_fp8_gemm_nt_128x128x128_c2x1_s6_ws", 1280)]
    public void StreamKTailWithinBoundAndRepeatable(string? config, int m)
    {
        NativeEnvironment.Set("MS_STREAM_K", "1");
        if (config is not null)
            NativeEnvironment.Set("MS_FORCE_CONFIG", config);
        RunAndCheck(new(QuantFormat.Fp8PerRow), new(QuantFormat.Fp8PerTensor), m, 1928, 1040, expectedKernel: config, outputs: 2, repeat: true);
    }

    /// <summary>W4A8 through the exact FP4 -> FP8 fold (<see cref="Offline.Fp4Fold"/>): MXFP4 weights folded on the host into FP8
    /// per-row E4M3 run this kernel with FP8 per-token activations, within its bound against the MXFP4 weight's own values.</summary>
    [Test]
    public void FoldedMxfp4WeightsWithinBound()
    {
        const int m = 333, n = 776, k = 4112;
        using var at = Context.CreateTensor<float>(SeededGaussian.Create(m * k, seed: 1), m, k);
        using var wt = Context.CreateTensor<float>(Unit.HadamardTests.StudentT3(n * k, seed: 2), n, k);
        using var qa = Context.Quantize(at, new QuantizationOptions(QuantFormat.Fp8PerRow));
        using var mx = Context.Quantize(wt, new QuantizationOptions(QuantFormat.Mxfp4));
        Assert.That(Offline.Fp4Fold.FirstUnfoldableRow(mx), Is.EqualTo(-1), "every row of these weights folds");
        using var host = Offline.Fp4Fold.ToFp8PerRow(mx);
        using var qb = Context.Upload(host);
        var (expected, abs) = GemmBounds.Reference(Context.Dequantize(qa).ToArray(), Context.Dequantize(mx).ToArray(), m, n, k);
        using var c = Context.AllocateTensor<BFloat16>(m, n);
        Context.Gemm(qa, qb, c);
        Assert.That(Context.LastGemmKernel, Does.StartWith(Sm90Fp8Prefix));
        GemmBounds.AssertWithin<BFloat16>(expected, abs, c.ToArray(), n, k, 1f, "folded W4A8", Context.LastGemmKernel);
    }

    private const string FoldPrefix = "ms_sm90_w4a8_gemm_nt_";
    private static readonly string[] s_foldConfigs = { FoldPrefix + "64x128x128_s12", FoldPrefix + "128x128x128_s8" };

    // Above 64 tokens (below, the decode kernel takes W4A8), K a multiple of 128 (else the BF16 family runs the pair): odd N,
    // one K block, partial token and weight tiles, several tiles per CTA at K = 4096.
    private static readonly (int M, int N, int K)[] s_foldShapes = { (65, 136, 256), (130, 333, 1024), (200, 264, 128), (333, 776, 4096) };

    public static IEnumerable<TestCaseData> FoldCases()
    {
        foreach (var config in new string?[] { null, s_foldConfigs[0], s_foldConfigs[1] })
        {
            yield return new TestCaseData(new QuantizationOptions(QuantFormat.Fp8PerRow), config).SetName($"{{m}}_row_{config ?? "heuristic"}");
            yield return new TestCaseData(new QuantizationOptions(QuantFormat.Fp8PerTensor), config).SetName($"{{m}}_tensor_{config ?? "heuristic"}");
        }
    }

    /// <summary>W4A8 with 4-bit weights in memory (native/kernels/sm90_w4a8_gemm_nt.cu): MXFP4 weights (linear layout) folded
    /// exactly into E4M3 wgmma fragments inside the kernel, FP8 (E4M3) per-token and per-tensor activations, within the FP8 bound
    /// against the MXFP4 weight's own values; every output type, alpha and bias, the heuristic's config and each forced.</summary>
    [TestCaseSource(nameof(FoldCases))]
    public void Mxfp4WeightsFoldedInTheKernelWithinBound(QuantizationOptions aOptions, string? config)
    {
        if (config is not null)
            NativeEnvironment.Set("MS_FORCE_CONFIG", config);
        foreach (var (m, n, k) in s_foldShapes)
            RunAndCheck(aOptions, new(QuantFormat.Mxfp4), m, n, k, expectedKernel: config, outputs: 3, prefix: FoldPrefix);
    }

    /// <summary>K not a multiple of 128 is not the W4A8 family's: the pair runs on the BF16 family, still within the bound.</summary>
    [Test]
    public void W4a8WithKNotAMultipleOf128RunsTheBf16Family() =>
        RunAndCheck(new(QuantFormat.Fp8PerRow), new(QuantFormat.Mxfp4), 130, 200, 1056, expectedKernel: null, outputs: 2, prefix: Sm90Bf16Prefix);

    /// <summary>Weights whose rows hold a block far below the row's others within each 128-value K block (2^-20 and 2^-40 of
    /// them, or zeros) cannot fold at one base: the kernel folds such K blocks in several exact passes. Activations of even rows
    /// are zero but in those small blocks' positions, so their outputs come from the small blocks alone and a flushed or
    /// inexact block breaks the bound; odd rows are dense. A second run gives the same bytes.</summary>
    [Test]
    public void WideExponentRowsFoldInSeveralExactPasses()
    {
        const int m = 130, n = 200, k = 512, small = 1; // block 1 of every K block is the small one
        var w = Unit.HadamardTests.StudentT3(n * k, seed: 21);
        for (int row = 0; row < n; ++row)
            for (int kb = 0; kb < k / 128; ++kb)
                for (int i = 0; i < 32; ++i)
                    w[row * k + kb * 128 + small * 32 + i] *= row % 3 == 0 ? MathF.Pow(2, -20) : row % 3 == 1 ? MathF.Pow(2, -40) : 0f;
        var x = SeededGaussian.Create(m * k, seed: 22);
        for (int row = 0; row < m; row += 2)
            for (int col = 0; col < k; ++col)
                if (col % 128 / 32 != small)
                    x[row * k + col] = 0f;
        using var wt = Context.CreateTensor<float>(w, n, k);
        using var at = Context.CreateTensor<float>(x, m, k);
        using var qa = Context.Quantize(at, new QuantizationOptions(QuantFormat.Fp8PerRow));
        using var qb = Context.Quantize(wt, new QuantizationOptions(QuantFormat.Mxfp4));
        var (expected, abs) = GemmBounds.Reference(Context.Dequantize(qa).ToArray(), Context.Dequantize(qb).ToArray(), m, n, k);
        float[] Run()
        {
            using var c = Context.AllocateTensor<float>(m, n);
            Context.Gemm(qa, qb, c);
            Assert.That(Context.LastGemmKernel, Does.StartWith(FoldPrefix));
            return c.ToArray();
        }
        AssertRunWithin(Run, expected, abs, n, k, 1f, "wide-exponent W4A8", repeat: true);
    }

    private void RunAndCheck(QuantizationOptions aOptions, QuantizationOptions bOptions, int m, int n, int k, string? expectedKernel, int outputs,
                             bool repeat = false, string prefix = Sm90Fp8Prefix)
    {
        const float alpha = 0.75f;
        var biasValues = SeededGaussian.Create(n, seed: 5);
        using var at = Context.CreateTensor<float>(SeededGaussian.Create(m * k, seed: m + 7 * k), m, k);
        using var wt = Context.CreateTensor<float>(Unit.HadamardTests.StudentT3(n * k, seed: n + 3 * k), n, k);
        using var bias = Context.CreateTensor<float>(biasValues, 1, n);
        using var qa = Context.Quantize(at, aOptions);
        using var qb = Context.Quantize(wt, bOptions);
        var options = new GemmOptions { Alpha = alpha, Bias = bias };
        var (expected, abs) = GemmBounds.Reference(Context.Dequantize(qa).ToArray(), Context.Dequantize(qb).ToArray(), m, n, k, alpha, biasValues);
        string what = $"{aOptions} x {bOptions} m={m},n={n},k={k}";

        T[] Run<T>() where T : unmanaged
        {
            using var c = Context.AllocateTensor<T>(m, n);
            Context.Gemm(qa, qb, c, options);
            if (expectedKernel is null) // up to 16 tokens (K a multiple of 32) the decode kernel takes FP8 x FP8 (DecodeGemmTests covers it)
                Assert.That(Context.LastGemmKernel, Does.StartWith(m <= 16 && k % 32 == 0 ? DecodePrefix : prefix), what);
            else
                Assert.That(Context.LastGemmKernel, Is.EqualTo(expectedKernel), what);
            return c.ToArray();
        }

        AssertRunWithin(Run<float>, expected, abs, n, k, alpha, what, repeat);
        AssertRunWithin(Run<BFloat16>, expected, abs, n, k, alpha, what, repeat);
        if (outputs > 2)
            AssertRunWithin(Run<Half>, expected, abs, n, k, alpha, what, repeat);
    }
}
