using Microscale.Offline;

namespace Microscale.Tests.Unit;

/// <summary>
/// GPTQ and MR-GPTQ (Offline/Gptq.cs) on a synthetic layer: heavy-tailed weights, calibration activations with correlated
/// channels (a low-rank signal plus noise) and a few outlier channels. The layer-output error ‖XWᵀ − X·deq(Q)ᵀ‖² / ‖XWᵀ‖² must
/// drop from RTN to GPTQ, and from GPTQ to MR-GPTQ for MXFP4 (whose power-of-two scales the rotation helps most).
/// </summary>
[TestFixture]
public sealed class GptqTests
{
    private const int N = 64, K = 256, Tokens = 1024;

    private static (float[] W, float[] X) Layer()
    {
        var w = HadamardTests.StudentT3(N * K, seed: 3);
        var random = new Random(5);
        var basis = SeededGaussian.Create(16 * K, seed: 7);        // rank-16 signal
        var z = SeededGaussian.Create(Tokens * 16, seed: 9);
        var noise = SeededGaussian.Create(Tokens * K, seed: 11);
        var channelScale = Enumerable.Range(0, K).Select(k => k % 37 == 0 ? 8f : 0.5f + (float)random.NextDouble()).ToArray();
        var x = new float[Tokens * K];
        for (int t = 0; t < Tokens; t++)
            for (int k = 0; k < K; k++)
            {
                float s = 0;
                for (int r = 0; r < 16; r++)
                    s += z[t * 16 + r] * basis[r * K + k];
                x[t * K + k] = channelScale[k] * (s + 0.1f * noise[t * K + k]);
            }
        return (w, x);
    }

    /// <summary>‖XWᵀ − X·Qᵀ‖² / ‖XWᵀ‖², X rotated for an MR-GPTQ result.</summary>
    private static double OutputError(float[] w, float[] x, GptqResult result)
    {
        float[] q = result.Weight.Dequantize(Backend.Reference);
        float[] xr = x;
        if (result.Rotation is not null)
        {
            xr = new float[x.Length];
            ReferenceHadamard.Rotate(x, Tokens, K, result.Rotation, xr);
        }
        double error = 0, norm = 0;
        for (int t = 0; t < Tokens; t++)
            for (int n = 0; n < N; n++)
            {
                double exact = 0, approx = 0;
                for (int k = 0; k < K; k++)
                {
                    exact += (double)x[t * K + k] * w[n * K + k];
                    approx += (double)xr[t * K + k] * q[n * K + k];
                }
                error += (exact - approx) * (exact - approx);
                norm += exact * exact;
            }
        return error / norm;
    }

    [TestCase(QuantFormat.Mxfp4)]
    [TestCase(QuantFormat.Nvfp4)]
    public void GptqBeatsRtnAndMrGptqBeatsGptqOnTheLayerOutput(QuantFormat format)
    {
        var (w, x) = Layer();
        var options = new QuantizationOptions(format);
        double Error(GptqOptions o)
        {
            var result = Gptq.Quantize(w, N, K, x, Tokens, options, o);
            using (result.Weight)
                return OutputError(w, x, result);
        }
        double rtn = Error(new GptqOptions { Method = GptqMethod.Rtn });
        double gptq = Error(new GptqOptions());
        double actOrder = Error(new GptqOptions { ActOrder = true });
        double mse = Error(new GptqOptions { MseScaleSearch = true });
        double mr = Error(new GptqOptions { Method = GptqMethod.MrGptq, RotationBlockSize = 32, MseScaleSearch = true });
        TestContext.Out.WriteLine($"{format}: RTN {rtn:E3}, GPTQ {gptq:E3}, +act-order {actOrder:E3}, +MSE scales {mse:E3}, MR-GPTQ (H32, MSE) {mr:E3}");
        Assert.That(gptq, Is.LessThan(0.5 * rtn), "GPTQ vs RTN");
        Assert.That(actOrder, Is.LessThan(0.5 * rtn), "GPTQ with act-order vs RTN");
        if (format == QuantFormat.Mxfp4)
            Assert.That(mr, Is.LessThan(gptq), "MR-GPTQ vs GPTQ");
    }

