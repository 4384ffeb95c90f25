using ILGPU;
using ILGPU.Runtime;

namespace Microscale.Tensors;

/// <summary>
/// The memory behind a tensor: a managed array (the reference backend and host tensors) or an ILGPU buffer on the
/// context's accelerator. The one place that knows how to copy in and out of either.
/// </summary>
internal abstract class TensorStorage<T> : IDisposable where T : unmanaged
{
    public abstract long Length { get; }

    /// <summary>True when the elements are a managed array readable as a span.</summary>
    public abstract bool IsHost { get; }

    /// <summary>The elements as a span (host storage only).</summary>
    public abstract Span<T> HostSpan { get; }

    /// <summary>The elements as an ILGPU view (accelerator storage only).</summary>
    public abstract ArrayView<T> View { get; }

    public abstract void CopyFrom(ReadOnlySpan<T> source);

    /// <summary>Copies every element into <paramref name="destination"/>; synchronizes with the accelerator.</summary>
    public abstract void CopyTo(Span<T> destination);

    public abstract void Dispose();

    public T[] ToArray()
    {
        var result = new T[Length];
        CopyTo(result);
        return result;
    }
}

internal sealed class HostStorage<T> : TensorStorage<T> where T : unmanaged
{
    private readonly T[] _array;

    public HostStorage(T[] array) => _array = array;

    public override long Length => _array.Length;
    public override bool IsHost => true;
    public override Span<T> HostSpan => _array;
    public override ArrayView<T> View => throw new InvalidOperationException("Host storage has no accelerator view.");
    public override void CopyFrom(ReadOnlySpan<T> source) => source.CopyTo(_array);
    public override void CopyTo(Span<T> destination) => _array.AsSpan().CopyTo(destination);
    public override void Dispose() { }
}

internal sealed class AcceleratorStorage<T> : TensorStorage<T> where T : unmanaged
{
    // ILGPU cannot allocate zero-length buffers portably; empty tensors (no block scales) keep one spare element.
    private readonly MemoryBuffer1D<T, Stride1D.Dense> _buffer;
    private readonly long _length;

    public AcceleratorStorage(Accelerator accelerator, long length)
    {
        _length = length;
        _buffer = DeviceAllocation.Allocate<T>(accelerator, Math.Max(1, length));
    }

    public override long Length => _length;
    public override bool IsHost => false;
    public override Span<T> HostSpan => throw new InvalidOperationException("Accelerator storage is not host memory.");
    public override ArrayView<T> View => _buffer.View.SubView(0, Math.Max(1, _length)).AsContiguous();

    public override void CopyFrom(ReadOnlySpan<T> source)
    {
        if (_length > 0)
            _buffer.View.SubView(0, _length).AsContiguous().CopyFromCPU(source[..(int)_length]);
    }

    public override void CopyTo(Span<T> destination)
    {
        if (_length > 0)
            _buffer.View.SubView(0, _length).AsContiguous().CopyToCPU(destination[..(int)_length]);
    }

    public void Clear() => _buffer.MemSetToZero();

    public override void Dispose() => _buffer.Dispose();
}

/// <summary>Device allocations that fail for want of memory raise <see cref="InsufficientMemoryException"/> naming the size and
/// the device (ILGPU reports a CUDA error code); the context stays usable.</summary>
internal static class DeviceAllocation
{
    public static MemoryBuffer1D<T, Stride1D.Dense> Allocate<T>(Accelerator accelerator, long length) where T : unmanaged
    {
        try
        {
            return accelerator.Allocate1D<T>(length);
        }
        catch (ILGPU.Runtime.Cuda.CudaException ex) when (ex.Error == "CUDA_ERROR_OUT_OF_MEMORY") // the CudaError name
        {
            long bytes = length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
            throw new InsufficientMemoryException(
                $"Out of device memory: {bytes:N0} bytes ({length:N0} × {typeof(T).Name}) do not fit on {accelerator.Name}.", ex);
        }
    }
}
