using System.Globalization;
using ILGPU.Runtime;
using Microscale.Tensors;

namespace Microscale.Bench;

/// <summary>
/// Decode GEMM, M = 1…64 tokens (`gpu-sweep OUT_DIR --only decode`): W4A16 (MXFP4 / NVFP4 weights × BF16), W8A16 (FP8 per-row
/// weights × BF16) and W4A8 (MXFP4 × FP8 per-token) on the Native backend, each interleaved with cuBLAS BF16 and with cuBLASLt
/// FP8 per-tensor at the same M (CUDA events, median of 50, 4 rotating weight sets of ≥ 100 MB, so no weight stays in L2).
/// Reports µs, the weight bandwidth (weight and scale bytes / time) as a fraction of the device-to-device copy bandwidth
/// measured in the same run, and the ratios baseline time / Microscale time. The static columns time
/// <see cref="GemmOptions.StaticWeights"/> plans in batches of launches back to back (so that each launch can overlap the one
/// before), against cuBLAS BF16 timed in the same batches; the prepacked columns do the same with the FP4 weights prepacked
/// (<see cref="MicroscaleContext.Prepack"/>, the decode kernel's tiled layout). Weight bytes are the linear layout's in every
/// column. Writes decode.csv / decode.json.
/// </summary>
internal static class DecodeSweep
{
    public const string Part = "decode";

    private const int Warmup = 10;
    private const int Iterations = 50;
    private const long MinimumRotationBytes = 100L << 20; // twice the H100's 50 MB L2

    private static readonly (int N, int K)[] s_shapes = [(8192, 8192), (14336, 4096), (4096, 14336), (28672, 8192)];
    private static readonly int[] s_tokens = [1, 2, 4, 8, 16, 32, 64];

    private sealed record Scheme(string Name, QuantizationOptions Weights, QuantizationOptions? Activations);

    private static readonly Scheme[] s_schemes =
    [
        new("W4A16 mxfp4", new(QuantFormat.Mxfp4), null),
        new("W4A16 nvfp4", new(QuantFormat.Nvfp4), null),
        new("W8A16 fp8-row", new(QuantFormat.Fp8PerRow), null),
        new("W4A8 mxfp4", new(QuantFormat.Mxfp4), new(QuantFormat.Fp8PerRow)),
    ];

    private sealed record Row(string Shape, int M, string Scheme, string Kernel, double Microseconds, double WeightGBps, double CopyFraction,
                              double CublasBf16Microseconds, double RatioBf16, double CublasFp8Microseconds, double RatioFp8, double CopyGBps,
                              double StaticMicroseconds, double StaticCopyFraction, double StaticRatioBf16,
                              double PrepackedMicroseconds, double PrepackedCopyFraction, double PrepackedRatioBf16);

    // GemmOptions.StaticWeights, timed in batches of this many launches back to back (against cuBLAS BF16 batches).
    private const int StaticBatch = 10;
    private static readonly GemmOptions s_staticWeights = new() { StaticWeights = true };

