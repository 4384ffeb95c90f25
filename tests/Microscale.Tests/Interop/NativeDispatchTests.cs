using Microscale.Interop;

namespace Microscale.Tests.Interop;

/// <summary>
/// libmicroscale's dispatch table (ms_gemm_kernel_for through <see cref="MicroscaleRuntime.NativeGemmKernelFor"/>): which kernel a GEMM
/// runs on each GPU generation, whatever GPU is present (no CUDA context is needed). Compute capability 12.x: the sm120 block-scaled
/// FP4 family above 16 tokens, the decode kernel at or below; 10.0 / 10.3: the sm100 tcgen05 FP4 family likewise for W4A4 (CTA pairs from 1024 rows) and W4A8; 9.0: the
/// Hopper families; 8.x: decode and generic kernels. Ignored where the library was not built.
/// </summary>
[TestFixture]
[Category("Interop")]
public sealed class NativeDispatchTests
{
    private const int Sm120Multiprocessors = 170, HopperMultiprocessors = 132, B200Multiprocessors = 148;

    private static void RequireLibrary()
    {
        if (!NativeRuntime.IsAvailable)
            Assert.Ignore(NativeRuntime.Problem);
    }

    private static QuantizationOptions O(QuantFormat format) => new(format);

    /// <summary>Whether this libmicroscale was built with the sm_100a tcgen05 family (-DMICROSCALE_SM100_FAMILY=ON; not yet validated,
    /// so off by default).</summary>
    internal static bool HasSm100Family
    {
        get
        {
            RequireLibrary();
            return MicroscaleRuntime.NativeGemmKernelFor(100, B200Multiprocessors, 256, 256, 256, O(QuantFormat.Mxfp4), O(QuantFormat.Mxfp4))
                .StartsWith("ms_sm100_", StringComparison.Ordinal);
        }
    }

    private static string Kernel(int sm, int m, QuantizationOptions? a, QuantizationOptions b, int sms = Sm120Multiprocessors)
    {
        RequireLibrary();
        return MicroscaleRuntime.NativeGemmKernelFor(sm, sms, m, 4096, 4096, a, b);
    }

    [Test]
    public void PrepackedWeightsRunTheDecodeKernelOrTheHopperBf16Family()
    {
        var tiled = new QuantizationOptions(QuantFormat.Mxfp4) { Layout = ScaleLayout.Tiled16x128 };
        var tiledNv = new QuantizationOptions(QuantFormat.Nvfp4) { Layout = ScaleLayout.Tiled16x128 };
        Assert.That(Kernel(90, 1, null, tiled, HopperMultiprocessors), Does.StartWith("ms_sm80_decode_gemm_nt_128x8_mxfp4"));
        Assert.That(Kernel(90, 4096, null, tiledNv, HopperMultiprocessors), Does.StartWith("ms_sm90_bf16_gemm_nt_"));
        Assert.That(Kernel(80, 4096, null, tiled), Does.StartWith("ms_sm80_decode_gemm_nt_"));
        // Blackwell's block-scaled families read linear weights only: tiled ones take the decode kernel at every M.
        Assert.That(Kernel(120, 4096, O(QuantFormat.Mxfp4), tiled), Does.StartWith("ms_sm80_decode_gemm_nt_"));
        Assert.That(Kernel(100, 4096, O(QuantFormat.Mxfp4), tiled, B200Multiprocessors), Does.StartWith("ms_sm80_decode_gemm_nt_"));
    }

    [TestCase(120)]
    [TestCase(121)]
    public void GeForceBlackwellRunsTheBlockScaledFp4Family(int sm)
    {
        Assert.That(Kernel(sm, 256, O(QuantFormat.Mxfp4), O(QuantFormat.Mxfp4)), Is.EqualTo("ms_sm120_fp4_gemm_nt_mxf4_128x128x128_w2x4_s4"));
        Assert.That(Kernel(sm, 4096, O(QuantFormat.Nvfp4), O(QuantFormat.Nvfp4)), Is.EqualTo("ms_sm120_fp4_gemm_nt_nvf4_128x128x128_w2x4_s4"));
        Assert.That(Kernel(sm, 17, O(QuantFormat.Mxfp8), O(QuantFormat.Mxfp4)), Is.EqualTo("ms_sm120_fp4_gemm_nt_w4a8_128x128x128_w2x4_s3"));
        Assert.That(Kernel(sm, 512, O(QuantFormat.Fp8PerRow), O(QuantFormat.Mxfp4)), Does.StartWith("ms_sm120_fp4_gemm_nt_w4a8_"));
        Assert.That(Kernel(sm, 512, O(QuantFormat.Fp8PerTensor), O(QuantFormat.Mxfp4)), Does.StartWith("ms_sm120_fp4_gemm_nt_w4a8_"));
        // Decode sizes stream the weights once instead.
        Assert.That(Kernel(sm, 16, O(QuantFormat.Mxfp4), O(QuantFormat.Mxfp4)), Does.StartWith("ms_sm80_decode_gemm_nt_"));
        Assert.That(Kernel(sm, 1, O(QuantFormat.Fp8PerRow), O(QuantFormat.Mxfp4)), Does.StartWith("ms_sm80_decode_gemm_nt_"));
        // Pairs the family does not take: UE4M3 weights under FP8 activations (kind::mxf8f6f4 needs E8M0 on both sides), BF16
        // activations, MXFP8 x MXFP8.
        Assert.That(Kernel(sm, 512, O(QuantFormat.Fp8PerRow), O(QuantFormat.Nvfp4)), Does.Not.StartWith("ms_sm120_"));
        Assert.That(Kernel(sm, 512, null, O(QuantFormat.Mxfp4)), Does.Not.StartWith("ms_sm120_"));
        Assert.That(Kernel(sm, 512, O(QuantFormat.Mxfp8), O(QuantFormat.Mxfp8)), Is.EqualTo("ms_smxx_gemm_generic_nt_64x64x32_t16x16_m4x4"));
    }

