namespace Microscale.Tests.Unit;

/// <summary>
/// <see cref="ExternalCuda"/>'s C# checks, which run before anything is launched: null, short and misaligned ranges, K
/// mismatches, formats libmicroscale lacks. The addresses are fake (nothing is dereferenced): the tests run only where
/// libmicroscale is absent, so that a check that wrongly passed could not reach a kernel.
/// </summary>
[TestFixture]
public sealed class ExternalCudaTests
{
    private static readonly nint Base = unchecked((nint)0x7000_0000_0000L); // 256-byte aligned, never dereferenced

    [SetUp]
    public void RequireNoNativeLibrary()
    {
        if (ExternalCuda.IsAvailable)
            Assert.Ignore("libmicroscale is loaded: these tests pass fake device addresses (see Gpu/ExternalCudaGpuTests)");
    }

    private static DeviceMemory Range(long bytes, nint offset = 0) => new(Base + offset, bytes);

    private static ExternalQuantizedTensor Tensor(QuantizationOptions options, int rows, int columns) =>
        new(options, rows, columns, Range(ExternalQuantizedTensor.DataBytes(options, rows, columns)),
            Range(ExternalQuantizedTensor.BlockScaleBytes(options, rows, columns)), Range(ExternalQuantizedTensor.DecodeScaleBytes(options, rows)));

    [Test]
    public void PartSizesMatchTheQuantizedTensorLayout()
    {
        var nv = new QuantizationOptions(QuantFormat.Nvfp4);
        Assert.That(ExternalQuantizedTensor.DataBytes(nv, 3, 40), Is.EqualTo(3 * 48 / 2)); // K padded to the block of 16
        Assert.That(ExternalQuantizedTensor.BlockScaleBytes(nv, 3, 40), Is.EqualTo(3 * 3));
        Assert.That(ExternalQuantizedTensor.DecodeScaleBytes(nv, 3), Is.EqualTo(4));
        var swizzled = new QuantizationOptions(QuantFormat.Mxfp4) { Layout = ScaleLayout.Swizzled128x4 };
        Assert.That(ExternalQuantizedTensor.BlockScaleBytes(swizzled, 3, 64), Is.EqualTo(128 * 4));
        Assert.That(ExternalQuantizedTensor.DecodeScaleBytes(new QuantizationOptions(QuantFormat.Fp8PerRow), 5), Is.EqualTo(20));
        using var host = Quantizer.Quantize(new float[3 * 40], 3, 40, nv);
        Assert.That(ExternalQuantizedTensor.DataBytes(nv, 3, 40), Is.EqualTo(host.Data.Length));
        Assert.That(ExternalQuantizedTensor.BlockScaleBytes(nv, 3, 40), Is.EqualTo(host.BlockScales.Length));
    }

