using ILGPU;
using ILGPU.Runtime;
using Microscale.Formats;

namespace Microscale.Bench;

/// <summary>
/// Random BF16 operands made on the device: host Gaussians for a 16384 x 8192 operand take seconds, a hash per element on the GPU
/// takes microseconds. Element i of a tensor depends only on (seed, i): bell-shaped, mean 0, variance 1, never constant.
/// </summary>
internal sealed class DeviceRandom
{
    private readonly MicroscaleContext _context;
    private readonly Action<Index1D, ArrayView<ushort>, ulong> _fill;

    /// <summary>Loads the kernel on the context's accelerator (bind it first on a CUDA accelerator).</summary>
    public DeviceRandom(MicroscaleContext context)
    {
        _context = context;
        _fill = GpuSweep.ContextAccelerator(context).LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ulong>(FillKernel);
    }

    /// <summary>A new [rows, columns] tensor of random values, filled on the default stream (no wait).</summary>
    public DeviceTensor<BFloat16> Tensor(int rows, int columns, ulong seed)
    {
        var tensor = _context.AllocateTensor<BFloat16>(rows, columns);
        _fill((int)tensor.Length, tensor.Storage.View.Cast<ushort>(), seed); // one element per thread: GPUs only, not the CPU accelerator
        return tensor;
    }

    private static void FillKernel(Index1D index, ArrayView<ushort> output, ulong seed)
    {
        // SplitMix64: a Weyl step then its finalizer, so neighbouring elements get unrelated 64-bit words.
        ulong z = seed * 0xD1B54A32D192ED03UL + (ulong)index.X * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        // Irwin–Hall: four 16-bit uniforms summed, centred and scaled by √3 to unit variance (bell-shaped without log or cos).
        float sum = (uint)(z & 0xFFFF) + (uint)((z >> 16) & 0xFFFF) + (uint)((z >> 32) & 0xFFFF) + (uint)(z >> 48); // exact in uint
        output[index] = FloatBits.ToBFloat16((sum * (1.0f / 65536) - 2.0f) * 1.7320508f);
    }
}
