using Microscale.Tensors;

namespace Microscale;

/// <summary>
/// A quantized row-major [Rows, Columns] tensor (K = Columns is the reduction dimension): packed element codes, block-scale
/// codes in <see cref="ScaleLayout"/>, and binary32 decode scales. Owns its buffers.
/// </summary>
/// <remarks>
/// Storage follows NUMERICS.md §2–3: FP4 codes two per byte (element 2i in the low nibble), FP8 codes one per byte, each row
/// zero-padded to <see cref="PaddedColumns"/>. Block scales are E8M0 (MX) or UE4M3 (NVFP4) bytes; <see cref="DecodeScales"/>
/// holds the NVFP4 global decode scale g, the FP8 per-tensor scale, or one scale per row for FP8 per-row.
/// A tensor lives on the host (from <see cref="Quantizer"/> or <see cref="FromParts"/>) or on a <see cref="MicroscaleContext"/>'s
/// device (from its operations); <see cref="ToHost"/> and <see cref="MicroscaleContext.Upload"/> move it. Spans returned by a host
/// tensor are valid until it is disposed.
/// </remarks>
public sealed class QuantizedTensor : IDisposable
{
    private Parts? _parts;

    /// <summary>The three buffers: packed element codes, block-scale codes, binary32 decode scales.</summary>
    internal sealed record Parts(TensorStorage<byte> Data, TensorStorage<byte> BlockScales, TensorStorage<float> DecodeScales) : IDisposable
    {
        public void Dispose()
        {
            DecodeScales.Dispose();
            BlockScales.Dispose();
            Data.Dispose();
        }
    }

    internal QuantizedTensor(QuantizationOptions options, int rows, int columns, Parts parts, MicroscaleContext? context)
    {
        Options = options;
        Rows = rows;
        Columns = columns;
        _parts = parts;
        Context = context;
    }

    /// <summary>The options the tensor was quantized with (format, rule, layout, element, policy).</summary>
    public QuantizationOptions Options { get; }

    /// <summary>The quantized format.</summary>
    public QuantFormat Format => Options.Format;

    /// <summary>Layout of <see cref="BlockScales"/> (and, for <see cref="ScaleLayout.Tiled16x128"/>, of <see cref="Data"/>).</summary>
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

    /// <summary>The context whose device holds the tensor, or null for a host tensor.</summary>
    public MicroscaleContext? Context { get; }

    /// <summary>Whether the tensor lives on a context's device (its spans are then not readable; call <see cref="ToHost"/>).</summary>
    public bool IsOnDevice => Context is not null;

    /// <summary>Whether <see cref="Dispose"/> has run (directly or through the context).</summary>
    public bool IsDisposed => _parts is null;

    internal FormatSpec Spec => FormatSpec.Of(Options);

    internal Parts Storage => _parts ?? throw new ObjectDisposedException(nameof(QuantizedTensor));

    private Parts HostParts => IsOnDevice
        ? throw new InvalidOperationException($"This tensor lives on the {Context!.Backend} context's device; call ToHost() to read its bytes.")
        : Storage;

    /// <summary>Packed element codes, [Rows, PaddedColumns × bits / 8] bytes (<see cref="ScaleLayout.Tiled16x128"/>: tiles of 16 rows × 128
    /// values, 1024 bytes each, rows padded to 16 and K to 128).</summary>
    /// <exception cref="ObjectDisposedException">The tensor was disposed.</exception>
    /// <exception cref="InvalidOperationException">The tensor lives on a device.</exception>
    public ReadOnlySpan<byte> Data => HostParts.Data.HostSpan;

    /// <summary>Block-scale codes (E8M0 or UE4M3) in <see cref="Layout"/>; empty for the FP8 per-tensor/per-row formats.</summary>
    /// <exception cref="ObjectDisposedException">The tensor was disposed.</exception>
    /// <exception cref="InvalidOperationException">The tensor lives on a device.</exception>
    public ReadOnlySpan<byte> BlockScales => HostParts.BlockScales.HostSpan;

