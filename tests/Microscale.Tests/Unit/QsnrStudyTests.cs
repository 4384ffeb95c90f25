using Microscale.Offline;

namespace Microscale.Tests.Unit;

/// <summary>The INT-vs-FP crest-factor study (Offline/QsnrStudy.cs) on the reference quantizers.</summary>
[TestFixture]
public sealed class QsnrStudyTests
{
    [Test]
    public void BlocksHaveTheirMaximumAtKappa()
    {
        foreach (var (size, kappa) in new[] { (32, 1.5), (32, 7.5), (16, 3.0) })
        {
            var (x, mean) = QsnrStudy.Blocks(256, size, kappa, seed: 2);
            for (int b = 0; b < 256; b++)
            {
                var block = x.AsSpan(b * size, size).ToArray();
                double rms = Math.Sqrt(block.Average(v => (double)v * v)), max = block.Max(Math.Abs);
                Assert.That(max, Is.GreaterThanOrEqualTo(kappa * 0.999).And.LessThan(2 * kappa), $"block {b}: the maximum is κ times a scale in [1, 2)");
                Assert.That(max / rms, Is.LessThanOrEqualTo(Math.Sqrt(size) + 1e-6));
            }
            Assert.That(mean, Is.GreaterThanOrEqualTo(1.0).And.LessThanOrEqualTo(Math.Sqrt(size)));
        }
    }

    /// <summary>QSNR falls with κ for the integer formats and the crossovers land near the paper's (Gaussian theory).</summary>
    [Test]
    public void CrossoversAreNearThePapers()
    {
        var sweep = QsnrStudy.CrestSweep(blocks: 2048);
        foreach (var p in sweep)
            TestContext.Out.WriteLine($"κ {p.TargetCrest:F2} (measured {p.MeanCrest:F2}): " + string.Join(", ", p.Qsnr.Select(q => $"{q.Key} {q.Value:F2}")));
        var crossovers = QsnrStudy.Crossovers(sweep);
        foreach (var c in crossovers)
            TestContext.Out.WriteLine($"{c.Integer} vs {c.Float}: {(c.Crest is { } k ? k.ToString("F2") : "none")} (paper {c.Paper})");
        double At(double kappa, string format) => sweep.Single(p => Math.Abs(p.TargetCrest - kappa) < 1e-9).Qsnr[format];
        foreach (string format in new[] { "MXINT8", "MXINT6", "MXINT4", "NVINT4" })
            Assert.That(At(1.5, format), Is.GreaterThan(At(4.0, format)).And.GreaterThan(At(8.0, format)), $"{format} QSNR falls with κ");
        // The paper puts the 8-bit crossover at 7.55; here INT8 wins at least that far (these blocks keep the outlier's energy in
        // the signal, which the theory's σ leaves out).
        Assert.That(crossovers.Single(c => c.Integer == "MXINT8").Crest ?? double.PositiveInfinity, Is.GreaterThan(7.0), "MXINT8 vs MXFP8");
        Assert.That(crossovers.Single(c => c.Integer == "MXINT4").Crest, Is.EqualTo(2.04).Within(0.5), "MXINT4 vs MXFP4");
        Assert.That(crossovers.Single(c => c.Integer == "NVINT4").Crest, Is.EqualTo(2.39).Within(0.5), "NVINT4 vs NVFP4");
    }
}
