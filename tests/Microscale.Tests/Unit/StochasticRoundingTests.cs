using Microscale.IO;

namespace Microscale.Tests.Unit;

/// <summary>Stochastic rounding (NUMERICS.md §7) against ext.safetensors (pure-Python reference), bit for bit, and in expectation.</summary>
[TestFixture]
public sealed class StochasticRoundingTests
{
    private static ulong Seed(SafeTensorsFile f) => unchecked((ulong)f.Read<long>("sr_seed")[0]);

    [Test]
    public void PhiloxBytesMatchTheReferenceAndTheKnownAnswer()
    {
        using var f = SafeTensorsFile.Open(Golden.PathOf("ext.safetensors"));
        ulong seed = Seed(f);
        var bytes = Enumerable.Range(0, 64).Select(i => (byte)StochasticRounding.RandomByte(seed, (ulong)i)).ToArray();
        Exact.AssertBytes(f.Read<byte>("philox_first_bytes"), bytes, "philox bytes");
        // Known answer (Random123): counter 0, key 0 -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8; byte 0 is the low byte of word 0.
        Assert.That(StochasticRounding.RandomByte(0, 0), Is.EqualTo(0xD5u));
        Assert.That(StochasticRounding.RandomByte(0, 7), Is.EqualTo(0xE1u));
        Assert.That(StochasticRounding.RandomByte(0, 15), Is.EqualTo(0x9Bu));
    }

    [TestCaseSource(typeof(TestBackends), nameof(TestBackends.Each))]
    public void Nvfp4AndMxfp4MatchTheGoldenBytes(Backend backend)
    {
        TestBackends.Require(backend);
        using var f = SafeTensorsFile.Open(Golden.PathOf("ext.safetensors"));
        float[] x = f.Read<float>("sr_x");
        ulong seed = Seed(f);
        using var nv = Quantizer.Quantize(x, 8, 256, new QuantizationOptions(QuantFormat.Nvfp4) { Rounding = RoundingMode.Stochastic, Seed = seed }, backend);
        Exact.AssertFloats(f.Read<float>("sr_nvfp4_g"), nv.DecodeScales, "nvfp4 g");
        Exact.AssertBytes(f.Read<byte>("sr_nvfp4_s"), nv.BlockScales, "nvfp4 scales");
        Exact.AssertBytes(f.Read<byte>("sr_nvfp4_q"), nv.Data, "nvfp4 codes", 128);
        using var mx = Quantizer.Quantize(x, 8, 256, new QuantizationOptions(QuantFormat.Mxfp4) { Rounding = RoundingMode.Stochastic, Seed = seed }, backend);
        Exact.AssertBytes(f.Read<byte>("sr_mxfp4_s"), mx.BlockScales, "mxfp4 scales");
        Exact.AssertBytes(f.Read<byte>("sr_mxfp4_q"), mx.Data, "mxfp4 codes", 128);
    }

    [TestCaseSource(typeof(TestBackends), nameof(TestBackends.Each))]
    public void EveryFormatAgreesWithTheReferenceAndSeedsChangeTheBytes(Backend backend)
    {
        TestBackends.Require(backend);
        var x = Cli.Verify.Verifier.Input(7, 100, 12);
        foreach (var format in Enum.GetValues<QuantFormat>().Where(f => f < QuantFormat.Mxint8)) // stochastic rounding is for FP formats
        foreach (var element in format is QuantFormat.Mxfp4 or QuantFormat.Nvfp4 ? new[] { Fp8Element.E4M3 } : Enum.GetValues<Fp8Element>())
        {
            var o = new QuantizationOptions(format) { Element = element, Rounding = RoundingMode.Stochastic, Seed = 99 };
            using var expected = Quantizer.Quantize(x, 7, 100, o, Backend.Reference);
            using var actual = Quantizer.Quantize(x, 7, 100, o, backend);
            Exact.AssertBytes(expected.Data, actual.Data, $"{o} {element}");
            // On plain Gaussian data (the wide input above leaves NVFP4 mostly zero blocks), another seed changes the bytes.
            var gaussian = SeededGaussian.Create(7 * 100, 3);
            using var first = Quantizer.Quantize(gaussian, 7, 100, o, backend);
            using var other = Quantizer.Quantize(gaussian, 7, 100, o with { Seed = 100 }, backend);
            Assert.That(other.Data.SequenceEqual(first.Data), Is.False, $"{o}: another seed must give other bytes");
        }
    }

    [TestCase(QuantFormat.Mxfp4)]
    [TestCase(QuantFormat.Nvfp4)]
    [TestCase(QuantFormat.Fp8PerRow)]
    public void AverageOfManySeedsConvergesToTheInput(QuantFormat format)
    {
        // Each stochastically rounded value is one of the two grid points around v, unbiased up to step/512, so the
        // average of N = 256 seeds has a standard deviation of at most step/(2·16): its error must be far below RNE's.
        const int rows = 4, columns = 64, copies = 256;
        var x = SeededGaussian.Create(rows * columns, 5);
        var mean = new double[x.Length];
        for (int s = 0; s < copies; s++)
        {
            using var q = Quantizer.Quantize(x, rows, columns, new QuantizationOptions(format) { Rounding = RoundingMode.Stochastic, Seed = (ulong)s }, Backend.Cpu);
            var d = q.Dequantize(Backend.Cpu);
            for (int i = 0; i < d.Length; i++)
                mean[i] += d[i] / (double)copies;
        }
        using var nearest = Quantizer.Quantize(x, rows, columns, new QuantizationOptions(format), Backend.Cpu);
        var rne = nearest.Dequantize(Backend.Cpu);
        double srError = 0, rneError = 0;
        for (int i = 0; i < x.Length; i++)
        {
            srError += Math.Abs(mean[i] - x[i]);
            rneError += Math.Abs(rne[i] - x[i]);
        }
        Assert.That(srError, Is.LessThan(rneError / 4), $"{format}: mean |avg − x| {srError / x.Length:E3} vs RNE {rneError / x.Length:E3}");
    }

    [Test]
    [Category("Gpu")]
    public void NativeContextRoundsStochasticallyInLibmicroscale()
    {
        TestBackends.Require(Backend.Native);
        var x = SeededGaussian.Create(2 * 100, 8);
        using var context = MicroscaleContext.Create(Backend.Native);
        // Every FP format: K = 100 takes the generic kernel (the dual kernel wants whole 16-byte rows), K = 96 the dual kernel.
        foreach (int k in new[] { 100, 96 })
        foreach (var format in new[] { QuantFormat.Mxfp4, QuantFormat.Mxfp8, QuantFormat.Nvfp4, QuantFormat.Fp8PerTensor, QuantFormat.Fp8PerRow })
        {
            var o = new QuantizationOptions(format) { Rounding = RoundingMode.Stochastic, Seed = 1 };
            var values = x.Take(2 * k).ToArray();
            using var input = context.CreateTensor<float>(values, 2, k);
            using var q = context.Quantize(input, o).ToHost();
            Assert.That(context.LastQuantizeKernel, Is.EqualTo("ms_smxx_quantize"), $"{o} K={k}");
            using var expected = Quantizer.Quantize(values, 2, k, o, Backend.Reference);
            Exact.AssertBytes(expected.Data, q.Data, $"{o} K={k} codes");
            Exact.AssertBytes(expected.BlockScales, q.BlockScales, $"{o} K={k} scales");
        }
    }
}
