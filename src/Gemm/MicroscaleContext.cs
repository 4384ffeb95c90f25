using ILGPU;
using ILGPU.Runtime;
using Microscale.Backends;
using Microscale.Tensors;
using Half = System.Half;

namespace Microscale;

/// <summary>
/// Owns a device (an ILGPU context and accelerator, or the managed reference) and everything created on it: dense
/// <see cref="DeviceTensor{T}"/>s and device-resident <see cref="QuantizedTensor"/>s, and runs the operations on them:
/// quantize, dequantize, Hadamard rotation, fused rotate-then-quantize and GEMM.
/// </summary>
/// <remarks>
/// Operations enqueue work in order on the accelerator's default stream; only copies to the host wait. A context is meant to
/// be used from one thread at a time. Disposing it disposes every tensor it created, then the accelerator; tensors have no
/// finalizers, so nothing ever touches a dead context.
/// </remarks>
public sealed class MicroscaleContext : IDisposable
{
    private static readonly Lazy<MicroscaleContext>[] s_shared =
        Enum.GetValues<Backend>().Select(b => new Lazy<MicroscaleContext>(() => Create(b), LazyThreadSafetyMode.ExecutionAndPublication)).ToArray();

    private readonly IlgpuDevice? _device;
    private readonly List<WeakReference<IDisposable>> _owned = new();
    private bool _disposed;

    private MicroscaleContext(Backend backend, string reason, IlgpuDevice? device)
    {
        Backend = backend;
        SelectionReason = reason;
        _device = device;
    }

    /// <summary>The backend this context runs (never <see cref="Microscale.Backend.Auto"/>).</summary>
    public Backend Backend { get; }

    /// <summary>Why this backend was picked, e.g. "Auto: ILGPU CUDA device 'NVIDIA H100' found".</summary>
    public string SelectionReason { get; }

    private bool IsNative => Backend == Backend.Native;

    /// <summary>The ILGPU accelerator (null for the reference backend); for benchmarks and interop inside the solution.</summary>
    internal ILGPU.Runtime.Accelerator? Accelerator => _device?.Accelerator;

    /// <summary>Which quantizer the last quantize call on this context ran: <c>ms_smxx_quantize</c> (native), <c>ilgpu_quantize</c> or
    /// <c>reference</c>. The Native context runs formats and options the native library lacks with the ILGPU kernels.</summary>
    public string LastQuantizeKernel { get; private set; } = "";

    /// <summary>Name of the GEMM kernel configuration the last <c>Gemm</c> call on this context ran (for benchmarks and logs).</summary>
    public string LastGemmKernel { get; private set; } = "";

    /// <summary>The device's name.</summary>
    public string DeviceName => _device?.Accelerator.Name ?? "managed reference (host)";

    /// <summary>Creates a context on <paramref name="backend"/>; <see cref="Microscale.Backend.Auto"/> takes CUDA when ILGPU finds a
    /// device, else the ILGPU CPU accelerator, and says so in <see cref="SelectionReason"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="backend"/> is not defined.</exception>
    /// <exception cref="NotSupportedException"><paramref name="backend"/> is <see cref="Microscale.Backend.Cuda"/> and no CUDA device exists.</exception>
    public static MicroscaleContext Create(Backend backend = Backend.Auto) => Create(backend, device: 0);

    /// <summary>Creates a context on CUDA device <paramref name="device"/> (see <see cref="MicroscaleRuntime.CudaDevices"/>): one
    /// context per GPU for engines that shard a model; tensors stay with the context that made them. The CPU backends have one
    /// device, 0.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="backend"/> is not defined, or no device has that ordinal.</exception>
    /// <exception cref="NotSupportedException">The backend is not available here.</exception>
    public static MicroscaleContext Create(Backend backend, int device)
    {
        var (resolved, reason) = MicroscaleRuntime.Resolve(backend);
        ThrowIfUnavailable(resolved);
        if (resolved == Backend.Reference && device != 0)
            throw new ArgumentOutOfRangeException(nameof(device), device, "The Reference backend has one device, 0.");
        var ilgpu = resolved switch
        {
            Backend.Reference => null,
            Backend.Cuda or Backend.Native => IlgpuDevice.Create(cuda: true, device),
            _ => IlgpuDevice.Create(cuda: false, device),
        };
        return new MicroscaleContext(resolved, reason, ilgpu) { DeviceOrdinal = device };
    }

    /// <summary>The CUDA device ordinal of this context (0 for the CPU backends).</summary>
    public int DeviceOrdinal { get; private init; }

    private static void ThrowIfUnavailable(Backend backend)
    {
        if (backend == Backend.Cuda && !IlgpuDevice.IsCudaAvailable)
            throw new NotSupportedException($"Backend.Cuda is not available: {IlgpuDevice.CudaUnavailableReason}");
        if (backend == Backend.Native && MicroscaleRuntime.NativeProblem() is { Length: > 0 } problem)
            throw new NotSupportedException($"Backend.Native is not available: {problem}");
    }

    /// <summary>The process-wide context of a backend, used by the static span APIs (created on first use, never disposed).</summary>
    internal static MicroscaleContext Shared(Backend backend)
    {
        ThrowHelper.ThrowIfUndefined(backend, nameof(backend));
        if (backend == Backend.Auto)
            backend = MicroscaleRuntime.Resolve(Backend.Auto).Backend;
        ThrowIfUnavailable(backend);
        return s_shared[(int)backend].Value;
    }

    // ------------------------------------------------------------------ tensors