    public static void Run(string outputDirectory)
    {
        if (CublasSession.Open(Part) is not { } session)
            return;
        using (session)
        {
            double copyGBps = CopyBandwidth(session);
            Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "device-to-device copy: {0:F0} GB/s (read + write bytes / time)", copyGBps));
            var rows = Sweep(session, copyGBps);
            foreach (var scheme in s_schemes)
            {
                var small = rows.Where(r => r.Scheme == scheme.Name && r.M <= 16).ToList();
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture,
                                                "{0}, M <= 16: copy fraction min {1:F3} geomean {2:F3}; vs cuBLAS BF16 geomean {3:F2}x; vs cuBLASLt FP8 geomean {4:F2}x; " +
                                                "static weights, back to back: copy fraction geomean {5:F3}, vs cuBLAS BF16 geomean {6:F2}x{7}",
                                                scheme.Name, small.Min(r => r.CopyFraction), Report.GeometricMean(small.Select(r => r.CopyFraction)),
                                                Report.GeometricMean(small.Select(r => r.RatioBf16)), Report.GeometricMean(small.Select(r => r.RatioFp8)),
                                                Report.GeometricMean(small.Select(r => r.StaticCopyFraction)), Report.GeometricMean(small.Select(r => r.StaticRatioBf16)),
                                                double.IsNaN(small[0].PrepackedMicroseconds) ? "" : string.Format(CultureInfo.InvariantCulture,
                                                    "; prepacked + static: copy fraction min {0:F3} geomean {1:F3}, vs cuBLAS BF16 geomean {2:F2}x",
                                                    small.Min(r => r.PrepackedCopyFraction), Report.GeometricMean(small.Select(r => r.PrepackedCopyFraction)),
                                                    Report.GeometricMean(small.Select(r => r.PrepackedRatioBf16)))));
            }
            Report.Save(outputDirectory, Part,
                        "shape,m,scheme,kernel,us,weight_gbps,copy_fraction,cublas_bf16_us,ratio_bf16,cublaslt_fp8_us,ratio_fp8,copy_gbps," +
                        "static_weights_us,static_weights_copy_fraction,static_weights_ratio_bf16,prepacked_static_us,prepacked_static_copy_fraction," +
                        "prepacked_static_ratio_bf16",
                        rows, r => [r.Shape, r.M, r.Scheme, r.Kernel, r.Microseconds, r.WeightGBps, r.CopyFraction, r.CublasBf16Microseconds, r.RatioBf16,
                                    r.CublasFp8Microseconds, r.RatioFp8, r.CopyGBps, r.StaticMicroseconds, r.StaticCopyFraction, r.StaticRatioBf16,
                                    r.PrepackedMicroseconds, r.PrepackedCopyFraction, r.PrepackedRatioBf16]);
        }
    }

    /// <summary>Device-to-device copy of 1 GiB, CUDA events, median of 20: (read + write bytes) / time in GB/s.</summary>
    private static double CopyBandwidth(CublasSession session)
    {
        const int rows = 16384, columns = 32768; // 1 GiB of BF16
        using var source = session.Random.Tensor(rows, columns, 99);
        using var destination = session.Context.AllocateTensor<BFloat16>(rows, columns);
        var samples = new double[20];
        source.CopyDeviceTo(destination);
        for (int i = 0; i < samples.Length; i++)
        {
            session.Events.Record(0, session.Cublas.Stream);
            source.CopyDeviceTo(destination);
            session.Events.Record(1, session.Cublas.Stream);
            session.Events.Synchronize(1);
            samples[i] = session.Events.ElapsedMilliseconds(0, 1);
        }
        return 2.0 * rows * columns * 2 / (Report.Median(samples) * 1e-3) / 1e9;
    }

    private static List<Row> Sweep(CublasSession session, double copyGBps)
    {
        var (context, random, cublas) = (session.Context, session.Random, session.Cublas);
        var rows = new List<Row>();
        Console.WriteLine($"Decode GEMM on {context.DeviceName}: median of {Iterations} (CUDA events), interleaved with cuBLAS BF16 / cuBLASLt FP8 per-tensor");
        Console.WriteLine($"static: GemmOptions.StaticWeights, {StaticBatch} launches back to back per timed interval, against cuBLAS BF16 timed the same way");
        Console.WriteLine($"{"shape",-11} {"M",3} {"scheme",-14} {"kernel",-40} {"us",8} {"GB/s",7} {"of copy",7} {"BF16 us",8} {"x BF16",7} {"FP8 us",8} {"x FP8",6} {"static us",9} {"of copy",7} {"x BF16",7} {"prepacked",9} {"of copy",7} {"x BF16",7}");
        foreach (var (n, k) in s_shapes)
        {
            int sets = (int)Math.Max(2, (MinimumRotationBytes + n * (long)k / 2 - 1) / (n * (long)k / 2)); // FP4 weights: n*k/2 bytes
            var bf16Weights = Enumerable.Range(0, sets).Select(i => random.Tensor(n, k, (ulong)(100 + i))).ToArray();
            var fp8Weights = bf16Weights.Select(w => context.Quantize(w, new QuantizationOptions(QuantFormat.Fp8PerTensor))).ToArray();
            try
            {
                foreach (var scheme in s_schemes)
                {
                    var weights = bf16Weights.Select(w => context.Quantize(w, scheme.Weights)).ToArray();
                    bool fp4 = scheme.Weights.Format is QuantFormat.Mxfp4 or QuantFormat.Nvfp4;
                    var prepacked = fp4 ? weights.Select(context.Prepack).ToArray() : null;
                    try
                    {
                        foreach (int m in s_tokens)
                        {
                            using var activations = random.Tensor(m, k, (ulong)(7 + m));
                            using var fp8Activations = context.Quantize(activations, new QuantizationOptions(QuantFormat.Fp8PerTensor));
                            using var c = context.AllocateTensor<BFloat16>(m, n);
                            rows.Add(Measure(session, scheme, weights, prepacked, bf16Weights, fp8Weights, activations, fp8Activations, c, copyGBps));
                        }
                    }
                    finally
                    {
                        foreach (var t in weights.Concat(prepacked ?? []))
                            t.Dispose();
                    }
                }
            }
            finally
            {
                foreach (var t in bf16Weights)
                    t.Dispose();
                foreach (var t in fp8Weights)
                    t.Dispose();
            }
        }
        return rows;
    }

    private static Row Measure(CublasSession session, Scheme scheme, QuantizedTensor[] weights, QuantizedTensor[]? prepacked, DeviceTensor<BFloat16>[] bf16Weights,
                               QuantizedTensor[] fp8Weights, DeviceTensor<BFloat16> activations, QuantizedTensor fp8Activations,
                               DeviceTensor<BFloat16> c, double copyGBps)
    {
        var (context, cublas) = (session.Context, session.Cublas);
        int m = activations.Rows, n = bf16Weights[0].Rows, k = activations.Columns, sets = bf16Weights.Length;
        using var quantizedActivations = scheme.Activations is null ? null : context.Quantize(activations, scheme.Activations);
        nint output = c.DevicePointer(), a = activations.DevicePointer();
        nint aScale = Address(fp8Activations.Storage.DecodeScales), bScale = Address(fp8Weights[0].Storage.DecodeScales);
        bool fp8Baseline = true;
        void Bf16(int i) => cublas.Gemm(0, m, n, k, a, bf16Weights[i % sets].DevicePointer(), output);
        void Fp8(int i)
        {
            if (!fp8Baseline)
                return;
            try
            {
                cublas.Gemm(1, m, n, k, Address(fp8Activations.Storage.Data), Address(fp8Weights[i % sets].Storage.Data), output, aScale, bScale);
            }
            catch (InvalidOperationException e) // no baseline at this M: Microscale is still timed
            {
                Console.WriteLine($"cuBLASLt FP8 m={m}: {e.Message}");
                fp8Baseline = false;
            }
        }
        void Run(QuantizedTensor b, GemmOptions options)
        {
            if (quantizedActivations is null)
                context.Gemm(activations, b, c, options);
            else
                context.Gemm(quantizedActivations, b, c, options);
        }
        void Microscale(int i) => Run(weights[i % sets], GemmOptions.Default);
        void MicroscaleStatic(int i) => Run(weights[i % sets], s_staticWeights); // the weights are never written while timed
        void MicroscalePrepacked(int i) => Run(prepacked![i % sets], s_staticWeights);

        // Two interleaved runs, each ratio from its own pair; the reported time is the one beside cuBLAS BF16.
        var (us, bf16Us) = session.Interleaved(Bf16, Microscale, Warmup, Iterations);
        var (usBesideFp8, fp8Us) = session.Interleaved(Fp8, Microscale, Warmup, Iterations);
        var (staticUs, bf16BatchUs) = session.InterleavedBatches(Bf16, MicroscaleStatic, StaticBatch, Warmup, Iterations);
        var (prepackedUs, bf16PrepackedBatchUs) = prepacked is null ? (double.NaN, double.NaN)
            : session.InterleavedBatches(Bf16, MicroscalePrepacked, StaticBatch, Warmup, Iterations);
        if (!fp8Baseline)
            fp8Us = double.NaN;
        string kernel = context.LastGemmKernel;
        var w = weights[0];
        double weightBytes = w.Spec.DataBytes(w.Rows, w.Columns, w.Layout) + w.Spec.BlockScaleBytes(w.Rows, w.Columns, w.Layout) +
                             4.0 * (w.Options.Format == QuantFormat.Fp8PerRow ? n : 1);
        double gbps = weightBytes / (us * 1e-6) / 1e9;
        double staticFraction = weightBytes / (staticUs * 1e-6) / 1e9 / copyGBps;
        double prepackedFraction = weightBytes / (prepackedUs * 1e-6) / 1e9 / copyGBps;
        var row = new Row($"{n}x{k}", m, scheme.Name, kernel, us, gbps, gbps / copyGBps, bf16Us, bf16Us / us, fp8Us, fp8Us / usBesideFp8, copyGBps,
                          staticUs, staticFraction, bf16BatchUs / staticUs, prepackedUs, prepackedFraction, bf16PrepackedBatchUs / prepackedUs);
        Console.WriteLine(string.Format(CultureInfo.InvariantCulture,
                                        "{0,-11} {1,3} {2,-14} {3,-40} {4,8:F1} {5,7:F0} {6,7:F3} {7,8:F1} {8,7:F2} {9,8:F1} {10,6:F2} {11,9:F1} {12,7:F3} {13,7:F2} {14,9:F1} {15,7:F3} {16,7:F2}",
                                        row.Shape, m, row.Scheme, row.Kernel, us, gbps, row.CopyFraction, bf16Us, row.RatioBf16, fp8Us, row.RatioFp8,
                                        staticUs, staticFraction, row.StaticRatioBf16, prepackedUs, prepackedFraction, row.PrepackedRatioBf16));
        return row;
    }

    private static nint Address<T>(TensorStorage<T> storage) where T : unmanaged => storage.View.LoadEffectiveAddressAsPtr();
}
