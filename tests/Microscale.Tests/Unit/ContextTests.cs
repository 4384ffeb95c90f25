namespace Microscale.Tests.Unit;

/// <summary>The tensor API's ownership and validation rules: every entry point, exception type and ParamName.</summary>
[TestFixture]
public sealed class ContextTests
{
    private MicroscaleContext _context = null!;
    private MicroscaleContext _other = null!;

    [SetUp]
    public void Create()
    {
        _context = MicroscaleContext.Create(Backend.Cpu);
        _other = MicroscaleContext.Create(Backend.Reference);
    }

    [TearDown]
    public void Dispose()
    {
        _context.Dispose();
        _other.Dispose();
    }

    private QuantizedTensor Q(MicroscaleContext c, int rows, int columns, QuantFormat format = QuantFormat.Mxfp4)
    {
        using var t = c.CreateTensor<float>(SeededGaussian.Create(rows * columns, rows), rows, columns);
        return c.Quantize(t, new QuantizationOptions(format));
    }

    [Test]
    public void AutoReportsWhatItPickedAndWhy()
    {
        using var auto = MicroscaleContext.Create();
        Assert.That(auto.Backend, Is.Not.EqualTo(Backend.Auto));
        Assert.That(auto.SelectionReason, Does.StartWith("Auto:"));
        Assert.That(_other.DeviceName, Does.Contain("reference"));
    }

    [Test]
    public void TensorsRoundTripAndCheckLengths()
    {
        var data = new[] { 1f, 2f, 3f, 4f, 5f, 6f };
        using var t = _context.CreateTensor<float>(data, 2, 3);
        Assert.That(t.ToArray(), Is.EqualTo(data));
        Assert.That(Assert.Throws<ArgumentException>(() => _context.CreateTensor<float>(data, 2, 2))!.ParamName, Is.EqualTo("source"));
        Assert.That(Assert.Throws<ArgumentException>(() => t.CopyTo(new float[5]))!.ParamName, Is.EqualTo("destination"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => _context.AllocateTensor<float>(0, 3))!.ParamName, Is.EqualTo("rows"));
        Assert.Throws<NotSupportedException>(() => _context.AllocateTensor<int>(1, 1));
        using var h = _context.CreateTensor<Half>(new[] { (Half)1.5f }, 1, 1);
        Assert.That(h.ToArray()[0], Is.EqualTo((Half)1.5f));
    }

    [Test]
    public void DeviceTensorsKeepTheirBytesOnTheDevice()
    {
        using var q = Q(_context, 4, 64);
        Assert.That(q.IsOnDevice, Is.True);
        Assert.Throws<InvalidOperationException>(() => _ = q.Data.Length);
        using var host = q.ToHost();
        Assert.That(host.Data.Length, Is.EqualTo(4 * 32));
        using var back = _context.Upload(host);
        Exact.AssertFloats(_context.Dequantize(q).ToArray(), _context.Dequantize(back).ToArray(), "upload round trip");
        Assert.That(Assert.Throws<ArgumentException>(() => _context.Upload(q))!.ParamName, Is.EqualTo("tensor"));
        Exact.AssertFloats(host.Dequantize(Backend.Reference), q.Dequantize(), "device tensor dequantizes on its own context");
    }

    [Test]
    public void ForeignHostAndDisposedTensorsAreRejectedByName()
    {
        using var a = Q(_context, 2, 64);
        using var b = Q(_context, 3, 64);
        using var foreign = Q(_other, 3, 64);
        using var host = b.ToHost();
        Assert.That(Assert.Throws<ArgumentException>(() => _context.Gemm(a, foreign))!.ParamName, Is.EqualTo("b"));
        Assert.That(Assert.Throws<ArgumentException>(() => _context.Gemm(a, host))!.ParamName, Is.EqualTo("b"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => _context.Gemm(null!, b))!.ParamName, Is.EqualTo("a"));
        using var foreignDense = _other.AllocateTensor<float>(2, 64);
        Assert.That(Assert.Throws<ArgumentException>(() => _context.Quantize(foreignDense, new QuantizationOptions(QuantFormat.Nvfp4)))!.ParamName, Is.EqualTo("source"));
        var disposed = Q(_context, 2, 64);
        disposed.Dispose();
        Assert.That(Assert.Throws<ObjectDisposedException>(() => _context.Gemm(disposed, b))!.ObjectName, Is.EqualTo("a"));
        var dense = _context.AllocateTensor<float>(2, 64);
        dense.Dispose();
        dense.Dispose();
        Assert.That(Assert.Throws<ObjectDisposedException>(() => _context.HadamardRotate(dense, HadamardTransform.Create(16)))!.ObjectName, Is.EqualTo("source"));
    }

