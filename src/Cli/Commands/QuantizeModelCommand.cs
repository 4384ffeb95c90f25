using System.CommandLine;
using System.Globalization;
using Microscale.IO;
using Microscale.Offline;
using Spectre.Console;

namespace Microscale.Cli.Commands;

/// <summary>
/// <c>microscale quantize-model</c>: quantizes every linear weight of a Hugging Face checkpoint offline (rank-2 F32/F16/BF16
/// <c>*.weight</c> tensors whose K fits the format, except embeddings, norms and the LM head) and writes a checkpoint in an
/// engine convention (<see cref="CheckpointConvention"/>); other tensors are copied. Prints each layer's QSNR.
/// </summary>
internal static class QuantizeModelCommand
{
    public static Command Create()
    {
        var input = new Option<string>("--input") { Description = "A .safetensors file, an index .json or a checkpoint directory", Required = true };
        var output = new Option<FileInfo>("--output") { Description = "Output .safetensors file", Required = true };
        var format = new Option<string>("--format") { Description = "nvfp4 | mxfp4 | fp8", Required = true };
        var convention = new Option<string>("--convention")
        {
            Description = "nvfp4: modelopt (default) | compressed-tensors; mxfp4 is written as gpt-oss blocks (one expert), fp8 per channel",
            DefaultValueFactory = _ => "modelopt",
        };
        var hadamard = new Option<int>("--hadamard") { Description = "Rotate each weight row by a block Hadamard of this size first (0: none)", DefaultValueFactory = _ => 0 };
        var seed = new Option<int>("--seed") { Description = "Seed of the rotation's random signs", DefaultValueFactory = _ => 20261123 };
        var exclude = new Option<string>("--exclude") { Description = "Comma-separated name fragments left unquantized", DefaultValueFactory = _ => "embed,norm,lm_head" };
        var backend = new Option<Backend>("--backend") { Description = "Auto | Native | Cuda | Cpu | Reference", DefaultValueFactory = _ => Backend.Auto };
        var method = new Option<string>("--method")
        {
            Description = "rtn (default) | gptq | mr-gptq (GPTQ after a block Hadamard rotation of --hadamard, 128 if 0); mxfp4 and nvfp4",
            DefaultValueFactory = _ => "rtn",
        };
        var calibration = new Option<FileInfo?>("--calibration")
        {
            Description = "gptq / mr-gptq: a .safetensors file holding each layer's input activations [tokens, K] as <layer>.input",
        };
        var actOrder = new Option<bool>("--act-order") { Description = "gptq: quantize columns by decreasing Hessian diagonal" };
        var mseScales = new Option<bool>("--mse-scales") { Description = "gptq: search each block scale for the least |w - Q(w)|^2.4" };
        var pow2Scales = new Option<bool>("--pow2-row-scales")
        {
            Description = "nvfp4: every block scale = its row's largest over a power of two (ZeroQuant-FP, for W4A8)",
        };
        var command = new Command("quantize-model", "Quantize the linear weights of a checkpoint offline and report each layer's QSNR")
        {
            input, output, format, convention, hadamard, seed, exclude, backend, method, calibration, actOrder, mseScales, pow2Scales,
        };
        command.SetAction(r => CliOutput.Run(r, cli => Run(cli, r.GetValue(input)!, r.GetValue(output)!, r.GetValue(format)!, r.GetValue(convention)!,
                                                       r.GetValue(hadamard), r.GetValue(seed), r.GetValue(exclude)!, r.GetValue(backend),
                                                       new MethodSettings(r.GetValue(method)!, r.GetValue(calibration), r.GetValue(actOrder), r.GetValue(mseScales), r.GetValue(pow2Scales)))));
        return command;
    }

    /// <summary>The --method and its calibration.</summary>
    private sealed record MethodSettings(string Method, FileInfo? Calibration, bool ActOrder, bool MseScales, bool PowerOfTwoRowScales);

