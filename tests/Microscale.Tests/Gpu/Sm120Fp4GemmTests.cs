namespace Microscale.Tests.Gpu;

/// <summary>
/// The GeForce Blackwell block-scaled FP4 family (native/kernels/sm120_fp4_gemm_nt.cu) against the float64 reference within the
/// NUMERICS.md §5 binary32 bound: MXFP4 × MXFP4, NVFP4 × NVFP4 and E4M3 (MXFP8, FP8 per-token, FP8 per-tensor) × MXFP4, both scale
/// layouts (linear scales are swizzled into the workspace first), FP32 / BF16 / FP16 outputs, alpha and bias, M / N tails, K with a
/// partial last stage and a partial last scale atom, more tiles than SMs, one token, repeated runs giving the same bytes. On an
/// sm_120 GPU the configs run the real mma.sync ... block_scale; on an sm_90 GPU (H100 / H200) the same tile code runs with the
/// instructions emulated in software (common/mma_sm120.cuh), so loads, swizzles, scale indexing and the epilogue are checked
/// without Blackwell hardware. Each config is forced through MS_FORCE_CONFIG (the heuristic never picks it on sm_90).
/// </summary>
[TestFixture]
[Category("Gpu")]
public sealed class Sm120Fp4GemmTests : NativeFixture
{
    private const string Prefix = "ms_sm120_fp4_gemm_nt_";
    private const string Mxf4 = Prefix + "mxf4_128x128x128_w2x4_s4", Nvf4 = Prefix + "nvf4_128x128x128_w2x4_s4", W4A8 = Prefix + "w4a8_128x128x128_w2x4_s3";

    // K a multiple of 32 (FP4 rows of whole 16-byte pieces): K = 1088 ends in a partial 128-value stage and, for NVFP4, a partial
    // pair of scale atoms; K = 96 is a single partial stage; odd N and M with partial tiles; 333 x 776 x 4128 is 21 tiles.
    private static readonly (int M, int N, int K)[] s_shapes = { (1, 64, 64), (65, 136, 256), (130, 333, 1088), (200, 264, 96), (333, 776, 4128) };

    [SetUp]
    public void RequireSm90OrSm120()
    {
        if (Sm != 90 && Sm != 120 && Sm != 121)
            Assert.Ignore("the sm120 FP4 family runs on sm_120 / sm_121 (and emulated on sm_90)");
    }

    public static IEnumerable<TestCaseData> Pairs()
    {
        var swizzled = ScaleLayout.Swizzled128x4;
        yield return new TestCaseData(O(QuantFormat.Mxfp4), O(QuantFormat.Mxfp4), Mxf4).SetName("{m}_mxfp4_mxfp4");
        yield return new TestCaseData(O(QuantFormat.Mxfp4, swizzled), O(QuantFormat.Mxfp4, swizzled), Mxf4).SetName("{m}_mxfp4swizzled_mxfp4swizzled");
        yield return new TestCaseData(new QuantizationOptions(QuantFormat.Mxfp4) { Rule = MxScaleRule.Floor }, O(QuantFormat.Mxfp4, swizzled), Mxf4)
            .SetName("{m}_mxfp4floor_mxfp4swizzled");
        yield return new TestCaseData(O(QuantFormat.Nvfp4), O(QuantFormat.Nvfp4), Nvf4).SetName("{m}_nvfp4_nvfp4");
        yield return new TestCaseData(O(QuantFormat.Nvfp4, swizzled), O(QuantFormat.Nvfp4, swizzled), Nvf4).SetName("{m}_nvfp4swizzled_nvfp4swizzled");
        foreach (var pair in W4A8Pairs(W4A8))
            yield return pair;
    }

    /// <summary>Every pair and shape, the largest twice (same bytes) and with FP16 output too.</summary>
    [TestCaseSource(nameof(Pairs))]
    public void WithinBoundForEveryPairAndOutput(QuantizationOptions a, QuantizationOptions b, string config)
    {
        NativeEnvironment.Set("MS_FORCE_CONFIG", config);
        foreach (var (m, n, k) in s_shapes)
            RunAndCheck(a, b, m, n, k, repeat: m == 333, config);
    }

    /// <summary>More tiles than SMs: 9 x 16 = 144 CTAs of 128 x 128 on a 132-SM H100 / H200.</summary>
    [Test]
    public void MoreTilesThanMultiprocessorsWithinBound()
    {
        NativeEnvironment.Set("MS_FORCE_CONFIG", Nvf4);
        RunAndCheck(O(QuantFormat.Nvfp4, ScaleLayout.Swizzled128x4), O(QuantFormat.Nvfp4), 1100, 1928, 512, repeat: false, Nvf4);
    }

    /// <summary>A config forced onto a pair it does not take is refused, naming MS_FORCE_CONFIG.</summary>
    [Test]
    public void ForcingAnotherPairsConfigIsRefused() => AssertForcedConfigRefused(Nvf4, O(QuantFormat.Mxfp4), O(QuantFormat.Mxfp4), 64);
}
