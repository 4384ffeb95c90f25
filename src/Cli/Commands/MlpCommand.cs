using System.CommandLine;
using System.Diagnostics;
using Spectre.Console;

namespace Microscale.Cli.Commands;

/// <summary><c>microscale mlp</c>: a LLaMA-style gated MLP block (gate / up / down, SiLU) with seeded weights in each format on
/// the best backend, against the float block: relative error and time per token for each token count.</summary>
internal static class MlpCommand
{
    public static Command Create()
    {
        var hidden = new Option<int>("--hidden") { Description = "Hidden size H (a multiple of 32)", DefaultValueFactory = _ => 1024 };
        var intermediate = new Option<int>("--intermediate") { Description = "Intermediate size I (a multiple of 32)", DefaultValueFactory = _ => 2816 };
        var tokens = new Option<int[]>("--tokens") { Description = "Token counts M to time", DefaultValueFactory = _ => [1, 512], AllowMultipleArgumentsPerToken = true };
        var backend = new Option<Backend>("--backend") { Description = "Auto | Native | Cuda | Cpu | Reference", DefaultValueFactory = _ => Backend.Auto };
        var command = new Command("mlp", "Run a gated MLP block (gate/up/down projections, SiLU) in each quantized format and compare it with float")
        {
            hidden, intermediate, tokens, backend,
        };
        command.SetAction(r => CliOutput.Run(r, report => Run(report, r.GetValue(hidden), r.GetValue(intermediate), r.GetValue(tokens)!, r.GetValue(backend))));
        return command;
    }

    private static int Run(CliOutput report, int hidden, int intermediate, int[] tokenCounts, Backend backend)
    {
        if (hidden % 32 != 0 || intermediate % 32 != 0 || hidden < 32 || intermediate < 32)
            throw new ArgumentException("--hidden and --intermediate must be positive multiples of 32.");
        using var context = MicroscaleContext.Create(backend);
        AnsiConsole.MarkupLine($"Gated MLP H {hidden}, I {intermediate} on [bold]{context.Backend}[/] ({Markup.Escape(context.DeviceName)})");
        report.Set("block", new { Hidden = hidden, Intermediate = intermediate, context.Backend, Device = context.DeviceName });
        var gate = Scaled(SeededGaussian.Create(intermediate * hidden, seed: 1), 1 / MathF.Sqrt(hidden));
        var up = Scaled(SeededGaussian.Create(intermediate * hidden, seed: 2), 1 / MathF.Sqrt(hidden));
        var down = Scaled(SeededGaussian.Create(hidden * intermediate, seed: 3), 1 / MathF.Sqrt(intermediate));
        const int checkedTokens = 4; // the float64 reference covers the first tokens of each run
        // Activations null: W4A16, run on BF16 activations (the decode kernel reads them as they are).
        var blocks = new (string Name, QuantFormat Weights, QuantFormat? Activations, int Rotation)[]
        {
            ("W4A4 MXFP4 (Hadamard g=32)", QuantFormat.Mxfp4, QuantFormat.Mxfp4, 32),
            ("W4A4 NVFP4 (Hadamard g=16)", QuantFormat.Nvfp4, QuantFormat.Nvfp4, 16),
            ("W4A8 MXFP4 x FP8 per-token", QuantFormat.Mxfp4, QuantFormat.Fp8PerRow, 0),
            ("W8A8 FP8 per-row", QuantFormat.Fp8PerRow, QuantFormat.Fp8PerRow, 0),
            ("W4A16 NVFP4 (BF16 activations)", QuantFormat.Nvfp4, null, 0),
        };
        var table = new Table().AddColumns(["Block", "Rel. error vs float", .. tokenCounts.Select(t => $"M={t}: ms / us per token")]);
        foreach (var (name, weights, activations, g) in blocks)
        {
            var rotation = g > 0 ? HadamardTransform.CreateRandom(g, seed: 7) : null;
            using var mlp = GatedMlp.Quantize(context, gate, up, down, hidden, intermediate, new(weights),
                                              activations is { } a ? new QuantizationOptions(a) : null, rotation);
            var cells = new List<string> { name, "" };
            double error = double.NaN;
            foreach (int m in tokenCounts)
            {
                var x = SeededGaussian.Create(m * hidden, seed: 11);
                if (activations is null)
                    x = x.Select(v => (float)(BFloat16)v).ToArray(); // the reference sees the BF16 inputs the block gets
                using var input = context.CreateTensor<float>(x, m, hidden);
                using var input16 = context.CreateTensor<BFloat16>(x.Select(v => (BFloat16)v).ToArray(), m, hidden);
                using var output = context.AllocateTensor<float>(m, hidden);
                using var output16 = context.AllocateTensor<BFloat16>(m, hidden);
                void Forward()
                {
                    if (activations is null)
                        mlp.Forward(input16, output16);
                    else
                        mlp.Forward(input, output);
                }
                Forward(); // warm-up: kernel compile, buffers
                context.Synchronize();
                var clock = Stopwatch.StartNew();
                Forward();
                context.Synchronize();
                double ms = clock.Elapsed.TotalMilliseconds;
                var y = activations is null ? output16.ToArray().Select(v => (float)v).ToArray() : output.ToArray();
                if (cells[1].Length == 0)
                {
                    int n = Math.Min(checkedTokens, m);
                    error = DemoCommand.RelativeError(y.AsSpan(0, n * hidden), FloatBlock(x, n, hidden, intermediate, gate, up, down));
                    cells[1] = $"{error:P2}";
                }
                cells.Add($"{ms:F2} / {ms * 1000 / m:F1}");
                report.Add("runs", new { Block = name, Tokens = m, RelativeError = error, Milliseconds = ms, MicrosecondsPerToken = ms * 1000 / m });
            }
            table.AddRow([.. cells]);
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("Error: the first tokens of the first run against a float64 block on the same weights. Times include the " +
                               "activation quantization; one run after a warm-up.");
        return 0;
    }

    private static float[] Scaled(float[] values, float factor)
    {
        for (int i = 0; i < values.Length; i++)
            values[i] *= factor;
        return values;
    }

    // down(SiLU(gate x) * up x) in float64 for the first `tokens` rows of x.
    private static double[] FloatBlock(float[] x, int tokens, int hidden, int intermediate, float[] gate, float[] up, float[] down)
    {
        var y = new double[tokens * hidden];
        var h = new double[intermediate];
        for (int t = 0; t < tokens; t++)
        {
            for (int i = 0; i < intermediate; i++)
            {
                double g = 0, u = 0;
                for (int k = 0; k < hidden; k++)
                {
                    g += (double)gate[(long)i * hidden + k] * x[t * hidden + k];
                    u += (double)up[(long)i * hidden + k] * x[t * hidden + k];
                }
                h[i] = g / (1 + Math.Exp(-g)) * u;
            }
            for (int o = 0; o < hidden; o++)
            {
                double sum = 0;
                for (int i = 0; i < intermediate; i++)
                    sum += down[(long)o * intermediate + i] * h[i];
                y[t * hidden + o] = sum;
            }
        }
        return y;
    }
}
