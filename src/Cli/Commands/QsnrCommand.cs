using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Microscale.IO;
using Microscale.Offline;
using Spectre.Console;

namespace Microscale.Cli.Commands;

/// <summary>
/// <c>microscale qsnr</c>: the "INT v.s. FP" study on Microscale's quantizers: QSNR of every MX / NV integer and floating-point
/// format over blocks of controlled crest factor with the INT-vs-FP crossovers next to the paper's, or (<c>--input</c>) the
/// QSNR of every format, with and without a block Hadamard rotation, on a tensor of a safetensors file.
/// </summary>
internal static class QsnrCommand
{
    public static Command Create()
    {
        var blocks = new Option<int>("--blocks") { Description = "Synthetic blocks per crest factor", DefaultValueFactory = _ => 4096 };
        var input = new Option<FileInfo?>("--input") { Description = "A .safetensors file: report its --tensor instead of the synthetic sweep" };
        var tensor = new Option<string?>("--tensor") { Description = "The rank-2 tensor of --input (rows x K) to quantize" };
        var json = new Option<FileInfo?>("--json-file") { Description = "Also write the numbers as JSON to this file" };
        var command = new Command("qsnr", "QSNR of the FP and INT block formats by crest factor (INT v.s. FP), or on a tensor of a checkpoint")
        {
            blocks, input, tensor, json,
        };
        command.SetAction(r => CliOutput.Run(r, report => r.GetValue(input) is { } file
            ? OnTensor(report, file, r.GetValue(tensor) ?? throw new ArgumentException("--input needs --tensor NAME."), r.GetValue(json))
            : Sweep(report, r.GetValue(blocks), r.GetValue(json))));
        return command;
    }

    private static string F(double v) => v.ToString("F2", CultureInfo.InvariantCulture);

    private static int Sweep(CliOutput report, int blocks, FileInfo? json)
    {
        var sweep = QsnrStudy.CrestSweep(blocks);
        var table = new Table().AddColumn("κ").AddColumn("κ vs block RMS");
        foreach (var (name, _) in QsnrStudy.Formats)
            table.AddColumn(name);
        foreach (var p in sweep)
            table.AddRow([F(p.TargetCrest), F(p.MeanCrest), .. QsnrStudy.Formats.Select(f => F(p.Qsnr[f.Name]))]);
        AnsiConsole.Write(table);
        var crossovers = QsnrStudy.Crossovers(sweep);
        foreach (var c in crossovers)
            AnsiConsole.WriteLine($"{c.Integer} beats {c.Float} below κ = {(c.Crest is { } k ? F(k) : "(none in 1.5-9: INT wins throughout)")}; paper: {F(c.Paper)}");
        AnsiConsole.WriteLine("MXINT6: its peer MXFP6 is not a Microscale format. Blocks: N(0,1) clipped to ±κ, one value at ±κ, block scale 2^U[0,1).");
        report.Set("sweep", sweep);
        report.Set("crossovers", crossovers);
        if (json is not null)
            File.WriteAllText(json.FullName, JsonSerializer.Serialize(new { sweep, crossovers }, new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    private static int OnTensor(CliOutput report, FileInfo file, string name, FileInfo? json)
    {
        using var checkpoint = SafeTensorsCheckpoint.Open(file.FullName);
        var shape = checkpoint.GetInfo(name).Shape;
        if (shape.Count != 2)
            throw new ArgumentException($"--tensor {name} is rank {shape.Count}; QSNR needs a rank-2 [rows, K] tensor.");
        int rows = checked((int)shape[0]), columns = checked((int)shape[1]);
        using var context = MicroscaleContext.Create(Backend.Reference);
        using var source = context.CreateTensor<float>(checkpoint.FileOf(name).ReadAsSingle(name), rows, columns);
        var table = new Table().AddColumns("Format", "QSNR (dB)", "QSNR rotated (dB)", "Rotation");
        var results = new List<object>();
        foreach (var (format, options) in QsnrStudy.Formats)
        {
            int g = options.Format is QuantFormat.Nvfp4 or QuantFormat.Nvint4 ? 16 : 32;
            double plain = Qsnr(context, source, options, null);
            double? rotated = columns % g == 0 ? Qsnr(context, source, options, HadamardTransform.CreateRandom(g, seed: 1)) : null;
            table.AddRow(format, F(plain), rotated is { } r ? F(r) : "-", $"Hadamard {g}");
            results.Add(new { format, plain, rotated, rotationBlock = g });
        }
        AnsiConsole.MarkupLine($"{Markup.Escape(name)} [[{rows} x {columns}]]");
        AnsiConsole.Write(table);
        report.Set("tensor", new { Name = name, Rows = rows, Columns = columns });
        report.Set("formats", results);
        if (json is not null)
            File.WriteAllText(json.FullName, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    /// <summary>QSNR of quantizing the source (after the rotation, if any) against the values quantized.</summary>
    private static double Qsnr(MicroscaleContext context, DeviceTensor<float> source, QuantizationOptions options, HadamardTransform? rotation)
    {
        using var rotated = rotation is null ? null : context.HadamardRotate(source, rotation);
        using var q = context.Quantize(rotated ?? source, options);
        using var back = context.Dequantize(q);
        return QuantizationMetrics.Qsnr((rotated ?? source).ToArray(), back.ToArray());
    }
}
