using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Microscale.Bench;

/// <summary>
/// GPU sweep (`Microscale.Bench gpu-sweep OUT_DIR`): quantization against the device-to-device copy bandwidth, GEMM against
/// cuBLASLt BF16, all measured in the same run on the same GPU. Times: median over batches of launches, each batch ended by a
/// synchronize (host clock). Prints a table and writes gpu-sweep.csv / gpu-sweep.json.
/// </summary>
internal static class GpuSweep
{
    private sealed record Row(string Kind, string Backend, string Shape, string Config, double Microseconds, double Tflops, double GBps,
                              string Baseline, double BaselineMicroseconds, double Ratio);

    public static int Run(string outputDirectory)
    {
        Directory.CreateDirectory(outputDirectory);
        var rows = new List<Row>();
        foreach (var backend in new[] { Backend.Native, Backend.Cuda })
        {
            var status = MicroscaleRuntime.DescribeBackends().Single(s => s.Backend == backend);
            if (!status.IsAvailable)
            {
                Console.WriteLine($"skip {backend}: {status.Detail}");
                continue;
            }
            using var context = MicroscaleContext.Create(backend);
            Quantize(context, rows);
            Gemm(context, rows);
        }
        Write(rows, outputDirectory);
        return 0;
    }

    private static double MedianMicroseconds(MicroscaleContext context, Action run, int perBatch = 10, int batches = 7)
    {
        run();
        context.Synchronize();
        var samples = new double[batches];
        for (int b = 0; b < batches; b++)
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < perBatch; i++)
                run();
            context.Synchronize();
            samples[b] = clock.Elapsed.TotalMicroseconds / perBatch;
        }
        Array.Sort(samples);
        return samples[batches / 2];
    }

    private static void Quantize(MicroscaleContext context, List<Row> rows)
    {
        foreach (var (m, k) in new[] { (16, 4096), (4096, 4096), (8192, 8192) })
        {
            var x = SeededGaussian.Create(m * k, seed: 1).Select(v => (BFloat16)v).ToArray();
            using var source = context.CreateTensor<BFloat16>(x, m, k);
            using var copy = context.AllocateTensor<BFloat16>(m, k);
            double copyUs = MedianMicroseconds(context, () => source.CopyDeviceTo(copy));
            foreach (var options in new[] { new QuantizationOptions(QuantFormat.Nvfp4), new QuantizationOptions(QuantFormat.Mxfp4), new QuantizationOptions(QuantFormat.Fp8PerRow) })
            {
                using var destination = context.AllocateQuantized(m, k, options); // caller-allocated: the sweep times the kernels, not cudaMalloc
                double us = MedianMicroseconds(context, () => context.Quantize(source, destination));
                double bytes = m * (double)k * 2 + FormatSpecBytes(destination);
                // Baseline: copying the BF16 input (read + write of 2 bytes per value) at the device's copy bandwidth.
                double copyBytes = m * (double)k * 2 * 2;
                rows.Add(new Row("quantize", context.Backend.ToString(), $"{m}x{k}", options.ToString(), us, 0, bytes / us / 1e3,
                                 "d2d copy", copyUs, (bytes / us) / (copyBytes / copyUs)));
            }
        }
    }

    private static double FormatSpecBytes(QuantizedTensor q) =>
        q.Spec.DataBytes(q.Rows, q.Columns) + q.Spec.BlockScaleBytes(q.Rows, q.Columns, q.Layout);

    private static void Gemm(MicroscaleContext context, List<Row> rows)
    {
        bool baselines = Baselines.IsAvailable;
        foreach (var (m, n, k) in new[] { (16, 4096, 4096), (128, 4096, 4096), (4096, 4096, 4096) })
        {
            using var a = context.CreateTensor<BFloat16>(SeededGaussian.Create(m * k, 1).Select(v => (BFloat16)v).ToArray(), m, k);
            using var b = context.CreateTensor<BFloat16>(SeededGaussian.Create(n * k, 2).Select(v => (BFloat16)v).ToArray(), n, k);
            using var c = context.AllocateTensor<BFloat16>(m, n);
            double baselineUs = double.NaN;
            if (baselines && context.Backend is Backend.Native or Backend.Cuda)
            {
                var accelerator = ContextAccelerator(context);
                using var binding = accelerator.BindScoped();
                using var workspace = accelerator.Allocate1D<byte>(32 << 20);
                nint stream = ((CudaStream)accelerator.DefaultStream).StreamPtr;
                baselineUs = MedianMicroseconds(context, () => Baselines.Gemm(0, m, n, k, a.DevicePointer(), b.DevicePointer(), c.DevicePointer(), 0, 0,
                                                                                workspace.View.BaseView.LoadEffectiveAddressAsPtr(), (nuint)(32 << 20), stream));
            }
            foreach (var (aOptions, bOptions) in new (QuantizationOptions?, QuantizationOptions)[]
                     {
                         (new(QuantFormat.Mxfp4), new(QuantFormat.Mxfp4)),
                         (new(QuantFormat.Fp8PerRow), new(QuantFormat.Fp8PerRow)),
                         (null, new(QuantFormat.Nvfp4)),
                     })
            {
                using var qb = context.Quantize(b, bOptions);
                using var qa = aOptions is null ? null : context.Quantize(a, aOptions);
                double us = MedianMicroseconds(context, () =>
                {
                    if (qa is null) context.Gemm(a, qb, c);
                    else context.Gemm(qa, qb, c);
                });
                double flops = 2.0 * m * n * k;
                string pair = aOptions is null ? $"bf16 x {bOptions}" : $"{aOptions} x {bOptions}";
                rows.Add(new Row("gemm", context.Backend.ToString(), $"{m}x{n}x{k}", $"{pair} [{context.LastGemmKernel}]", us, flops / us / 1e6, 0,
                                 "cuBLASLt bf16", baselineUs, baselineUs / us));
                if (baselines && qa is not null && aOptions!.Format == QuantFormat.Fp8PerRow)
                {
                    // The same FP8 bytes through cuBLASLt's FP8 GEMM (per-tensor scales of 1): the like-for-like baseline.
                    var accelerator = ContextAccelerator(context);
                    using var binding = accelerator.BindScoped();
                    using var workspace = accelerator.Allocate1D<byte>(32 << 20);
                    using var one = accelerator.Allocate1D(new[] { 1.0f });
                    nint stream = ((CudaStream)accelerator.DefaultStream).StreamPtr;
                    nint onePtr = one.View.BaseView.LoadEffectiveAddressAsPtr();
                    double fp8Us = MedianMicroseconds(context, () => Baselines.Gemm(1, m, n, k, qa.Storage.Data.View.LoadEffectiveAddressAsPtr(),
                        qb.Storage.Data.View.LoadEffectiveAddressAsPtr(), c.DevicePointer(), onePtr, onePtr,
                        workspace.View.BaseView.LoadEffectiveAddressAsPtr(), (nuint)(32 << 20), stream));
                    rows.Add(new Row("gemm", context.Backend.ToString(), $"{m}x{n}x{k}", $"{pair} [{context.LastGemmKernel}]", us, flops / us / 1e6, 0,
                                     "cuBLASLt fp8", fp8Us, fp8Us / us));
                }
            }
        }
    }

    internal static Accelerator ContextAccelerator(MicroscaleContext context) => context.Accelerator
        ?? throw new InvalidOperationException("the context has no accelerator");

    private static void Write(List<Row> rows, string directory)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine($"{"kind",-9} {"backend",-7} {"shape",-16} {"config",-62} {"us",10} {"TFLOPS",8} {"GB/s",8} {"baseline",-14} {"base us",10} {"ratio",7}");
        foreach (var r in rows)
            Console.WriteLine(string.Format(inv, "{0,-9} {1,-7} {2,-16} {3,-62} {4,10:F1} {5,8:F2} {6,8:F0} {7,-14} {8,10:F1} {9,7:F3}",
                r.Kind, r.Backend, r.Shape, r.Config.Length > 62 ? r.Config[..62] : r.Config, r.Microseconds, r.Tflops, r.GBps, r.Baseline, r.BaselineMicroseconds, r.Ratio));
        using (var csv = new StreamWriter(Path.Combine(directory, "gpu-sweep.csv")))
        {
            csv.WriteLine("kind,backend,shape,config,us,tflops,gbps,baseline,baseline_us,ratio");
            foreach (var r in rows)
                csv.WriteLine(string.Join(',', r.Kind, r.Backend, r.Shape, '"' + r.Config + '"', r.Microseconds.ToString(inv), r.Tflops.ToString(inv),
                                          r.GBps.ToString(inv), r.Baseline, r.BaselineMicroseconds.ToString(inv), r.Ratio.ToString(inv)));
        }
        File.WriteAllText(Path.Combine(directory, "gpu-sweep.json"), JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }));
    }
}
