using System.Globalization;
using ScottPlot;

namespace Microscale.Bench;

/// <summary>
/// PNG charts of the sweeps' CSV files (ScottPlot), written next to them: `gemm-fp8.png` (ratio against cuBLASLt FP8 per
/// shape and scaling), `gemm-fp8-tflops.png` (both libraries' achieved TFLOPS), `decode.png` (ratio against cuBLAS BF16 by token count, one line per shape and scheme) and
/// `decode-bandwidth.png` (weight bandwidth as a fraction of the copy bandwidth), `decode-prepacked.png` (prepacked weights with static weights against cuBLAS BF16). `Microscale.Bench plot DIR` renders every
/// chart whose CSV is in DIR; gpu-sweep renders them after its parts.
/// </summary>
internal static class Plots
{
    public static int Run(IReadOnlyList<string> args)
    {
        string directory = args.Count > 0 ? args[0] : Path.Combine("artifacts", "bench");
        int written = RenderAll(directory);
        Console.WriteLine($"{written} chart(s) written to {directory}");
        return written > 0 ? 0 : 1;
    }

    private const string FontName = "DejaVu Sans";

    /// <summary>Renders what it can; a machine without SkiaSharp's native library gets a message, not a failed sweep.</summary>
    public static int RenderAll(string directory)
    {
        int written = 0;
        try
        {
            UseBundledFont();
            if (File.Exists(Path.Combine(directory, "gemm-fp8.csv")))
                written += GemmFp8(directory);
            if (File.Exists(Path.Combine(directory, "decode.csv")))
                written += Decode(directory);
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or BadImageFormatException)
        {
            Console.WriteLine($"charts skipped: {e.Message}");
        }
        return written;
    }

    // The font shipped next to the assembly, for every label (regular and bold): charts look the same everywhere, and
    // machines without system fonts (the GPU machines) still get text.
    private static void UseBundledFont()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Fonts", "DejaVuSans.ttf");
        if (!File.Exists(path))
            return;
        Fonts.AddFontFile(FontName, path, bold: false, italic: false);
        Fonts.AddFontFile(FontName, path, bold: true, italic: false);
        Fonts.Default = FontName;
    }

    private static List<Dictionary<string, string>> ReadCsv(string path)
    {
        var lines = File.ReadAllLines(path);
        var header = lines[0].Split(',');
        return lines.Skip(1).Where(l => l.Length > 0).Select(l => l.Split(','))
                    .Select(cells => header.Zip(cells).ToDictionary(p => p.First, p => p.Second)).ToList();
    }

    private static double Number(string text) => double.Parse(text, CultureInfo.InvariantCulture);

    private static int GemmFp8(string directory)
    {
        var rows = ReadCsv(Path.Combine(directory, "gemm-fp8.csv"));
        var shapes = rows.Select(r => r["shape"]).Distinct().ToList();
        var plot = new Plot();
        int series = 0;
        foreach (var group in rows.GroupBy(r => r["scales"]))
        {
            var bars = group.Select(r => new Bar
            {
                Position = shapes.IndexOf(r["shape"]) * 3 + series,
                Value = Number(r["ratio"]),
                ValueBase = 0.8,
                FillColor = series == 0 ? Colors.SteelBlue : Colors.DarkOrange,
            }).ToList();
            plot.Add.Bars(bars).LegendText = group.Key;
            series++;
        }
        plot.Add.HorizontalLine(1.0, 1, Colors.Gray, LinePattern.Dashed);
        plot.Axes.Bottom.SetTicks(shapes.Select((_, i) => i * 3 + 0.5).ToArray(), shapes.ToArray());
        double highest = rows.Max(r => Number(r["ratio"]));
        plot.Axes.SetLimitsY(0.8, Math.Max(1.15, highest + 0.03)); // bars start at 0.8: small differences stay visible
        plot.Title("FP8 GEMM: cuBLASLt time / Microscale time (above 1: Microscale faster)");
        plot.YLabel("ratio");
        plot.ShowLegend();
        plot.SavePng(Path.Combine(directory, "gemm-fp8.png"), 1000, 560);

        // Achieved TFLOPS of both libraries, per shape and scaling.
        var tflops = new Plot();
        var palette = new[] { Colors.SteelBlue, Colors.LightSteelBlue, Colors.DarkOrange, Colors.NavajoWhite };
        int bar = 0;
        foreach (var group in rows.GroupBy(r => r["scales"]))
            foreach (var (column, library) in new[] { ("tflops", "Microscale"), ("cublaslt_tflops", "cuBLASLt") })
            {
                var bars = group.Select(r => new Bar
                {
                    Position = shapes.IndexOf(r["shape"]) * 5 + bar,
                    Value = Number(r[column]),
                    FillColor = palette[bar % palette.Length],
                }).ToList();
                tflops.Add.Bars(bars).LegendText = $"{library} {group.Key}";
                bar++;
            }
        tflops.Axes.Bottom.SetTicks(shapes.Select((_, i) => i * 5 + 1.5).ToArray(), shapes.ToArray());
        tflops.Axes.Margins(bottom: 0);
        tflops.Title("FP8 GEMM: achieved TFLOPS (BF16 out)");
        tflops.YLabel("TFLOPS");
        tflops.ShowLegend(Edge.Right);
        tflops.SavePng(Path.Combine(directory, "gemm-fp8-tflops.png"), 1200, 560);
        return 2;
    }

    private static int Decode(string directory)
    {
        var rows = ReadCsv(Path.Combine(directory, "decode.csv"));
        void Chart(string column, string file, string title, string yLabel, double? reference)
        {
            var plot = new Plot();
            foreach (var group in rows.Where(r => r.ContainsKey(column) && !double.IsNaN(Number(r[column]))).GroupBy(r => $"{r["shape"]} {r["scheme"]}"))
            {
                double[] m = group.Select(r => Math.Log2(Number(r["m"]))).ToArray();
                double[] y = group.Select(r => Number(r[column])).ToArray();
                plot.Add.Scatter(m, y).LegendText = group.Key;
            }
            if (reference is { } level)
                plot.Add.HorizontalLine(level, 1, Colors.Gray, LinePattern.Dashed);
            double[] ticks = [0, 1, 2, 3, 4, 5, 6];
            plot.Axes.Bottom.SetTicks(ticks, ticks.Select(t => ((int)Math.Pow(2, t)).ToString(CultureInfo.InvariantCulture)).ToArray());
            plot.XLabel("tokens M");
            plot.YLabel(yLabel);
            plot.Title(title);
            plot.ShowLegend(Edge.Right);
            plot.SavePng(Path.Combine(directory, file), 1200, 600);
        }
        Chart("ratio_bf16", "decode.png", "Decode GEMM: cuBLAS BF16 time / Microscale time", "ratio", 1.0);
        Chart("copy_fraction", "decode-bandwidth.png", "Decode GEMM: weight bandwidth / device copy bandwidth", "fraction of copy", null);
        if (rows.Count == 0 || !rows[0].ContainsKey("prepacked_static_ratio_bf16"))
            return 2; // a CSV from before the prepacked columns
        Chart("prepacked_static_ratio_bf16", "decode-prepacked.png",
              "Decode GEMM, prepacked FP4 weights + static weights: cuBLAS BF16 time / Microscale time (batches of 10)", "ratio", 1.0);
        return 3;
    }
}
