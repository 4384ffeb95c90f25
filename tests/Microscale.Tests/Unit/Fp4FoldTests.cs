using Microscale.Formats;
using Microscale.Offline;

namespace Microscale.Tests.Unit;

/// <summary><see cref="Fp4Fold"/>: MXFP4 folded into FP8 per-row E4M3 keeps every value bit for bit, in both scale layouts;
/// rows spanning more than 14 binades, or holding a NaN scale, are reported and never folded; the folded weight's GEMM
/// equals the MXFP4 weight's.</summary>
[TestFixture]
public sealed class Fp4FoldTests
{
    private static uint[] Bits(float[] values) => values.Select(FloatBits.Bits).ToArray();

    private static bool IsPowerOfTwo(float g)
    {
        uint bits = FloatBits.Bits(g), exponent = (bits >> 23) & 0xFF, fraction = bits & 0x7F_FFFF;
        return bits >> 31 == 0 && (exponent != 0 ? exponent != 0xFF && fraction == 0 : fraction != 0 && (fraction & (fraction - 1)) == 0);
    }

    [TestCase(ScaleLayout.Linear)]
    [TestCase(ScaleLayout.Swizzled128x4)]
    public void FoldedValuesEqualTheMxfp4Values(ScaleLayout layout)
    {
        const int rows = 130, k = 272; // K not a multiple of 32: the last block half padding
        using var context = MicroscaleContext.Create(Backend.Reference);
        using var weights = context.CreateTensor<float>(HadamardTests.StudentT3(rows * k, seed: 11), rows, k);
        using var mx = context.Quantize(weights, new QuantizationOptions(QuantFormat.Mxfp4) { Layout = layout });
        Assert.That(Fp4Fold.FirstUnfoldableRow(mx), Is.EqualTo(-1));
        using var folded = Fp4Fold.ToFp8PerRow(mx);
        Assert.That((folded.Format, folded.Options.Element, folded.Rows, folded.Columns), Is.EqualTo((QuantFormat.Fp8PerRow, Fp8Element.E4M3, rows, k)));
        Assert.That(Bits(folded.Dequantize(Backend.Reference)), Is.EqualTo(Bits(mx.Dequantize())));
        // Every decode scale is a positive power of two (the fold moves only exponents).
        foreach (float g in folded.DecodeScales)
            Assert.That(IsPowerOfTwo(g), $"{g}");
    }

    // Two blocks of 32 per row: every code 1.0 (0x22 = two codes 2), so every block holds nonzero values.
    private static QuantizedTensor Mxfp4(params (byte Left, byte Right, bool LeftZero)[] rows)
    {
        var data = new byte[rows.Length * 32];
        var scales = new byte[rows.Length * 2];
        for (int r = 0; r < rows.Length; r++)
        {
            scales[2 * r] = rows[r].Left;
            scales[2 * r + 1] = rows[r].Right;
            for (int i = 0; i < 32; i++)
                data[r * 32 + i] = (byte)(i < 16 && rows[r].LeftZero ? 0x88 : 0x2A); // 0x88: negative zeros; 0x2A: 1.0 and -1.0
        }
        return QuantizedTensor.FromParts(new QuantizationOptions(QuantFormat.Mxfp4), rows.Length, 64, data, scales, default);
    }

    [Test]
    public void RowsSpanningMoreThan14BinadesAreReportedNotFolded()
    {
        using var within = Mxfp4((120, 134, false), (127, 127, false));
        Assert.That(Fp4Fold.FirstUnfoldableRow(within), Is.EqualTo(-1), "a span of exactly 14 folds");
        using var wide = Mxfp4((127, 127, false), (119, 134, false), (120, 200, false));
        Assert.That(Fp4Fold.FirstUnfoldableRow(wide), Is.EqualTo(1));
        var error = Assert.Throws<ArgumentException>(() => Fp4Fold.ToFp8PerRow(wide).Dispose())!;
        Assert.That(error.ParamName, Is.EqualTo("mxfp4"));
        Assert.That(error.Message, Does.Contain("Row 1"));
        using var nan = Mxfp4((127, 127, false), (127, 127, false), (127, 0xFF, false));
        Assert.That(Fp4Fold.FirstUnfoldableRow(nan), Is.EqualTo(2), "a NaN scale never folds");
    }

    [Test]
    public void BlocksOfZerosFoldWhateverTheirScale()
    {
        using var mx = Mxfp4((0, 130, true), (250, 3, false));
        Assert.That(Fp4Fold.FirstUnfoldableRow(mx), Is.EqualTo(1), "row 1 spans 247 binades");
        using var zeros = Mxfp4((0, 130, true), (3, 250, true));
        using var folded = Fp4Fold.ToFp8PerRow(zeros);
        Assert.That(Bits(folded.Dequantize(Backend.Reference)), Is.EqualTo(Bits(zeros.Dequantize(Backend.Reference))));
    }

    [Test]
    public void OnlyMxfp4Folds()
    {
        Assert.Throws<ArgumentNullException>(() => Fp4Fold.FirstUnfoldableRow(null!));
        using var context = MicroscaleContext.Create(Backend.Reference);
        using var x = context.CreateTensor<float>(SeededGaussian.Create(64, seed: 3), 1, 64);
        using var nv = context.Quantize(x, new QuantizationOptions(QuantFormat.Nvfp4));
        var error = Assert.Throws<ArgumentException>(() => Fp4Fold.ToFp8PerRow(nv).Dispose())!;
        Assert.That(error.ParamName, Is.EqualTo("mxfp4"));
    }

    /// <summary>W4A8: FP8 per-token activations times the folded weight give exactly the MXFP4 weight's products on the
    /// reference backend (the same values), and stay within the bound on the ILGPU CPU backend.</summary>
    [TestCase(Backend.Reference)]
    [TestCase(Backend.Cpu)]
    public void FoldedGemmEqualsTheMxfp4Gemm(Backend backend)
    {
        const int m = 9, n = 70, k = 320;
        using var context = MicroscaleContext.Create(backend);
        using var at = context.CreateTensor<float>(SeededGaussian.Create(m * k, seed: 5), m, k);
        using var wt = context.CreateTensor<float>(HadamardTests.StudentT3(n * k, seed: 6), n, k);
        using var a = context.Quantize(at, new QuantizationOptions(QuantFormat.Fp8PerRow));
        using var mx = context.Quantize(wt, new QuantizationOptions(QuantFormat.Mxfp4));
        using var hostFolded = Fp4Fold.ToFp8PerRow(mx);
        using var folded = context.Upload(hostFolded);
        using var viaMx = context.Gemm(a, mx);
        using var viaFold = context.Gemm(a, folded);
        if (backend == Backend.Reference)
        {
            Assert.That(viaFold.ToArray(), Is.EqualTo(viaMx.ToArray()));
            return;
        }
        var (expected, abs) = GemmBounds.Reference(context.Dequantize(a).ToArray(), context.Dequantize(mx).ToArray(), m, n, k);
        GemmBounds.AssertWithin<float>(expected, abs, viaFold.ToArray(), n, k, 1f, "folded W4A8", context.LastGemmKernel);
    }
}
