namespace Microscale;

/// <summary>The three host buffers of a quantized tensor: packed element codes, block-scale codes, binary32 decode scales.</summary>
internal sealed class QuantizedBuffers
{
    public QuantizedBuffers(byte[] data, byte[] blockScales, float[] decodeScales)
    {
        Data = data;
        BlockScales = blockScales;
        DecodeScales = decodeScales;
    }

    public byte[] Data { get; }
    public byte[] BlockScales { get; }
    public float[] DecodeScales { get; }

    /// <summary>Zeroed buffers of the sizes <paramref name="spec"/> gives for a [rows, columns] tensor.</summary>
    public static QuantizedBuffers Allocate(FormatSpec spec, int rows, int columns, ScaleLayout layout) =>
        new(new byte[spec.DataBytes(rows, columns)], new byte[spec.BlockScaleBytes(rows, columns, layout)],
            new float[spec.DecodeScaleCount(rows)]);
}
