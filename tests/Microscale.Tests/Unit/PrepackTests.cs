namespace Microscale.Tests.Unit;

/// <summary>
/// Prepacked (<see cref="ScaleLayout.Tiled16x128"/>) FP4 weights: the tiled bytes sit where native/include/microscale.h says,
/// every backend dequantizes them and multiplies with them to exactly the bytes of the linear weights (the same values, the
/// same arithmetic order), the relayout back is the original, and what the layout does not apply to is refused by name.
/// </summary>
[TestFixture]
public sealed class PrepackTests
{
    private static readonly QuantFormat[] s_formats = { QuantFormat.Mxfp4, QuantFormat.Nvfp4 };

    // (M, N, K): K a multiple of 32 (the decode kernel's condition), neither N a multiple of 16 nor K of 128 in most; the last
    // but one is long enough along K for the native decode kernel to split it over CTAs, the last takes the sm_90 BF16 family.
    private static readonly (int M, int N, int K)[] s_shapes = { (1, 40, 160), (7, 16, 128), (16, 33, 256), (64, 130, 96), (1, 256, 4096), (200, 64, 256) };

    public static IEnumerable<TestCaseData> Cases() =>
        from backend in TestBackends.All
        from format in s_formats
        select TestBackends.Case($"{{m}}_{format}_{backend}", backend, format, backend);

