using ILGPU;
using ILGPU.Runtime;

namespace Microscale.Backends;

/// <summary>Host side of the ILGPU quantize/dequantize kernels: uploads, launches in order on the default stream, downloads.</summary>
internal static class IlgpuQuantizer
{
    public static void Quantize(IlgpuDevice device, ReadOnlySpan<float> x, int rows, int columns, QuantizationOptions options,
                                QuantizedBuffers destination)
    {
        var spec = FormatSpec.Of(options);
        var accelerator = device.Accelerator;
        var kernels = device.QuantizeKernels;
        var p = QuantizeParams.For(spec, options, rows, columns);

        using var input = accelerator.Allocate1D<float>(x.Length);
        input.View.AsContiguous().CopyFromCPU(x);

        if (options.NonFinite == NonFinitePolicy.Throw)
            ThrowIfNonFinite(device, input.View, columns, p);

        using var data = accelerator.Allocate1D<byte>(Math.Max(1, destination.Data.Length));
        using var blockScales = accelerator.Allocate1D<byte>(Math.Max(1, destination.BlockScales.Length));
        using var decodeScales = accelerator.Allocate1D<float>(Math.Max(1, destination.DecodeScales.Length));
        using var amax = accelerator.Allocate1D<int>(Math.Max(1, rows));
        blockScales.MemSetToZero(); // the swizzled layout's padding rows and columns stay 0
        amax.MemSetToZero();

        int threads;
        if (spec.IsMx)
        {
            long blocks = (long)rows * p.ScaleColumns;
            var launch = p.Split(blocks, device.ItemsPerThread(blocks), out threads);
            kernels.MxQuantize(threads, input.View, data.View, blockScales.View, launch);
        }
        else if (spec.Format == QuantFormat.Nvfp4)
        {
            var reduce = p.Split(x.Length, device.ItemsPerThread(x.Length), out threads);
            kernels.AbsMax(threads, input.View, amax.View, reduce);
            kernels.DecodeScales(1, amax.View, decodeScales.View, p);
            long blocks = (long)rows * p.ScaleColumns;
            var launch = p.Split(blocks, device.ItemsPerThread(blocks), out threads);
            kernels.NvQuantize(threads, input.View, data.View, blockScales.View, decodeScales.View, launch);
        }
        else
        {
            bool perRow = spec.Format == QuantFormat.Fp8PerRow;
            var reduce = perRow ? p.Split(rows, device.ItemsPerThread(rows), out threads)
                                : p.Split(x.Length, device.ItemsPerThread(x.Length), out threads);
            (perRow ? kernels.RowAbsMax : kernels.AbsMax)(threads, input.View, amax.View, reduce);
            kernels.DecodeScales(perRow ? rows : 1, amax.View, decodeScales.View, p);
            var launch = p.Split(x.Length, device.ItemsPerThread(x.Length), out threads);
            kernels.Fp8Quantize(threads, input.View, data.View, decodeScales.View, launch);
        }

        data.View.SubView(0, destination.Data.Length).CopyToCPU(destination.Data);
        blockScales.View.SubView(0, destination.BlockScales.Length).CopyToCPU(destination.BlockScales);
        decodeScales.View.SubView(0, destination.DecodeScales.Length).CopyToCPU(destination.DecodeScales);
    }

    private static void ThrowIfNonFinite(IlgpuDevice device, ArrayView<float> input, int columns, QuantizeParams p)
    {
        using var first = device.Accelerator.Allocate1D(new[] { int.MaxValue });
        var launch = p.Split(input.Length, device.ItemsPerThread(input.Length), out int threads);
        device.QuantizeKernels.FirstNonFinite(threads, input, first.View, launch);
        int index = first.GetAsArray1D()[0];
        if (index != int.MaxValue)
            QuantizerChecks.ThrowNonFinite(index / columns, index % columns);
    }

    public static void Dequantize(IlgpuDevice device, QuantizedBuffers q, int rows, int columns, QuantizationOptions options, Span<float> destination)
    {
        var spec = FormatSpec.Of(options);
        var accelerator = device.Accelerator;
        using var data = accelerator.Allocate1D<byte>(Math.Max(1, q.Data.Length));
        using var blockScales = accelerator.Allocate1D<byte>(Math.Max(1, q.BlockScales.Length));
        using var decodeScales = accelerator.Allocate1D<float>(Math.Max(1, q.DecodeScales.Length));
        using var output = accelerator.Allocate1D<float>((long)rows * columns);
        data.View.SubView(0, q.Data.Length).CopyFromCPU(q.Data);
        blockScales.View.SubView(0, q.BlockScales.Length).CopyFromCPU(q.BlockScales);
        decodeScales.View.SubView(0, q.DecodeScales.Length).CopyFromCPU(q.DecodeScales);
        long total = (long)rows * columns;
        var launch = QuantizeParams.For(spec, options, rows, columns).Split(total, device.ItemsPerThread(total), out int threads);
        device.QuantizeKernels.Dequantize(threads, data.View, blockScales.View, decodeScales.View, output.View, launch);
        output.View.AsContiguous().CopyToCPU(destination[..(int)total]);
    }
}
