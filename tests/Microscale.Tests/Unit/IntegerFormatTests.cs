using Microscale.IO;

namespace Microscale.Tests.Unit;

/// <summary>MXINT8/6/4 (Ceil and Floor) and NVINT4 (NUMERICS.md §8) against ext.safetensors (pure-Python reference), bit for bit.</summary>
[TestFixture]
public sealed class IntegerFormatTests
{
    public static IEnumerable<TestCaseData> Cases() =>
        from backend in TestBackends.All
        select TestBackends.Case("{m}_" + backend, backend, backend);

    [TestCaseSource(nameof(Cases))]
    public void MxintAndNvint4MatchGolden(Backend backend)
    {
        TestBackends.Require(backend);
        using var f = SafeTensorsFile.Open(Golden.PathOf("ext.safetensors"));
        float[] x = f.Read<float>("int_x"); // [5, 96], one NaN at [2, 40]
        foreach (var (format, bits) in new[] { (QuantFormat.Mxint8, 8), (QuantFormat.Mxint6, 6), (QuantFormat.Mxint4, 4) })
        foreach (var rule in new[] { MxScaleRule.Ceil, MxScaleRule.Floor })
        {
            string name = $"mxint{bits}_{rule.ToString().ToLowerInvariant()}";
            using var q = Quantizer.Quantize(x, 5, 96, new QuantizationOptions(format) { Rule = rule }, backend);
            Exact.AssertBytes(f.Read<byte>(name + "_s"), q.BlockScales, name + " scales", 3);
            Exact.AssertBytes(f.Read<byte>(name + "_q"), q.Data, name + " codes", q.Data.Length / 5);
        }
        using var nv = Quantizer.Quantize(x, 5, 96, new QuantizationOptions(QuantFormat.Nvint4), backend);
        Exact.AssertFloats(f.Read<float>("nvint4_g"), nv.DecodeScales, "nvint4 g");
        Exact.AssertBytes(f.Read<byte>("nvint4_s"), nv.BlockScales, "nvint4 scales", 6);
        Exact.AssertBytes(f.Read<byte>("nvint4_q"), nv.Data, "nvint4 codes", 48);
    }

    [Test]
    public void DequantizedIntegersAreCodeTimesScaleAndNaNBlocksStayNaN()
    {
        float[] x = new[] { 127f, -127f, 63.5f, -0.4f, 1f, 0f }.Concat(Enumerable.Repeat(2f, 26)).ToArray();
        using var q = Quantizer.Quantize(x, 1, 32, new QuantizationOptions(QuantFormat.Mxint8), Backend.Reference);
        // Floor rule: e = floor(log2 127) - 6 = 0, so values round to integers: 63.5 -> 64 (ties to even), -0.4 -> -0.
        Assert.That(q.BlockScales[0], Is.EqualTo(127));
        Assert.That(q.Dequantize(Backend.Reference).Take(6), Is.EqualTo(new[] { 127f, -127f, 64f, 0f, 1f, 0f }));
        var y = (float[])x.Clone();
        y[3] = float.NaN;
        using var bad = Quantizer.Quantize(y, 1, 32, new QuantizationOptions(QuantFormat.Nvint4), Backend.Cpu);
        Assert.That(bad.Dequantize(Backend.Cpu).Take(16), Is.All.NaN);
    }

    [Test]
    public void StochasticRoundingIsRefusedForIntegerFormats()
    {
        var ex = Assert.Throws<ArgumentException>(() => Quantizer.Quantize(new float[32], 1, 32,
            new QuantizationOptions(QuantFormat.Mxint4) { Rounding = RoundingMode.Stochastic }, Backend.Reference))!;
        Assert.That(ex.ParamName, Is.EqualTo("options"));
    }
}