    /// <summary>A new tensor holding a copy of <paramref name="data"/>, row-major [rows, columns].</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rows"/> or <paramref name="columns"/> is less than 1.</exception>
    /// <exception cref="ArgumentException"><paramref name="data"/> does not hold rows × columns elements.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not float, Half or BFloat16.</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    public DeviceTensor<T> CreateTensor<T>(ReadOnlySpan<T> data, int rows, int columns) where T : unmanaged
    {
        var tensor = AllocateTensor<T>(rows, columns);
        try
        {
            tensor.CopyFrom(data);
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
        return tensor;
    }

    /// <summary>A new zero-filled tensor, row-major [rows, columns].</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rows"/> or <paramref name="columns"/> is less than 1.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not float, Half or BFloat16.</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    public DeviceTensor<T> AllocateTensor<T>(int rows, int columns) where T : unmanaged
    {
        ThrowIfDisposed();
        OutputConvert.Kind<T>(nameof(T));
        ThrowHelper.ThrowIfNotPositive(rows, nameof(rows));
        ThrowHelper.ThrowIfNotPositive(columns, nameof(columns));
        if ((long)rows * columns > QuantizerChecks.MaxElements)
            ThrowHelper.ThrowArgument(nameof(rows), $"{rows} × {columns} exceeds {QuantizerChecks.MaxElements} elements.");
        return Track(new DeviceTensor<T>(this, Allocate<T>((long)rows * columns, zero: true), rows, columns));
    }

    /// <summary>A device copy of a host <see cref="QuantizedTensor"/> (the caller owns both).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="tensor"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="tensor"/> already lives on a device.</exception>
    /// <exception cref="ObjectDisposedException">The tensor or the context was disposed.</exception>
    public QuantizedTensor Upload(QuantizedTensor tensor)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(tensor);
        var parts = tensor.Storage;
        if (tensor.IsOnDevice)
            ThrowHelper.ThrowArgument(nameof(tensor), $"The tensor already lives on the {tensor.Context!.Backend} context's device; call ToHost() first.");
        var device = AllocateParts(parts.Data.Length, parts.BlockScales.Length, parts.DecodeScales.Length);
        device.Data.CopyFrom(parts.Data.HostSpan);
        device.BlockScales.CopyFrom(parts.BlockScales.HostSpan);
        device.DecodeScales.CopyFrom(parts.DecodeScales.HostSpan);
        return Track(new QuantizedTensor(tensor.Options, tensor.Rows, tensor.Columns, device, this));
    }

    /// <summary>
    /// A device tensor from GGUF (ggml) MXFP4 or NVFP4 blocks of a [rows, columns] tensor, for example
    /// <see cref="IO.GgufFile.GetBytes(string)"/> of a weight. On <see cref="Backend.Native"/> the raw blocks are copied to the
    /// device and repacked there (one pass over them); elsewhere they are converted on the host (<see cref="IO.GgufQuantized"/>)
    /// and uploaded. Either way the values decode as ggml decodes them.
    /// </summary>
    /// <param name="type"><see cref="IO.GgufTensorType.MXFP4"/> or <see cref="IO.GgufTensorType.NVFP4"/>.</param>
    /// <param name="blocks">rows × columns / block size ggml blocks (17 bytes per 32 values, 36 per 64).</param>
    /// <param name="rows">Rows, at least 1.</param>
    /// <param name="columns">K, a multiple of the block (32, 64).</param>
    /// <param name="globalScale">NVFP4 only: the decode scale g, positive and finite.</param>
    /// <exception cref="ArgumentException">Wrong type, shape, length or global scale.</exception>
    /// <exception cref="IO.GgufFormatException">Host conversion only: a scale byte ggml rejects.</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    public QuantizedTensor UploadGguf(IO.GgufTensorType type, ReadOnlySpan<byte> blocks, int rows, int columns, float globalScale = 1f)
    {
        ThrowIfDisposed();
        if (Backend != Backend.Native)
        {
            using var host = IO.GgufQuantized.FromBlocks(type, blocks, rows, columns, globalScale);
            return Upload(host);
        }
        IO.GgufQuantized.CheckBlocks(type, blocks.Length, rows, columns, globalScale);
        var options = new QuantizationOptions(type == IO.GgufTensorType.MXFP4 ? QuantFormat.Mxfp4 : QuantFormat.Nvfp4);
        var destination = AllocateQuantized(rows, columns, options);
        try
        {
            var raw = Allocate<byte>(blocks.Length, zero: false);
            using (new FreeAfterQueuedWork(_device, raw))
            {
                raw.CopyFrom(blocks);
                NativeOps.RepackGguf(_device!, (int)type, raw.View, options, rows, columns, globalScale, destination.Storage);
            }
            return destination;
        }
        catch
        {
            destination.Dispose();
            throw;
        }
    }

    // ------------------------------------------------------------------ quantization

    /// <summary>Quantizes a dense tensor on this context's device (NUMERICS.md §3, bit-exact on every backend).</summary>
    /// <returns>A device-resident tensor the caller owns.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="source"/> belongs to another context; an option does not apply to the format;
    /// or <see cref="NonFinitePolicy.Throw"/> is set and the source holds NaN/±Inf (the message names the first row and column).</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is undefined.</exception>
    /// <exception cref="ObjectDisposedException">The source or the context was disposed.</exception>
    public QuantizedTensor Quantize<T>(DeviceTensor<T> source, QuantizationOptions options) where T : unmanaged =>
        QuantizeCore(source, options, rotation: null);

