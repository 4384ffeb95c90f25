namespace Microscale.Tests;

/// <summary>The GEMM error bound of NUMERICS.md §5 for binary32 accumulation, derived for the ILGPU tiled kernel.</summary>
internal static class GemmBounds
{
    /// <summary>ε(K) of the kernel that ran (see <see cref="GemmAccuracy.Epsilon"/>: binary32 kernels (K + 4)·2^−24, Hopper FP8 tensor cores 2^−9 + …).</summary>
    public static double Epsilon(int k, string kernel) => GemmAccuracy.Epsilon(k, kernel);

    /// <summary>The unit in the last place of <paramref name="value"/> in the output type (full ulp: RNE is within half of it).</summary>
    public static double OutputUlp<T>(double value)
    {
        double a = Math.Abs(value);
        int e = a == 0 ? -1000 : (int)Math.Floor(Math.Log2(a));
        if (typeof(T) == typeof(float)) return Math.Pow(2, Math.Max(e, -126) - 23);
        if (typeof(T) == typeof(BFloat16)) return Math.Pow(2, Math.Max(e, -126) - 7);
        return Math.Pow(2, Math.Max(e, -14) - 10); // Half
    }

    /// <summary>Asserts |C − C_ref| ≤ ε(K)·|alpha|·Σ|a·b| + ulp_out(C_ref) for every element, reporting the first violation.</summary>
    public static void AssertWithin<T>(ReadOnlySpan<double> expected, ReadOnlySpan<double> absProduct, ReadOnlySpan<T> actual, int n, int k,
                                       float alpha, string what, string kernel) where T : unmanaged
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), what + ": length");
        double epsilon = Epsilon(k, kernel);
        what += $" [{kernel}]";
        for (int i = 0; i < expected.Length; i++)
        {
            double got = ToDouble(actual[i]);
            double bound = epsilon * Math.Abs(alpha) * absProduct[i] + OutputUlp<T>(expected[i]);
            if (!(Math.Abs(got - expected[i]) <= bound))
                Assert.Fail($"{what}: (m {i / n}, n {i % n}) K={k}: expected {expected[i]:R}, got {got:R}, |diff| {Math.Abs(got - expected[i]):E3} > bound {bound:E3}");
        }
    }

    public static double ToDouble<T>(T value) where T : unmanaged => value switch
    {
        float f => f,
        Half h => (double)h,
        BFloat16 b => b.ToSingle(),
        _ => throw new NotSupportedException(typeof(T).Name),
    };

    /// <summary>float64 C = alpha·A·Bᵀ + bias and Σ|a·b| from dequantized operands.</summary>
    public static (double[] C, double[] Abs) Reference(float[] a, float[] b, int m, int n, int k, float alpha = 1f, float[]? bias = null)
    {
        var c = new double[m * n];
        var abs = new double[m * n];
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double s = 0, sa = 0;
            for (int l = 0; l < k; l++)
            {
                double t = (double)a[i * k + l] * b[j * k + l];
                s += t;
                sa += Math.Abs(t);
            }
            c[i * n + j] = alpha * s + (bias?[j] ?? 0);
            abs[i * n + j] = sa;
        }
        return (c, abs);
    }
}