    private static int Run(CliOutput cli, string inputPath, FileInfo outputFile, string formatName, string conventionName, int hadamardBlock, int seed, string exclude,
                           Backend backend, MethodSettings settings)
    {
        var (options, convention) = (formatName.ToLowerInvariant(), conventionName.ToLowerInvariant()) switch
        {
            ("nvfp4", "modelopt") => (new QuantizationOptions(QuantFormat.Nvfp4), CheckpointConvention.ModelOptNvfp4),
            ("nvfp4", "compressed-tensors") => (new QuantizationOptions(QuantFormat.Nvfp4), CheckpointConvention.CompressedTensorsNvfp4),
            ("mxfp4", _) => (new QuantizationOptions(QuantFormat.Mxfp4), CheckpointConvention.GptOssMxfp4),
            ("fp8", _) => (new QuantizationOptions(QuantFormat.Fp8PerRow), CheckpointConvention.Fp8),
            _ => throw new ArgumentException($"--format {formatName} --convention {conventionName}: use nvfp4 (modelopt | compressed-tensors), mxfp4 or fp8."),
        };
        var method = settings.Method.ToLowerInvariant() switch
        {
            "rtn" => GptqMethod.Rtn,
            "gptq" => GptqMethod.Gptq,
            "mr-gptq" => GptqMethod.MrGptq,
            _ => throw new ArgumentException($"--method {settings.Method}: use rtn, gptq or mr-gptq."),
        };
        if (method != GptqMethod.Rtn && settings.Calibration is null)
            throw new ArgumentException($"--method {settings.Method} needs --calibration (each layer's inputs as <layer>.input).");
        if (method == GptqMethod.MrGptq && hadamardBlock == 0)
            hadamardBlock = 128;
        if (method == GptqMethod.Gptq && hadamardBlock != 0)
            throw new ArgumentException("--hadamard goes with --method rtn or mr-gptq (GPTQ after the rotation), not gptq.");
        var gptqOptions = new GptqOptions
        {
            Method = method, ActOrder = settings.ActOrder, MseScaleSearch = settings.MseScales, RotationBlockSize = hadamardBlock, RotationSeed = seed,
            PowerOfTwoRowScales = settings.PowerOfTwoRowScales,
        };
        if (settings.PowerOfTwoRowScales && (options.Format != QuantFormat.Nvfp4 || (method == GptqMethod.Rtn && hadamardBlock != 0)))
            throw new ArgumentException("--pow2-row-scales applies to nvfp4 weights (rtn without --hadamard, gptq or mr-gptq).");
        bool offline = method != GptqMethod.Rtn || settings.PowerOfTwoRowScales;
        var rotation = hadamardBlock > 0 ? HadamardTransform.CreateRandom(hadamardBlock, seed) : null;
        using var calibration = settings.Calibration is null ? null : SafeTensorsCheckpoint.Open(settings.Calibration.FullName);
        string[] skipped = exclude.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        int block = Math.Max(options.Format == QuantFormat.Nvfp4 ? 16 : options.Format == QuantFormat.Mxfp4 ? 32 : 1, hadamardBlock);

        using var checkpoint = SafeTensorsCheckpoint.Open(inputPath);
        using var context = MicroscaleContext.Create(backend);
        var writer = new SafeTensorsWriter();
        var report = new Table().AddColumns("Weight", "Shape", "QSNR (dB)");
        var names = checkpoint.TensorNames.Order(StringComparer.Ordinal).ToList();
        int quantized = 0;
        AnsiConsole.Progress().Start(progress =>
        {
            var task = progress.AddTask("quantizing", maxValue: names.Count);
            foreach (string name in names)
            {
                var info = checkpoint.GetInfo(name);
                bool linear = name.EndsWith(".weight", StringComparison.Ordinal) && info.Shape.Count == 2 && info.Shape[1] % block == 0
                              && info.DType is SafeTensorsDType.F32 or SafeTensorsDType.F16 or SafeTensorsDType.BF16
                              && !skipped.Any(s => name.Contains(s, StringComparison.Ordinal));
                if (linear)
                {
                    int n = checked((int)info.Shape[0]), k = checked((int)info.Shape[1]);
                    float[] values = checkpoint.FileOf(name).ReadAsSingle(name);
                    using var weights = context.CreateTensor<float>(values, n, k);
                    using var q = !offline
                        ? rotation is null ? context.Quantize(weights, options) : context.QuantizeRotated(weights, rotation, options)
                        : QuantizeOffline(context, values, n, k, name[..^".weight".Length], calibration, options, gptqOptions);
                    using var reference = rotation is null ? null : context.HadamardRotate(weights, rotation);
                    using var back = context.Dequantize(q);
                    double qsnr = QuantizationMetrics.Qsnr((reference ?? weights).ToArray(), back.ToArray());
                    QuantizedCheckpoint.Add(writer, name[..^".weight".Length], convention, q);
                    report.AddRow(Markup.Escape(name), $"{n} x {k}", qsnr.ToString("F2", CultureInfo.InvariantCulture));
                    cli.Add("layers", new { Weight = name, Rows = n, Columns = k, QsnrDb = qsnr });
                    quantized++;
                }
                else
                {
                    writer.Add(name, info.DType, info.Shape.ToArray(), checkpoint.GetBytes(name));
                }
                task.Increment(1);
            }
        });
        writer.Metadata["microscale.quantized"] = $"{options} ({convention}, {settings.Method})";
        if (rotation is not null)
            writer.Metadata["microscale.hadamard"] = $"g={hadamardBlock}, seed={seed}: weights rotated; rotate activations the same way";
        writer.Save(outputFile.FullName);
        AnsiConsole.Write(report);
        cli.Set("summary", new
        {
            Quantized = quantized, Copied = names.Count - quantized, Format = options.ToString(), Convention = convention.ToString(), settings.Method,
            Output = outputFile.FullName, context.Backend,
        });
        AnsiConsole.MarkupLine($"{quantized} weights quantized to {Markup.Escape(options.ToString())} ({convention}), {names.Count - quantized} tensors copied, " +
                               $"written to {Markup.Escape(outputFile.FullName)} on {context.Backend}.");
        return 0;
    }

    /// <summary>One weight through the offline solver: GPTQ / MR-GPTQ with its layer's calibration inputs (<paramref name="layer"/>.input,
    /// [tokens, K]), or RTN with constrained scales when there is no calibration.</summary>
    private static QuantizedTensor QuantizeOffline(MicroscaleContext context, float[] weights, int n, int k, string layer, SafeTensorsCheckpoint? calibration,
                                                   QuantizationOptions options, GptqOptions gptqOptions)
    {
        float[] inputs = [];
        int tokens = 0;
        if (calibration is not null)
        {
            string name = layer + ".input";
            if (!calibration.TensorNames.Contains(name))
                throw new ArgumentException($"--calibration has no {name} (the inputs of {layer}, [tokens, {k}]).");
            var shape = calibration.GetInfo(name).Shape;
            if (shape.Count != 2 || shape[1] != k)
                throw new ArgumentException($"--calibration {name} is [{string.Join(", ", shape)}], not [tokens, {k}].");
            inputs = calibration.FileOf(name).ReadAsSingle(name);
            tokens = checked((int)shape[0]);
        }
        var result = Offline.Gptq.Quantize(weights, n, k, inputs, tokens, options, gptqOptions);
        using (result.Weight)
            return context.Upload(result.Weight);
    }
}
