namespace Microscale.Tests;

/// <summary>Test assertions over <see cref="GemmAccuracy"/>: the per-kernel GEMM bound of NUMERICS.md §5.</summary>
internal static class GemmBounds
{
    /// <summary>Asserts |C − C_ref| ≤ ε(K, kernel)·|alpha|·Σ|a·b| + ulp_out(C_ref) for every element, reporting the worst one.</summary>
    public static void AssertWithin<T>(ReadOnlySpan<double> expected, ReadOnlySpan<double> absProduct, ReadOnlySpan<T> actual, int n, int k,
                                       float alpha, string what, string kernel) where T : unmanaged
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), what + ": length");
        var (worst, i) = GemmAccuracy.Check(expected, absProduct, actual, k, alpha, kernel);
        if (!(worst <= 1.0))
            Assert.Fail($"{what} [{kernel}]: worst at (m {i / n}, n {i % n}) K={k}: expected {expected[i]:R}, |err| / bound = {worst:E3}");
    }

    /// <summary>float64 C = alpha·A·Bᵀ + bias and Σ|a·b| from dequantized operands.</summary>
    public static (double[] C, double[] Abs) Reference(float[] a, float[] b, int m, int n, int k, float alpha = 1f, float[]? bias = null) =>
        GemmAccuracy.Reference(a, b, m, n, k, alpha, bias);
}