    /// <summary>
    /// Rotates each row block-wise by <paramref name="rotation"/> and quantizes the result in one pass: the rotated values are never
    /// written back in high precision. Bytes equal <c>Quantize(HadamardRotate(source))</c> exactly.
    /// </summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">K is not a multiple of the Hadamard block; and as <see cref="Quantize{T}(DeviceTensor{T}, QuantizationOptions)"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is undefined.</exception>
    /// <exception cref="ObjectDisposedException">The source or the context was disposed.</exception>
    public QuantizedTensor QuantizeRotated<T>(DeviceTensor<T> source, HadamardTransform rotation, QuantizationOptions options) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(rotation);
        return QuantizeCore(source, options, rotation);
    }

    private QuantizedTensor QuantizeCore<T>(DeviceTensor<T> source, QuantizationOptions options, HadamardTransform? rotation) where T : unmanaged
    {
        ThrowIfDisposed();
        ThrowIfForeign(source, nameof(source));
        QuantizerChecks.ValidateShape(source.Length, source.Rows, source.Columns, options, nameof(source));
        return AllocateAndFill(source.Rows, source.Columns, options, destination => QuantizeInto(source, rotation, destination));
    }

    // A new tensor [rows, columns] that `fill` writes; disposed again when it throws.
    private QuantizedTensor AllocateAndFill(int rows, int columns, QuantizationOptions options, Action<QuantizedTensor> fill)
    {
        var destination = AllocateQuantized(rows, columns, options);
        try
        {
            fill(destination);
        }
        catch
        {
            destination.Dispose();
            throw;
        }
        return destination;
    }

    /// <summary>
    /// Quantizes along the other dimension: the result is <c>Quantize(sourceᵀ)</c> byte for byte, a [Columns, Rows] tensor
    /// (NUMERICS.md §9), for the dgrad / wgrad GEMMs of training, which reduce over what is the row dimension here.
    /// </summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="source"/> belongs to another context, or an option does not apply.</exception>
    /// <exception cref="ObjectDisposedException">The source or the context was disposed.</exception>
    public QuantizedTensor QuantizeTransposed<T>(DeviceTensor<T> source, QuantizationOptions options) where T : unmanaged =>
        QuantizeTransposed(source, options, rotation: null);

    /// <summary>
    /// <see cref="QuantizeTransposed{T}(DeviceTensor{T}, QuantizationOptions)"/> with a block Hadamard rotation along the new
    /// K (the source's rows): <c>QuantizeRotated(sourceᵀ, rotation)</c> byte for byte — the NVFP4 training recipe's random
    /// Hadamard on the wgrad inputs.
    /// </summary>
    /// <exception cref="ArgumentException">The source's rows are not a multiple of the rotation's block; and as the overload without it.</exception>
    public QuantizedTensor QuantizeTransposed<T>(DeviceTensor<T> source, QuantizationOptions options, HadamardTransform? rotation) where T : unmanaged
    {
        ThrowIfDisposed();
        ThrowIfForeign(source, nameof(source));
        QuantizerChecks.ValidateShape(source.Length, source.Columns, source.Rows, options, nameof(source));
        return AllocateAndFill(source.Columns, source.Rows, options, destination => QuantizeTransposedInto(source, rotation, destination));
    }

    /// <summary>
    /// Both orientations of <paramref name="source"/> in one pass (NUMERICS.md §9): <see cref="QuantizedOrientations.Rows"/> =
    /// <c>QuantizeRotated(source, rowRotation, rowOptions)</c> and <see cref="QuantizedOrientations.Columns"/> =
    /// <c>QuantizeTransposed(source, columnOptions, columnRotation)</c>, byte for byte. The training GEMMs read both (the forward
    /// GEMM X and W along K; dgrad and wgrad Wᵀ, dYᵀ and Xᵀ). The native backend reads the source once for both when the two
    /// options share an MXFP4, MXFP8 or NVFP4 format with 1D blocks, rotations of at most 32 and F32 or BF16 values; otherwise,
    /// and on the other backends, the two are quantized one after the other.
    /// </summary>
    /// <param name="source">The tensor [rows, columns].</param>
    /// <param name="rowOptions">Format of <see cref="QuantizedOrientations.Rows"/> [rows, columns].</param>
    /// <param name="rowRotation">Hadamard rotation along the columns before quantizing the rows, or null.</param>
    /// <param name="columnOptions">Format of <see cref="QuantizedOrientations.Columns"/> [columns, rows].</param>
    /// <param name="columnRotation">Hadamard rotation along the source's rows (the transposed tensor's K), or null.</param>
    /// <returns>Both tensors, which the caller owns (disposing the result disposes both).</returns>
    /// <exception cref="ArgumentNullException">An argument other than a rotation is null.</exception>
    /// <exception cref="ArgumentException">The source belongs to another context; an option does not apply; a dimension is not a
    /// multiple of its rotation's block.</exception>
    /// <exception cref="ObjectDisposedException">The source or the context was disposed.</exception>
    public QuantizedOrientations QuantizeBothOrientations<T>(DeviceTensor<T> source, QuantizationOptions rowOptions, HadamardTransform? rowRotation,
                                                            QuantizationOptions columnOptions, HadamardTransform? columnRotation) where T : unmanaged
    {
        ThrowIfDisposed();
        ThrowIfForeign(source, nameof(source));
        QuantizerChecks.ValidateShape(source.Length, source.Rows, source.Columns, rowOptions, nameof(source));
        QuantizerChecks.ValidateShape(source.Length, source.Columns, source.Rows, columnOptions, nameof(source));
        var rows = AllocateQuantized(source.Rows, source.Columns, rowOptions);
        QuantizedTensor? columns = null;
        try
        {
            columns = AllocateQuantized(source.Columns, source.Rows, columnOptions);
            QuantizeBothOrientations(source, rowRotation, rows, columnRotation, columns);
            return new QuantizedOrientations(rows, columns);
        }
        catch
        {
            rows.Dispose();
            columns?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// <see cref="QuantizeBothOrientations{T}(DeviceTensor{T}, QuantizationOptions, HadamardTransform?, QuantizationOptions, HadamardTransform?)"/>
    /// into caller-allocated destinations (their options decide the formats): <paramref name="rows"/> [rows, columns] and
    /// <paramref name="columns"/> [columns, rows].
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="source"/> or a destination is null.</exception>
    /// <exception cref="ArgumentException">A tensor belongs to another context; a destination's shape is not the one above; a
    /// dimension is not a multiple of its rotation's block.</exception>
    /// <exception cref="ObjectDisposedException">A tensor or the context was disposed.</exception>
    public void QuantizeBothOrientations<T>(DeviceTensor<T> source, HadamardTransform? rowRotation, QuantizedTensor rows, HadamardTransform? columnRotation,
                                            QuantizedTensor columns) where T : unmanaged
    {
        ThrowIfDisposed();
        ThrowIfForeign(source, nameof(source));
        ThrowIfForeign(rows, nameof(rows));
        ThrowIfForeign(columns, nameof(columns));
        int kind = OutputConvert.Kind<T>(nameof(source));
        CheckOrientations(source, rowRotation, rows, columnRotation, columns);
        if (IsNative && rows.Options.Format == columns.Options.Format && NativeOps.DualTakes(rows.Options, rowRotation, kind, source.Columns, rowSide: true) &&
            NativeOps.DualTakes(columns.Options, columnRotation, kind, source.Columns, rowSide: false))
        {
            NativeOps.QuantizeDual(_device!, source.Storage, kind, source.Rows, source.Columns, rows.Options, rowRotation, rows.Storage,
                                   columns.Options, columnRotation, columns.Storage);
            LastQuantizeKernel = "ms_smxx_quantize_dual";
            return;
        }
        QuantizeInto(source, rowRotation, rows);
        QuantizeTransposedInto(source, columnRotation, columns);
    }

    // The destinations' shapes and the rotations' blocks, named as the caller knows them (before either path runs).
    private static void CheckOrientations<T>(DeviceTensor<T> source, HadamardTransform? rowRotation, QuantizedTensor rows, HadamardTransform? columnRotation,
                                     QuantizedTensor columns) where T : unmanaged
    {
        if (rows.Rows != source.Rows || rows.Columns != source.Columns)
            ThrowHelper.ThrowArgument(nameof(rows), $"rows is [{rows.Rows}, {rows.Columns}], source is [{source.Rows}, {source.Columns}].");
        if (columns.Rows != source.Columns || columns.Columns != source.Rows)
            ThrowHelper.ThrowArgument(nameof(columns), $"columns is [{columns.Rows}, {columns.Columns}]; the source's transpose is [{source.Columns}, {source.Rows}].");
        rowRotation?.ThrowIfColumnsNotMultiple(source.Columns, nameof(rowRotation));
        columnRotation?.ThrowIfColumnsNotMultiple(source.Rows, nameof(columnRotation));
    }

    // Quantize(sourceᵀ) with an optional rotation along the source's rows into destination [Columns, Rows]: the native dual
    // kernel reads the source in place when it takes the options; otherwise a transposed binary32 copy is quantized.
    private void QuantizeTransposedInto<T>(DeviceTensor<T> source, HadamardTransform? rotation, QuantizedTensor destination) where T : unmanaged
    {
        ThrowIfForeign(destination, nameof(destination));
        if (destination.Rows != source.Columns || destination.Columns != source.Rows)
            ThrowHelper.ThrowArgument(nameof(destination), $"destination is [{destination.Rows}, {destination.Columns}]; the source's transpose is [{source.Columns}, {source.Rows}].");
        int kind = OutputConvert.Kind<T>(nameof(source));
        if (IsNative && NativeOps.DualTakes(destination.Options, rotation, kind, source.Columns, rowSide: false))
        {
            rotation?.ThrowIfColumnsNotMultiple(source.Rows, nameof(source));
            NativeOps.QuantizeDual(_device!, source.Storage, kind, source.Rows, source.Columns, destination.Options, null, null, destination.Options,
                                   rotation, destination.Storage);
            LastQuantizeKernel = "ms_smxx_quantize_dual";
            return;
        }
        using var widened = Widen(source, out var x);
        var transposedStorage = Allocate<float>(source.Length, zero: false);
        using var transposed = new FreeAfterQueuedWork(_device, transposedStorage);
        if (_device is null)
        {
            var from = x.HostSpan;
            var to = transposedStorage.HostSpan;
            for (int r = 0; r < source.Rows; r++)
                for (int c = 0; c < source.Columns; c++)
                    to[c * source.Rows + r] = from[r * source.Columns + c];
        }
        else
        {
            long total = source.Length;
            int perThread = _device.ItemsPerThread(total);
            _device.QuantizeKernels.Transpose((int)((total + perThread - 1) / perThread), x.View, transposedStorage.View, source.Rows, source.Columns,
                                              perThread, (int)total);
        }
        var view = new DeviceTensor<float>(this, transposedStorage, source.Columns, source.Rows); // borrows the storage, freed below
        QuantizeInto(view, rotation, destination);
    }

    /// <summary>A device-resident quantized tensor of [rows, columns] in <paramref name="options"/>' format, contents undefined:
    /// the caller-allocated destination of <see cref="Quantize{T}(DeviceTensor{T}, QuantizedTensor)"/> on hot paths.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A size is less than 1 or an option is undefined.</exception>
    /// <exception cref="ArgumentException">An option does not apply to the format.</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    public QuantizedTensor AllocateQuantized(int rows, int columns, QuantizationOptions options)
    {
        ThrowIfDisposed();
        QuantizerChecks.ValidateShape((long)rows * columns, rows, columns, options, nameof(rows));
        var spec = FormatSpec.Of(options);
        var parts = AllocateParts(spec.DataBytes(rows, columns, options.Layout), spec.BlockScaleBytes(rows, columns, options.Layout), spec.DecodeScaleCount(rows));
        return Track(new QuantizedTensor(options, rows, columns, parts, this));
    }

    /// <summary>Quantizes <paramref name="source"/> into the caller-allocated <paramref name="destination"/> (its options decide the
    /// format), without allocating: bytes equal <see cref="Quantize{T}(DeviceTensor{T}, QuantizationOptions)"/>.</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">A tensor belongs to another context or is a host tensor; the shapes differ; or
    /// <see cref="NonFinitePolicy.Throw"/> is set and the source holds NaN/±Inf.</exception>
    /// <exception cref="ObjectDisposedException">A tensor or the context was disposed.</exception>
    public void Quantize<T>(DeviceTensor<T> source, QuantizedTensor destination) where T : unmanaged
    {
        ThrowIfDisposed();
        ThrowIfForeign(source, nameof(source));
        QuantizeInto(source, null, destination);
    }

    /// <summary>Fused rotate-then-quantize into a caller-allocated destination (see <see cref="QuantizeRotated{T}(DeviceTensor{T}, HadamardTransform, QuantizationOptions)"/>).</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">As <see cref="Quantize{T}(DeviceTensor{T}, QuantizedTensor)"/>, or K is not a multiple of the Hadamard block.</exception>
    /// <exception cref="ObjectDisposedException">A tensor or the context was disposed.</exception>
    public void QuantizeRotated<T>(DeviceTensor<T> source, HadamardTransform rotation, QuantizedTensor destination) where T : unmanaged
    {
        ThrowIfDisposed();
        ThrowIfForeign(source, nameof(source));
        ArgumentNullException.ThrowIfNull(rotation);
        QuantizeInto(source, rotation, destination);
    }

    private void QuantizeInto<T>(DeviceTensor<T> source, HadamardTransform? rotation, QuantizedTensor destination) where T : unmanaged
    {
        ThrowIfForeign(destination, nameof(destination));
        QuantizerChecks.ThrowIfTiled(destination.Layout, nameof(destination));
        if (destination.Rows != source.Rows || destination.Columns != source.Columns)
            ThrowHelper.ThrowArgument(nameof(destination), $"destination is [{destination.Rows}, {destination.Columns}], source is [{source.Rows}, {source.Columns}].");
        OutputConvert.Kind<T>(nameof(source));
        rotation?.ThrowIfColumnsNotMultiple(source.Columns, nameof(source));
        var options = destination.Options;
        if (rotation is not null && options.TwoDimensionalBlocks)
            ThrowHelper.ThrowArgument(nameof(rotation), "Two-dimensional NVFP4 blocks (weights) are not combined with a Hadamard rotation.");
        int rows = source.Rows, columns = source.Columns;
        var parts = destination.Storage;
        // Natively: every format but MXINT6/4 and NVINT4; NVFP4 2D blocks where the dual kernel reads the source.
        if (IsNative && (NativeOps.Supports(options) ||
                         (options.TwoDimensionalBlocks && NativeOps.DualTakes(options, rotation, OutputConvert.Kind<T>(nameof(source)), columns, rowSide: true))))
        {
            NativeOps.Quantize(_device!, source.Storage, OutputConvert.Kind<T>(nameof(source)), rows, columns, options, rotation, parts);
            LastQuantizeKernel = "ms_smxx_quantize";
            return;
        }
        LastQuantizeKernel = _device is null ? "reference" : "ilgpu_quantize";
        using var widened = Widen(source, out var x);
        if (_device is null)
            QuantizeReference(x.HostSpan, rows, columns, options, rotation, parts);
        else
            QuantizeIlgpu(_device, x.View, rows, columns, options, rotation, parts);
    }

    private static void QuantizeReference(ReadOnlySpan<float> x, int rows, int columns, QuantizationOptions options, HadamardTransform? rotation,
                                          QuantizedTensor.Parts parts)
    {
        if (rotation is not null)
        {
            var rotated = new float[x.Length];
            ReferenceHadamard.Rotate(x, rows, columns, rotation, rotated);
            x = rotated;
        }
        if (options.NonFinite == NonFinitePolicy.Throw && ReferenceQuantizer.FindFirstNonFinite(x, columns) is { } bad)
            QuantizerChecks.ThrowNonFinite(bad.Row, bad.Column);
        ReferenceQuantizer.Quantize(x, rows, columns, options, parts);
    }

    private static void QuantizeIlgpu(IlgpuDevice device, ArrayView<float> x, int rows, int columns, QuantizationOptions options,
                                      HadamardTransform? rotation, QuantizedTensor.Parts parts)
    {
        var spec = FormatSpec.Of(options);
        var kernels = device.QuantizeKernels;
        var p = QuantizeParams.For(spec, options, rows, columns, rotation);
        long items = (long)rows * p.ChunksPerRow;
        var launch = p.Split(items, device.ItemsPerThread(items), out int threads);
        var signs = device.Scratch.Signs(rotation);

        if (options.NonFinite == NonFinitePolicy.Throw)
        {
            var first = device.Scratch.Ints(1);
            first.CopyFromCPU(new[] { int.MaxValue });
            kernels.FirstNonFinite(threads, x, signs, first, launch);
            var index = new int[1];
            first.CopyToCPU(index);
            if (index[0] != int.MaxValue)
                QuantizerChecks.ThrowNonFinite(index[0] / columns, index[0] % columns);
        }

        var data = parts.Data.View;
        var blockScales = parts.BlockScales.View;
        var decodeScales = parts.DecodeScales.View;
        ((AcceleratorStorage<byte>)parts.BlockScales).Clear(); // the swizzled layout's padding rows and columns stay 0
        if (!spec.IsMx)
        {
            var amax = device.Scratch.Ints(rows);
            amax.MemSetToZero();
            kernels.AbsMax(threads, x, signs, amax, launch);
            kernels.DecodeScales(spec.DecodeScaleCount(rows), amax, decodeScales, p);
            if (spec.IsNv)
                kernels.BlockQuantize(threads, x, signs, data, blockScales, decodeScales, launch);
            else
                kernels.Fp8Quantize(threads, x, signs, data, decodeScales, launch);
        }
        else
        {
            kernels.BlockQuantize(threads, x, signs, data, blockScales, decodeScales, launch);
        }
    }

    /// <summary>Dequantizes a device-resident tensor to binary32 [Rows, Columns] (padding dropped).</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">A tensor belongs to another context, or <paramref name="destination"/> is not [Rows, Columns].</exception>
    /// <exception cref="ObjectDisposedException">A tensor or the context was disposed.</exception>
    public void Dequantize(QuantizedTensor source, DeviceTensor<float> destination)
    {
        ThrowIfDisposed();
        ThrowIfForeign(source, nameof(source));
        ThrowIfForeign(destination, nameof(destination));
        ThrowIfShapeIsNot(destination, source.Rows, source.Columns, nameof(destination));
        var parts = source.Storage;
        if (_device is null)
        {
            ReferenceQuantizer.Dequantize(parts, source.Rows, source.Columns, source.Options, destination.Storage.HostSpan);
            return;
        }
        if (IsNative && NativeOps.Supports(source.Options))
        {
            NativeOps.Dequantize(_device, source, destination.Storage);
            return;
        }
        long total = destination.Length;
        var launch = QuantizeParams.For(source.Spec, source.Options, source.Rows, source.Columns, null)
            .Split(total, _device.ItemsPerThread(total), out int threads);
        _device.QuantizeKernels.Dequantize(threads, parts.Data.View, parts.BlockScales.View, parts.DecodeScales.View, destination.Storage.View, launch);
    }

    /// <summary>
    /// A copy of <paramref name="source"/> in another <paramref name="layout"/>: the same format, values and decode scales, its codes
    /// and block scales laid out anew (padding zero). Every operation reads every layout; <see cref="ScaleLayout.Tiled16x128"/>
    /// (MXFP4 and NVFP4) is what the native decode GEMM streams fastest (<see cref="Prepack"/>).
    /// </summary>
    /// <returns>A new device-resident tensor the caller owns; <paramref name="source"/> stays as it is.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="source"/> is null.</exception>
    /// <exception cref="ArgumentException">The source belongs to another context, or the layout does not apply to its format.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="layout"/> is undefined.</exception>
    /// <exception cref="ObjectDisposedException">The source or the context was disposed.</exception>
    public QuantizedTensor Relayout(QuantizedTensor source, ScaleLayout layout)
    {
        ThrowIfDisposed();
        ThrowIfForeign(source, nameof(source));
        ThrowHelper.ThrowIfUndefined(layout, nameof(layout));
        var options = source.Options with { Layout = layout };
        options.Validate(nameof(layout));
        var spec = source.Spec;
        int rows = source.Rows, columns = source.Columns;
        var parts = new QuantizedTensor.Parts(Allocate<byte>(spec.DataBytes(rows, columns, layout), zero: true),
                                              Allocate<byte>(spec.BlockScaleBytes(rows, columns, layout), zero: true),
                                              Allocate<float>(spec.DecodeScaleCount(rows), zero: false));
        var result = Track(new QuantizedTensor(options, rows, columns, parts, this));
        try
        {
            var p = RelayoutParams.For(spec, rows, columns, source.Layout, layout);
            var from = source.Storage;
            if (_device is null)
            {
                from.DecodeScales.HostSpan.CopyTo(parts.DecodeScales.HostSpan);
                ReferenceQuantizer.Relayout(from, parts, p);
                return result;
            }
            if (parts.DecodeScales.Length > 0)
                from.DecodeScales.View.CopyTo(parts.DecodeScales.View);
            if (IsNative && NativeOps.GemmReads(options))
            {
                NativeOps.Relayout(_device, source, options, parts);
                return result;
            }
            p.ItemsPerThread = _device.ItemsPerThread(p.TotalItems);
            _device.QuantizeKernels.Relayout((p.TotalItems + p.ItemsPerThread - 1) / p.ItemsPerThread, from.Data.View, from.BlockScales.View,
                                             parts.Data.View, parts.BlockScales.View, p);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Weights <paramref name="weights"/> [N, K] (MXFP4 or NVFP4) prepacked for the decode GEMM (M ≤ 64 tokens): a
    /// <see cref="ScaleLayout.Tiled16x128"/> copy (<see cref="Relayout"/>). On sm_80 and sm_90 the native decode kernel streams
    /// it with one contiguous 512-byte piece per warp and load (H200: 10-18% less time than linear weights at 1 and 16 tokens,
    /// bytes identical); sm_90 prefill GEMMs (BF16 family) and every ILGPU backend read it too. On Blackwell a GEMM with tiled
    /// weights runs the decode kernel at every M, not the block-scaled tensor-core families: keep linear weights for prefill there.
    /// </summary>
    /// <inheritdoc cref="Relayout(QuantizedTensor, ScaleLayout)"/>
    public QuantizedTensor Prepack(QuantizedTensor weights) => Relayout(weights, ScaleLayout.Tiled16x128);

    /// <inheritdoc cref="Dequantize(QuantizedTensor, DeviceTensor{float})"/>
    public DeviceTensor<float> Dequantize(QuantizedTensor source)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(source);
        var result = AllocateTensor<float>(source.Rows, source.Columns);
        try
        {
            Dequantize(source, result);
        }
        catch
        {
            result.Dispose();
            throw;
        }
        return result;
    }

    // ------------------------------------------------------------------ Hadamard

    /// <summary>Rotates each row block-wise: y = c · H_g · (D ⊙ v) per block (NUMERICS.md §4, bit-exact order).</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">A tensor belongs to another context, K is not a multiple of g, or the shapes differ.</exception>
    /// <exception cref="ObjectDisposedException">A tensor or the context was disposed.</exception>
    public void HadamardRotate<T>(DeviceTensor<T> source, HadamardTransform rotation, DeviceTensor<float> destination) where T : unmanaged
    {
        ThrowIfDisposed();
        ThrowIfForeign(source, nameof(source));
        ArgumentNullException.ThrowIfNull(rotation);
        ThrowIfForeign(destination, nameof(destination));
        rotation.ThrowIfColumnsNotMultiple(source.Columns, nameof(source));
        ThrowIfShapeIsNot(destination, source.Rows, source.Columns, nameof(destination));
        if (IsNative)
        {
            NativeOps.Rotate(_device!, source.Storage, OutputConvert.Kind<T>(nameof(source)), source.Rows, source.Columns, rotation, destination.Storage);
            return;
        }
        using var widened = Widen(source, out var x);
        if (_device is null)
        {
            ReferenceHadamard.Rotate(x.HostSpan, source.Rows, source.Columns, rotation, destination.Storage.HostSpan);
            return;
        }
        var p = QuantizeParams.ForRotation(source.Rows, source.Columns, rotation);
        long items = (long)source.Rows * p.ChunksPerRow;
        var launch = p.Split(items, _device.ItemsPerThread(items), out int threads);
        _device.QuantizeKernels.Rotate(threads, x.View, _device.Scratch.Signs(rotation), destination.Storage.View, launch);
    }

    /// <inheritdoc cref="HadamardRotate{T}(DeviceTensor{T}, HadamardTransform, DeviceTensor{float})"/>
    public DeviceTensor<float> HadamardRotate<T>(DeviceTensor<T> source, HadamardTransform rotation) where T : unmanaged
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(source);
        var result = AllocateTensor<float>(source.Rows, source.Columns);
        try
        {
            HadamardRotate(source, rotation, result);
        }
        catch
        {
            result.Dispose();
            throw;
        }
        return result;
    }

    // ------------------------------------------------------------------ GEMM

    /// <summary>
    /// C = alpha · deq(A)·deq(B)ᵀ + bias for quantized activations A [M, K] and weights B [N, K] (W4A4, W4A8, W8A8).
    /// </summary>
    /// <remarks>The ILGPU backends accumulate in binary32: |C − C_ref| ≤ (K + 3)·2^−24·Σ|a·b| + one output ulp against the float64
    /// reference. <see cref="Microscale.Backend.Reference"/> accumulates in float64. Output is rounded to nearest-even.</remarks>
    /// <exception cref="ArgumentNullException">An operand or <paramref name="destination"/> is null.</exception>
    /// <exception cref="ArgumentException">A tensor belongs to another context; K differs; destination is not [M, N]; bias does not hold N values.</exception>
    /// <exception cref="NotSupportedException">The pair of formats has no GEMM, or <typeparamref name="TOut"/> is not float, Half or BFloat16.</exception>
    /// <exception cref="ObjectDisposedException">A tensor or the context was disposed.</exception>
    public void Gemm<TOut>(QuantizedTensor a, QuantizedTensor b, DeviceTensor<TOut> destination, GemmOptions? options = null) where TOut : unmanaged
    {
        ThrowIfDisposed();
        ThrowIfForeign(a, nameof(a));
        ThrowIfForeign(b, nameof(b));
        if (a.Layout == ScaleLayout.Tiled16x128)
            ThrowHelper.ThrowArgument(nameof(a), "The prepacked Tiled16x128 layout is for weights (b); quantized activations are Linear or Swizzled128x4.");
        GemmPairs.Check(a.Options, b.Options);
        GemmCore(a.Rows, a.Columns, a, null, b, destination, options ?? GemmOptions.Default);
    }

    /// <summary>C = alpha · A·deq(B)ᵀ + bias for dense activations A [M, K] (float, Half or BFloat16) and FP4 weights B [N, K] (W4A16).</summary>
    /// <inheritdoc cref="Gemm{TOut}(QuantizedTensor, QuantizedTensor, DeviceTensor{TOut}, GemmOptions?)"/>
    public void Gemm<TA, TOut>(DeviceTensor<TA> a, QuantizedTensor b, DeviceTensor<TOut> destination, GemmOptions? options = null)
        where TA : unmanaged where TOut : unmanaged
    {
        ThrowIfDisposed();
        ThrowIfForeign(a, nameof(a));
        ThrowIfForeign(b, nameof(b));
        GemmPairs.Check(null, b.Options);
        if (IsNative && NativeOps.GemmReads(b.Options))
        {
            // The native kernel reads BF16 / FP16 activations directly.
            GemmCore(a.Rows, a.Columns, null, null, b, destination, options ?? GemmOptions.Default,
                     a.Storage.View.LoadEffectiveAddressAsPtr(), OutputConvert.Kind<TA>(nameof(a)));
            return;
        }
        using var widened = Widen(a, out var dense);
        GemmCore(a.Rows, a.Columns, null, dense, b, destination, options ?? GemmOptions.Default);
    }

    /// <summary>Allocating form: a new binary32 [M, N] result.</summary>
    /// <inheritdoc cref="Gemm{TOut}(QuantizedTensor, QuantizedTensor, DeviceTensor{TOut}, GemmOptions?)"/>
    public DeviceTensor<float> Gemm(QuantizedTensor a, QuantizedTensor b, GemmOptions? options = null)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return Allocating(a.Rows, b.Rows, c => Gemm(a, b, c, options));
    }

    /// <summary>Allocating form of the W4A16 GEMM: a new binary32 [M, N] result.</summary>
    /// <inheritdoc cref="Gemm{TOut}(QuantizedTensor, QuantizedTensor, DeviceTensor{TOut}, GemmOptions?)"/>
    public DeviceTensor<float> Gemm<TA>(DeviceTensor<TA> a, QuantizedTensor b, GemmOptions? options = null) where TA : unmanaged
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return Allocating(a.Rows, b.Rows, c => Gemm(a, b, c, options));
    }

    private DeviceTensor<float> Allocating(int m, int n, Action<DeviceTensor<float>> run)
    {
        var result = AllocateTensor<float>(m, n);
        try
        {
            run(result);
        }
        catch
        {
            result.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>The shared body of every GEMM overload: A is either quantized (<paramref name="quantizedA"/>) or dense binary32.</summary>
    private void GemmCore<TOut>(int m, int k, QuantizedTensor? quantizedA, TensorStorage<float>? denseA, QuantizedTensor b, DeviceTensor<TOut> destination,
                                GemmOptions options, nint nativeDenseA = 0, int nativeDenseKind = 0) where TOut : unmanaged
    {
        ThrowIfForeign(destination, nameof(destination));
        int outputKind = OutputConvert.Kind<TOut>(nameof(destination));
        if (b.Columns != k)
            ThrowHelper.ThrowArgument(nameof(b), $"K differs: a is [{m}, {k}], b is [{b.Rows}, {b.Columns}].");
        int n = b.Rows;
        ThrowIfShapeIsNot(destination, m, n, nameof(destination));
        var bias = options.Bias;
        if (bias is not null)
        {
            ThrowIfForeign(bias, "options.Bias");
            ThrowHelper.ThrowIfLengthIsNot(n, bias.Length, "options.Bias", "values (one per output column N)");
        }
        if (!float.IsFinite(options.Alpha))
            throw new ArgumentOutOfRangeException("options.Alpha", options.Alpha, "Alpha must be finite.");

        if (IsNative && NativeOps.GemmReads(b.Options) && (quantizedA is null || NativeOps.GemmReads(quantizedA.Options)))
        {
            LastGemmKernel = NativeOps.Gemm(_device!, m, n, k, quantizedA, nativeDenseA, nativeDenseKind, b, destination.Storage, outputKind, options);
            return;
        }
        if (_device is null)
        {
            LastGemmKernel = "reference_f64";
            float[] aValues = quantizedA is null ? denseA!.HostSpan.ToArray() : DequantizeOnHost(quantizedA);
            float[] bValues = DequantizeOnHost(b);
            double[] product = ReferenceGemm.Product(aValues, bValues, m, n, k);
            ReferenceGemm.Store<TOut>(product, options.Alpha, bias is null ? default : bias.Storage.HostSpan, n, destination.Storage.HostSpan);
            return;
        }

        var p = new GemmParams { M = m, N = n, K = k, Alpha = options.Alpha, HasBias = bias is null ? 0 : 1, OutputKind = outputKind };
        var view = destination.Storage.View;
        var placeholder = _device.Scratch.One; // stands in for the output view of the other type and a missing bias
        var biasView = bias?.Storage.View ?? placeholder;
        ArrayView<float> output = outputKind == 0 ? view.Cast<float>() : placeholder;
        ArrayView<ushort> output16 = outputKind == 0 ? placeholder.Cast<ushort>() : view.Cast<ushort>();
        var a = quantizedA is null ? new GemmOperand { Format = GemmOperand.DenseFormat, Dense = denseA!.View } : Operand(quantizedA);
        _device.GemmKernels.Run(a, Operand(b), biasView, output, output16, p);
        LastGemmKernel = "ilgpu_" + _device.GemmKernels.Name;
    }

    /// <summary>Dequantizes a tensor of the reference context (its parts are host memory).</summary>
    private static float[] DequantizeOnHost(QuantizedTensor q)
    {
        var values = new float[(long)q.Rows * q.Columns];
        ReferenceQuantizer.Dequantize(q.Storage, q.Rows, q.Columns, q.Options, values);
        return values;
    }

    private GemmOperand Operand(QuantizedTensor q)
    {
        var spec = q.Spec;
        var operand = new GemmOperand
        {
            Format = (int)spec.Format,
            Family = spec.Family,
            PerRow = spec.Format == QuantFormat.Fp8PerRow ? 1 : 0,
            ElementKind = spec.ElementKind,
            ElementBits = spec.ElementBits,
            BlockSize = spec.BlockSize,
            PaddedColumns = spec.PaddedColumns(q.Columns),
            ScaleColumns = spec.ScaleColumns(q.Columns),
            Layout = (int)q.Layout,
        };
        if (_device is not null)
        {
            var parts = q.Storage;
            operand.Data = parts.Data.View;
            operand.BlockScales = parts.BlockScales.View;
            operand.DecodeScales = parts.DecodeScales.View;
        }
        return operand;
    }

    /// <summary>A new [rows, columns] tensor filled by <paramref name="write"/>; disposed if writing throws.</summary>
    internal DeviceTensor<T> AllocateAndWrite<T>(int rows, int columns, Action<DeviceTensor<T>> write) where T : unmanaged
    {
        var output = AllocateTensor<T>(rows, columns);
        try
        {
            write(output);
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    /// <summary>destination = SiLU(gate) · up rounded to BF16, elementwise (the gated MLP's activation for 16-bit layers).</summary>
    internal void SiluMultiply(DeviceTensor<float> gate, DeviceTensor<float> up, DeviceTensor<BFloat16> destination)
    {
        ThrowIfDisposed();
        long total = gate.Storage.Length;
        if (_device is null)
        {
            var g = gate.Storage.HostSpan;
            var u = up.Storage.HostSpan;
            var d = destination.Storage.HostSpan;
            for (int i = 0; i < total; i++)
                d[i] = BFloat16.FromSingle(QuantizeKernels.SiluTimes(g[i], u[i]));
            return;
        }
        int perThread = _device.ItemsPerThread(total);
        _device.QuantizeKernels.SiluMultiplyToBf16((int)((total + perThread - 1) / perThread), gate.Storage.View, up.Storage.View,
                                                   destination.Storage.View.Cast<ushort>(), perThread, (int)total);
    }

    /// <summary>destination = SiLU(gate) · up, elementwise over tensors of one shape (the gated MLP's activation).</summary>
    internal void SiluMultiply(DeviceTensor<float> gate, DeviceTensor<float> up, DeviceTensor<float> destination)
    {
        ThrowIfDisposed();
        long total = gate.Storage.Length;
        if (_device is null)
        {
            var g = gate.Storage.HostSpan;
            var u = up.Storage.HostSpan;
            var d = destination.Storage.HostSpan;
            for (int i = 0; i < total; i++)
                d[i] = QuantizeKernels.SiluTimes(g[i], u[i]);
            return;
        }
        int perThread = _device.ItemsPerThread(total);
        _device.QuantizeKernels.SiluMultiply((int)((total + perThread - 1) / perThread), gate.Storage.View, up.Storage.View, destination.Storage.View,
                                             perThread, (int)total);
    }

    // ------------------------------------------------------------------ plumbing

    /// <summary>Waits for every operation queued on this context.</summary>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    public void Synchronize()
    {
        ThrowIfDisposed();
        _device?.Accelerator.Synchronize();
    }

    private TensorStorage<T> Allocate<T>(long length, bool zero) where T : unmanaged
    {
        if (_device is null)
            return new HostStorage<T>(new T[length]);
        var storage = new AcceleratorStorage<T>(_device.Accelerator, length);
        if (zero)
            storage.Clear();
        return storage;
    }

    private QuantizedTensor.Parts AllocateParts(long dataBytes, long scaleBytes, long decodeScales)
    {
        var data = Allocate<byte>(dataBytes, zero: false);
        var scales = Allocate<byte>(scaleBytes, zero: false);
        var decode = Allocate<float>(decodeScales, zero: false);
        return new QuantizedTensor.Parts(data, scales, decode);
    }

    /// <summary>The source as binary32 storage: itself for float, else a widened copy (exact) that the returned scope frees.</summary>
    private IDisposable? Widen<T>(DeviceTensor<T> source, out TensorStorage<float> result) where T : unmanaged
    {
        int kind = OutputConvert.Kind<T>(nameof(source));
        var storage = source.Storage;
        if (kind == 0)
        {
            result = (TensorStorage<float>)(object)storage;
            return null;
        }
        var widened = Allocate<float>(storage.Length, zero: false);
        if (_device is null)
        {
            var span = widened.HostSpan;
            if (storage is HostStorage<Half> half)
                for (int i = 0; i < span.Length; i++) span[i] = (float)half.HostSpan[i];
            else
                SmallFloat.ConvertToSingle<BFloat16>(((HostStorage<BFloat16>)(object)storage).HostSpan, span);
        }
        else
        {
            long total = storage.Length;
            int perThread = _device.ItemsPerThread(total);
            _device.QuantizeKernels.Widen16((int)((total + perThread - 1) / perThread), storage.View.Cast<ushort>(), widened.View,
                                            kind == 2 ? 1 : 0, perThread, (int)total);
        }
        result = widened;
        return new FreeAfterQueuedWork(_device, widened);
    }

    /// <summary>Frees a temporary buffer only after the work queued on it has run (kernels are asynchronous).</summary>
    private sealed class FreeAfterQueuedWork(IlgpuDevice? device, IDisposable buffer) : IDisposable
    {
        public void Dispose()
        {
            device?.Accelerator.Synchronize();
            buffer.Dispose();
        }
    }

    private T Track<T>(T resource) where T : class, IDisposable
    {
        lock (_owned)
        {
            if (_owned.Count > 64 && _owned.Count % 64 == 0)
                _owned.RemoveAll(w => !w.TryGetTarget(out _));
            _owned.Add(new WeakReference<IDisposable>(resource));
        }
        return resource;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>Whether <see cref="Dispose"/> has run.</summary>
    internal bool IsDisposed => _disposed;

    private void ThrowIfForeign<T>(DeviceTensor<T>? tensor, string paramName) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(tensor, paramName);
        if (tensor.IsDisposed)
            throw new ObjectDisposedException(paramName, $"{paramName} was disposed.");
        if (!ReferenceEquals(tensor.Context, this))
            ThrowHelper.ThrowArgument(paramName, $"{paramName} belongs to another MicroscaleContext ({tensor.Context.Backend}).");
    }

    private void ThrowIfForeign(QuantizedTensor? tensor, string paramName)
    {
        ArgumentNullException.ThrowIfNull(tensor, paramName);
        if (tensor.IsDisposed)
            throw new ObjectDisposedException(paramName, $"{paramName} was disposed.");
        if (tensor.Context is null)
            ThrowHelper.ThrowArgument(paramName, $"{paramName} is a host tensor; move it to this context with Upload() first.");
        if (!ReferenceEquals(tensor.Context, this))
            ThrowHelper.ThrowArgument(paramName, $"{paramName} belongs to another MicroscaleContext ({tensor.Context.Backend}).");
    }

    private static void ThrowIfShapeIsNot<T>(DeviceTensor<T> tensor, int rows, int columns, string paramName) where T : unmanaged
    {
        if (tensor.Rows != rows || tensor.Columns != columns)
            ThrowHelper.ThrowArgument(paramName, $"{paramName} must be [{rows}, {columns}], got [{tensor.Rows}, {tensor.Columns}].");
    }

    /// <summary>Disposes every tensor made here, then the accelerator and ILGPU context; idempotent, never throws.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        lock (_owned)
        {
            foreach (var weak in _owned)
                if (weak.TryGetTarget(out var resource))
                    resource.Dispose();
            _owned.Clear();
        }
        _device?.Dispose();
    }

    /// <inheritdoc/>
    public override string ToString() => $"MicroscaleContext({Backend}, {DeviceName})";
}
