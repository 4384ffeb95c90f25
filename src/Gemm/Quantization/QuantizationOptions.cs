namespace Microscale;

/// <summary>The quantized formats (NUMERICS.md §3).</summary>
public enum QuantFormat
{
    /// <summary>OCP MXFP4: E2M1 elements, one E8M0 scale per 32 along K.</summary>
    Mxfp4,
    /// <summary>OCP MXFP8: E4M3 (or E5M2) elements, one E8M0 scale per 32 along K.</summary>
    Mxfp8,
    /// <summary>NVFP4: E2M1 elements, one UE4M3 scale per 16 along K, one binary32 decode scale per tensor.</summary>
    Nvfp4,
    /// <summary>FP8 with one binary32 decode scale for the whole tensor.</summary>
    Fp8PerTensor,
    /// <summary>FP8 with one binary32 decode scale per row (per token for activations, per channel for weights).</summary>
    Fp8PerRow,
    /// <summary>MXINT8: 8-bit integers in [−127, 127], one E8M0 scale per 32 (NUMERICS.md §8).</summary>
    Mxint8,
    /// <summary>MXINT6: 6-bit integers in [−31, 31] stored one per byte, one E8M0 scale per 32.</summary>
    Mxint6,
    /// <summary>MXINT4: 4-bit integers in [−7, 7] packed two per byte, one E8M0 scale per 32.</summary>
    Mxint4,
    /// <summary>NVINT4: 4-bit integers in [−7, 7], one UE4M3 scale per 16, one binary32 decode scale per tensor.</summary>
    Nvint4,
}

/// <summary>The 8-bit element of <see cref="QuantFormat.Mxfp8"/>, <see cref="QuantFormat.Fp8PerTensor"/> and <see cref="QuantFormat.Fp8PerRow"/>.</summary>
public enum Fp8Element
{
    /// <summary>E4M3FN, max 448 (the default).</summary>
    E4M3,
    /// <summary>E5M2, max 57344.</summary>
    E5M2,
}

/// <summary>How an MX block's E8M0 exponent is chosen from its amax (NUMERICS.md §3).</summary>
public enum MxScaleRule
{
    /// <summary>OCP: e = floor(log2 amax) − emax_elem. Values past the element max saturate.</summary>
    Floor,
    /// <summary>NVIDIA RCEIL: e = ceil(log2(amax / max_elem)); nothing saturates.</summary>
    Ceil,
}

/// <summary>Byte layout of a quantized tensor: of its block scales, and for <see cref="Tiled16x128"/> of its codes too.</summary>
public enum ScaleLayout
{
    /// <summary>Row-major [rows, K/block].</summary>
    Linear,
    /// <summary>The 128×4 tiled layout that block-scaled tensor-core GEMMs (cuBLASLt, CUTLASS, QuTLASS) read; rows padded to 128, scale columns to 4.</summary>
    Swizzled128x4,
    /// <summary>
    /// MXFP4 / NVFP4 weights prepacked for the decode GEMM (<see cref="MicroscaleContext.Prepack"/>): codes and block scales in
    /// tiles of 16 rows × 128 values (1024 code bytes per tile, each tile row's 64 bytes as in <see cref="Linear"/>; the
    /// tile's scales grouped so one load of a GPU lane holds those of its rows), rows padded to 16, K to 128, padding zero.
    /// The exact byte order is in <c>native/include/microscale.h</c> (MS_LAYOUT_TILED_16X128). Every backend's GEMM and
    /// dequantization reads it; quantizers write <see cref="Linear"/> or <see cref="Swizzled128x4"/>, which
    /// <see cref="MicroscaleContext.Relayout"/> turns into it.
    /// </summary>
    Tiled16x128,
}

/// <summary>What a quantizer does with NaN and ±Inf inputs (NUMERICS.md §6).</summary>
public enum NonFinitePolicy
{
    /// <summary>Blocks holding NaN/Inf get a NaN scale so every output that reads them is NaN (FP8 per-tensor/row: NaN → NaN code, ±Inf → ±max).</summary>
    Propagate,
    /// <summary>Throw an <see cref="ArgumentException"/> naming the first offending (row, column), writing nothing.</summary>
    Throw,
}

/// <summary>Everything that decides the bytes a quantizer writes.</summary>
/// <param name="Format">The quantized format.</param>
public sealed record QuantizationOptions(QuantFormat Format)
{
    /// <summary>MX exponent rule; only for <see cref="QuantFormat.Mxfp4"/> and <see cref="QuantFormat.Mxfp8"/>. Default <see cref="MxScaleRule.Floor"/>.</summary>
    public MxScaleRule Rule { get; init; } = MxScaleRule.Floor;

