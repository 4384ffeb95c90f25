using ILGPU;
using ILGPU.Runtime;

namespace Microscale.Backends;

/// <summary>
/// Small device buffers an accelerator's operations reuse instead of allocating (and synchronizing to free) per call:
/// an int workspace (amax, first non-finite index, native workspaces) that grows on demand, the sign vector of each
/// Hadamard transform used (uploaded once; transforms are immutable), and a one-float placeholder view. Work on the
/// default stream is ordered, so consecutive operations can share them.
/// </summary>
internal sealed class DeviceScratch : IDisposable
{
    private readonly Accelerator _accelerator;
    private readonly Dictionary<HadamardTransform, MemoryBuffer1D<float, Stride1D.Dense>> _signs = new(ReferenceEqualityComparer.Instance);
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _one;
    private MemoryBuffer1D<int, Stride1D.Dense> _ints;
    private MemoryBuffer1D<int, Stride1D.Dense>? _gemmWorkspace;

    public DeviceScratch(Accelerator accelerator)
    {
        _accelerator = accelerator;
        _one = accelerator.Allocate1D(new[] { 1.0f });
        _ints = accelerator.Allocate1D<int>(1024);
    }

    /// <summary>A view of at least <paramref name="count"/> ints (contents undefined), valid until the next call.</summary>
    public ArrayView<int> Ints(long count)
    {
        if (_ints.Length < count)
            _ints = Grown(_ints, count);
        return _ints.View.SubView(0, Math.Max(1, count)).AsContiguous();
    }

    /// <summary>
    /// The native GEMM plans' workspace, at least <paramref name="bytes"/>: zero-filled when allocated and used by GEMM plans only,
    /// which leave it reusable (microscale.h: split-K counters return to zero after every run).
    /// </summary>
    public ArrayView<int> GemmWorkspace(long bytes)
    {
        long count = Math.Max(64, (bytes + 3) / 4);
        if (_gemmWorkspace is null || _gemmWorkspace.Length < count)
        {
            _gemmWorkspace = Grown(_gemmWorkspace, count);
            _gemmWorkspace.MemSetToZero();
        }
        return _gemmWorkspace.View.AsContiguous();
    }

    /// <summary>A buffer of at least <paramref name="count"/> ints (twice the old length when that is more) replacing
    /// <paramref name="old"/>, which is freed once the kernels in flight that may read it are done.</summary>
    private MemoryBuffer1D<int, Stride1D.Dense> Grown(MemoryBuffer1D<int, Stride1D.Dense>? old, long count)
    {
        long length = old?.Length ?? 0;
        if (old is not null)
        {
            _accelerator.Synchronize();
            old.Dispose();
        }
        return Tensors.DeviceAllocation.Allocate<int>(_accelerator, Math.Max(count, 2 * length));
    }

    /// <summary>The device copy of the transform's signs, or the placeholder [1.0] without a rotation.</summary>
    public ArrayView<float> Signs(HadamardTransform? rotation)
    {
        if (rotation is null)
            return One;
        if (!_signs.TryGetValue(rotation, out var buffer))
            _signs[rotation] = buffer = _accelerator.Allocate1D(rotation.SignArray);
        return buffer.View.AsContiguous();
    }

    /// <summary>A one-element float view holding 1.0 (placeholder for unused kernel arguments).</summary>
    public ArrayView<float> One => _one.View.AsContiguous();

    public void Dispose()
    {
        foreach (var buffer in _signs.Values)
            buffer.Dispose();
        _signs.Clear();
        _ints.Dispose();
        _gemmWorkspace?.Dispose();
        _one.Dispose();
    }
}
