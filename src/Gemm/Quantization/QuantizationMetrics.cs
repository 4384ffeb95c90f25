namespace Microscale;

/// <summary>Error measures for quantized tensors.</summary>
public static class QuantizationMetrics
{
    /// <summary>
    /// Quantization signal-to-noise ratio in dB: −10·log10(Σ(x̂ − x)² / Σx²) over the whole tensor, accumulated in float64
    /// (the definition of "INT v.s. FP", Eq. 10). Pairs where either value is not finite are skipped.
    /// </summary>
    /// <returns>The QSNR in dB; +∞ when the reconstruction is exact.</returns>
    /// <exception cref="ArgumentException">The spans differ in length (paramName <paramref name="dequantized"/>).</exception>
    public static double Qsnr(ReadOnlySpan<float> original, ReadOnlySpan<float> dequantized)
    {
        ThrowHelper.ThrowIfLengthIsNot(original.Length, dequantized.Length, nameof(dequantized));
        double signal = 0, noise = 0;
        for (int i = 0; i < original.Length; i++)
        {
            if (!float.IsFinite(original[i]) || !float.IsFinite(dequantized[i]))
                continue;
            double x = original[i], d = dequantized[i] - x;
            signal += x * x;
            noise += d * d;
        }
        return noise == 0 ? double.PositiveInfinity : -10.0 * Math.Log10(noise / signal);
    }
}
