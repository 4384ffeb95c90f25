namespace Microscale;

/// <summary>
/// The error bounds GEMM results are checked against (NUMERICS.md §5):
/// |C − C_ref| ≤ ε · |alpha| · Σ_k |deq a · deq b| + one ulp of the output type, with C_ref the float64 product of the
/// dequantized operands.
/// </summary>
public static class GemmAccuracy
{
    /// <summary>
    /// ε for a kernel (by the name <see cref="MicroscaleContext.LastGemmKernel"/> reports) and reduction length K.
    /// <list type="bullet">
    /// <item>binary32 accumulation (ILGPU kernels, the generic CUDA kernel): one rounding per dequantized operand value,
    /// one per product, K − 1 additions, alpha and bias: ε = (K + 4)·2^−24.</item>
    /// <item>Hopper FP8 tensor cores (<c>sm90_fp8</c> kernels): each 128-wide K block is accumulated by wgmma with reduced
    /// precision, then promoted into binary32. Measured on the H100 (microscale_selftest): worst block error 5.1·2^−13 of the
    /// block's Σ|a·b|; the bound takes 2^−9 (a 3× margin). Blocks add at most linearly, so
    /// ε = 2^−9 + (⌈K/128⌉ + 4)·2^−24.</item>
    /// <item>Hopper W4A8 (<c>sm90_w4a8</c>): the same tensor cores on weights folded exactly into E4M3; a K block whose weight
    /// rows span more than 14 binades is summed in up to four passes, each promoted: ε = 2^−9 + (4⌈K/128⌉ + 4)·2^−24.</item>
    /// <item>Decode kernels (<c>sm80_decode</c>): operands dequantized exactly to BF16, exact products; mma.sync adds
    /// 16 products aligned to the largest and truncated, then FP32 sums across chunks and splits, scales in FP32:
    /// ε = 2^−17 + (K + 8)·2^−24. The Gpu tests print the measured worst ratio.</item>
    /// <item>GeForce Blackwell block-scaled FP4 kernels (<c>sm120_fp4</c>): block sums of products exact, the PTX promises at least
    /// single-precision accumulation: the binary32 bound. (Checked by emulation on sm_90 only; no Blackwell run yet.)</item>
    /// </list>
    /// </summary>
    /// <param name="k">The reduction length K.</param>
    /// <param name="kernel">The kernel name; empty or unknown names get the binary32 bound.</param>
    public static double Epsilon(int k, string? kernel)
    {
        if (kernel is not null && kernel.Contains("sm90_fp8", StringComparison.Ordinal))
            return Math.Pow(2, -9) + ((k + 127) / 128 + 4) * Math.Pow(2, -24);
        if (kernel is not null && kernel.Contains("sm90_w4a8", StringComparison.Ordinal))
            return Math.Pow(2, -9) + (4 * ((k + 127) / 128) + 4) * Math.Pow(2, -24);
        if (kernel is not null && kernel.Contains("sm80_decode", StringComparison.Ordinal))
            return Math.Pow(2, -17) + (k + 8) * Math.Pow(2, -24);
        return (k + 4) * Math.Pow(2, -24);
    }

    /// <summary>
    /// float64 reference C = alpha·A·Bᵀ + bias of row-major binary32 operands A [m, k] and B [n, k] (dequantized values), and
    /// Σ_k |a·b| per element for <see cref="Check{T}"/>.
    /// </summary>
    public static (double[] C, double[] AbsProduct) Reference(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int m, int n, int k,
                                                            float alpha = 1f, ReadOnlySpan<float> bias = default)
    {
        var (c, abs) = ReferenceGemm.Products(a, b, m, n, k, withAbsolute: true);
        for (int i = 0; i < c.Length; i++)
            c[i] = alpha * c[i] + (bias.IsEmpty ? 0 : bias[i % n]);
        return (c, abs!);
    }

    /// <summary>
    /// The worst |C − C_ref| / (ε(K, kernel)·|alpha|·Σ|a·b| + ulp_out(C_ref)) over all elements (≤ 1 passes; NaN counts as
    /// +∞) and where it is. <typeparamref name="T"/> (float, Half or BFloat16) sets the output ulp.
    /// </summary>
    public static (double WorstRatio, int WorstIndex) Check<T>(ReadOnlySpan<double> expected, ReadOnlySpan<double> absProduct,
                                                               ReadOnlySpan<T> actual, int k, float alpha, string? kernel) where T : unmanaged
    {
        ThrowHelper.ThrowIfLengthIsNot(expected.Length, actual.Length, nameof(actual));
        ThrowHelper.ThrowIfLengthIsNot(expected.Length, absProduct.Length, nameof(absProduct));
        double epsilon = Epsilon(k, kernel), worst = 0;
        int where = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            double got = ToDouble(actual[i]);
            double ratio = Math.Abs(got - expected[i]) / (epsilon * Math.Abs(alpha) * absProduct[i] + OutputUlp<T>(expected[i]));
            if (double.IsNaN(ratio))
                ratio = double.PositiveInfinity;
            if (where < 0 || ratio > worst)
                (worst, where) = (ratio, i);
        }
        return (worst, where);
    }

    /// <summary>The unit in the last place of <paramref name="value"/> in the output type (RNE is within half of it).</summary>
    public static double OutputUlp<T>(double value)
    {
        double a = Math.Abs(value);
        int e = a == 0 ? -1000 : (int)Math.Floor(Math.Log2(a));
        if (typeof(T) == typeof(float)) return Math.Pow(2, Math.Max(e, -126) - 23);
        if (typeof(T) == typeof(BFloat16)) return Math.Pow(2, Math.Max(e, -126) - 7);
        if (typeof(T) == typeof(Half)) return Math.Pow(2, Math.Max(e, -14) - 10);
        throw new NotSupportedException($"Output type {typeof(T).Name} is not float, Half or BFloat16.");
    }

    private static double ToDouble<T>(T value) where T : unmanaged => value switch
    {
        float f => f,
        Half h => (double)h,
        BFloat16 b => b.ToSingle(),
        _ => throw new NotSupportedException(typeof(T).Name),
    };
}
