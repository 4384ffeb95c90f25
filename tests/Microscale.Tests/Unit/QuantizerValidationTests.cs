namespace Microscale.Tests.Unit;

/// <summary>Every validation rule of the quantize entry points: exception type and ParamName.</summary>
[TestFixture]
public sealed class QuantizerValidationTests
{
    private static readonly QuantizationOptions s_mxfp4 = new(QuantFormat.Mxfp4);

    [Test]
    public void NullOptions() =>
        Assert.That(Assert.Throws<ArgumentNullException>(() => Quantizer.Quantize(new float[4], 2, 2, null!, Backend.Reference))!.ParamName, Is.EqualTo("options"));

    [TestCase(0, 4, "rows")]
    [TestCase(-1, 4, "rows")]
    [TestCase(4, 0, "columns")]
    public void NonPositiveShape(int rows, int columns, string param) =>
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => Quantizer.Quantize(new float[4], rows, columns, s_mxfp4, Backend.Reference))!.ParamName, Is.EqualTo(param));

    [Test]
    public void SourceLengthMismatchNamesSourceAndShape()
    {
        var ex = Assert.Throws<ArgumentException>(() => Quantizer.Quantize(new float[5], 2, 2, s_mxfp4, Backend.Cpu))!;
        Assert.That(ex.ParamName, Is.EqualTo("source"));
        Assert.That(ex.Message, Does.Contain("4").And.Contain("5"));
        Assert.That(Assert.Throws<ArgumentException>(() => Quantizer.Quantize(new Half[3], 2, 2, s_mxfp4))!.ParamName, Is.EqualTo("source"));
        Assert.That(Assert.Throws<ArgumentException>(() => Quantizer.Quantize(new BFloat16[3], 2, 2, s_mxfp4))!.ParamName, Is.EqualTo("source"));
    }

    [Test]
    public void UndefinedEnumsAreOutOfRange()
    {
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => Quantizer.Quantize(new float[4], 2, 2, new QuantizationOptions((QuantFormat)99)))!.ParamName, Is.EqualTo("options"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => Quantizer.Quantize(new float[4], 2, 2, s_mxfp4 with { Layout = (ScaleLayout)7 }))!.ParamName, Is.EqualTo("options"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => Quantizer.Quantize(new float[4], 2, 2, s_mxfp4, (Backend)42))!.ParamName, Is.EqualTo("backend"));
    }

    [Test]
    public void OptionsThatDoNotApplyToTheFormat()
    {
        var cases = new[]
        {
            new QuantizationOptions(QuantFormat.Fp8PerRow) { Layout = ScaleLayout.Swizzled128x4 },
            new QuantizationOptions(QuantFormat.Nvfp4) { Rule = MxScaleRule.Ceil },
            new QuantizationOptions(QuantFormat.Mxfp4) { Element = Fp8Element.E5M2 },
        };
        foreach (var o in cases)
        {
            var ex = Assert.Throws<ArgumentException>(() => Quantizer.Quantize(new float[4], 2, 2, o, Backend.Reference))!;
            Assert.That(ex.ParamName, Is.EqualTo("options"), o.ToString());
            Assert.That(ex.Message, Does.Contain(o.Format.ToString()));
        }
    }

    [TestCaseSource(typeof(TestBackends), nameof(TestBackends.Each))]
    public void ThrowPolicyNamesFirstNonFiniteRowAndColumn(Backend backend)
    {
        TestBackends.Require(backend);
        var x = new float[3 * 40];
        x[2 * 40 + 17] = float.NegativeInfinity;
        x[2 * 40 + 30] = float.NaN;
        foreach (var format in Enum.GetValues<QuantFormat>())
        {
            var ex = Assert.Throws<ArgumentException>(() => Quantizer.Quantize(x, 3, 40, new QuantizationOptions(format) { NonFinite = NonFinitePolicy.Throw }, backend))!;
            Assert.That(ex.ParamName, Is.EqualTo("source"));
            Assert.That(ex.Message, Does.Contain("row 2").And.Contain("column 17"), format.ToString());
        }
    }

    [Test]
    public void PropagatePolicyMakesNaNBlocks()
    {
        var x = Enumerable.Repeat(1f, 64).ToArray();
        x[40] = float.PositiveInfinity;
        using var q = Quantizer.Quantize(x, 1, 64, s_mxfp4, Backend.Cpu);
        Assert.That(q.BlockScales.ToArray(), Is.EqualTo(new byte[] { 127 - 2 + 0 + 0, 0xFF }));
        var deq = q.Dequantize(Backend.Cpu);
        Assert.That(deq.Take(32), Is.All.EqualTo(1f));
        Assert.That(deq.Skip(32), Is.All.NaN);
    }

    [Test]
    public void CudaBackendWithoutDeviceIsNotSupported()
    {
        Assume.That(Backends.IlgpuDevice.IsCudaAvailable, Is.False, "a CUDA device is present");
        var ex = Assert.Throws<NotSupportedException>(() => Quantizer.Quantize(new float[4], 2, 2, s_mxfp4, Backend.Cuda))!;
        Assert.That(ex.Message, Does.Contain("Cuda"));
    }

    [Test]
    public void FromPartsChecksEveryLength()
    {
        var nv = new QuantizationOptions(QuantFormat.Nvfp4);
        // 3 rows x 20 columns: K padded to 32 -> 16 bytes per row, 2 scales per row, one global scale.
        using (var ok = QuantizedTensor.FromParts(nv, 3, 20, new byte[48], new byte[6], new float[] { 1f }))
            Assert.That(ok.PaddedColumns, Is.EqualTo(32));
        Assert.That(Assert.Throws<ArgumentException>(() => QuantizedTensor.FromParts(nv, 3, 20, new byte[47], new byte[6], new float[1]))!.ParamName, Is.EqualTo("data"));
        Assert.That(Assert.Throws<ArgumentException>(() => QuantizedTensor.FromParts(nv, 3, 20, new byte[48], new byte[5], new float[1]))!.ParamName, Is.EqualTo("blockScales"));
        Assert.That(Assert.Throws<ArgumentException>(() => QuantizedTensor.FromParts(nv, 3, 20, new byte[48], new byte[6], new float[2]))!.ParamName, Is.EqualTo("decodeScales"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => QuantizedTensor.FromParts(nv, 0, 20, default, default, default))!.ParamName, Is.EqualTo("rows"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => QuantizedTensor.FromParts(null!, 1, 1, default, default, default))!.ParamName, Is.EqualTo("options"));
        var swz = nv with { Layout = ScaleLayout.Swizzled128x4 };
        Assert.That(Assert.Throws<ArgumentException>(() => QuantizedTensor.FromParts(swz, 3, 20, new byte[48], new byte[6], new float[1]))!.Message, Does.Contain("512"));
    }

    [Test]
    public void DisposedTensorThrowsAndDisposeIsIdempotent()
    {
        var q = Quantizer.Quantize(new float[64], 2, 32, s_mxfp4, Backend.Reference);
        q.Dispose();
        q.Dispose();
        Assert.Throws<ObjectDisposedException>(() => _ = q.Data.Length);
        Assert.Throws<ObjectDisposedException>(() => q.Dequantize());
    }

    [Test]
    public void DequantizeChecksDestinationAndGlobalScaleChecksFormat()
    {
        using var q = Quantizer.Quantize(new float[64], 2, 32, s_mxfp4, Backend.Reference);
        Assert.That(Assert.Throws<ArgumentException>(() => q.Dequantize(new float[63], Backend.Reference))!.ParamName, Is.EqualTo("destination"));
        Assert.Throws<InvalidOperationException>(() => _ = q.GlobalScale);
    }
}
