using Microscale.Backends;

namespace Microscale;

/// <summary>
/// A quantized row-major [Rows, Columns] tensor (K = Columns is the reduction dimension): packed element codes, block-scale
/// codes in <see cref="ScaleLayout"/>, and binary32 decode scales. Owns its buffers.
/// </summary>
/// <remarks>
/// Storage follows NUMERICS.md §2–3: FP4 codes two per byte (element 2i in the low nibble), FP8 codes one per byte, each row
/// zero-padded to <see cref="PaddedColumns"/>. Block scales are E8M0 (MX) or UE4M3 (NVFP4) bytes; <see cref="DecodeScales"/>
/// holds the NVFP4 global decode scale g, the FP8 per-tensor scale, or one scale per row for FP8 per-row.
/// Spans returned by this object are valid until it is disposed.
/// </remarks>
public sealed class QuantizedTensor : IDisposable
{
    private QuantizedBuffers? _buffers;

    internal QuantizedTensor(QuantizationOptions options, int rows, int columns, QuantizedBuffers buffers)
    {
        Options = options;
        Rows = rows;
        Columns = columns;
        _buffers = buffers;
    }

    /// <summary>The options the tensor was quantized with (format, rule, layout, element, policy).</summary>
    public QuantizationOptions Options { get; }

    /// <summary>The quantized format.</summary>
    public QuantFormat Format => Options.Format;

    /// <summary>Layout of <see cref="BlockScales"/>.</summary>
    public ScaleLayout Layout => Options.Layout;

    /// <summary>Number of rows.</summary>
    public int Rows { get; }

    /// <summary>Logical number of columns (K).</summary>
    public int Columns { get; }

    /// <summary>Columns stored per row: K rounded up to <see cref="BlockSize"/>.</summary>
    public int PaddedColumns => Spec.PaddedColumns(Columns);

    /// <summary>Values per block scale (32 for MX, 16 for NVFP4, 0 for the FP8 per-tensor/per-row formats).</summary>
    public int BlockSize => Spec.BlockSize;

    /// <summary>Block scales per row (PaddedColumns / BlockSize; 0 without block scales).</summary>
    public int ScaleColumns => Spec.ScaleColumns(Columns);

    /// <summary>Storage cost per value, block scales included.</summary>
    public double BitsPerValue => Spec.BitsPerValue;

    internal FormatSpec Spec => FormatSpec.Of(Options);

    internal QuantizedBuffers Buffers => _buffers ?? throw new ObjectDisposedException(nameof(QuantizedTensor));

    /// <summary>Packed element codes, [Rows, PaddedColumns × bits / 8] bytes.</summary>
    /// <exception cref="ObjectDisposedException">The tensor was disposed.</exception>
    public ReadOnlySpan<byte> Data => Buffers.Data;

    /// <summary>Block-scale codes (E8M0 or UE4M3) in <see cref="Layout"/>; empty for the FP8 per-tensor/per-row formats.</summary>
    /// <exception cref="ObjectDisposedException">The tensor was disposed.</exception>
    public ReadOnlySpan<byte> BlockScales => Buffers.BlockScales;

    /// <summary>binary32 decode scales: [1] for NVFP4 and FP8 per-tensor, [Rows] for FP8 per-row, empty for MX.</summary>
    /// <exception cref="ObjectDisposedException">The tensor was disposed.</exception>
    public ReadOnlySpan<float> DecodeScales => Buffers.DecodeScales;

    /// <summary>The single per-tensor decode scale (NVFP4 g, FP8 per-tensor g).</summary>
    /// <exception cref="InvalidOperationException">The format has no single per-tensor scale.</exception>
    /// <exception cref="ObjectDisposedException">The tensor was disposed.</exception>
    public float GlobalScale => Format is QuantFormat.Nvfp4 or QuantFormat.Fp8PerTensor
        ? Buffers.DecodeScales[0]
        : throw new InvalidOperationException($"{Format} has no single per-tensor scale.");