    /// <summary>Block-scale layout; <see cref="ScaleLayout.Swizzled128x4"/> only for block-scaled formats. Default <see cref="ScaleLayout.Linear"/>.</summary>
    public ScaleLayout Layout { get; init; } = ScaleLayout.Linear;

    /// <summary>Non-finite input policy. Default <see cref="NonFinitePolicy.Propagate"/>.</summary>
    public NonFinitePolicy NonFinite { get; init; } = NonFinitePolicy.Propagate;

    /// <summary>8-bit element for the FP8 formats and MXFP8; must stay <see cref="Fp8Element.E4M3"/> for the FP4 formats.</summary>
    public Fp8Element Element { get; init; } = Fp8Element.E4M3;

    /// <summary>Element rounding (NUMERICS.md §7). Default <see cref="RoundingMode.Nearest"/>; scales are never rounded stochastically.</summary>
    public RoundingMode Rounding { get; init; } = RoundingMode.Nearest;

    /// <summary>
    /// NVFP4 only: take each block scale from the amax of a 16-row × 16-column tile (the NVFP4 training recipe's weight
    /// scales, NUMERICS.md §9) and write it to each of the tile's rows, so the scale layout and every GEMM stay unchanged.
    /// </summary>
    public bool TwoDimensionalBlocks { get; init; }

    /// <summary>Key of the Philox random bytes for <see cref="RoundingMode.Stochastic"/> (the same seed gives the same bytes on every backend).</summary>
    public ulong Seed { get; init; }

    /// <summary>Checks that every option is defined and applies to <see cref="Format"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An enum value is not defined.</exception>
    /// <exception cref="ArgumentException">An option does not apply to the format.</exception>
    public void Validate(string paramName = "options")
    {
        ThrowHelper.ThrowIfUndefined(Format, paramName);
        ThrowHelper.ThrowIfUndefined(Rule, paramName);
        ThrowHelper.ThrowIfUndefined(Layout, paramName);
        ThrowHelper.ThrowIfUndefined(NonFinite, paramName);
        ThrowHelper.ThrowIfUndefined(Element, paramName);
        ThrowHelper.ThrowIfUndefined(Rounding, paramName);
        var spec = FormatSpec.Of(this);
        if (!spec.IsBlockScaled && Layout != ScaleLayout.Linear)
            ThrowHelper.ThrowArgument(paramName, $"Scale layout {Layout} applies only to block-scaled formats, not {Format}.");
        if (Layout == ScaleLayout.Tiled16x128 && Format is not (QuantFormat.Mxfp4 or QuantFormat.Nvfp4))
            ThrowHelper.ThrowArgument(paramName, $"Layout {Layout} applies only to Mxfp4 and Nvfp4, not {Format}.");
        if (!spec.IsMx && Rule != MxScaleRule.Floor)
            ThrowHelper.ThrowArgument(paramName, $"Scale rule {Rule} applies only to MX formats, not {Format}.");
        if (TwoDimensionalBlocks && Format != QuantFormat.Nvfp4)
            ThrowHelper.ThrowArgument(paramName, $"Two-dimensional 16x16 blocks apply only to Nvfp4, not {Format}.");
        if (!spec.HasFp8Element && Element != Fp8Element.E4M3)
            ThrowHelper.ThrowArgument(paramName, $"Element {Element} applies only to FP8 formats, not {Format}.");
        if (spec.IsInteger && Rounding == RoundingMode.Stochastic)
            ThrowHelper.ThrowArgument(paramName, $"Stochastic rounding is defined for the FP formats only, not {Format}.");
    }

    /// <summary>Short name used by the CLI and in reports, e.g. <c>mxfp4</c>, <c>fp8-row</c>, <c>fp8-tensor-e5m2</c>.</summary>
    public override string ToString() => FormatSpec.Of(this).Name + (Rule == MxScaleRule.Ceil ? "/ceil" : "") +
                                         (Layout == ScaleLayout.Swizzled128x4 ? "/swizzled" : Layout == ScaleLayout.Tiled16x128 ? "/tiled" : "") +
                                         (Rounding == RoundingMode.Stochastic ? $"/sr{Seed}" : "") + (TwoDimensionalBlocks ? "/2d" : "");
}
