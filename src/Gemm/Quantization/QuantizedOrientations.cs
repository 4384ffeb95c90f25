using Microscale.Tensors;

namespace Microscale;

/// <summary>
/// One tensor quantized along both dimensions (<see cref="MicroscaleContext.QuantizeBothOrientations{T}(DeviceTensor{T}, QuantizationOptions, HadamardTransform?, QuantizationOptions, HadamardTransform?)"/>):
/// <see cref="Rows"/> reduces over the source's columns, <see cref="Columns"/> (the transpose) over its rows.
/// </summary>
public sealed class QuantizedOrientations : IDisposable
{
    internal QuantizedOrientations(QuantizedTensor rows, QuantizedTensor columns) => (Rows, Columns) = (rows, columns);

    /// <summary>Quantize(source), [rows, columns].</summary>
    public QuantizedTensor Rows { get; }

    /// <summary>Quantize(sourceᵀ), [columns, rows].</summary>
    public QuantizedTensor Columns { get; }

    /// <summary>Disposes both tensors.</summary>
    public void Dispose()
    {
        Rows.Dispose();
        Columns.Dispose();
    }
}
