namespace Microscale.Tests.Gpu;

/// <summary>
/// The Hopper BF16 family (native/kernels/sm90_bf16_gemm_nt.cu: operands dequantized exactly into BF16, then BF16 wgmma) against the
/// float64 reference within the NUMERICS.md §5 bound: every pair it takes (MXINT8 and MXFP8 pairs, W4A4 MXFP4 / NVFP4 in both scale
/// layouts and as the training recipes quantize them, W4A8, W4A16 and W8A16 with BF16 activations), FP32 / BF16 / FP16 outputs, alpha and bias, M / N / K tails (odd N: direct
/// stores; K not a multiple of the 32-value block), more tiles than SMs, few tokens for the pairs no decode kernel takes, every tile
/// config forced through MS_FORCE_CONFIG, and repeated runs giving the same bytes. Exactness (every code and scale read back bit for
/// bit) is in DecodeGemmTests' one-hot tests at 128 tokens. Runs only on an sm_90 device.
/// </summary>
[TestFixture]
[Category("Gpu")]
public sealed class Sm90Bf16GemmTests : NativeFixture
{
    private static readonly string[] s_configs = { "ms_sm90_bf16_gemm_nt_128x128x64_c1x1_s6_ws", "ms_sm90_bf16_gemm_nt_128x256x64_c1x1_s3_ws" };

    // Above 64 tokens (below, the decode kernel takes the FP4 pairs): odd N with a partial tile, K = 1000 (not a multiple of 32),
    // K = 24 (one partial block), several tiles per CTA at K = 4112.
    private static readonly (int M, int N, int K)[] s_shapes = { (65, 136, 256), (130, 333, 1088), (200, 264, 1000), (96, 130, 24), (333, 776, 4112) };

    [SetUp]
    public void RequireSm90()
    {
        if (Sm != 90)
            Assert.Ignore("the sm90 BF16 family needs an sm_90 GPU");
    }

    public static IEnumerable<TestCaseData> Pairs()
    {
        var swizzled = ScaleLayout.Swizzled128x4;
        yield return new TestCaseData(O(QuantFormat.Mxint8), O(QuantFormat.Mxint8)).SetName("{m}_mxint8_mxint8");
        yield return new TestCaseData(new QuantizationOptions(QuantFormat.Mxint8) { Rule = MxScaleRule.Floor }, O(QuantFormat.Mxint8, swizzled)).SetName("{m}_mxint8floor_mxint8swizzled");
        yield return new TestCaseData(O(QuantFormat.Mxfp8), O(QuantFormat.Mxfp8)).SetName("{m}_mxfp8_mxfp8");
        yield return new TestCaseData(O(QuantFormat.Mxfp8, element: Fp8Element.E5M2), O(QuantFormat.Mxfp8, swizzled)).SetName("{m}_mxfp8e5m2_mxfp8swizzled");
        yield return new TestCaseData(O(QuantFormat.Mxfp4), O(QuantFormat.Mxfp4)).SetName("{m}_mxfp4_mxfp4");
        yield return new TestCaseData(O(QuantFormat.Nvfp4, swizzled), O(QuantFormat.Nvfp4, swizzled)).SetName("{m}_nvfp4swizzled_nvfp4swizzled");
        yield return new TestCaseData(O(QuantFormat.Fp8PerRow), O(QuantFormat.Mxfp4, swizzled)).SetName("{m}_fp8row_mxfp4swizzled");
        yield return new TestCaseData(O(QuantFormat.Fp8PerTensor), O(QuantFormat.Nvfp4)).SetName("{m}_fp8tensor_nvfp4");
        yield return new TestCaseData(O(QuantFormat.Mxfp8), O(QuantFormat.Nvfp4)).SetName("{m}_mxfp8_nvfp4");
        // The training recipes' operands: stochastic rounding and NVFP4 2D weight blocks (quantized by the ILGPU kernels) change
        // the bytes, not the layout the GEMM reads.
        var sr = new QuantizationOptions(QuantFormat.Mxfp4) { Rounding = RoundingMode.Stochastic, Seed = 7 };
        yield return new TestCaseData(sr, sr with { Seed = 8 }).SetName("{m}_mxfp4sr_mxfp4sr");
        yield return new TestCaseData(new QuantizationOptions(QuantFormat.Nvfp4) { Rounding = RoundingMode.Stochastic, Seed = 9 },
                                      new QuantizationOptions(QuantFormat.Nvfp4) { TwoDimensionalBlocks = true }).SetName("{m}_nvfp4sr_nvfp4twod");
        yield return new TestCaseData(null, O(QuantFormat.Mxfp4)).SetName("{m}_bf16_mxfp4");
        yield return new TestCaseData(null, O(QuantFormat.Nvfp4, swizzled)).SetName("{m}_bf16_nvfp4swizzled");
        yield return new TestCaseData(null, O(QuantFormat.Fp8PerRow, element: Fp8Element.E5M2)).SetName("{m}_bf16_fp8rowE5M2");
    }

    /// <summary>The heuristic's config for every pair and shape; FP16 output and a repeated run on the largest shape.</summary>
    [TestCaseSource(nameof(Pairs))]
    public void WithinBoundForEveryPairAndOutput(QuantizationOptions? a, QuantizationOptions b)
    {
        foreach (var (m, n, k) in s_shapes)
            RunAndCheck(a, b, m, n, k, repeat: m == 333, Sm90Bf16Prefix);
    }

    /// <summary>MXINT8 and MXFP8 pairs have no decode kernel: the BF16 family takes them at any M, 1 included.</summary>
    [TestCase(QuantFormat.Mxint8)]
    [TestCase(QuantFormat.Mxfp8)]
    public void BlockScaledPairsAtFewTokens(QuantFormat format)
    {
        foreach (int m in new[] { 1, 7, 64 })
            RunAndCheck(O(format), O(format), m, 264, 1088, repeat: false, Sm90Bf16Prefix);
    }

    /// <summary>More tiles than SMs (9 x 8 = 72 tiles of 128 x 256, 144 of 128 x 128 on a 132-SM H100 / H200), once as the heuristic
    /// runs it and once with the stream-K tail forced on (MS_STREAM_K=1: 128 x 128, every tile split along K over the 132 CTAs);
    /// a second run must give the same bytes.</summary>
    [TestCase(false)]
    [TestCase(true)]
    public void MoreTilesThanMultiprocessorsWithinBound(bool streamK)
    {
        if (streamK)
            NativeEnvironment.Set("MS_STREAM_K", "1");
        RunAndCheck(O(QuantFormat.Mxint8), O(QuantFormat.Mxint8), 1100, 1928, 1040, repeat: true, Sm90Bf16Prefix);
    }

    /// <summary>Every tile config (the heuristic may never pick some for these shapes).</summary>
    [Test]
    public void EveryTileConfigWithinBound()
    {
        foreach (var config in s_configs)
        {
            NativeEnvironment.Set("MS_FORCE_CONFIG", config);
            foreach (var (m, n, k) in s_shapes)
            {
                RunAndCheck(O(QuantFormat.Mxint8), O(QuantFormat.Mxint8), m, n, k, repeat: false, config);
                RunAndCheck(null, O(QuantFormat.Nvfp4), m, n, k, repeat: false, config);
            }
        }
    }
}
