namespace Microscale;

/// <summary>
/// A dense row-major [Rows, Columns] tensor of <see cref="float"/>, <see cref="Half"/> or <see cref="BFloat16"/> living on a
/// <see cref="MicroscaleContext"/>'s device (host memory for <see cref="Backend.Reference"/>). Owns its memory.
/// </summary>
/// <remarks>Create with <see cref="MicroscaleContext.CreateTensor{T}(ReadOnlySpan{T}, int, int)"/> or
/// <see cref="MicroscaleContext.AllocateTensor{T}(int, int)"/>. Only <see cref="CopyTo"/> and <see cref="ToArray"/> wait for
/// queued work. Disposing the context disposes every tensor it made.</remarks>
/// <typeparam name="T">float, Half or BFloat16.</typeparam>
public sealed class DeviceTensor<T> : IDisposable where T : unmanaged
{
    private Tensors.TensorStorage<T>? _storage;

    internal DeviceTensor(MicroscaleContext context, Tensors.TensorStorage<T> storage, int rows, int columns)
    {
        Context = context;
        _storage = storage;
        Rows = rows;
        Columns = columns;
    }

    /// <summary>The context that owns the memory.</summary>
    public MicroscaleContext Context { get; }

    /// <summary>Rows.</summary>
    public int Rows { get; }

    /// <summary>Columns.</summary>
    public int Columns { get; }

    /// <summary>Rows × Columns.</summary>
    public long Length => (long)Rows * Columns;

    /// <summary>Whether <see cref="Dispose"/> has run (directly or through the context).</summary>
    public bool IsDisposed => _storage is null;

    internal Tensors.TensorStorage<T> Storage => _storage ?? throw new ObjectDisposedException(GetType().Name);

    /// <summary>Copies <paramref name="source"/> (exactly <see cref="Length"/> elements) into the tensor.</summary>
    /// <exception cref="ArgumentException"><paramref name="source"/> has the wrong length.</exception>
    /// <exception cref="ObjectDisposedException">The tensor or its context was disposed.</exception>
    public void CopyFrom(ReadOnlySpan<T> source)
    {
        var storage = Storage;
        ThrowHelper.ThrowIfLengthIsNot(Length, source.Length, nameof(source));
        storage.CopyFrom(source);
    }

    /// <summary>Copies the tensor into <paramref name="destination"/>, waiting for queued work first.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="Length"/>.</exception>
    /// <exception cref="ObjectDisposedException">The tensor or its context was disposed.</exception>
    public void CopyTo(Span<T> destination)
    {
        var storage = Storage;
        ThrowHelper.ThrowIfDestinationTooShort(Length, destination.Length, nameof(destination));
        storage.CopyTo(destination);
    }

    /// <summary>A new host array with the tensor's elements, row-major.</summary>
    /// <exception cref="ObjectDisposedException">The tensor or its context was disposed.</exception>
    public T[] ToArray() => Storage.ToArray();

    /// <summary>The device address of the first element (accelerator backends only).</summary>
    internal nint DevicePointer() => ILGPU.Runtime.ArrayViewExtensions.LoadEffectiveAddressAsPtr(Storage.View);

    /// <summary>Enqueues a device-to-device copy into <paramref name="destination"/> (same shape and context).</summary>
    internal void CopyDeviceTo(DeviceTensor<T> destination) => ILGPU.Runtime.ArrayViewExtensions.CopyTo(Storage.View, destination.Storage.View);

    /// <summary>Frees the memory; idempotent, never throws.</summary>
    public void Dispose()
    {
        var storage = Interlocked.Exchange(ref _storage, null);
        storage?.Dispose();
    }

    /// <inheritdoc/>
    public override string ToString() => $"DeviceTensor<{typeof(T).Name}>({Rows}×{Columns}, {Context.Backend})";
}
