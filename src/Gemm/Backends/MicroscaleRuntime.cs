using Microscale.Backends;

namespace Microscale;

/// <summary>One backend as found on this machine.</summary>
/// <param name="Backend">The backend.</param>
/// <param name="IsAvailable">Whether operations can run on it here.</param>
/// <param name="Device">The device it runs on (empty when unavailable).</param>
/// <param name="Detail">Why it is or is not available.</param>
public sealed record BackendStatus(Backend Backend, bool IsAvailable, string Device, string Detail);

/// <summary>One CUDA device: <see cref="MicroscaleContext.Create(Backend, int)"/> takes its ordinal.</summary>
/// <param name="Ordinal">Its index among the visible CUDA devices (as CUDA_VISIBLE_DEVICES leaves them).</param>
/// <param name="Name">The device name.</param>
/// <param name="Major">Compute capability, major.</param>
/// <param name="Minor">Compute capability, minor.</param>
/// <param name="Multiprocessors">Streaming multiprocessors.</param>
/// <param name="MemoryBytes">Device memory.</param>
public sealed record CudaDeviceInfo(int Ordinal, string Name, int Major, int Minor, int Multiprocessors, long MemoryBytes);

/// <summary>What this process can run on, and what <see cref="Backend.Auto"/> picks and why.</summary>
public static class MicroscaleRuntime
{
    /// <summary>Probes every backend (starting the shared ILGPU accelerators on first use) and reports each.</summary>
    public static IReadOnlyList<BackendStatus> DescribeBackends() => new[]
    {
        new BackendStatus(Backend.Reference, true, "managed code", "scalar reference, always present"),
        new BackendStatus(Backend.Cpu, true, MicroscaleContext.Shared(Backend.Cpu).DeviceName,
                          $"ILGPU CPU accelerator, {Environment.ProcessorCount} cores"),
        IlgpuDevice.IsCudaAvailable
            ? new BackendStatus(Backend.Cuda, true, MicroscaleContext.Shared(Backend.Cuda).DeviceName, "ILGPU CUDA accelerator")
            : new BackendStatus(Backend.Cuda, false, "", IlgpuDevice.CudaUnavailableReason),
        NativeProblem() is { Length: > 0 } problem
            ? new BackendStatus(Backend.Native, false, "", problem)
            : new BackendStatus(Backend.Native, true, MicroscaleContext.Shared(Backend.Native).DeviceName,
                                $"libmicroscale {Interop.NativeRuntime.Version}"),
    };

    /// <summary>The CUDA devices of this process (empty without a driver or GPU); create a context per device for several.</summary>
    public static IReadOnlyList<CudaDeviceInfo> CudaDevices() => IlgpuDevice.ListCudaDevices();

    /// <summary>
    /// The libmicroscale kernel a GEMM of these formats and shape runs on a GPU of compute capability
    /// <paramref name="computeCapability"/> (90: H100 / H200, 100: B200, 120: RTX 5090) with <paramref name="multiprocessors"/> SMs and
    /// BF16 output: the native dispatch table, whatever GPU is present (none is needed). <paramref name="activations"/> null: dense
    /// BF16 activations (W4A16, W8A16).
    /// </summary>
    /// <exception cref="NotSupportedException">libmicroscale is not loaded here.</exception>
    /// <exception cref="MicroscaleException">The pair has no GEMM, or an argument is out of range (the exception names it).</exception>
    public static string NativeGemmKernelFor(int computeCapability, int multiprocessors, int m, int n, int k, QuantizationOptions? activations,
                                             QuantizationOptions weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (!Interop.NativeRuntime.IsAvailable)
            throw new NotSupportedException(Interop.NativeRuntime.Problem);
        return NativeOps.GemmKernelFor(computeCapability, multiprocessors, m, n, k, activations, weights, outputKind: 1, hasBias: false);
    }

    /// <summary>Why <see cref="Backend.Native"/> cannot run here, or empty when it can.</summary>
    internal static string NativeProblem() =>
        !Interop.NativeRuntime.IsAvailable ? Interop.NativeRuntime.Problem
        : !IlgpuDevice.IsCudaAvailable ? IlgpuDevice.CudaUnavailableReason
        : "";

    /// <summary>The concrete backend a request resolves to, with the reason (for logs: fallback is never silent).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="backend"/> is not defined.</exception>
    public static (Backend Backend, string Reason) Resolve(Backend backend)
    {
        ThrowHelper.ThrowIfUndefined(backend, nameof(backend));
        if (backend != Backend.Auto)
            return (backend, "requested");
        if (!IlgpuDevice.IsCudaAvailable)
            return (Backend.Cpu, $"Auto: {IlgpuDevice.CudaUnavailableReason}; using the ILGPU CPU accelerator");
        return NativeProblem() is { Length: > 0 } problem
            ? (Backend.Cuda, $"Auto: a CUDA device is present but the native library is not usable ({problem.Split('\n')[0].Trim()}); using ILGPU CUDA")
            : (Backend.Native, "Auto: libmicroscale loaded and a CUDA device is present");
    }
}
