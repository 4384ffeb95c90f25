namespace Microscale;

/// <summary>Quantizes row-major [rows, columns] tensors (K = columns) into every format of NUMERICS.md §3.</summary>
/// <remarks>
/// Every backend writes identical bytes for identical input (bit-exact by specification). Half and BFloat16 inputs are
/// widened to binary32 exactly first.
/// </remarks>
public static class Quantizer
{
    /// <summary>Quantizes a binary32 tensor.</summary>
    /// <param name="source">Row-major values, exactly rows × columns.</param>
    /// <param name="rows">Rows, at least 1.</param>
    /// <param name="columns">Columns (K), at least 1; zero-padded to the block size.</param>
    /// <param name="options">Format, scale rule, layout, element and non-finite policy.</param>
    /// <param name="backend">Where to run.</param>
    /// <returns>A new tensor the caller owns.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rows"/> or <paramref name="columns"/> is less than 1, or an enum is undefined.</exception>
    /// <exception cref="ArgumentException"><paramref name="source"/> has the wrong length; an option does not apply to the format;
    /// or <see cref="NonFinitePolicy.Throw"/> is set and the source holds NaN/±Inf (the message names the first row and column).</exception>
    /// <exception cref="NotSupportedException"><paramref name="backend"/> is <see cref="Backend.Cuda"/> and no CUDA device exists.</exception>
    public static QuantizedTensor Quantize(ReadOnlySpan<float> source, int rows, int columns, QuantizationOptions options, Backend backend = Backend.Auto)
    {
        QuantizerChecks.ValidateShape(source.Length, rows, columns, options, nameof(source));
        return QuantizeOn(source, rows, columns, options, backend);
    }

    /// <inheritdoc cref="Quantize(ReadOnlySpan{float}, int, int, QuantizationOptions, Backend)"/>
    public static QuantizedTensor Quantize(ReadOnlySpan<Half> source, int rows, int columns, QuantizationOptions options, Backend backend = Backend.Auto)
    {
        QuantizerChecks.ValidateShape(source.Length, rows, columns, options, nameof(source));
        return QuantizeOn(source, rows, columns, options, backend);
    }

    /// <inheritdoc cref="Quantize(ReadOnlySpan{float}, int, int, QuantizationOptions, Backend)"/>
    public static QuantizedTensor Quantize(ReadOnlySpan<BFloat16> source, int rows, int columns, QuantizationOptions options, Backend backend = Backend.Auto)
    {
        QuantizerChecks.ValidateShape(source.Length, rows, columns, options, nameof(source));
        return QuantizeOn(source, rows, columns, options, backend);
    }

    private static QuantizedTensor QuantizeOn<T>(ReadOnlySpan<T> source, int rows, int columns, QuantizationOptions options, Backend backend)
        where T : unmanaged
    {
        var context = MicroscaleContext.Shared(backend);
        using var input = context.CreateTensor(source, rows, columns);
        using var quantized = context.Quantize(input, options);
        return quantized.ToHost();
    }

    /// <summary>Quantizes along the other dimension: <c>Quantize(sourceᵀ)</c> byte for byte, a [columns, rows] tensor (NUMERICS.md §9).</summary>
    /// <inheritdoc cref="Quantize(ReadOnlySpan{float}, int, int, QuantizationOptions, Backend)"/>
    public static QuantizedTensor QuantizeTransposed(ReadOnlySpan<float> source, int rows, int columns, QuantizationOptions options, Backend backend = Backend.Auto)
    {
        QuantizerChecks.ValidateShape(source.Length, rows, columns, options, nameof(source));
        var context = MicroscaleContext.Shared(backend);
        using var input = context.CreateTensor(source, rows, columns);
        using var quantized = context.QuantizeTransposed(input, options);
        return quantized.ToHost();
    }
}