    /// <summary>Creates a tensor from existing parts (for example a checkpoint), copying them. Checks every length.</summary>
    /// <param name="options">Format, layout and element of the parts.</param>
    /// <param name="rows">Rows, at least 1.</param>
    /// <param name="columns">Logical K, at least 1.</param>
    /// <param name="data">Packed codes, exactly rows × PaddedColumns × bits / 8 bytes.</param>
    /// <param name="blockScales">Scale codes, exactly the layout's size (empty for FP8 per-tensor/per-row).</param>
    /// <param name="decodeScales">binary32 scales: 1 for NVFP4 and FP8 per-tensor, rows for FP8 per-row, none for MX.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rows"/> or <paramref name="columns"/> is less than 1, or an option is undefined.</exception>
    /// <exception cref="ArgumentException">A part has the wrong length, or an option does not apply to the format.</exception>
    public static QuantizedTensor FromParts(QuantizationOptions options, int rows, int columns, ReadOnlySpan<byte> data,
                                            ReadOnlySpan<byte> blockScales, ReadOnlySpan<float> decodeScales)
    {
        ArgumentNullException.ThrowIfNull(options);
        ThrowHelper.ThrowIfNotPositive(rows, nameof(rows));
        ThrowHelper.ThrowIfNotPositive(columns, nameof(columns));
        options.Validate(nameof(options));
        var spec = FormatSpec.Of(options);
        ThrowHelper.ThrowIfLengthIsNot(spec.DataBytes(rows, columns), data.Length, nameof(data), "bytes");
        ThrowHelper.ThrowIfLengthIsNot(spec.BlockScaleBytes(rows, columns, options.Layout), blockScales.Length, nameof(blockScales), "bytes");
        ThrowHelper.ThrowIfLengthIsNot(spec.DecodeScaleCount(rows), decodeScales.Length, nameof(decodeScales));
        return new QuantizedTensor(options, rows, columns, new QuantizedBuffers(data.ToArray(), blockScales.ToArray(), decodeScales.ToArray()));
    }

    /// <summary>Dequantizes into a new row-major [Rows, Columns] array (padding dropped).</summary>
    /// <remarks>value = element × scale (MX), element × s × g (NVFP4), element × g (FP8); a NaN scale gives NaN.</remarks>
    /// <exception cref="ObjectDisposedException">The tensor was disposed.</exception>
    /// <exception cref="NotSupportedException"><paramref name="backend"/> is <see cref="Backend.Cuda"/> and no CUDA device exists.</exception>
    public float[] Dequantize(Backend backend = Backend.Auto)
    {
        var result = new float[(long)Rows * Columns];
        Dequantize(result, backend);
        return result;
    }

    /// <summary>Dequantizes into <paramref name="destination"/>, row-major [Rows, Columns].</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than Rows × Columns.</exception>
    /// <exception cref="ObjectDisposedException">The tensor was disposed.</exception>
    /// <exception cref="NotSupportedException"><paramref name="backend"/> is <see cref="Backend.Cuda"/> and no CUDA device exists.</exception>
    public void Dequantize(Span<float> destination, Backend backend = Backend.Auto)
    {
        var buffers = Buffers;
        ThrowHelper.ThrowIfDestinationTooShort((long)Rows * Columns, destination.Length, nameof(destination));
        var device = BackendSelector.Resolve(backend);
        if (device is null)
            ReferenceQuantizer.Dequantize(buffers, Rows, Columns, Options, destination);
        else
            IlgpuQuantizer.Dequantize(device, buffers, Rows, Columns, Options, destination);
    }

    /// <summary>Releases the buffers; idempotent.</summary>
    public void Dispose() => _buffers = null;

    /// <inheritdoc/>
    public override string ToString() => $"QuantizedTensor({Options}, {Rows}×{Columns})";
}
