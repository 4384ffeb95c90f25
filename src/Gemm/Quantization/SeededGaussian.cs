namespace Microscale;

/// <summary>Deterministic standard-normal samples (Box–Muller over <see cref="Random"/> with a seed) for demos, tests and benchmarks.</summary>
public static class SeededGaussian
{
    /// <summary>Fills <paramref name="destination"/> with N(0, 1) samples; the same seed always gives the same values.</summary>
    public static void Fill(Span<float> destination, int seed)
    {
        var random = new Random(seed);
        for (int i = 0; i < destination.Length; i += 2)
        {
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            double radius = Math.Sqrt(-2.0 * Math.Log(u1));
            destination[i] = (float)(radius * Math.Cos(2 * Math.PI * u2));
            if (i + 1 < destination.Length)
                destination[i + 1] = (float)(radius * Math.Sin(2 * Math.PI * u2));
        }
    }

    /// <summary>A new array of <paramref name="count"/> N(0, 1) samples.</summary>
    public static float[] Create(int count, int seed)
    {
        var values = new float[count];
        Fill(values, seed);
        return values;
    }
}
