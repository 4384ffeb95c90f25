namespace Microscale;

/// <summary>
/// The float64 GEMM reference: C[m, n] = alpha · Σ_k deq(A)[m, k] · deq(B)[n, k] + bias[n], accumulated in double and rounded
/// once to the output type. What <see cref="Backend.Reference"/> runs and what tests measure the other backends against.
/// </summary>
internal static class ReferenceGemm
{
    /// <summary>Σ_k a[m, k] · b[n, k] in float64 for row-major [m, k] and [n, k] operands.</summary>
    public static double[] Product(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int m, int n, int k) => Products(a, b, m, n, k, withAbsolute: false).Product;

    /// <summary>
    /// float64 Σ_k a·b per element of A [m, k]·B [n, k]ᵀ and, <paramref name="withAbsolute"/>, Σ_k |a·b|, in one pass. Rows run
    /// in parallel above a million multiply-adds; each element is summed in K order, so the values never depend on the thread
    /// count.
    /// </summary>
    public static (double[] Product, double[]? Absolute) Products(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int m, int n, int k, bool withAbsolute)
    {
        var c = new double[(long)m * n];
        var abs = withAbsolute ? new double[c.Length] : null;
        float[] aa = a.ToArray(), bb = b.ToArray(); // (spans cannot enter the parallel body)
        void Row(int i)
        {
            long aRow = (long)i * k;
            for (int j = 0; j < n; j++)
            {
                long bRow = (long)j * k;
                double sum = 0, absolute = 0;
                for (int l = 0; l < k; l++)
                {
                    double term = (double)aa[aRow + l] * bb[bRow + l];
                    sum += term;
                    absolute += Math.Abs(term);
                }
                c[(long)i * n + j] = sum;
                if (abs is not null)
                    abs[(long)i * n + j] = absolute;
            }
        }
        if ((long)m * n * k >= 1 << 20)
            Parallel.For(0, m, Row);
        else
            for (int i = 0; i < m; i++)
                Row(i);
        return (c, abs);
    }

    /// <summary>The epilogue, in float64 then one rounding.</summary>
    public static void Store<TOut>(ReadOnlySpan<double> product, float alpha, ReadOnlySpan<float> bias, int n, Span<TOut> destination)
        where TOut : unmanaged
    {
        for (int i = 0; i < product.Length; i++)
        {
            double value = alpha * product[i] + (bias.IsEmpty ? 0.0 : bias[i % n]);
            destination[i] = OutputConvert.From<TOut>(value);
        }
    }
}

/// <summary>Conversions into the GEMM output types.</summary>
internal static class OutputConvert
{
    /// <summary>0 binary32, 1 BF16, 2 FP16; throws <see cref="NotSupportedException"/> for other types.</summary>
    public static int Kind<T>(string paramName) =>
        typeof(T) == typeof(float) ? 0
        : typeof(T) == typeof(BFloat16) ? 1
        : typeof(T) == typeof(Half) ? 2
        : throw new NotSupportedException($"{paramName}: element type {typeof(T).Name} is not supported; use float, Half or BFloat16.");

    public static T From<T>(double value) where T : unmanaged
    {
        if (typeof(T) == typeof(float))
            return (T)(object)(float)value;
        if (typeof(T) == typeof(Half))
            return (T)(object)(Half)value;
        // double → BF16 directly, round-to-nearest-even on the double value (no double rounding through binary32).
        return (T)(object)BFloat16.FromRawValue(Bf16FromDouble(value));
    }

    private static ushort Bf16FromDouble(double value)
    {
        if (double.IsNaN(value))
            return 0x7FC0;
        float f = (float)value;                          // may round
        ushort lower = BFloat16.FromSingle(f).RawValue;  // candidate; correct unless f itself landed on a bf16 tie
        float down = BitConverter.Int32BitsToSingle((int)(BitConverter.SingleToUInt32Bits(f) & 0xFFFF0000u));
        float up = BitConverter.Int32BitsToSingle((int)((BitConverter.SingleToUInt32Bits(f) & 0xFFFF0000u) + 0x10000u));
        double mid = ((double)down + up) / 2;
        if ((double)f == mid && value != mid && float.IsFinite(up))
            return BFloat16.FromSingle(Math.Abs(value) > Math.Abs(mid) ? up : down).RawValue;
        return lower;
    }
}
