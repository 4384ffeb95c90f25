using Microscale.Backends;
using Microscale.Interop;

namespace Microscale;

/// <summary>
/// A range of device memory the caller owns (from the CUDA driver API, cudaMalloc, cuBLAS, GGML...). Microscale never frees
/// it and keeps no reference to it after a call returns.
/// </summary>
/// <param name="Address">The device address (a CUdeviceptr); 0 for none.</param>
/// <param name="ByteLength">How many bytes from <paramref name="Address"/> the caller allows Microscale to use.</param>
public readonly record struct DeviceMemory(nint Address, long ByteLength)
{
    /// <summary>Whether this is the null range.</summary>
    public bool IsNull => Address == 0;

    internal void Require(long bytes, int alignment, string paramName, string what)
    {
        if (bytes == 0)
            return;
        if (Address == 0)
            throw new ArgumentException($"{paramName}: the {what} needs {bytes} bytes of device memory, got a null address.", paramName);
        if (ByteLength < bytes)
            throw new ArgumentException($"{paramName}: the {what} needs {bytes} bytes, the range holds {ByteLength}.", paramName);
        if (Address % alignment != 0)
            throw new ArgumentException($"{paramName}: the {what} must be {alignment}-byte aligned; address 0x{Address:X} is not.", paramName);
    }
}

/// <summary>The element type of dense device data in <see cref="ExternalCuda"/> calls.</summary>
public enum DenseElement
{
    /// <summary>binary32.</summary>
    Float32 = 0,
    /// <summary>bfloat16.</summary>
    BFloat16 = 1,
    /// <summary>binary16.</summary>
    Float16 = 2,
}

/// <summary>
/// A quantized tensor [Rows, Columns] whose parts live in caller-owned device memory, laid out exactly as a
/// <see cref="QuantizedTensor"/>'s (see <see cref="DataBytes"/>, <see cref="BlockScaleBytes"/>, <see cref="DecodeScaleBytes"/>).
/// A non-owning view: creating it checks the ranges, disposing is not needed.
/// </summary>
public sealed class ExternalQuantizedTensor
{
    /// <summary>Describes the parts; each range must hold its part's size (a part of size 0 may be null).</summary>
    /// <param name="options">Format, layout and element.</param>
    /// <param name="rows">Rows (M of activations, N of weights), at least 1.</param>
    /// <param name="columns">Logical K, at least 1.</param>
    /// <param name="data">Packed codes; 16-byte aligned (what the tensor-core kernels load in one instruction).</param>
    /// <param name="blockScales">Block-scale codes (MX, NV formats).</param>
    /// <param name="decodeScales">binary32 decode scales (NVFP4 and FP8 per-tensor: 1, FP8 per-row: rows); 4-byte aligned.</param>
    /// <exception cref="ArgumentException">A range is null, too short or misaligned for its part, or an option does not apply.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rows"/> or <paramref name="columns"/> is less than 1.</exception>
    public ExternalQuantizedTensor(QuantizationOptions options, int rows, int columns, DeviceMemory data, DeviceMemory blockScales, DeviceMemory decodeScales)
    {
        ArgumentNullException.ThrowIfNull(options);
        ThrowHelper.ThrowIfNotPositive(rows, nameof(rows));
        ThrowHelper.ThrowIfNotPositive(columns, nameof(columns));
        options.Validate(nameof(options));
        data.Require(DataBytes(options, rows, columns), 16, nameof(data), $"{options.Format} data of {rows}x{columns}");
        blockScales.Require(BlockScaleBytes(options, rows, columns), 1, nameof(blockScales), $"{options.Format} block scales");
        decodeScales.Require(DecodeScaleBytes(options, rows), 4, nameof(decodeScales), $"{options.Format} decode scales");
        (Options, Rows, Columns, Data, BlockScales, DecodeScales) = (options, rows, columns, data, blockScales, decodeScales);
    }

    /// <summary>Format, layout and element.</summary>
    public QuantizationOptions Options { get; }

    /// <summary>Rows.</summary>
    public int Rows { get; }

    /// <summary>Logical K.</summary>
    public int Columns { get; }

    /// <summary>The codes.</summary>
    public DeviceMemory Data { get; }

    /// <summary>The block-scale codes.</summary>
    public DeviceMemory BlockScales { get; }

    /// <summary>The binary32 decode scales.</summary>
    public DeviceMemory DecodeScales { get; }

    /// <summary>Bytes of packed codes: rows × K padded to the block × bits / 8 (tiled: whole 16 × 128 tiles of 1024 bytes).</summary>
    public static long DataBytes(QuantizationOptions options, int rows, int columns) => FormatSpec.Of(options).DataBytes(rows, columns, options.Layout);