    [Test]
    public void HopperRunsItsOwnFamilies()
    {
        Assert.That(Kernel(90, 4096, O(QuantFormat.Mxfp4), O(QuantFormat.Mxfp4), HopperMultiprocessors), Does.StartWith("ms_sm90_bf16_gemm_nt_"));
        Assert.That(Kernel(90, 4096, O(QuantFormat.Fp8PerTensor), O(QuantFormat.Fp8PerTensor), HopperMultiprocessors), Does.StartWith("ms_sm90_fp8_gemm_nt_"));
        Assert.That(Kernel(90, 8, O(QuantFormat.Mxfp4), O(QuantFormat.Mxfp4), HopperMultiprocessors), Does.StartWith("ms_sm80_decode_gemm_nt_"));
        // MXFP8 x MXFP8: the BF16 family (exact BF16 copies; FP8 wgmma promoted every 32 of K was measured slower).
        Assert.That(Kernel(90, 4096, O(QuantFormat.Mxfp8), O(QuantFormat.Mxfp8), HopperMultiprocessors), Does.StartWith("ms_sm90_bf16_gemm_nt_"));
        // W4A8 (FP8 x MXFP4, K = 4096): the decode kernel up to 64 tokens, the W4A8 family (4-bit weights folded in the kernel) up
        // to 1024, the BF16 family above (measured faster there, NOTES-sm90-fp8.md); 128 tokens take the 64-token tiles.
        Assert.That(Kernel(90, 64, O(QuantFormat.Fp8PerRow), O(QuantFormat.Mxfp4), HopperMultiprocessors), Does.StartWith("ms_sm80_decode_gemm_nt_"));
        Assert.That(Kernel(90, 128, O(QuantFormat.Fp8PerRow), O(QuantFormat.Mxfp4), HopperMultiprocessors), Is.EqualTo("ms_sm90_w4a8_gemm_nt_64x128x128_s12"));
        Assert.That(Kernel(90, 1024, O(QuantFormat.Fp8PerTensor), O(QuantFormat.Mxfp4), HopperMultiprocessors), Does.StartWith("ms_sm90_w4a8_gemm_nt_"));
        Assert.That(Kernel(90, 1025, O(QuantFormat.Fp8PerRow), O(QuantFormat.Mxfp4), HopperMultiprocessors), Does.StartWith("ms_sm90_bf16_gemm_nt_"));
        // Swizzled scales are not the W4A8 family's layout.
        Assert.That(Kernel(90, 512, O(QuantFormat.Fp8PerRow), new QuantizationOptions(QuantFormat.Mxfp4) { Layout = ScaleLayout.Swizzled128x4 }, HopperMultiprocessors),
                    Does.StartWith("ms_sm90_bf16_gemm_nt_"));
    }

