namespace Microscale.Cli.Commands;

/// <summary>The GEMM pairs by their CLI names: the activation (A) and weight (B) formats each quantizes to.</summary>
internal static class PairPresets
{
    public static readonly string[] Names = { "mxfp4", "nvfp4", "w4a8", "fp8-row", "fp8-tensor", "mxfp8", "w4a16", "mxint8", "nvint4" };

    /// <summary>A's options (null: dense activations, W4A16) and B's options.</summary>
    /// <param name="pair">One of <see cref="Names"/>.</param>
    /// <param name="weights">FP4 weight format for w4a8 / w4a16 (null: MXFP4 for w4a8, NVFP4 for w4a16).</param>
    /// <param name="layout">Block-scale layout of both operands (block-scaled formats only).</param>
    public static (QuantizationOptions? A, QuantizationOptions B) For(string pair, QuantFormat? weights = null, ScaleLayout layout = ScaleLayout.Linear)
    {
        QuantizationOptions Q(QuantFormat f) => new(f) { Layout = f is QuantFormat.Fp8PerRow or QuantFormat.Fp8PerTensor ? ScaleLayout.Linear : layout };
        return pair switch
        {
            "mxfp4" => (Q(QuantFormat.Mxfp4), Q(QuantFormat.Mxfp4)),
            "nvfp4" => (Q(QuantFormat.Nvfp4), Q(QuantFormat.Nvfp4)),
            "w4a8" => (Q(QuantFormat.Fp8PerRow), Q(weights ?? QuantFormat.Mxfp4)),
            "fp8-row" => (Q(QuantFormat.Fp8PerRow), Q(QuantFormat.Fp8PerRow)),
            "fp8-tensor" => (Q(QuantFormat.Fp8PerTensor), Q(QuantFormat.Fp8PerTensor)),
            "mxfp8" => (Q(QuantFormat.Mxfp8), Q(QuantFormat.Mxfp8)),
            "w4a16" => (null, Q(weights ?? QuantFormat.Nvfp4)),
            "mxint8" => (Q(QuantFormat.Mxint8), Q(QuantFormat.Mxint8)),
            "nvint4" => (Q(QuantFormat.Nvint4), Q(QuantFormat.Nvint4)),
            _ => throw new ArgumentException($"Unknown pair '{pair}': expected {string.Join(", ", Names)}.", "--pair"),
        };
    }

    /// <summary>Parses a CLI backend name (auto, native, cuda, cpu, reference).</summary>
    public static Backend ParseBackend(string name) => Enum.TryParse<Backend>(name, ignoreCase: true, out var b) && Enum.IsDefined(b)
        ? b
        : throw new ArgumentException($"Unknown backend '{name}': expected auto, native, cuda, cpu or reference.", "--backend");
}