    /// <summary>Bytes of block-scale codes in the options' layout (0 for FP8 per-tensor / per-row).</summary>
    public static long BlockScaleBytes(QuantizationOptions options, int rows, int columns) =>
        FormatSpec.Of(options).BlockScaleBytes(rows, columns, options.Layout);

    /// <summary>Bytes of binary32 decode scales.</summary>
    public static long DecodeScaleBytes(QuantizationOptions options, int rows) => 4L * FormatSpec.Of(options).DecodeScaleCount(rows);

    internal MsQTensor Describe() =>
        NativeOps.Describe(Options, Rows, Columns, Data.Address, BlockScales.Address, DecodeScales.Address);
}

/// <summary>
/// Microscale's native kernels on memory and streams the caller owns — for engines that already manage their CUDA context
/// (driver API, cuBLAS, GGML) and want no second context and no copies.
/// </summary>
/// <remarks>
/// <para>Contract: the caller's CUDA context must be current on the calling thread, and <c>stream</c> (a CUstream /
/// cudaStream_t; 0 is the legacy default stream) must belong to it, else <see cref="MicroscaleException"/> names
/// <c>stream</c>. Work is only enqueued: calls return without synchronizing, and the caller keeps every range alive and
/// untouched until the stream has passed the work. Nothing the caller passes is freed or retained.</para>
/// <para>Arguments are checked in C# before anything is launched (null, short or misaligned ranges, mismatched shapes,
/// formats the native library lacks); the native library checks the rest (the current context, the stream, the device's
/// support) and reports through <see cref="MicroscaleException"/>.</para>
/// <para>Needs libmicroscale (see <see cref="IsAvailable"/>); the ILGPU backends are not involved.</para>
/// </remarks>
public static class ExternalCuda
{
    /// <summary>Whether libmicroscale is loaded (the calls need it and a CUDA device).</summary>
    public static bool IsAvailable => NativeRuntime.IsAvailable;

    /// <summary>Workspace bytes a <see cref="Quantize"/> into <paramref name="destination"/> needs (an amax scratch for NVFP4 and
    /// FP8 formats; 0 for MX).</summary>
    /// <exception cref="InvalidOperationException">libmicroscale is not loaded.</exception>
    public static long QuantizeWorkspaceBytes(ExternalQuantizedTensor destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        RequireNative();
        var desc = NativeOps.QuantizeDesc(destination.Options, 0, 0, null);
        NativeStatus.ThrowIfFailed(NativeMethods.ms_quantize_workspace_size(destination.Describe(), desc, out nuint bytes));
        return (long)bytes;
    }

    /// <summary>Enqueues the quantization of dense [Rows, Columns] <paramref name="source"/> into <paramref name="destination"/>.</summary>
    /// <param name="source">Row-major [destination.Rows, destination.Columns] values of <paramref name="sourceType"/>.</param>
    /// <param name="sourceType">The source's element type.</param>
    /// <param name="destination">Where the codes and scales go.</param>
    /// <param name="stream">A stream of the current context.</param>
    /// <param name="workspace">At least <see cref="QuantizeWorkspaceBytes"/> bytes, 4-byte aligned (unused when that is 0).</param>
    /// <exception cref="ArgumentException">A range is null, short or misaligned.</exception>
    /// <exception cref="NotSupportedException">libmicroscale has no kernel for the destination's options.</exception>
    /// <exception cref="MicroscaleException">No current context, a foreign stream, or a native failure.</exception>
    public static void Quantize(DeviceMemory source, DenseElement sourceType, ExternalQuantizedTensor destination, nint stream,
                                DeviceMemory workspace = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ThrowHelper.ThrowIfUndefined(sourceType, nameof(sourceType));
        QuantizerChecks.ThrowIfTiled(destination.Options.Layout, nameof(destination));
        source.Require((long)destination.Rows * destination.Columns * ElementBytes(sourceType), ElementBytes(sourceType), nameof(source), "source");
        if (!NativeOps.Supports(destination.Options))
            throw new NotSupportedException($"libmicroscale quantizes MXFP4, MXFP8, NVFP4, FP8 per-tensor/per-row and MXINT8 with round-to-nearest and " +
                                            $"1D blocks, not {destination.Options}; use a MicroscaleContext (the ILGPU kernels) for it.");
        long needed = QuantizeWorkspaceBytes(destination);
        workspace.Require(needed, 4, nameof(workspace), "quantize workspace");
        var desc = NativeOps.QuantizeDesc(destination.Options, (int)sourceType, 0, null);
        NativeStatus.ThrowIfFailed(NativeMethods.ms_quantize(desc, source.Address, destination.Describe(), workspace.Address, (nuint)needed, stream));
    }