    [Test]
    public void TensorRangesAreCheckedByName()
    {
        var row = new QuantizationOptions(QuantFormat.Fp8PerRow);
        long data = ExternalQuantizedTensor.DataBytes(row, 4, 64);
        Assert.DoesNotThrow(() => _ = new ExternalQuantizedTensor(row, 4, 64, Range(data), default, Range(16))); // no block scales: null is fine
        Assert.That(Assert.Throws<ArgumentException>(() => _ = new ExternalQuantizedTensor(row, 4, 64, default, default, Range(16)))!.ParamName, Is.EqualTo("data"));
        Assert.That(Assert.Throws<ArgumentException>(() => _ = new ExternalQuantizedTensor(row, 4, 64, Range(data - 1), default, Range(16)))!.ParamName,
                    Is.EqualTo("data"));
        var misaligned = Assert.Throws<ArgumentException>(() => _ = new ExternalQuantizedTensor(row, 4, 64, Range(data, offset: 8), default, Range(16)))!;
        Assert.That(misaligned.ParamName, Is.EqualTo("data"));
        Assert.That(misaligned.Message, Does.Contain("16-byte aligned"));
        Assert.That(Assert.Throws<ArgumentException>(() => _ = new ExternalQuantizedTensor(row, 4, 64, Range(data), default, Range(12)))!.ParamName,
                    Is.EqualTo("decodeScales"));
        var mx = new QuantizationOptions(QuantFormat.Mxfp4);
        Assert.That(Assert.Throws<ArgumentException>(() => _ = new ExternalQuantizedTensor(mx, 4, 64, Range(128), default, default))!.ParamName,
                    Is.EqualTo("blockScales"));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new ExternalQuantizedTensor(mx, 0, 64, Range(128), Range(8), default));
    }

    [Test]
    public void GemmChecksShapesAndRangesBeforeLaunching()
    {
        var fp8 = new QuantizationOptions(QuantFormat.Fp8PerRow);
        var a = Tensor(fp8, 8, 64);
        var b = Tensor(fp8, 16, 64);
        var bf16 = DenseElement.BFloat16;
        Assert.That(Assert.Throws<ArgumentException>(() => ExternalCuda.Gemm(a, Tensor(fp8, 16, 32), Range(1 << 20), bf16, 0))!.ParamName, Is.EqualTo("b"));
        Assert.That(Assert.Throws<ArgumentException>(() => ExternalCuda.Gemm(a, b, Range(8 * 16 * 2 - 1), bf16, 0))!.ParamName, Is.EqualTo("output"));
        Assert.That(Assert.Throws<ArgumentException>(() => ExternalCuda.Gemm(a, b, Range(8 * 16 * 4, offset: 2), DenseElement.Float32, 0))!.ParamName,
                    Is.EqualTo("output"));
        Assert.That(Assert.Throws<ArgumentException>(() => ExternalCuda.Gemm(a, b, Range(1 << 20), bf16, 0, bias: Range(60)))!.ParamName, Is.EqualTo("bias"));
        Assert.That(Assert.Throws<ArgumentException>(() => ExternalCuda.Gemm(Range(1 << 20), DenseElement.Float32, 8, b, Range(1 << 20), bf16, 0))!.ParamName,
                    Is.EqualTo("aType"));
        Assert.That(Assert.Throws<ArgumentException>(() => ExternalCuda.Gemm(Range(8 * 64 * 2 - 2), bf16, 8, b, Range(1 << 20), bf16, 0))!.ParamName,
                    Is.EqualTo("a"));
        Assert.Throws<ArgumentOutOfRangeException>(() => ExternalCuda.Gemm(Range(1 << 20), bf16, 0, b, Range(1 << 20), bf16, 0));
        // Everything valid: only now is the missing library reported.
        Assert.That(Assert.Throws<InvalidOperationException>(() => ExternalCuda.Gemm(a, b, Range(1 << 20), bf16, 0))!.Message, Does.Contain("libmicroscale"));
        Assert.That(Assert.Throws<InvalidOperationException>(() => ExternalCuda.GemmWorkspaceBytes(a, b, bf16))!.Message, Does.Contain("libmicroscale"));
        Assert.Throws<ArgumentNullException>(() => ExternalCuda.GemmWorkspaceBytes(a, null!, bf16));
    }

    [Test]
    public void QuantizeChecksTheSourceAndTheFormatBeforeLaunching()
    {
        var nv = Tensor(new QuantizationOptions(QuantFormat.Nvfp4), 4, 64);
        Assert.That(Assert.Throws<ArgumentException>(() => ExternalCuda.Quantize(Range(4 * 64 * 2 - 1), DenseElement.BFloat16, nv, 0))!.ParamName,
                    Is.EqualTo("source"));
        Assert.That(Assert.Throws<ArgumentException>(() => ExternalCuda.Quantize(default, DenseElement.Float32, nv, 0))!.ParamName, Is.EqualTo("source"));
        Assert.That(Assert.Throws<ArgumentException>(() => ExternalCuda.Quantize(Range(4 * 64 * 4, offset: 2), DenseElement.Float32, nv, 0))!.ParamName,
                    Is.EqualTo("source"));
        var integer = Tensor(new QuantizationOptions(QuantFormat.Mxint6), 4, 64);
        Assert.That(Assert.Throws<NotSupportedException>(() => ExternalCuda.Quantize(Range(1 << 20), DenseElement.Float32, integer, 0))!.Message,
                    Does.Contain("MicroscaleContext"));
        Assert.Throws<InvalidOperationException>(() => ExternalCuda.Quantize(Range(1 << 20), DenseElement.Float32, nv, 0));
    }

    [Test]
    public void RelayoutChecksItsTensorsBeforeLaunching()
    {
        var mx = new QuantizationOptions(QuantFormat.Mxfp4);
        var tiledOptions = mx with { Layout = ScaleLayout.Tiled16x128 };
        Assert.That(ExternalQuantizedTensor.DataBytes(tiledOptions, 17, 160), Is.EqualTo(2 * 2 * 1024), "two row tiles of 16, K padded to 256");
        Assert.That(ExternalQuantizedTensor.BlockScaleBytes(tiledOptions, 17, 160), Is.EqualTo(2 * 2 * 64));
        var linear = Tensor(mx, 17, 160);
        var tiled = new ExternalQuantizedTensor(tiledOptions, 17, 160, Range(4096, offset: 1 << 16), Range(256, offset: 1 << 17), default);
        Assert.That(Assert.Throws<ArgumentException>(() => ExternalCuda.Relayout(linear, Tensor(tiledOptions, 17, 128), 0))!.ParamName,
                    Is.EqualTo("destination"));
        Assert.That(Assert.Throws<ArgumentException>(() => ExternalCuda.Relayout(linear, Tensor(tiledOptions, 17, 160), 0))!.Message,
                    Does.Contain("shares"));
        var nv = Tensor(new QuantizationOptions(QuantFormat.Nvfp4) { Layout = ScaleLayout.Tiled16x128 }, 17, 160);
        Assert.That(Assert.Throws<ArgumentException>(() => ExternalCuda.Relayout(linear, nv, 0))!.ParamName, Is.EqualTo("destination"));
        Assert.That(Assert.Throws<ArgumentException>(() => ExternalCuda.Quantize(Range(1 << 20), DenseElement.Float32, tiled, 0))!.ParamName,
                    Is.EqualTo("destination"));
        // Everything valid: only now is the missing library reported.
        Assert.Throws<InvalidOperationException>(() => ExternalCuda.Relayout(linear, tiled, 0));
    }
}
