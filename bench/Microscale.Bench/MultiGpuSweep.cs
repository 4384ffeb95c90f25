using System.Diagnostics;
using System.Globalization;

namespace Microscale.Bench;

/// <summary>
/// The same FP8 GEMM (8192³, per-tensor, BF16 out) on one device and then on every device at once, one thread and one
/// context per device (`gpu-sweep OUT_DIR --only multi-gpu`): aggregate TFLOPS and each device's ratio to the single-device
/// figure (about 1 expected: nothing is shared). Host clock over synchronized batches after a warm-up, the concurrent batches started at a barrier; writes multi-gpu.csv / .json.
/// </summary>
internal static class MultiGpuSweep
{
    public const string Part = "multi-gpu";

    private const int Size = 8192, Iterations = 100, Rounds = 3;

    private sealed record Row(string Run, int Device, double Tflops, double RatioToSingle);

    public static void Run(string outputDirectory)
    {
        var devices = MicroscaleRuntime.CudaDevices();
        if (devices.Count == 0 || !MicroscaleRuntime.DescribeBackends().Single(s => s.Backend == Backend.Native).IsAvailable)
        {
            Console.WriteLine($"skip {Part}: needs the Native backend and a CUDA device");
            return;
        }
        var contexts = devices.Select(d => MicroscaleContext.Create(Backend.Native, d.Ordinal)).ToArray();
        try
        {
            var work = contexts.Select(Prepare).ToArray();
            // Each device alone first (its own reference figure), then every device at once, a few rounds.
            var single = new double[contexts.Length];
            var rows = new List<Row>();
            for (int d = 0; d < contexts.Length; d++)
            {
                WarmUp(contexts[d], work[d]);
                single[d] = Measure(contexts[d], work[d]);
                rows.Add(new Row("single", d, single[d], 1.0));
            }
            for (int round = 1; round <= Rounds; round++)
            {
                var (perDevice, aggregate) = MeasureConcurrently(contexts, work);
                for (int d = 0; d < contexts.Length; d++)
                    rows.Add(new Row($"concurrent{round}", d, perDevice[d], perDevice[d] / single[d]));
                rows.Add(new Row($"aggregate{round}", -1, aggregate, aggregate / single.Average()));
            }
            Console.WriteLine($"FP8 GEMM {Size}^3 on 1 and on {contexts.Length} devices at once ({string.Join(", ", devices.Select(d => d.Name))})");
            foreach (var r in rows)
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "{0,-12} device {1,2}  {2,8:F1} TFLOPS  {3,6:F3} x single", r.Run, r.Device, r.Tflops, r.RatioToSingle));
            Report.Save(outputDirectory, Part, "run,device,tflops,ratio_to_single", rows, r => [r.Run, r.Device, r.Tflops, r.RatioToSingle]);
            foreach (var (a, b, c) in work)
            {
                a.Dispose();
                b.Dispose();
                c.Dispose();
            }
        }
        finally
        {
            foreach (var c in contexts)
                c.Dispose();
        }
    }

    private static (QuantizedTensor A, QuantizedTensor B, DeviceTensor<BFloat16> C) Prepare(MicroscaleContext context)
    {
        var random = new DeviceRandom(context);
        var options = new QuantizationOptions(QuantFormat.Fp8PerTensor);
        using var a = random.Tensor(Size, Size, 1);
        using var b = random.Tensor(Size, Size, 2);
        return (context.Quantize(a, options), context.Quantize(b, options), context.AllocateTensor<BFloat16>(Size, Size));
    }

    // Every device warms up first; the timed batches then start together at a barrier, and the aggregate is the work of all
    // devices over the window from the common start to the last device's end.
    private static (double[] PerDevice, double Aggregate) MeasureConcurrently(MicroscaleContext[] contexts,
        (QuantizedTensor A, QuantizedTensor B, DeviceTensor<BFloat16> C)[] work)
    {
        var perDevice = new double[contexts.Length];
        var ends = new long[contexts.Length];
        using var start = new Barrier(contexts.Length);
        var clock = Stopwatch.StartNew();
        long begin = 0;
        Parallel.For(0, contexts.Length, new ParallelOptions { MaxDegreeOfParallelism = contexts.Length }, d =>
        {
            WarmUp(contexts[d], work[d]);
            start.SignalAndWait();
            Interlocked.CompareExchange(ref begin, clock.ElapsedTicks, 0);
            perDevice[d] = Measure(contexts[d], work[d]);
            ends[d] = clock.ElapsedTicks;
        });
        double window = (ends.Max() - begin) / (double)Stopwatch.Frequency;
        return (perDevice, Iterations * contexts.Length * 2.0 * Size * Size * Size / window / 1e12);
    }

    private static void WarmUp(MicroscaleContext context, (QuantizedTensor A, QuantizedTensor B, DeviceTensor<BFloat16> C) w)
    {
        for (int i = 0; i < 3; i++)
            context.Gemm(w.A, w.B, w.C);
        context.Synchronize();
    }

    // TFLOPS of Iterations GEMMs, host clock around a synchronized batch.
    private static double Measure(MicroscaleContext context, (QuantizedTensor A, QuantizedTensor B, DeviceTensor<BFloat16> C) w)
    {
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < Iterations; i++)
            context.Gemm(w.A, w.B, w.C);
        context.Synchronize();
        return Iterations * 2.0 * Size * Size * Size / clock.Elapsed.TotalSeconds / 1e12;
    }
}
