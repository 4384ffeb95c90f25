using System.CommandLine;
using System.Diagnostics;
using Spectre.Console;

namespace Microscale.Cli.Commands;

/// <summary><c>microscale demo</c>: quantizes a seeded Gaussian matrix in every format on the best backend and reports error and speed.</summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var rows = new Option<int>("--rows") { Description = "Rows of the matrix", DefaultValueFactory = _ => 2048 };
        var columns = new Option<int>("--columns") { Description = "Columns (K) of the matrix", DefaultValueFactory = _ => 2048 };
        var tokens = new Option<int>("--tokens") { Description = "Tokens (M) of the linear-layer demo", DefaultValueFactory = _ => 32 };
        var backend = new Option<Backend>("--backend") { Description = "Auto | Cpu | Cuda | Reference", DefaultValueFactory = _ => Backend.Auto };
        var command = new Command("demo", "Quantize a seeded random matrix in every format, then run a quantized linear layer for each GEMM pair")
        {
            rows, columns, tokens, backend,
        };
        command.SetAction(r => CliOutput.Run(r, output => Run(output, r.GetValue(rows), r.GetValue(columns), r.GetValue(tokens), r.GetValue(backend))));
        return command;
    }

    private static readonly QuantizationOptions[] s_formats =
    {
        new(QuantFormat.Mxfp4),
        new(QuantFormat.Mxfp4) { Rule = MxScaleRule.Ceil },
        new(QuantFormat.Nvfp4),
        new(QuantFormat.Mxfp8),
        new(QuantFormat.Fp8PerTensor),
        new(QuantFormat.Fp8PerRow),
        new(QuantFormat.Fp8PerRow) { Element = Fp8Element.E5M2 },
    };

    private static int Run(CliOutput output, int rows, int columns, int tokens, Backend backend)
    {
        var (resolved, reason) = MicroscaleRuntime.Resolve(backend);
        output.Set("backend", new { Backend = resolved, Reason = reason });
        output.Set("input", new { Rows = rows, Columns = columns });
        AnsiConsole.MarkupLine($"Backend: [bold]{resolved}[/] ({Markup.Escape(reason)})");
        float[] x = SeededGaussian.Create(checked(rows * columns), seed: 20261123);
        AnsiConsole.MarkupLine($"Input: {rows} x {columns} seeded N(0,1), binary32");

        var table = new Table().AddColumns("Format", "Bits/value", "QSNR (dB)", "Quantize (M values/s)", "Dequantize (M values/s)");
        foreach (var options in s_formats)
        {
            using (Quantizer.Quantize(x.AsSpan(0, Math.Min(x.Length, 64 * columns)), Math.Min(rows, 64), columns, options, resolved)) { } // warm-up: kernel compile
            var clock = Stopwatch.StartNew();
            using var q = Quantizer.Quantize(x, rows, columns, options, resolved);
            double quantizeSeconds = clock.Elapsed.TotalSeconds;
            clock.Restart();
            float[] back = q.Dequantize(resolved);
            double dequantizeSeconds = clock.Elapsed.TotalSeconds;
            double qsnr = QuantizationMetrics.Qsnr(x, back);
            table.AddRow(options.ToString(), $"{q.BitsPerValue:0.##}", $"{qsnr:F2}", $"{x.Length / quantizeSeconds / 1e6:F1}", $"{x.Length / dequantizeSeconds / 1e6:F1}");
            output.Add("formats", new
            {
                Format = options.ToString(), q.BitsPerValue, QsnrDb = qsnr, QuantizeMValuesPerSecond = x.Length / quantizeSeconds / 1e6,
                DequantizeMValuesPerSecond = x.Length / dequantizeSeconds / 1e6,
            });
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("Throughput includes host<->device copies; Gaussian reference points (INT v.s. FP, NVFP4 papers): MXFP4 ~18.8 dB, NVFP4 ~20.4 dB.");
        LinearLayer(output, resolved, tokens, columns, Math.Min(rows, 1024));
        return 0;
    }

    /// <summary>One quantized linear layer per GEMM pair: activations (rotated and) quantized on the fly, weights quantized offline.</summary>
    private static void LinearLayer(CliOutput report, Backend backend, int tokens, int k, int n)
    {
        using var context = MicroscaleContext.Create(backend);
        float[] a = SeededGaussian.Create(tokens * k, seed: 1);
        float[] w = SeededGaussian.Create(n * k, seed: 2);
        for (int i = 0; i < w.Length; i += 97)
            w[i] *= 20; // a few outlier weights, as real layers have
        double[] exact = new double[tokens * n];
        for (int i = 0; i < tokens; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int l = 0; l < k; l++)
                    sum += (double)a[i * k + l] * w[j * k + l];
                exact[i * n + j] = sum;
            }

        using var activations = context.CreateTensor<float>(a, tokens, k);
        using var bf16 = context.CreateTensor<BFloat16>(a.Select(v => (BFloat16)v).ToArray(), tokens, k);
        var pairs = new (string Name, QuantizationOptions? A, QuantizationOptions B, int Rotation)[]
        {
            ("W4A4 MXFP4 (Hadamard g=32)", new(QuantFormat.Mxfp4), new(QuantFormat.Mxfp4), 32),
            ("W4A4 NVFP4 (Hadamard g=16)", new(QuantFormat.Nvfp4), new(QuantFormat.Nvfp4), 16),
            ("W4A8 MXFP4 x FP8 per-token", new(QuantFormat.Fp8PerRow), new(QuantFormat.Mxfp4), 0),
            ("W8A8 FP8 per-row", new(QuantFormat.Fp8PerRow), new(QuantFormat.Fp8PerRow), 0),
            ("W8A8 MXFP8", new(QuantFormat.Mxfp8), new(QuantFormat.Mxfp8), 0),
            ("W4A16 NVFP4 x BF16", null, new(QuantFormat.Nvfp4), 0),
        };
        var table = new Table().AddColumns("Pair", "Rel. error vs float", "Layer time (ms)");
        using var output = context.AllocateTensor<float>(tokens, n);
        foreach (var (name, aOptions, bOptions, g) in pairs)
        {
            var rotation = g > 0 ? HadamardTransform.CreateRandom(g, seed: 7) : null;
            using var layer = QuantizedLinear.Quantize(context, w, n, k, bOptions, aOptions, rotation);
            void Run()
            {
                if (aOptions is null)
                    layer.Forward(bf16, output);
                else
                    layer.Forward(activations, output);
            }
            Run(); // warm-up: kernel compile
            context.Synchronize();
            var clock = Stopwatch.StartNew();
            Run();
            context.Synchronize();
            double ms = clock.Elapsed.TotalMilliseconds;
            double error = RelativeError(output.ToArray(), exact);
            table.AddRow(name, $"{error:P2}", $"{ms:F1}");
            report.Add("linear_layer", new { Pair = name, Tokens = tokens, K = k, N = n, RelativeError = error, Milliseconds = ms, context.LastGemmKernel });
        }
        AnsiConsole.MarkupLine($"Quantized linear layer: {tokens} tokens x K {k} -> N {n} on {context.Backend} ({Markup.Escape(context.DeviceName)})");
        AnsiConsole.Write(table);
    }

    /// <summary>‖c − exact‖ / ‖exact‖.</summary>
    internal static double RelativeError(ReadOnlySpan<float> c, ReadOnlySpan<double> exact)
    {
        double num = 0, den = 0;
        for (int i = 0; i < c.Length; i++)
        {
            num += (c[i] - exact[i]) * (c[i] - exact[i]);
            den += exact[i] * exact[i];
        }
        return Math.Sqrt(num / den);
    }
}
