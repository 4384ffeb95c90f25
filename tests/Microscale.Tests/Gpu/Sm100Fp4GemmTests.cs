namespace Microscale.Tests.Gpu;

/// <summary>
/// The datacenter Blackwell tcgen05 FP4 family (native/kernels/sm100_fp4_gemm_nt.cu) against the float64 reference within the
/// NUMERICS.md §5 binary32 bound: MXFP4 × MXFP4 and NVFP4 × NVFP4 (kind::mxf4nvf4), and W4A8 = MXFP8 / FP8 per-token / FP8
/// per-tensor E4M3 activations × MXFP4 weights (kind::mxf8f6f4, FP4 unpacked in shared memory) in both scale layouts, FP32 / BF16 / FP16 outputs, alpha and bias,
/// M / N tails, K with a partial last stage (fewer scale atoms than a stage holds) or a single partial stage, several stages of the
/// ring per tile, more tiles than SMs (the persistent loop, both TMEM accumulators in turn), repeated runs giving the same bytes, in
/// the one-CTA (1sm) and CTA-pair (2sm, cta_group::2) variants. On an sm_100 GPU the configs run tcgen05; on an sm_90 GPU (H100 / H200) the same kernel runs with TMEM and the tcgen05 instructions
/// emulated in software (common/tcgen05_sm100.cuh), so TMA, descriptors, scale staging, the pipeline and the epilogue are checked
/// without Blackwell hardware. Each config is forced through MS_FORCE_CONFIG.
/// </summary>
[TestFixture]
[Category("Gpu")]
public sealed class Sm100Fp4GemmTests : NativeFixture
{
    private const string Mxf4 = "ms_sm100_fp4_gemm_nt_mxf4_128x128x256_1sm_s6", Nvf4 = "ms_sm100_fp4_gemm_nt_nvf4_128x128x256_1sm_s6";
    private const string W4A8 = "ms_sm100_fp4_gemm_nt_w4a8_128x128x128_1sm_s5";
    // The 2-SM variant: a CTA pair (cta_group::2) per 256 x 128 tile; the emulation runs it as a cluster of two CTAs on sm_90.
    private const string Mxf4Pair = "ms_sm100_fp4_gemm_nt_mxf4_256x128x256_2sm_s6", Nvf4Pair = "ms_sm100_fp4_gemm_nt_nvf4_256x128x256_2sm_s6";
    private const string W4A8Pair = "ms_sm100_fp4_gemm_nt_w4a8_256x128x128_2sm_s5";

    // K = 1088: 4 full stages of 256 values and a last one of 64 (one scale atom of the stage's 2 or 4); K = 96: one partial stage;
    // K = 4128: 17 stages, the 6-stage ring wrapping; odd M and N with partial tiles.
    private static readonly (int M, int N, int K)[] s_shapes = { (1, 64, 64), (65, 136, 256), (130, 333, 1088), (200, 264, 96), (333, 776, 4128) };
    // W4A8 stages hold 128 values and its unpacking FP4 loads want K a multiple of 128: one stage; two; 9 (the 5-stage ring
    // wrapping); 32.
    private static readonly (int M, int N, int K)[] s_w4a8Shapes = { (1, 64, 128), (65, 136, 256), (130, 333, 1152), (333, 776, 4096) };

    [SetUp]
    public void RequireSm90OrSm100()
    {
        if (Sm != 90 && Sm != 100 && Sm != 103)
            Assert.Ignore("the sm100 FP4 family runs on sm_100 / sm_103 (and emulated on sm_90)");
        if (!Interop.NativeDispatchTests.HasSm100Family)
            Assert.Ignore("libmicroscale was built without -DMICROSCALE_SM100_FAMILY=ON");
    }

    public static IEnumerable<TestCaseData> Pairs()
    {
        var swizzled = ScaleLayout.Swizzled128x4;
        yield return new TestCaseData(O(QuantFormat.Mxfp4), O(QuantFormat.Mxfp4), Mxf4).SetName("{m}_mxfp4_mxfp4");
        yield return new TestCaseData(O(QuantFormat.Mxfp4, swizzled), O(QuantFormat.Mxfp4, swizzled), Mxf4).SetName("{m}_mxfp4swizzled_mxfp4swizzled");
        yield return new TestCaseData(O(QuantFormat.Nvfp4), O(QuantFormat.Nvfp4, swizzled), Nvf4).SetName("{m}_nvfp4_nvfp4swizzled");
        yield return new TestCaseData(O(QuantFormat.Nvfp4, swizzled), O(QuantFormat.Nvfp4), Nvf4).SetName("{m}_nvfp4swizzled_nvfp4");
        foreach (var pair in W4A8Pairs(W4A8))
            yield return pair;
    }

