using System.Globalization;
using Microscale.Tensors;

namespace Microscale.Bench;

/// <summary>
/// The dual quantizer, both orientations of a BF16 tensor in one read (`gpu-sweep OUT_DIR --only transpose-quantize`), against
/// the device-to-device copy of the same tensor, interleaved in the same run: bandwidth = (BF16 bytes read + code and scale
/// bytes written) / time, as a fraction of the copy's (read + write bytes) / time. The configurations are the training
/// recipes' (<see cref="TrainingRecipe"/>): Quartet's X / W (MXFP4, Hadamard 32 on both sides) and dY (plus stochastic
/// rounding), the NVFP4 recipe's X and dY (16-point random Hadamard on the transposed side). CUDA events, medians; source
/// sets rotate so that none sits in L2. Writes transpose-quantize.csv / .json.
/// </summary>
internal static class TransposeQuantizeSweep
{
    public const string Part = "transpose-quantize";

    private const int Iterations = 30;
    private const long RotationBytes = 200L << 20;  // sources cycled through per size: 4x the H100's 50 MiB L2

    // Columns null: the rows only (ms_quantize, which takes stochastic rounding to the same kernel).
    private sealed record Config(string Name, QuantizationOptions Rows, HadamardTransform? RowRotation, QuantizationOptions? Columns,
                                 HadamardTransform? ColumnRotation);

    private sealed record Row(string Shape, string Config, string Kernel, double Microseconds, double GBps, double CopyMicroseconds, double CopyGBps,
                              double CopyFraction);

    private static IEnumerable<Config> Configs()
    {
        var mx = new QuantizationOptions(QuantFormat.Mxfp4);
        var nv = new QuantizationOptions(QuantFormat.Nvfp4);
        var h32 = HadamardTransform.CreateRandom(32, 1);
        var h16 = HadamardTransform.CreateRandom(16, 1);
        var mxSr = mx with { Rounding = RoundingMode.Stochastic, Seed = 1 };
        var nvSr = nv with { Rounding = RoundingMode.Stochastic, Seed = 1 };
        yield return new("mxfp4 rows+cols", mx, null, mx, null);
        yield return new("mxfp4 rows+cols H32 (Quartet X, W)", mx, h32, mx, h32);
        yield return new("mxfp4 rows+cols H32 SR (Quartet dY)", mxSr, h32, mxSr, h32);
        yield return new("nvfp4 rows + cols RHT16 (NVFP4 X)", nv, null, nv, h16);
        yield return new("nvfp4 rows SR + cols RHT16 SR (NVFP4 dY)", nvSr, null, nvSr, h16);
        yield return new("mxfp8 rows+cols", new(QuantFormat.Mxfp8), null, new(QuantFormat.Mxfp8), null);
        yield return new("mxfp4 rows only, SR", mxSr, null, null, null);
    }

    public static void Run(string outputDirectory)
    {
        if (CublasSession.Open(Part) is not { } session)
            return;
        using (session)
        {
            var context = session.Context;
            var rows = new List<Row>();
            Console.WriteLine($"Both orientations of a BF16 tensor in one pass vs the device-to-device copy on {context.DeviceName}");
            Console.WriteLine($"{"shape",-10} {"config",-42} {"us",8} {"GB/s",7} {"copy us",8} {"copy GB/s",9} {"of copy",7}");
            foreach (var (m, k) in new[] { (8192, 8192), (8192, 4096), (4096, 4096) })
            {
                long bytes = 2L * m * k;
                int sets = (int)Math.Clamp(RotationBytes / bytes, 1, 8);
                var sources = Enumerable.Range(0, sets).Select(i => session.Random.Tensor(m, k, (ulong)(10 + i))).ToList();
                using var copy = context.AllocateTensor<BFloat16>(m, k);
                try
                {
                    foreach (var config in Configs())
                    {
                        using var rowDestination = context.AllocateQuantized(m, k, config.Rows);
                        using var columnDestination = config.Columns is null ? null : context.AllocateQuantized(k, m, config.Columns);
                        void Quantize(int i)
                        {
                            if (columnDestination is null)
                                context.Quantize(sources[i % sets], rowDestination);
                            else
                                context.QuantizeBothOrientations(sources[i % sets], config.RowRotation, rowDestination, config.ColumnRotation, columnDestination);
                        }
                        var (us, copyUs) = session.Interleaved(i => sources[i % sets].CopyDeviceTo(copy), Quantize, warmup: 3, Iterations);
                        double moved = bytes + Written(rowDestination) + (columnDestination is null ? 0 : Written(columnDestination));
                        double gbps = moved / us / 1e3, copyGBps = 2.0 * bytes / copyUs / 1e3;
                        var row = new Row($"{m}x{k}", config.Name, context.LastQuantizeKernel, us, gbps, copyUs, copyGBps, gbps / copyGBps);
                        rows.Add(row);
                        Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "{0,-10} {1,-42} {2,8:F1} {3,7:F0} {4,8:F1} {5,9:F0} {6,7:F3}",
                                                        row.Shape, row.Config, us, gbps, copyUs, copyGBps, row.CopyFraction));
                    }
                }
                finally
                {
                    sources.ForEach(s => s.Dispose());
                }
            }
            Report.Save(outputDirectory, Part, "shape,config,kernel,us,gbps,copy_us,copy_gbps,copy_fraction", rows,
                        r => [r.Shape, r.Config, r.Kernel, r.Microseconds, r.GBps, r.CopyMicroseconds, r.CopyGBps, r.CopyFraction]);
        }
    }

    private static double Written(QuantizedTensor q) => q.Spec.DataBytes(q.Rows, q.Columns, q.Layout) + q.Spec.BlockScaleBytes(q.Rows, q.Columns, q.Layout);
}
