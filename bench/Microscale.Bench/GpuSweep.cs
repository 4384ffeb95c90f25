using System.Diagnostics;
using System.Globalization;
using ILGPU.Runtime;
using Spectre.Console;

namespace Microscale.Bench;

/// <summary>
/// GPU sweep (`Microscale.Bench gpu-sweep [OUT_DIR] [--only PART[,PART...]]`): quantization against the device-to-device copy
/// bandwidth, GEMM against cuBLASLt BF16, all measured in the same run on the same GPU. Times: median over batches of launches,
/// each batch ended by a synchronize (host clock). Prints a table and writes gpu-sweep.csv / gpu-sweep.json. Then the FP8 GEMM
/// sweep against cuBLASLt FP8 (<see cref="GemmFp8Sweep"/>, gemm-fp8.csv / gemm-fp8.json), and the gated MLP block against cuBLASLt BF16
/// (<see cref="MlpSweep"/>, mlp.csv / mlp.json), and the other parts. Each part runs under a rule that says which of how many
/// it is, its rows printing as they are measured; a table of the parts (time, files written) ends the run.
/// </summary>
internal static class GpuSweep
{
    private sealed record Row(string Kind, string Backend, string Shape, string Config, double Microseconds, double Tflops, double GBps,
                              string Baseline, double BaselineMicroseconds, double Ratio);

    private const string QuantizePart = "quantize", GemmPart = "gemm";
    private static readonly string[] s_parts = [QuantizePart, GemmPart, GemmFp8Sweep.Part, GemmMxSweep.Part, DecodeSweep.Part, MlpSweep.Part, MultiGpuSweep.Part, TrainingSweep.Part, TransposeQuantizeSweep.Part, GptqTiming.Part];

