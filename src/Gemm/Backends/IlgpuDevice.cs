using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Microscale.Backends;

/// <summary>An ILGPU context with one accelerator and the kernels loaded on it (each kernel family compiled on first use).</summary>
internal sealed class IlgpuDevice : IDisposable
{
    private static readonly Lazy<string> s_cudaProbe = new(ProbeCuda, LazyThreadSafetyMode.ExecutionAndPublication);
    private readonly Lazy<QuantizeKernels> _quantizeKernels;
    private readonly Lazy<GemmKernels> _gemmKernels;

    private IlgpuDevice(Context context, Accelerator accelerator)
    {
        Context = context;
        Accelerator = accelerator;
        _quantizeKernels = new(() => new QuantizeKernels(accelerator), LazyThreadSafetyMode.ExecutionAndPublication);
        _gemmKernels = new(() => new GemmKernels(accelerator), LazyThreadSafetyMode.ExecutionAndPublication);
        Scratch = new DeviceScratch(accelerator);
    }

    /// <summary>Reused small buffers (workspaces, Hadamard signs).</summary>
    public DeviceScratch Scratch { get; }

    public Context Context { get; }
    public Accelerator Accelerator { get; }
    public bool IsCpu => Accelerator.AcceleratorType == AcceleratorType.CPU;
    public QuantizeKernels QuantizeKernels => _quantizeKernels.Value;
    public GemmKernels GemmKernels => _gemmKernels.Value;

    /// <summary>Whether ILGPU finds a CUDA device (probed once per process).</summary>
    public static bool IsCudaAvailable => s_cudaProbe.Value.Length == 0;

    /// <summary>Why <see cref="IsCudaAvailable"/> is false (empty when it is true).</summary>
    public static string CudaUnavailableReason => s_cudaProbe.Value;

    /// <summary>
    /// How many work items each logical thread takes. The CPU accelerator costs about 1 µs per logical thread, so it gets
    /// few fat threads; GPUs get one item per thread.
    /// </summary>
    public int ItemsPerThread(long totalItems) =>
        IsCpu ? (int)Math.Max(1, (totalItems + 255) / 256) : 1;

    /// <summary>A new ILGPU context with the CPU accelerator, or the CUDA accelerator on CUDA device <paramref name="ordinal"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">No CUDA device has that ordinal.</exception>
    public static IlgpuDevice Create(bool cuda, int ordinal = 0)
    {
        var context = Context.Create(builder => (cuda ? builder.Cuda() : builder.CPU()).EnableAlgorithms());
        try
        {
            int count = cuda ? context.GetCudaDevices().Count : 1;
            if (ordinal < 0 || ordinal >= count)
                throw new ArgumentOutOfRangeException("device", ordinal, cuda ? $"ILGPU finds {count} CUDA device(s)." : "The CPU backends have one device, 0.");
            Accelerator accelerator = cuda
                ? context.GetCudaDevice(ordinal).CreateCudaAccelerator(context)
                : context.GetCPUDevice(0).CreateCPUAccelerator(context);
            return new IlgpuDevice(context, accelerator);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>Every CUDA device ILGPU finds (empty without a driver or GPU).</summary>
    public static IReadOnlyList<CudaDeviceInfo> ListCudaDevices()
    {
        if (!IsCudaAvailable)
            return [];
        using var probe = Context.Create(builder => builder.Cuda());
        var devices = probe.GetCudaDevices();
        var result = new List<CudaDeviceInfo>(devices.Count);
        for (int i = 0; i < devices.Count; i++)
        {
            var d = devices[i];
            result.Add(new CudaDeviceInfo(i, d.Name, d.Architecture?.Major ?? 0, d.Architecture?.Minor ?? 0, d.NumMultiprocessors, d.MemorySize));
        }
        return result;
    }

    /// <summary>Empty when a CUDA device is usable, else the reason it is not.</summary>
    private static string ProbeCuda()
    {
        try
        {
            using var probe = Context.Create(builder => builder.Cuda());
            return probe.GetCudaDevices().Count == 0 ? "no CUDA device found by ILGPU (driver missing or no GPU)" : "";
        }
        catch (Exception ex)
        {
            return $"ILGPU CUDA probe failed: {ex.GetType().Name}: {ex.Message}";
        }
    }

    public void Dispose()
    {
        Scratch.Dispose();
        Accelerator.Dispose();
        Context.Dispose();
    }
}