    /// <summary>Bytes of workspace <see cref="Gemm(ExternalQuantizedTensor, ExternalQuantizedTensor, DeviceMemory, DenseElement, nint, float, DeviceMemory, DeviceMemory)"/>
    /// can use for these operands (0: none); pass <paramref name="a"/> null for dense activations of <paramref name="denseType"/> with
    /// <paramref name="m"/> rows. Needs the current context (the split depends on the device).</summary>
    /// <exception cref="MicroscaleException">An unsupported pair or no current context.</exception>
    public static long GemmWorkspaceBytes(ExternalQuantizedTensor? a, ExternalQuantizedTensor b, DenseElement outputType, bool hasBias = false,
                                          int m = 1, DenseElement denseType = DenseElement.BFloat16)
    {
        ArgumentNullException.ThrowIfNull(b);
        RequireNative();
        var described = a is null ? NativeOps.DescribeDense(m, b.Columns, (int)denseType, 0) : a.Describe();
        return NativeOps.GemmWorkspaceBytes(described, b.Describe(), (int)outputType, hasBias);
    }

    /// <summary>Enqueues C [M, N] = alpha · A · Bᵀ (+ bias) for quantized A [M, K] and B [N, K]; returns the kernel's name.</summary>
    /// <param name="a">Activations [M, K].</param>
    /// <param name="b">Weights [N, K].</param>
    /// <param name="output">Row-major C, M × N of <paramref name="outputType"/>, aligned to its element size.</param>
    /// <param name="outputType">The output element type.</param>
    /// <param name="stream">A stream of the current context.</param>
    /// <param name="alpha">The output scale.</param>
    /// <param name="bias">Null, or N binary32 values added to every row.</param>
    /// <param name="workspace">Null, or the plan's workspace: decode plans (up to 64 tokens) split K over CTAs with it and run unsplit (slower)
    /// without it. Zero-fill it once before its first use; every run leaves it reusable by any plan (its counters return to zero).
    /// A workspace shorter than the plan asks for is refused.</param>
    /// <exception cref="ArgumentException">Mismatched K, or a null, short or misaligned range.</exception>
    /// <exception cref="MicroscaleException">An unsupported pair, no current context, a foreign stream, or a native failure.</exception>
    public static string Gemm(ExternalQuantizedTensor a, ExternalQuantizedTensor b, DeviceMemory output, DenseElement outputType, nint stream,
                              float alpha = 1f, DeviceMemory bias = default, DeviceMemory workspace = default)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Columns != b.Columns)
            throw new ArgumentException($"a is [{a.Rows}, {a.Columns}] and b is [{b.Rows}, {b.Columns}]: K differs.", nameof(b));
        return RunGemm(a.Describe(), b, output, outputType, stream, alpha, bias, workspace);
    }

    /// <summary>Enqueues C [M, N] = alpha · A · Bᵀ (+ bias) for dense BF16/FP16 activations A [M, K] and quantized B [N, K]
    /// (W4A16 / W8A16); returns the kernel's name.</summary>
    /// <exception cref="ArgumentException">A null, short or misaligned range, M &lt; 1, or FP32 activations.</exception>
    /// <exception cref="MicroscaleException">An unsupported pair, no current context, a foreign stream, or a native failure.</exception>
    public static string Gemm(DeviceMemory a, DenseElement aType, int m, ExternalQuantizedTensor b, DeviceMemory output, DenseElement outputType,
                              nint stream, float alpha = 1f, DeviceMemory bias = default, DeviceMemory workspace = default)
    {
        ArgumentNullException.ThrowIfNull(b);
        ThrowHelper.ThrowIfNotPositive(m, nameof(m));
        if (aType is not (DenseElement.BFloat16 or DenseElement.Float16))
            throw new ArgumentException($"Dense activations are BF16 or FP16, not {aType}.", nameof(aType));
        a.Require((long)m * b.Columns * 2, 16, nameof(a), $"activations of {m}x{b.Columns}");
        return RunGemm(NativeOps.DescribeDense(m, b.Columns, (int)aType, a.Address), b, output, outputType, stream, alpha, bias, workspace);
    }

    /// <summary>Enqueues the copy of <paramref name="source"/> into <paramref name="destination"/>'s layout: the same format, element and
    /// shape, the codes and block scales laid out anew (padding zero). This is how an engine prepacks FP4 weights for the decode
    /// GEMM (<see cref="ScaleLayout.Tiled16x128"/>, as <see cref="MicroscaleContext.Prepack"/> does). The decode scales are neither
    /// read nor written: <paramref name="destination"/> may share <paramref name="source"/>'s.</summary>
    /// <exception cref="ArgumentException">The tensors differ in format, element or shape, or share their codes or block scales.</exception>
    /// <exception cref="MicroscaleException">No current context, a foreign stream, or a native failure.</exception>
    public static void Relayout(ExternalQuantizedTensor source, ExternalQuantizedTensor destination, nint stream)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        var (s, d) = (source.Options, destination.Options);
        if (s.Format != d.Format || s.Element != d.Element || source.Rows != destination.Rows || source.Columns != destination.Columns)
            throw new ArgumentException($"destination is {d.Format}/{d.Element} [{destination.Rows}, {destination.Columns}], source " +
                                        $"{s.Format}/{s.Element} [{source.Rows}, {source.Columns}]: only the layout may differ.", nameof(destination));
        if (source.Data.Address == destination.Data.Address || (!source.BlockScales.IsNull && source.BlockScales.Address == destination.BlockScales.Address))
            throw new ArgumentException("destination shares the source's codes or block scales; the relayout needs separate memory.", nameof(destination));
        if (!NativeOps.GemmReads(s))
            throw new NotSupportedException($"libmicroscale has no {s.Format} kernels; use a MicroscaleContext (the ILGPU kernels) for it.");
        RequireNative();
        NativeStatus.ThrowIfFailed(NativeMethods.ms_relayout(source.Describe(), destination.Describe(), stream));
    }

    /// <summary>Enqueues the repack of GGUF (ggml) MXFP4 / NVFP4 blocks already in device memory into <paramref name="destination"/>
    /// (MXFP4 / NVFP4, any scale layout); values decode as ggml decodes them. Scale bytes ggml rejects become NaN scales.</summary>
    /// <param name="type"><see cref="IO.GgufTensorType.MXFP4"/> or <see cref="IO.GgufTensorType.NVFP4"/>.</param>
    /// <param name="blocks">destination.Rows × destination.Columns / block size ggml blocks.</param>
    /// <param name="destination">Where the codes and scales go; its K must be a multiple of the ggml block.</param>
    /// <param name="stream">A stream of the current context.</param>
    /// <param name="globalScale">NVFP4: written as the destination's decode scale (llama.cpp keeps it beside the blocks).</param>
    /// <exception cref="ArgumentException">Wrong type or format, a K that is not a multiple of the block, or a short or null range.</exception>
    /// <exception cref="MicroscaleException">No current context, a foreign stream, or a native failure.</exception>
    public static void RepackGguf(IO.GgufTensorType type, DeviceMemory blocks, ExternalQuantizedTensor destination, nint stream, float globalScale = 1f)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var format = type == IO.GgufTensorType.MXFP4 ? QuantFormat.Mxfp4 : QuantFormat.Nvfp4;
        QuantizerChecks.ThrowIfTiled(destination.Options.Layout, nameof(destination));
        if (IO.GgufQuantized.IsSupported(type) && destination.Options.Format != format)
            throw new ArgumentException($"GGUF {type} blocks repack into {format}, not {destination.Options.Format}.", nameof(destination));
        int block = type == IO.GgufTensorType.MXFP4 ? 32 : 64, blockBytes = type == IO.GgufTensorType.MXFP4 ? 17 : 36;
        long bytes = (long)destination.Rows * (destination.Columns / block) * blockBytes;
        IO.GgufQuantized.CheckBlocks(type, bytes, destination.Rows, destination.Columns, globalScale);
        blocks.Require(bytes, 1, nameof(blocks), $"{type} blocks of {destination.Rows}x{destination.Columns}");
        RequireNative();
        NativeStatus.ThrowIfFailed(NativeMethods.ms_gguf_repack((int)type, blocks.Address, destination.Describe(), globalScale, stream));
    }

    private static string RunGemm(MsQTensor a, ExternalQuantizedTensor b, DeviceMemory output, DenseElement outputType, nint stream, float alpha,
                                  DeviceMemory bias, DeviceMemory workspace)
    {
        ThrowHelper.ThrowIfUndefined(outputType, nameof(outputType));
        int size = ElementBytes(outputType);
        output.Require((long)a.Rows * b.Rows * size, size, nameof(output), $"output of {a.Rows}x{b.Rows}");
        bias.Require(bias.IsNull ? 0 : 4L * b.Rows, 4, nameof(bias), $"bias of {b.Rows}");
        RequireNative();
        return NativeOps.RunGemm(a, b.Describe(), output.Address, (int)outputType, alpha, bias.Address, bytes =>
        {
            if (workspace.IsNull)
                return 0; // the ABI runs without it (correct, possibly slower)
            workspace.Require(bytes, 256, nameof(workspace), "GEMM workspace");
            return workspace.Address;
        }, stream);
    }

    private static int ElementBytes(DenseElement type) => type == DenseElement.Float32 ? 4 : 2;

    private static void RequireNative()
    {
        if (!NativeRuntime.IsAvailable)
            throw new InvalidOperationException($"ExternalCuda needs libmicroscale: {NativeRuntime.Problem}");
    }
}
