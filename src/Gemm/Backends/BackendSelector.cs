namespace Microscale.Backends;

/// <summary>Turns a <see cref="Backend"/> request into the ILGPU device that serves it (null for the managed reference).</summary>
internal static class BackendSelector
{
    public static IlgpuDevice? Resolve(Backend backend, string paramName = "backend")
    {
        ThrowHelper.ThrowIfUndefined(backend, paramName);
        return backend switch
        {
            Backend.Reference => null,
            Backend.Cpu => IlgpuDevice.Cpu,
            Backend.Cuda => IlgpuDevice.Cuda ?? throw new NotSupportedException(
                $"Backend.Cuda is not available: {IlgpuDevice.CudaUnavailableReason}"),
            _ => IlgpuDevice.Cuda ?? IlgpuDevice.Cpu,
        };
    }

    /// <summary>The concrete backend <paramref name="backend"/> resolves to, and why.</summary>
    public static (Backend Resolved, string Reason) Describe(Backend backend)
    {
        if (backend != Backend.Auto)
            return (backend, "requested");
        return IlgpuDevice.Cuda is not null
            ? (Backend.Cuda, $"Auto: ILGPU CUDA device '{IlgpuDevice.Cuda.Accelerator.Name}' found")
            : (Backend.Cpu, $"Auto: {IlgpuDevice.CudaUnavailableReason}; using the ILGPU CPU accelerator");
    }
}