    [Test]
    public void GemmChecksShapesBiasAlphaAndPairs()
    {
        using var a = Q(_context, 2, 64);
        using var b = Q(_context, 3, 64);
        using var shortK = Q(_context, 3, 32);
        Assert.That(Assert.Throws<ArgumentException>(() => _context.Gemm(a, shortK))!.ParamName, Is.EqualTo("b"));
        using var wrong = _context.AllocateTensor<float>(3, 2);
        Assert.That(Assert.Throws<ArgumentException>(() => _context.Gemm(a, b, wrong))!.ParamName, Is.EqualTo("destination"));
        using var bias = _context.AllocateTensor<float>(1, 4);
        Assert.That(Assert.Throws<ArgumentException>(() => _context.Gemm(a, b, new GemmOptions { Bias = bias }))!.ParamName, Is.EqualTo("options.Bias"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => _context.Gemm(a, b, new GemmOptions { Alpha = float.NaN }))!.ParamName, Is.EqualTo("options.Alpha"));
        using var intOut = _context.AllocateTensor<float>(2, 3);
        using var nv = Q(_context, 3, 64, QuantFormat.Nvfp4);
        using var fp8 = Q(_context, 3, 64, QuantFormat.Fp8PerRow);
        Assert.That(Assert.Throws<NotSupportedException>(() => _context.Gemm(a, nv))!.Message, Does.Contain("activations mxfp4").And.Contain("weights nvfp4"));
        Assert.Throws<NotSupportedException>(() => _context.Gemm(a, fp8));
        using var dense = _context.AllocateTensor<float>(2, 64);
        using var mxfp8 = Q(_context, 3, 64, QuantFormat.Mxfp8);
        Assert.That(Assert.Throws<NotSupportedException>(() => _context.Gemm(dense, mxfp8))!.Message, Does.Contain("dense activations"));
    }

    [Test]
    public void DisposingTheContextDisposesItsTensorsAndIsIdempotent()
    {
        var context = MicroscaleContext.Create(Backend.Cpu);
        var dense = context.AllocateTensor<float>(2, 32);
        var q = context.Quantize(dense, new QuantizationOptions(QuantFormat.Nvfp4));
        context.Dispose();
        context.Dispose();
        Assert.That(dense.IsDisposed && q.IsDisposed, Is.True);
        Assert.Throws<ObjectDisposedException>(() => dense.ToArray());
        Assert.Throws<ObjectDisposedException>(() => context.AllocateTensor<float>(1, 1));
        dense.Dispose();
        q.Dispose();
    }

    [TestCaseSource(typeof(TestBackends), nameof(TestBackends.Each))]
    public void DestinationLastQuantizeEqualsAllocatingQuantizeAndChecksTheDestination(Backend backend)
    {
        TestBackends.Require(backend);
        using var context = MicroscaleContext.Create(backend);
        var x = Cli.Verify.Verifier.Input(9, 96, 4);
        using var source = context.CreateTensor<float>(x, 9, 96);
        var h = HadamardTransform.CreateRandom(32, 2);
        foreach (var options in new[] { new QuantizationOptions(QuantFormat.Nvfp4) { Layout = ScaleLayout.Swizzled128x4 }, new QuantizationOptions(QuantFormat.Fp8PerRow) })
        {
            using var destination = context.AllocateQuantized(9, 96, options);
            for (int round = 0; round < 2; round++) // reuse: the second call overwrites the first's bytes exactly
            {
                context.QuantizeRotated(source, h, destination);
                using var expected = context.QuantizeRotated(source, h, options);
                using var e = expected.ToHost();
                using var a = destination.ToHost();
                Exact.AssertBytes(e.Data, a.Data, $"{options} data");
                Exact.AssertBytes(e.BlockScales, a.BlockScales, $"{options} scales");
                Exact.AssertFloats(e.DecodeScales, a.DecodeScales, $"{options} decode scales");
            }
        }
        using var wrong = context.AllocateQuantized(9, 64, new QuantizationOptions(QuantFormat.Mxfp4));
        Assert.That(Assert.Throws<ArgumentException>(() => context.Quantize(source, wrong))!.ParamName, Is.EqualTo("destination"));
        using var host = Quantizer.Quantize(x, 9, 96, new QuantizationOptions(QuantFormat.Mxfp4), Backend.Reference);
        Assert.That(Assert.Throws<ArgumentException>(() => context.Quantize(source, host))!.ParamName, Is.EqualTo("destination"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => context.AllocateQuantized(0, 4, new QuantizationOptions(QuantFormat.Mxfp4)))!.ParamName, Is.EqualTo("rows"));
    }

    [Test]
    public void DeviceOrdinalsAreChecked()
    {
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => MicroscaleContext.Create(Backend.Cpu, 1))!.ParamName, Is.EqualTo("device"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => MicroscaleContext.Create(Backend.Reference, 2))!.ParamName, Is.EqualTo("device"));
        using var cpu = MicroscaleContext.Create(Backend.Cpu, 0);
        Assert.That(cpu.DeviceOrdinal, Is.Zero);
    }
}