    [Test]
    public void RtnEqualsTheQuantizerAndResultsDecodeInEveryLayout()
    {
        var (w, x) = Layer();
        foreach (var layout in new[] { ScaleLayout.Linear, ScaleLayout.Swizzled128x4 })
        {
            var options = new QuantizationOptions(QuantFormat.Nvfp4) { Layout = layout };
            var result = Gptq.Quantize(w, N, K, x, Tokens, options, new GptqOptions { Method = GptqMethod.Rtn });
            using (result.Weight)
            using (var expected = Quantizer.Quantize(w, N, K, options, Backend.Reference))
            {
                Exact.AssertBytes(expected.Data, result.Weight.Data, $"{layout} data");
                Exact.AssertBytes(expected.BlockScales, result.Weight.BlockScales, $"{layout} scales");
                Exact.AssertFloats(expected.DecodeScales, result.Weight.DecodeScales, $"{layout} decode scale");
            }
        }
    }

    /// <summary>ZeroQuant-FP's W4A8 constraint on NVFP4 weights: every block scale is its row's largest scale over a power of two,
    /// and costs a few dB of QSNR against free scales (printed); GPTQ recovers part of it on the layer output.</summary>
    [Test]
    public void PowerOfTwoRowScalesAreRowMaxOverPowersOfTwo()
    {
        var (w, x) = Layer();
        var nv = new QuantizationOptions(QuantFormat.Nvfp4);
        double Qsnr(GptqResult r)
        {
            using (r.Weight)
                return QuantizationMetrics.Qsnr(w, r.Weight.Dequantize(Backend.Reference));
        }
        var constrained = Gptq.Quantize(w, N, K, x, Tokens, nv, new GptqOptions { Method = GptqMethod.Rtn, PowerOfTwoRowScales = true });
        int scaleColumns = K / 16;
        for (int r = 0; r < N; r++)
        {
            var row = constrained.Weight.BlockScales.Slice(r * scaleColumns, scaleColumns).ToArray().Select(c => (double)Formats.FloatBits.FromE4M3(c)).ToArray();
            double max = row.Max();
            foreach (double s in row.Where(s => s >= Math.Pow(2, -6)))
            {
                double k = Math.Log2(max / s);
                Assert.That(k, Is.EqualTo(Math.Round(k)).Within(1e-9), $"row {r}: {s} is not {max} over a power of two");
            }
        }
        double free = Qsnr(Gptq.Quantize(w, N, K, x, Tokens, nv, new GptqOptions { Method = GptqMethod.Rtn }));
        double cost = free - Qsnr(constrained);
        double gptqError = OutputError(w, x, Gptq.Quantize(w, N, K, x, Tokens, nv, new GptqOptions { PowerOfTwoRowScales = true }));
        double rtnError = OutputError(w, x, Gptq.Quantize(w, N, K, x, Tokens, nv, new GptqOptions { Method = GptqMethod.Rtn, PowerOfTwoRowScales = true }));
        TestContext.Out.WriteLine($"NVFP4 QSNR: free scales {free:F2} dB, power-of-two row scales {free - cost:F2} dB (cost {cost:F2} dB); " +
                                  $"layer output error RTN {rtnError:E3}, GPTQ {gptqError:E3}");
        Assert.That(cost, Is.GreaterThan(0).And.LessThan(4.0), "QSNR cost of the constraint");
        Assert.That(gptqError, Is.LessThan(0.5 * rtnError));
    }

    [Test]
    public void BadArgumentsAreRefusedByName()
    {
        var (w, x) = Layer();
        var mx = new QuantizationOptions(QuantFormat.Mxfp4);
        Assert.That(Assert.Throws<ArgumentException>(() => Gptq.Quantize(w, N, K, x.AsSpan(0, 10), Tokens, mx))!.ParamName, Is.EqualTo("calibration"));
        Assert.Throws<NotSupportedException>(() => Gptq.Quantize(w, N, K, x, Tokens, new QuantizationOptions(QuantFormat.Fp8PerRow)));
        Assert.That(Assert.Throws<ArgumentException>(() => Gptq.Quantize(w, N, 250, x.AsSpan(0, Tokens * 250), Tokens, mx,
                                                                         new GptqOptions { Method = GptqMethod.MrGptq })).ParamName, Is.EqualTo("weight"));
    }
}