    /// <summary>binary32 decode scales: [1] for NVFP4 and FP8 per-tensor, [Rows] for FP8 per-row, empty for MX.</summary>
    /// <exception cref="ObjectDisposedException">The tensor was disposed.</exception>
    /// <exception cref="InvalidOperationException">The tensor lives on a device.</exception>
    public ReadOnlySpan<float> DecodeScales => HostParts.DecodeScales.HostSpan;

    /// <summary>The single per-tensor decode scale (NVFP4 g, FP8 per-tensor g).</summary>
    /// <exception cref="InvalidOperationException">The format has no single per-tensor scale, or the tensor lives on a device.</exception>
    /// <exception cref="ObjectDisposedException">The tensor was disposed.</exception>
    public float GlobalScale => Format is QuantFormat.Nvfp4 or QuantFormat.Nvint4 or QuantFormat.Fp8PerTensor
        ? DecodeScales[0]
        : throw new InvalidOperationException($"{Format} has no single per-tensor scale.");

    internal static Parts AllocateHost(FormatSpec spec, int rows, int columns, ScaleLayout layout) =>
        new(new HostStorage<byte>(new byte[spec.DataBytes(rows, columns, layout)]),
            new HostStorage<byte>(new byte[spec.BlockScaleBytes(rows, columns, layout)]),
            new HostStorage<float>(new float[spec.DecodeScaleCount(rows)]));

    /// <summary>Creates a host tensor from existing parts (for example a checkpoint), copying them. Checks every length.</summary>
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
        ThrowHelper.ThrowIfLengthIsNot(spec.DataBytes(rows, columns, options.Layout), data.Length, nameof(data), "bytes");
        ThrowHelper.ThrowIfLengthIsNot(spec.BlockScaleBytes(rows, columns, options.Layout), blockScales.Length, nameof(blockScales), "bytes");
        ThrowHelper.ThrowIfLengthIsNot(spec.DecodeScaleCount(rows), decodeScales.Length, nameof(decodeScales));
        var parts = new Parts(new HostStorage<byte>(data.ToArray()), new HostStorage<byte>(blockScales.ToArray()),
                              new HostStorage<float>(decodeScales.ToArray()));
        return new QuantizedTensor(options, rows, columns, parts, context: null);
    }

    /// <summary>A host copy of this tensor (waits for queued device work). The copy is the caller's to dispose.</summary>
    /// <exception cref="ObjectDisposedException">The tensor or its context was disposed.</exception>
    public QuantizedTensor ToHost()
    {
        var parts = Storage;
        var host = new Parts(new HostStorage<byte>(parts.Data.ToArray()), new HostStorage<byte>(parts.BlockScales.ToArray()),
                             new HostStorage<float>(parts.DecodeScales.ToArray()));
        return new QuantizedTensor(Options, Rows, Columns, host, context: null);
    }

    /// <summary>Dequantizes into a new row-major [Rows, Columns] array (padding dropped).</summary>
    /// <remarks>value = element × scale (MX), element × s × g (NVFP4), element × g (FP8); a NaN scale gives NaN. A device tensor is
    /// dequantized on its own context; a host tensor on <paramref name="backend"/>.</remarks>
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
        _ = Storage;
        ThrowHelper.ThrowIfDestinationTooShort((long)Rows * Columns, destination.Length, nameof(destination));
        var context = Context ?? MicroscaleContext.Shared(backend);
        using var device = IsOnDevice ? null : context.Upload(this);
        using var result = context.Dequantize(device ?? this);
        result.CopyTo(destination);
    }

    /// <summary>Releases the buffers; idempotent, never throws.</summary>
    public void Dispose() => Interlocked.Exchange(ref _parts, null)?.Dispose();

    /// <inheritdoc/>
    public override string ToString() => $"QuantizedTensor({Options}, {Rows}×{Columns}{(IsOnDevice ? ", " + Context!.Backend : "")})";
}