    /// <summary>Every pair and shape, the largest twice (same bytes) and with FP16 output too.</summary>
    [TestCaseSource(nameof(Pairs))]
    public void WithinBoundForEveryPairAndOutput(QuantizationOptions a, QuantizationOptions b, string config)
    {
        NativeEnvironment.Set("MS_FORCE_CONFIG", config);
        foreach (var (m, n, k) in config == W4A8 ? s_w4a8Shapes : s_shapes)
            RunAndCheck(a, b, m, n, k, repeat: m == 333, config);
    }

    /// <summary>9 x 32 = 288 tiles on a 132-SM H100 / H200 (148 on a B200): each persistent CTA takes 2-3 tiles, alternating its two
    /// TMEM accumulators, with K = 768 (3 stages) each.</summary>
    [TestCase(QuantFormat.Mxfp4, QuantFormat.Mxfp4, Mxf4)]
    [TestCase(QuantFormat.Nvfp4, QuantFormat.Nvfp4, Nvf4)]
    [TestCase(QuantFormat.Mxfp8, QuantFormat.Mxfp4, W4A8)]
    public void SeveralTilesPerMultiprocessorWithinBound(QuantFormat aFormat, QuantFormat bFormat, string config)
    {
        NativeEnvironment.Set("MS_FORCE_CONFIG", config);
        RunAndCheck(O(aFormat, ScaleLayout.Swizzled128x4), O(bFormat, ScaleLayout.Swizzled128x4), 1100, 4000, 768, repeat: true, config);
    }

    public static IEnumerable<TestCaseData> PairConfigs()
    {
        var swizzled = ScaleLayout.Swizzled128x4;
        yield return new TestCaseData(O(QuantFormat.Mxfp4, swizzled), O(QuantFormat.Mxfp4), Mxf4Pair, 1088).SetName("{m}_mxfp4swizzled_mxfp4");
        yield return new TestCaseData(O(QuantFormat.Nvfp4), O(QuantFormat.Nvfp4, swizzled), Nvf4Pair, 1088).SetName("{m}_nvfp4_nvfp4swizzled");
        yield return new TestCaseData(O(QuantFormat.Mxfp8), O(QuantFormat.Mxfp4), W4A8Pair, 1152).SetName("{m}_mxfp8_mxfp4");
        yield return new TestCaseData(O(QuantFormat.Fp8PerRow), O(QuantFormat.Mxfp4, swizzled), W4A8Pair, 1152).SetName("{m}_fp8row_mxfp4swizzled");
    }

    /// <summary>CTA pairs: M = 1 (rank 1's rows all past M), M = 300 (a second pair tile whose rank 1 half is partial), N tails, K with
    /// several stages, and 1100 x 4000 (5 x 32 pair tiles on 66 pairs of an H100 / H200: each pair
    /// takes 2-3, alternating its two TMEM accumulators), the last twice for the same bytes.</summary>
    [TestCaseSource(nameof(PairConfigs))]
    public void PairVariantWithinBound(QuantizationOptions a, QuantizationOptions b, string config, int k)
    {
        NativeEnvironment.Set("MS_FORCE_CONFIG", config);
        RunAndCheck(a, b, 1, 64, k, repeat: false, config);
        RunAndCheck(a, b, 300, 200, k, repeat: false, config);
        RunAndCheck(a, b, 1100, 4000, 768, repeat: true, config);
    }

    /// <summary>W4A8 takes only K padded to a multiple of 128 (TMA's unpacking FP4 type): forced onto K = 96 it is refused, naming
    /// MS_FORCE_CONFIG.</summary>
    [Test]
    public void ForcingW4a8OntoKNotAMultipleOf128IsRefused() => AssertForcedConfigRefused(W4A8, O(QuantFormat.Mxfp8), O(QuantFormat.Mxfp4), 96);
}
