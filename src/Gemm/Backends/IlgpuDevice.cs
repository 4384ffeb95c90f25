using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Microscale.Backends;

/// <summary>
/// An ILGPU context with one accelerator and the kernels loaded on it. The process-wide instances are created on first
/// use and live until the process ends.
/// </summary>
internal sealed class IlgpuDevice : IDisposable
{
    private static readonly Lazy<IlgpuDevice> s_cpu = new(() => Create(cuda: false), LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly Lazy<IlgpuDevice?> s_cuda = new(() => TryCreateCuda(out _), LazyThreadSafetyMode.ExecutionAndPublication);
    private readonly Lazy<QuantizeKernels> _quantizeKernels;

    private IlgpuDevice(Context context, Accelerator accelerator)
    {
        Context = context;
        Accelerator = accelerator;
        _quantizeKernels = new(() => new QuantizeKernels(accelerator), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public Context Context { get; }
    public Accelerator Accelerator { get; }
    public bool IsCpu => Accelerator.AcceleratorType == AcceleratorType.CPU;
    public QuantizeKernels QuantizeKernels => _quantizeKernels.Value;

    /// <summary>The shared ILGPU CPU accelerator.</summary>
    public static IlgpuDevice Cpu => s_cpu.Value;

    /// <summary>The shared ILGPU CUDA accelerator on the first CUDA device, or null when there is none.</summary>
    public static IlgpuDevice? Cuda => s_cuda.Value;

    /// <summary>Why <see cref="Cuda"/> is null (empty when it is not).</summary>
    public static string CudaUnavailableReason { get; private set; } = "";

    /// <summary>
    /// How many work items each logical thread takes. The CPU accelerator costs about 1 µs per logical thread, so it gets
    /// few fat threads; GPUs get one item per thread.
    /// </summary>
    public int ItemsPerThread(long totalItems) =>
        IsCpu ? (int)Math.Max(1, (totalItems + 255) / 256) : 1;

    private static IlgpuDevice Create(bool cuda)
    {
        var context = Context.Create(builder => (cuda ? builder.Cuda() : builder.CPU()).EnableAlgorithms());
        try
        {
            Accelerator accelerator = cuda
                ? context.GetCudaDevice(0).CreateCudaAccelerator(context)
                : context.GetCPUDevice(0).CreateCPUAccelerator(context);
            return new IlgpuDevice(context, accelerator);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    private static IlgpuDevice? TryCreateCuda(out string reason)
    {
        try
        {
            using (var probe = Context.Create(builder => builder.Cuda()))
            {
                if (probe.GetCudaDevices().Count == 0)
                {
                    CudaUnavailableReason = reason = "no CUDA device found by ILGPU (driver missing or no GPU)";
                    return null;
                }
            }
            reason = "";
            return Create(cuda: true);
        }
        catch (Exception ex)
        {
            CudaUnavailableReason = reason = $"ILGPU CUDA accelerator failed to start: {ex.GetType().Name}: {ex.Message}";
            return null;
        }
    }

    public void Dispose()
    {
        Accelerator.Dispose();
        Context.Dispose();
    }
}
