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
        ThrowHelper.ThrowIfLengthIsNot((long)rows * columns, sourceLength, sourceName, $"elements (rows {rows} × columns {columns})");
        var spec = FormatSpec.Of(options);
        if ((long)rows * spec.PaddedColumns(columns) > MaxElements)
            ThrowHelper.ThrowArgument(sourceName, $"Tensor of {rows} × {columns} exceeds {MaxElements} elements.");
    }

    [DoesNotReturn]
    public static void ThrowNonFinite(int row, int column) =>
        throw new ArgumentException($"Non-finite value at (row {row}, column {column}) and NonFinitePolicy.Throw is set; nothing was written.", "source");
}
