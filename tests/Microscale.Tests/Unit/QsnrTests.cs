namespace Microscale.Tests.Unit;

/// <summary>Reproduces the seed papers' QSNR of FP4 formats on Gaussian data (4096 × 4096, seeded).</summary>
[TestFixture]
public sealed class QsnrTests
{
    private static readonly float[] s_gaussian = SeededGaussian.Create(4096 * 4096, seed: 20261123);

    [TestCase(QuantFormat.Mxfp4, 18.8)]
    [TestCase(QuantFormat.Nvfp4, 20.4)]
    public void Fp4QsnrOnGaussianMatchesPapers(QuantFormat format, double expectedDb)
    {
        using var q = Quantizer.Quantize(s_gaussian, 4096, 4096, new QuantizationOptions(format), Backend.Cpu);
        double qsnr = QuantizationMetrics.Qsnr(s_gaussian, q.Dequantize(Backend.Cpu));
        Assert.That(qsnr, Is.EqualTo(expectedDb).Within(0.15), $"{format} QSNR {qsnr:F3} dB");
    }

    [Test]
    public void QsnrIsInfiniteForExactAndFiniteOtherwise()
    {
        Assert.That(QuantizationMetrics.Qsnr(new[] { 1f, 2f }, new[] { 1f, 2f }), Is.EqualTo(double.PositiveInfinity));
        Assert.That(QuantizationMetrics.Qsnr(new[] { 1f, 1f }, new[] { 1.1f, 0.9f }), Is.EqualTo(20.0).Within(1e-5));
        var ex = Assert.Throws<ArgumentException>(() => QuantizationMetrics.Qsnr(new float[2], new float[3]));
        Assert.That(ex!.ParamName, Is.EqualTo("dequantized"));
    }
}
