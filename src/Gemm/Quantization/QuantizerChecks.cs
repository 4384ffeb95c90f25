using System.Diagnostics.CodeAnalysis;

namespace Microscale;

/// <summary>Argument checks shared by every quantize entry point, so each rule is written once.</summary>
internal static class QuantizerChecks
{
    /// <summary>Largest element count one tensor may have (ILGPU views and our index math are 32-bit).</summary>
    public const long MaxElements = int.MaxValue;

    public static void ValidateShape(long sourceLength, int rows, int columns, QuantizationOptions options, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(options);
        ThrowHelper.ThrowIfNotPositive(rows, nameof(rows));
        ThrowHelper.ThrowIfNotPositive(columns, nameof(columns));
        options.Validate(nameof(options));
        ThrowIfTiled(options.Layout, nameof(options));
        ThrowHelper.ThrowIfLengthIsNot((long)rows * columns, sourceLength, sourceName, $"elements (rows {rows} × columns {columns})");
        var spec = FormatSpec.Of(options);
        if ((long)rows * spec.PaddedColumns(columns) > MaxElements)
            ThrowHelper.ThrowArgument(sourceName, $"Tensor of {rows} × {columns} exceeds {MaxElements} elements.");
    }

    /// <summary>Quantizers write the linear or swizzled layouts; the tiled one comes from <see cref="MicroscaleContext.Relayout"/>.</summary>
    public static void ThrowIfTiled(ScaleLayout layout, string paramName)
    {
        if (layout == ScaleLayout.Tiled16x128)
            ThrowHelper.ThrowArgument(paramName, "Quantizers write the Linear or Swizzled128x4 layout; quantize into one of them, then " +
                                                 "MicroscaleContext.Prepack (or Relayout) makes the Tiled16x128 copy.");
    }

    /// <summary>What stores and converts tensors reads the linear or swizzled layouts; a prepacked (tiled) tensor goes back first.</summary>
    public static void ThrowIfTiledInput(QuantizedTensor tensor, string paramName)
    {
        if (tensor.Layout == ScaleLayout.Tiled16x128)
            ThrowHelper.ThrowArgument(paramName, "This takes the Linear or Swizzled128x4 layout, not the prepacked Tiled16x128 one: " +
                                                 "MicroscaleContext.Relayout(tensor, ScaleLayout.Linear) first.");
    }

    [DoesNotReturn]
    public static void ThrowNonFinite(int row, int column) =>
        throw new ArgumentException($"Non-finite value at (row {row}, column {column}) and NonFinitePolicy.Throw is set; nothing was written.", "source");
}