    private static float[] Random(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 4 - 2) * (random.Next(8) == 0 ? 8 : 1)).ToArray();
    }

    [TestCaseSource(nameof(Cases))]
    public void PrepackedWeightsGiveTheLinearWeightsBytes(QuantFormat format, Backend backend)
    {
        TestBackends.Require(backend);
        using var context = MicroscaleContext.Create(backend);
        foreach (var (m, n, k) in s_shapes)
        {
            string shape = $"{format} {m}x{n}x{k} on {backend}";
            using var source = context.CreateTensor<float>(Random(n * k, n + k), n, k);
            using var weights = context.Quantize(source, new QuantizationOptions(format));
            using var packed = context.Prepack(weights);
            Assert.That(packed.Layout, Is.EqualTo(ScaleLayout.Tiled16x128), shape);

            using (var linear = context.Dequantize(weights))
            using (var tiled = context.Dequantize(packed))
                Assert.That(tiled.ToArray(), Is.EqualTo(linear.ToArray()), shape + ": dequantized");

            using (var back = context.Relayout(packed, ScaleLayout.Linear))
            using (var backHost = back.ToHost())
            using (var original = weights.ToHost())
            {
                Assert.That(backHost.Data.ToArray(), Is.EqualTo(original.Data.ToArray()), shape + ": codes after the round trip");
                Assert.That(backHost.BlockScales.ToArray(), Is.EqualTo(original.BlockScales.ToArray()), shape + ": scales after the round trip");
                Assert.That(backHost.DecodeScales.ToArray(), Is.EqualTo(original.DecodeScales.ToArray()), shape + ": decode scales");
            }

            using var activations = context.CreateTensor(Random(m * k, m).Select(v => BFloat16.FromSingle(v)).ToArray(), m, k);
            foreach (var options in new[] { GemmOptions.Default, GemmOptions.Default with { StaticWeights = true } })
            {
                using var expected = context.Gemm(activations, weights, options);
                string linearKernel = context.LastGemmKernel;
                using var actual = context.Gemm(activations, packed, options);
                Assert.That(actual.ToArray(), Is.EqualTo(expected.ToArray()),
                            $"{shape}{(options.StaticWeights ? " static" : "")}: {context.LastGemmKernel} against {linearKernel}");
            }
        }
    }

    // The documented byte positions (microscale.h, MS_LAYOUT_TILED_16X128), written out here independently of the library's.
    private static long CodeByte(int row, int column, int chunks) => ((long)(row / 16) * chunks + column / 128) * 1024 + row % 16 * 64 + column % 128 / 2;

    private static long ScaleByte(int row, int block, bool mx, int chunks)
    {
        int g = row % 8, h = row % 16 / 8;
        long tile = (long)(row / 16) * chunks + block / (mx ? 4 : 8);
        return mx ? tile * 64 + 2 * (4 * g + block % 4) + h : tile * 128 + 4 * (4 * g + block % 8 / 2) + 2 * h + block % 2;
    }

    [TestCase(QuantFormat.Mxfp4)]
    [TestCase(QuantFormat.Nvfp4)]
    public void TiledBytesSitWhereTheHeaderSays(QuantFormat format)
    {
        const int rows = 37, columns = 288;
        bool mx = format == QuantFormat.Mxfp4;
        int chunks = (columns + 127) / 128, block = mx ? 32 : 16, scaleColumns = columns / block;
        using var context = MicroscaleContext.Create(Backend.Reference);
        using var source = context.CreateTensor<float>(Random(rows * columns, 3), rows, columns);
        using var deviceWeights = context.Quantize(source, new QuantizationOptions(format));
        using var devicePacked = context.Prepack(deviceWeights);
        using var weights = deviceWeights.ToHost();
        using var packed = devicePacked.ToHost();
        Assert.That(packed.Data.Length, Is.EqualTo(3 * chunks * 1024), "codes: 3 row tiles of 16, K padded to 128");
        Assert.That(packed.BlockScales.Length, Is.EqualTo(3 * chunks * (mx ? 64 : 128)), "scales");
        var data = packed.Data.ToArray();
        var scales = packed.BlockScales.ToArray();
        var written = new bool[data.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c += 2)
            {
                long at = CodeByte(r, c, chunks);
                Assert.That(data[at], Is.EqualTo(weights.Data[r * columns / 2 + c / 2]), $"code byte of ({r}, {c})");
                written[at] = true;
            }
        for (int i = 0; i < data.Length; i++)
            if (!written[i])
                Assert.That(data[i], Is.Zero, $"padding code byte {i}");
        for (int r = 0; r < rows; r++)
            for (int b = 0; b < scaleColumns; b++)
                Assert.That(scales[ScaleByte(r, b, mx, chunks)], Is.EqualTo(weights.BlockScales[r * scaleColumns + b]), $"scale of ({r}, block {b})");
    }

    [Test]
    public void WhatTheTiledLayoutDoesNotApplyToIsRefused()
    {
        using var context = MicroscaleContext.Create(Backend.Reference);
        using var source = context.CreateTensor<float>(Random(16 * 64, 5), 16, 64);
        using var mxfp8 = context.Quantize(source, new QuantizationOptions(QuantFormat.Mxfp8));
        Assert.That(() => context.Prepack(mxfp8), Throws.ArgumentException.With.Property("ParamName").EqualTo("layout"));

        var tiled = new QuantizationOptions(QuantFormat.Mxfp4) { Layout = ScaleLayout.Tiled16x128 };
        Assert.That(() => context.Quantize(source, tiled), Throws.ArgumentException.With.Property("ParamName").EqualTo("options"));
        Assert.That(() => context.AllocateQuantized(16, 64, tiled), Throws.ArgumentException.With.Property("ParamName").EqualTo("options"));

        using var weights = context.Quantize(source, new QuantizationOptions(QuantFormat.Mxfp4));
        using var packed = context.Prepack(weights);
        Assert.That(() => context.Quantize(source, packed), Throws.ArgumentException.With.Property("ParamName").EqualTo("destination"));
        Assert.That(() => context.Gemm(packed, weights), Throws.ArgumentException.With.Property("ParamName").EqualTo("a"));
        Assert.That(() => context.Relayout(weights, (ScaleLayout)7), Throws.InstanceOf<ArgumentOutOfRangeException>());
        using var packedHost = packed.ToHost();
        var writer = new IO.SafeTensorsWriter();
        Assert.That(() => IO.QuantizedSafeTensors.AddTo(writer, packedHost), Throws.ArgumentException.With.Property("ParamName").EqualTo("tensor"));
    }
}
