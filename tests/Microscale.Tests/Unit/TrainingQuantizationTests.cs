using Microscale.IO;

namespace Microscale.Tests.Unit;

/// <summary>2D 16x16 NVFP4 blocks and quantization along the other dimension (NUMERICS.md §9) against ext.safetensors.</summary>
[TestFixture]
public sealed class TrainingQuantizationTests
{
    [TestCaseSource(typeof(TestBackends), nameof(TestBackends.Each))]
    public void TwoDimensionalNvfp4BlocksMatchGolden(Backend backend)
    {
        TestBackends.Require(backend);
        using var f = SafeTensorsFile.Open(Golden.PathOf("ext.safetensors"));
        float[] w = f.Read<float>("w2d_x");
        using var q = Quantizer.Quantize(w, 40, 64, new QuantizationOptions(QuantFormat.Nvfp4) { TwoDimensionalBlocks = true }, backend);
        Exact.AssertFloats(f.Read<float>("nvfp4_2d_g"), q.DecodeScales, "g");
        Exact.AssertBytes(f.Read<byte>("nvfp4_2d_s"), q.BlockScales, "2d scales", 4);
        Exact.AssertBytes(f.Read<byte>("nvfp4_2d_q"), q.Data, "2d codes", 32);
        // Every row of a 16-row tile carries the tile's scale.
        for (int r = 0; r < 40; r++)
            Assert.That(q.BlockScales.Slice(r * 4, 4).ToArray(), Is.EqualTo(q.BlockScales.Slice((r & ~15) * 4, 4).ToArray()), $"row {r}");
    }

    [TestCaseSource(typeof(TestBackends), nameof(TestBackends.Each))]
    public void TransposedQuantizationMatchesGoldenAndQuantizeOfTheTranspose(Backend backend)
    {
        TestBackends.Require(backend);
        using var f = SafeTensorsFile.Open(Golden.PathOf("ext.safetensors"));
        float[] w = f.Read<float>("w2d_x");
        using var q = Quantizer.QuantizeTransposed(w, 40, 64, new QuantizationOptions(QuantFormat.Nvfp4), backend);
        Assert.That((q.Rows, q.Columns, q.PaddedColumns), Is.EqualTo((64, 40, 48)));
        Exact.AssertFloats(f.Read<float>("nvfp4_t_g"), q.DecodeScales, "g");
        Exact.AssertBytes(f.Read<byte>("nvfp4_t_s"), q.BlockScales, "transposed scales", 3);
        Exact.AssertBytes(f.Read<byte>("nvfp4_t_q"), q.Data, "transposed codes", 24);

        // Any format, BF16 input: QuantizeTransposed(x) == Quantize(xᵀ) byte for byte.
        var x = SeededGaussian.Create(33 * 70, 9).Select(v => (BFloat16)v).ToArray();
        var xt = new BFloat16[x.Length];
        for (int r = 0; r < 33; r++)
            for (int c = 0; c < 70; c++)
                xt[c * 33 + r] = x[r * 70 + c];
        foreach (var o in new[] { new QuantizationOptions(QuantFormat.Mxfp4) { Layout = ScaleLayout.Swizzled128x4 }, new QuantizationOptions(QuantFormat.Fp8PerRow) })
        {
            using var context = MicroscaleContext.Create(backend);
            using var source = context.CreateTensor<BFloat16>(x, 33, 70);
            using var transposed = context.CreateTensor<BFloat16>(xt, 70, 33);
            using var a = context.QuantizeTransposed(source, o).ToHost();
            using var b = context.Quantize(transposed, o).ToHost();
            Exact.AssertBytes(b.Data, a.Data, $"{o} data");
            Exact.AssertBytes(b.BlockScales, a.BlockScales, $"{o} scales");
            Exact.AssertFloats(b.DecodeScales, a.DecodeScales, $"{o} decode scales");
        }
    }

    [TestCaseSource(typeof(TestBackends), nameof(TestBackends.Each))]
    public void BothOrientationsEqualQuantizeAndQuantizeTransposed(Backend backend)
    {
        TestBackends.Require(backend);
        using var context = MicroscaleContext.Create(backend);
        using var source = context.CreateTensor<float>(SeededGaussian.Create(48 * 96, 5), 48, 96);
        var rowOptions = new QuantizationOptions(QuantFormat.Nvfp4) { Rounding = RoundingMode.Stochastic, Seed = 3 };
        var columnOptions = new QuantizationOptions(QuantFormat.Nvfp4);
        var h = HadamardTransform.CreateRandom(16, 2);
        using var both = context.QuantizeBothOrientations(source, rowOptions, null, columnOptions, h);
        using var rows = context.Quantize(source, rowOptions);
        using var columns = context.QuantizeTransposed(source, columnOptions, h);
        foreach (var (expected, actual, what) in new[] { (rows, both.Rows, "rows"), (columns, both.Columns, "columns") })
        {
            using var e = expected.ToHost();
            using var a = actual.ToHost();
            Assert.That((a.Rows, a.Columns), Is.EqualTo((e.Rows, e.Columns)), what);
            Exact.AssertFloats(e.DecodeScales, a.DecodeScales, $"{what} decode scale");
            Exact.AssertBytes(e.BlockScales, a.BlockScales, $"{what} scales");
            Exact.AssertBytes(e.Data, a.Data, $"{what} codes");
        }
        // Caller-allocated destinations must have the source's shape and its transpose's; rotations must divide their K.
        using var wrong = context.AllocateQuantized(48, 96, columnOptions);
        Assert.That(Assert.Throws<ArgumentException>(() => context.QuantizeBothOrientations(source, null, both.Rows, null, wrong))!.ParamName, Is.EqualTo("columns"));
        Assert.That(Assert.Throws<ArgumentException>(() => context.QuantizeBothOrientations(source, null, both.Columns, null, both.Columns))!.ParamName,
                    Is.EqualTo("rows"));
        var h64 = HadamardTransform.Create(64);
        Assert.That(Assert.Throws<ArgumentException>(() => context.QuantizeBothOrientations(source, null, both.Rows, h64, both.Columns))!.ParamName,
                    Is.EqualTo("columnRotation"), "48 rows are not a multiple of 64");
        Assert.That(Assert.Throws<ArgumentException>(() => context.QuantizeBothOrientations(source, rowOptions, h64, columnOptions, null))!.ParamName,
                    Is.EqualTo("rowRotation"), "96 columns are not a multiple of 64");
    }

    [Test]
    public void TwoDimensionalBlocksAreNvfp4OnlyAndNotRotated()
    {
        var ex = Assert.Throws<ArgumentException>(() => Quantizer.Quantize(new float[64], 2, 32, new QuantizationOptions(QuantFormat.Mxfp4) { TwoDimensionalBlocks = true }, Backend.Reference))!;
        Assert.That(ex.ParamName, Is.EqualTo("options"));
        using var context = MicroscaleContext.Create(Backend.Cpu);
        using var x = context.AllocateTensor<float>(16, 32);
        var o = new QuantizationOptions(QuantFormat.Nvfp4) { TwoDimensionalBlocks = true };
        Assert.That(Assert.Throws<ArgumentException>(() => context.QuantizeRotated(x, HadamardTransform.Create(16), o))!.ParamName, Is.EqualTo("rotation"));
        Assert.That(Assert.Throws<ArgumentException>(() => Quantizer.QuantizeTransposed(new float[5], 2, 2, o, Backend.Reference))!.ParamName, Is.EqualTo("source"));
    }
}