    /// <summary>Runs the parts named by <c>--only</c> (default: all but gptq) and writes their files into OUT_DIR (default artifacts/bench).</summary>
    public static int Run(IReadOnlyList<string> args)
    {
        string? outputDirectory = null;
        var parts = new HashSet<string>(s_parts.Where(p => p != GptqTiming.Part));  // the CPU-only GPTQ timing runs when named
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == "--only" && i + 1 < args.Count)
                parts = [.. args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
            else if (outputDirectory is null && !args[i].StartsWith('-'))
                outputDirectory = args[i];
            else
                return Usage($"unexpected argument '{args[i]}'");
        }
        if (parts.Count == 0)
            return Usage("--only names no part");
        if (parts.FirstOrDefault(p => !s_parts.Contains(p)) is { } unknown)
            return Usage($"unknown part '{unknown}'");
        outputDirectory ??= Path.Combine("artifacts", "bench");
        Directory.CreateDirectory(outputDirectory);
        var steps = new List<(string Name, Action Run)>();
        if (parts.Contains(QuantizePart) || parts.Contains(GemmPart))
            steps.Add((string.Join("+", new[] { QuantizePart, GemmPart }.Where(parts.Contains)),
                       () => SweepBackends(outputDirectory, parts.Contains(QuantizePart), parts.Contains(GemmPart))));
        foreach (var (name, run) in new (string, Action<string>)[]
                 {
                     (GemmFp8Sweep.Part, GemmFp8Sweep.Run), (GemmMxSweep.Part, GemmMxSweep.Run), (DecodeSweep.Part, DecodeSweep.Run), (MlpSweep.Part, MlpSweep.Run),
                     (MultiGpuSweep.Part, MultiGpuSweep.Run), (TrainingSweep.Part, TrainingSweep.Run), (TransposeQuantizeSweep.Part, TransposeQuantizeSweep.Run),
                     (GptqTiming.Part, GptqTiming.Run),
                 })
            if (parts.Contains(name))
                steps.Add((name, () => run(outputDirectory)));
        steps.Add(("charts", () => Plots.RenderAll(outputDirectory)));
        RunSteps(steps, outputDirectory);
        return 0;
    }

    // Each part under a rule saying where the sweep is (its rows print as they are measured), then a table of the parts: time
    // and the files each wrote.
    private static void RunSteps(List<(string Name, Action Run)> steps, string outputDirectory)
    {
        var summary = new Table().AddColumns("part", "seconds", "files written");
        for (int i = 0; i < steps.Count; i++)
        {
            AnsiConsole.Write(new Rule($"gpu-sweep {i + 1}/{steps.Count}: {steps[i].Name}").LeftJustified());
            var started = DateTime.UtcNow;
            var clock = Stopwatch.StartNew();
            steps[i].Run();
            var written = new DirectoryInfo(outputDirectory).EnumerateFiles().Where(f => f.LastWriteTimeUtc >= started).Select(f => f.Name).Order();
            summary.AddRow(steps[i].Name, clock.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture), string.Join(" ", written));
        }
        AnsiConsole.Write(summary);
    }

    private static int Usage(string problem)
    {
        Console.Error.WriteLine($"gpu-sweep: {problem}");
        Console.Error.WriteLine($"usage: Microscale.Bench gpu-sweep [OUT_DIR] [--only PART[,PART...]]   PART: {string.Join(", ", s_parts)}");
        return 2;
    }

    private static void SweepBackends(string outputDirectory, bool quantize, bool gemm)
    {
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
            if (quantize)
                Quantize(context, rows);
            if (gemm)
                Gemm(context, rows);
        }
        Write(rows, outputDirectory);
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
        return Report.Median(samples);
    }

    // Issue 7's activation quantizer: 16 x 8192 (decode) and 8192 x 8192 BF16 (plus 4096^2), every activation format, and
    // the rotations a model would use (Hadamard block g before quantizing, "+hG").
    private static readonly (QuantizationOptions Options, int Rotation)[] s_quantizeCases =
    [
        (new(QuantFormat.Nvfp4), 0), (new(QuantFormat.Mxfp4), 0), (new(QuantFormat.Mxfp8), 0), (new(QuantFormat.Fp8PerRow), 0),
        (new(QuantFormat.Fp8PerTensor), 0), (new(QuantFormat.Mxfp4), 32), (new(QuantFormat.Mxfp4), 128), (new(QuantFormat.Nvfp4), 16),
        (new(QuantFormat.Fp8PerRow), 128),
    ];

    private static void Quantize(MicroscaleContext context, List<Row> rows)
    {
        foreach (var (m, k) in new[] { (16, 8192), (4096, 4096), (8192, 8192) })
        {
            var x = SeededGaussian.Create(m * k, seed: 1).Select(v => (BFloat16)v).ToArray();
            using var source = context.CreateTensor<BFloat16>(x, m, k);
            using var copy = context.AllocateTensor<BFloat16>(m, k);
            double copyUs = MedianMicroseconds(context, () => source.CopyDeviceTo(copy));
            foreach (var (options, g) in s_quantizeCases)
            {
                using var destination = context.AllocateQuantized(m, k, options); // caller-allocated: the sweep times the kernels, not cudaMalloc
                var rotation = g == 0 ? null : HadamardTransform.CreateRandom(g, seed: g);
                double us = rotation is null
                    ? MedianMicroseconds(context, () => context.Quantize(source, destination))
                    : MedianMicroseconds(context, () => context.QuantizeRotated(source, rotation, destination));
                double bytes = m * (double)k * 2 + FormatSpecBytes(destination);
                // Baseline: copying the BF16 input (read + write of 2 bytes per value) at the device's copy bandwidth.
                double copyBytes = m * (double)k * 2 * 2;
                rows.Add(new Row("quantize", context.Backend.ToString(), $"{m}x{k}", options + (g == 0 ? "" : $"+h{g}"), us, 0, bytes / us / 1e3,
                                 "d2d copy", copyUs, (bytes / us) / (copyBytes / copyUs)));
            }
        }
    }

    private static double FormatSpecBytes(QuantizedTensor q) =>
        q.Spec.DataBytes(q.Rows, q.Columns, q.Layout) + q.Spec.BlockScaleBytes(q.Rows, q.Columns, q.Layout);

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
                using var cublas = new Baselines.Workspace(accelerator);
                baselineUs = MedianMicroseconds(context, () => cublas.Gemm(0, m, n, k, a.DevicePointer(), b.DevicePointer(), c.DevicePointer()));
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
            }
        }
    }

    /// <summary>A Native context for a part that compares with cuBLASLt, or null (having said why) when either is missing.</summary>
    internal static MicroscaleContext? NativeWithBaselines(string part)
    {
        if (!Baselines.IsAvailable)
        {
            Console.WriteLine($"skip {part}: microscale_baselines not found (build it with -DMICROSCALE_BUILD_BASELINES=ON, set MICROSCALE_BASELINES_PATH)");
            return null;
        }
        try
        {
            return MicroscaleContext.Create(Backend.Native);
        }
        catch (NotSupportedException e)
        {
            Console.WriteLine($"skip {part}: {e.Message}");
            return null;
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
        Report.Save(directory, "gpu-sweep", "kind,backend,shape,config,us,tflops,gbps,baseline,baseline_us,ratio", rows,
                    r => [r.Kind, r.Backend, r.Shape, r.Config, r.Microseconds, r.Tflops, r.GBps, r.Baseline, r.BaselineMicroseconds, r.Ratio]);
    }
}
