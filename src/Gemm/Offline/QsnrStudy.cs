namespace Microscale.Offline;

/// <summary>QSNR of every block format on synthetic blocks of one crest factor κ = max|x| / σ.</summary>
/// <param name="TargetCrest">κ: the blocks are N(0, 1) values clipped to ±κ with one element at ±κ (σ = 1).</param>
/// <param name="MeanCrest">Their mean crest against each block's own RMS (at most √32 for 32-value blocks).</param>
/// <param name="Qsnr">QSNR in dB per format name (see <see cref="QsnrStudy.Formats"/>).</param>
public sealed record CrestPoint(double TargetCrest, double MeanCrest, IReadOnlyDictionary<string, double> Qsnr);

/// <summary>Where an integer format stops beating its floating-point peer: INT wins below <paramref name="Crest"/>.</summary>
/// <param name="Integer">The integer format's name.</param>
/// <param name="Float">The floating-point format's name.</param>
/// <param name="Crest">The interpolated crossover κ, or null when one format wins over the whole sweep.</param>
/// <param name="Paper">The crossover the "INT v.s. FP" paper reports (Gaussian theory).</param>
public sealed record CrestCrossover(string Integer, string Float, double? Crest, double Paper);

/// <summary>
/// The "INT v.s. FP" study (arXiv 2510.25602) on Microscale's own quantizers: QSNR = −10·log10(Σ(x̂ − x)² / Σx²) of MX and NV
/// integer and floating-point formats over blocks of controlled crest factor, and the crossovers where INT stops winning.
/// Blocks follow the paper's model: Gaussian values whose block maximum is κσ (one element at ±κ, the others clipped to
/// ±κ), each scaled by a log-uniform factor as the theory averages over. MXFP6 (the 6-bit peer of MXINT6) is not a Microscale format, so that crossover is not measured.
/// </summary>
public static class QsnrStudy
{
    /// <summary>The formats compared (MX scales with the paper's Ceil rule), by name.</summary>
    public static IReadOnlyList<(string Name, QuantizationOptions Options)> Formats { get; } =
    [
        ("MXINT8", new QuantizationOptions(QuantFormat.Mxint8) { Rule = MxScaleRule.Ceil }),
        ("MXFP8", new QuantizationOptions(QuantFormat.Mxfp8) { Rule = MxScaleRule.Ceil }),
        ("MXINT6", new QuantizationOptions(QuantFormat.Mxint6) { Rule = MxScaleRule.Ceil }),
        ("MXINT4", new QuantizationOptions(QuantFormat.Mxint4) { Rule = MxScaleRule.Ceil }),
        ("MXFP4", new QuantizationOptions(QuantFormat.Mxfp4) { Rule = MxScaleRule.Ceil }),
        ("NVINT4", new QuantizationOptions(QuantFormat.Nvint4)),
        ("NVFP4", new QuantizationOptions(QuantFormat.Nvfp4)),
    ];

    private static readonly (string Integer, string Float, double Paper)[] s_pairs =
        [("MXINT8", "MXFP8", 7.55), ("MXINT4", "MXFP4", 2.04), ("NVINT4", "NVFP4", 2.39)];

    /// <summary>QSNR of every format at crest factors 1.5, 1.75, …, 9, <paramref name="blocks"/> blocks each.</summary>
    public static IReadOnlyList<CrestPoint> CrestSweep(int blocks = 4096, int seed = 1)
    {
        ThrowHelper.ThrowIfNotPositive(blocks, nameof(blocks));
        var points = new List<CrestPoint>();
        for (double kappa = 1.5; kappa <= 9.0 + 1e-9; kappa += 0.25)
        {
            var qsnr = new Dictionary<string, double>();
            var bySize = new Dictionary<int, (float[] Values, double MeanCrest)>();  // the same blocks for every format of a size
            foreach (var (name, options) in Formats)
            {
                int size = FormatSpec.Of(options).BlockSize;
                if (!bySize.TryGetValue(size, out var set))
                    bySize[size] = set = Blocks(blocks, size, kappa, seed);
                using var q = Quantizer.Quantize(set.Values, blocks, size, options, Backend.Reference);
                qsnr[name] = QuantizationMetrics.Qsnr(set.Values, q.Dequantize(Backend.Reference));
            }
            points.Add(new CrestPoint(kappa, bySize[32].MeanCrest, qsnr));
        }
        return points;
    }

    /// <summary>The INT-vs-FP crossovers of a sweep, linearly interpolated between the two crest factors where the winner changes.</summary>
    public static IReadOnlyList<CrestCrossover> Crossovers(IReadOnlyList<CrestPoint> sweep)
    {
        ArgumentNullException.ThrowIfNull(sweep);
        var result = new List<CrestCrossover>();
        foreach (var (integer, fp, paper) in s_pairs)
        {
            double? crossing = null;
            var both = sweep.Where(p => p.Qsnr.ContainsKey(integer) && p.Qsnr.ContainsKey(fp)).ToList();
            for (int i = 1; i < both.Count && crossing is null; i++)
            {
                double d0 = both[i - 1].Qsnr[integer] - both[i - 1].Qsnr[fp], d1 = both[i].Qsnr[integer] - both[i].Qsnr[fp];
                if (d0 > 0 && d1 <= 0)
                    crossing = both[i - 1].TargetCrest + (both[i].TargetCrest - both[i - 1].TargetCrest) * d0 / (d0 - d1);
            }
            result.Add(new CrestCrossover(integer, fp, crossing, paper));
        }
        return result;
    }

    /// <summary>Blocks of <paramref name="size"/> N(0, 1) values clipped to ±κ with one element (a seeded position) at ±κ, each
    /// block then scaled by 2^u (u uniform in [0, 1)); returns the values and their mean crest against each block's own RMS.</summary>
    internal static (float[] Values, double MeanCrest) Blocks(int blocks, int size, double kappa, int seed)
    {
        var x = SeededGaussian.Create(blocks * size, seed + (int)(kappa * 1000) + size);
        var random = new Random(seed);
        float k = (float)kappa;
        double sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            var block = x.AsSpan(b * size, size);
            for (int i = 0; i < size; i++)
                block[i] = Math.Clamp(block[i], -k, k);
            int top = random.Next(size);
            block[top] = block[top] < 0 ? -k : k;
            double sq = 0;
            foreach (float v in block)
                sq += (double)v * v;
            sum += kappa / Math.Sqrt(sq / size);
            // A log-uniform block scale 2^u, u in [0, 1): where the maximum falls between two powers of two decides what a
            // power-of-two scale wastes, and the theory averages over it (ρ = 1.5).
            float blockScale = MathF.Pow(2f, (float)random.NextDouble());
            for (int i = 0; i < size; i++)
                block[i] *= blockScale;
        }
        return (x, sum / blocks);
    }
}
