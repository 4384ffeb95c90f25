namespace Microscale;

/// <summary>Epilogue of a GEMM: C = Alpha · A·Bᵀ + Bias.</summary>
public sealed record GemmOptions
{
    /// <summary>The default: alpha 1, no bias.</summary>
    public static GemmOptions Default { get; } = new();

    /// <summary>Scale applied to the accumulated product (binary32). Default 1.</summary>
    public float Alpha { get; init; } = 1.0f;

    /// <summary>Optional bias of N values (any shape with N elements), on the same context as the operands.</summary>
    public DeviceTensor<float>? Bias { get; init; }

    /// <summary>A promise that B (the weights) is not written by any work still running on the stream when the GEMM is
    /// launched, as with a model's weights. On sm_90+ the native decode kernel (up to 64 tokens) then starts reading B while
    /// the previous kernel on the stream finishes (programmatic dependent launch); everything else still waits for that
    /// kernel. Breaking the promise gives undefined results. Other kernels and backends ignore it. Default false.</summary>
    public bool StaticWeights { get; init; }
}

/// <summary>The operand pairs of NUMERICS.md §5 and what each is called.</summary>
internal static class GemmPairs
{
    /// <summary>Name of the pair for messages, or throws <see cref="NotSupportedException"/> naming the combination.</summary>
    public static string Check(QuantizationOptions? a, QuantizationOptions b)
    {
        var bf = b.Format;
        bool bFp4 = bf is QuantFormat.Mxfp4 or QuantFormat.Nvfp4;
        if (a is null)
            return bFp4 ? $"W4A16 ({bf} weights × dense activations)"
                 : bf is QuantFormat.Fp8PerTensor or QuantFormat.Fp8PerRow ? $"W8A16 ({bf} weights × dense activations)"
                 : Unsupported("dense activations", b);
        var af = a.Format;
        if (af == QuantFormat.Mxfp4 && bf == QuantFormat.Mxfp4) return "W4A4 MXFP4";
        if (af == QuantFormat.Nvfp4 && bf == QuantFormat.Nvfp4) return "W4A4 NVFP4";
        if (bFp4 && af is QuantFormat.Fp8PerRow or QuantFormat.Fp8PerTensor or QuantFormat.Mxfp8 && a.Element == Fp8Element.E4M3)
            return $"W4A8 ({bf} weights × {af} E4M3 activations)";
        if (af is QuantFormat.Fp8PerTensor or QuantFormat.Fp8PerRow && bf is QuantFormat.Fp8PerTensor or QuantFormat.Fp8PerRow)
            return $"W8A8 ({af} × {bf})";
        if (af == QuantFormat.Mxfp8 && bf == QuantFormat.Mxfp8) return "W8A8 MXFP8";
        if (af is QuantFormat.Mxint8 or QuantFormat.Mxint6 or QuantFormat.Mxint4 && af == bf) return $"{af} x {bf} (INT v.s. FP)";
        if (af == QuantFormat.Nvint4 && bf == QuantFormat.Nvint4) return "W4A4 NVINT4";
        return Unsupported(a.ToString(), b);
    }

    private static string Unsupported(string a, QuantizationOptions b) => throw new NotSupportedException(
        $"No GEMM for activations {a} with weights {b}. Supported: MXFP4×MXFP4, NVFP4×NVFP4, FP8 E4M3 (per-row, per-tensor, MXFP8)×FP4 " +
        "(W4A8), FP8 per-tensor/per-row×FP8 per-tensor/per-row, MXFP8×MXFP8, MXINTb×MXINTb, NVINT4×NVINT4, dense×FP4 (W4A16), " +
        "dense×FP8 per-tensor/per-row (W8A16).");
}
