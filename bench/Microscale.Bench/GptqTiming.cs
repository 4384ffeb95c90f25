using System.Diagnostics;
using System.Globalization;
using Microscale.Offline;

namespace Microscale.Bench;

/// <summary>
/// Offline GPTQ on the host CPU (`gpu-sweep OUT_DIR --only gptq`; no GPU needed): a 4096×4096 MXFP4 layer with 2048 correlated
/// calibration tokens, quantized by RTN, GPTQ and MR-GPTQ (Hadamard 128), wall-clock seconds and the relative layer-output error
/// on 256 of the tokens. Writes gptq.csv / gptq.json.
/// </summary>
internal static class GptqTiming
{
    public const string Part = "gptq";
    private const int N = 4096, K = 4096, Tokens = 2048, Checked = 256;

    private sealed record Row(string Method, double Seconds, double OutputError, int Cores);

    public static void Run(string outputDirectory)
    {
        var w = SeededGaussian.Create(N * K, seed: 1);
        var z = SeededGaussian.Create(Tokens * 64, seed: 2);
        var basis = SeededGaussian.Create(64 * K, seed: 3);
        var noise = SeededGaussian.Create(Tokens * K, seed: 4);
        var x = new float[Tokens * K];  // a rank-64 signal plus noise: correlated inputs, as layer activations are
        Parallel.For(0, Tokens, t =>
        {
            for (int k = 0; k < K; k++)
            {
                float s = 0.1f * noise[t * K + k];
                for (int r = 0; r < 64; r++)
                    s += z[t * 64 + r] * basis[r * K + k];
                x[t * K + k] = s;
            }
        });
        var rows = new List<Row>();
        Console.WriteLine($"GPTQ on the host ({Environment.ProcessorCount} cores): {N}x{K} MXFP4, {Tokens} calibration tokens");
        foreach (var method in new[] { GptqMethod.Rtn, GptqMethod.Gptq, GptqMethod.MrGptq })
        {
            var clock = Stopwatch.StartNew();
            var result = Gptq.Quantize(w, N, K, x, Tokens, new QuantizationOptions(QuantFormat.Mxfp4), new GptqOptions { Method = method });
            double seconds = clock.Elapsed.TotalSeconds;
            using (result.Weight)
            {
                var row = new Row(method.ToString(), seconds, OutputError(w, x, result), Environment.ProcessorCount);
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "{0,-7} {1,8:F1} s   output error {2:E3}", row.Method, row.Seconds, row.OutputError));
                rows.Add(row);
            }
        }
        Report.Save(outputDirectory, Part, "method,seconds,output_error,cores", rows, r => [r.Method, r.Seconds, r.OutputError, r.Cores]);
    }

    /// <summary>‖XWᵀ − X·Qᵀ‖² / ‖XWᵀ‖² over the first tokens (X rotated for MR-GPTQ).</summary>
    private static double OutputError(float[] w, float[] x, GptqResult result)
    {
        float[] q = result.Weight.Dequantize(Backend.Reference);
        float[] xr = x.AsSpan(0, Checked * K).ToArray();
        if (result.Rotation is not null)
        {
            var rotated = new float[xr.Length];
            ReferenceHadamard.Rotate(xr, Checked, K, result.Rotation, rotated);
            xr = rotated;
        }
        double error = 0, norm = 0;
        object gate = new();
        Parallel.For(0, Checked, t =>
        {
            double e = 0, s = 0;
            for (int n = 0; n < N; n++)
            {
                double exact = 0, approx = 0;
                for (int k = 0; k < K; k++)
                {
                    exact += (double)x[t * K + k] * w[n * K + k];
                    approx += (double)xr[t * K + k] * q[n * K + k];
                }
                e += (exact - approx) * (exact - approx);
                s += exact * exact;
            }
            lock (gate)
            {
                error += e;
                norm += s;
            }
        });
        return error / norm;
    }
}