    [TestCase(100)]
    [TestCase(103)]
    public void DatacenterBlackwellRunsTheTcgen05Fp4Family(int sm)
    {
        if (!HasSm100Family)
        {
            // Without the family (the default build) W4A4 stays on the decode kernel.
            Assert.That(Kernel(sm, 4096, O(QuantFormat.Mxfp4), O(QuantFormat.Mxfp4), B200Multiprocessors), Does.StartWith("ms_sm80_decode_gemm_nt_"));
            Assert.Ignore("libmicroscale was built without -DMICROSCALE_SM100_FAMILY=ON");
        }
        // CTA pairs (2-SM) from 1024 rows of A, one CTA per tile below, the decode kernel up to 16 tokens.
        Assert.That(Kernel(sm, 4096, O(QuantFormat.Mxfp4), O(QuantFormat.Mxfp4), B200Multiprocessors), Is.EqualTo("ms_sm100_fp4_gemm_nt_mxf4_256x128x256_2sm_s6"));
        Assert.That(Kernel(sm, 1023, O(QuantFormat.Mxfp4), O(QuantFormat.Mxfp4), B200Multiprocessors), Is.EqualTo("ms_sm100_fp4_gemm_nt_mxf4_128x128x256_1sm_s6"));
        Assert.That(Kernel(sm, 17, O(QuantFormat.Nvfp4), O(QuantFormat.Nvfp4), B200Multiprocessors), Is.EqualTo("ms_sm100_fp4_gemm_nt_nvf4_128x128x256_1sm_s6"));
        Assert.That(Kernel(sm, 1024, O(QuantFormat.Nvfp4), O(QuantFormat.Nvfp4), B200Multiprocessors), Is.EqualTo("ms_sm100_fp4_gemm_nt_nvf4_256x128x256_2sm_s6"));
        Assert.That(Kernel(sm, 16, O(QuantFormat.Nvfp4), O(QuantFormat.Nvfp4), B200Multiprocessors), Does.StartWith("ms_sm80_decode_gemm_nt_"));
        // W4A8 (E4M3 activations x MXFP4 weights) on kind::mxf8f6f4, with the same switch to CTA pairs.
        Assert.That(Kernel(sm, 4096, O(QuantFormat.Fp8PerRow), O(QuantFormat.Mxfp4), B200Multiprocessors), Is.EqualTo("ms_sm100_fp4_gemm_nt_w4a8_256x128x128_2sm_s5"));
        Assert.That(Kernel(sm, 1023, O(QuantFormat.Mxfp8), O(QuantFormat.Mxfp4), B200Multiprocessors), Is.EqualTo("ms_sm100_fp4_gemm_nt_w4a8_128x128x128_1sm_s5"));
        Assert.That(Kernel(sm, 64, O(QuantFormat.Mxfp8), O(QuantFormat.Mxfp4), B200Multiprocessors), Is.EqualTo("ms_sm100_fp4_gemm_nt_w4a8_128x128x128_1sm_s5"));
        Assert.That(Kernel(sm, 4096, O(QuantFormat.Mxfp8), O(QuantFormat.Mxfp8), B200Multiprocessors), Is.EqualTo("ms_smxx_gemm_generic_nt_64x64x32_t16x16_m4x4"));
    }

    [TestCase(89)]
    [TestCase(80)]
    public void OtherGenerationsRunDecodeAndGenericKernels(int sm)
    {
        Assert.That(Kernel(sm, 4096, O(QuantFormat.Mxfp4), O(QuantFormat.Mxfp4), B200Multiprocessors), Does.StartWith("ms_sm80_decode_gemm_nt_"));
        Assert.That(Kernel(sm, 4096, O(QuantFormat.Mxfp8), O(QuantFormat.Mxfp8), B200Multiprocessors), Is.EqualTo("ms_smxx_gemm_generic_nt_64x64x32_t16x16_m4x4"));
    }

    /// <summary>Without the library (CI) the question is refused with the loader's reason, not a crash or a guess.</summary>
    [Test]
    public void WithoutTheLibraryTheAnswerIsAClearRefusal()
    {
        if (NativeRuntime.IsAvailable)
            Assert.Ignore("libmicroscale is loaded here");
        var ex = Assert.Throws<NotSupportedException>(() => MicroscaleRuntime.NativeGemmKernelFor(120, 170, 256, 256, 256, O(QuantFormat.Mxfp4), O(QuantFormat.Mxfp4)))!;
        Assert.That(ex.Message, Does.Contain("libmicroscale"));
        Assert.Throws<ArgumentNullException>(() => MicroscaleRuntime.NativeGemmKernelFor(120, 170, 256, 256, 256, null, null!));
    }

    [Test]
    public void BadArgumentsAreNamed()
    {
        RequireLibrary();
        var ex = Assert.Throws<MicroscaleException>(() => MicroscaleRuntime.NativeGemmKernelFor(120, 0, 16, 64, 64, O(QuantFormat.Mxfp4), O(QuantFormat.Mxfp4)))!;
        Assert.That(ex.Argument, Is.EqualTo("multiprocessors"));
        ex = Assert.Throws<MicroscaleException>(() => MicroscaleRuntime.NativeGemmKernelFor(120, 170, 0, 64, 64, O(QuantFormat.Mxfp4), O(QuantFormat.Mxfp4)))!;
        Assert.That(ex.Argument, Is.EqualTo("desc"));
        ex = Assert.Throws<MicroscaleException>(() => MicroscaleRuntime.NativeGemmKernelFor(120, 170, 16, 64, 64, O(QuantFormat.Mxfp4), O(QuantFormat.Fp8PerRow)))!;
        Assert.That(ex.Status, Is.EqualTo(MsStatus.Unsupported));
    }
}
