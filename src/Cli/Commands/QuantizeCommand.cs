using System.CommandLine;
using Microscale.IO;

namespace Microscale.Cli.Commands;

/// <summary><c>microscale quantize</c>: one rank-2 F32/F16/BF16 tensor of a safetensors file → a quantized safetensors file.</summary>
internal static class QuantizeCommand
{
    public static Command Create()
    {
        var input = new Option<FileInfo>("--input") { Description = "Input .safetensors file", Required = true };
        var tensor = new Option<string>("--tensor") { Description = "Name of the rank-2 F32/F16/BF16 tensor to quantize", Required = true };
        var format = new Option<string>("--format") { Description = "mxfp4 | mxfp8 | nvfp4 | fp8-tensor | fp8-row | mxint8 | mxint6 | mxint4 | nvint4", Required = true };
        format.AcceptOnlyFromAmong("mxfp4", "mxfp8", "nvfp4", "fp8-tensor", "fp8-row", "mxint8", "mxint6", "mxint4", "nvint4");
        var rule = new Option<string>("--rule") { Description = "MX scale rule: floor (OCP) | ceil (RCEIL)", DefaultValueFactory = _ => "floor" };
        rule.AcceptOnlyFromAmong("floor", "ceil");
        var layout = new Option<string>("--layout") { Description = "Block-scale layout: linear | swizzled (128x4)", DefaultValueFactory = _ => "linear" };
        layout.AcceptOnlyFromAmong("linear", "swizzled");
        var element = new Option<string>("--element") { Description = "FP8 element for mxfp8/fp8-*: e4m3 | e5m2", DefaultValueFactory = _ => "e4m3" };
        element.AcceptOnlyFromAmong("e4m3", "e5m2");
        var nonFinite = new Option<string>("--nonfinite") { Description = "NaN/Inf policy: propagate | throw", DefaultValueFactory = _ => "propagate" };
        nonFinite.AcceptOnlyFromAmong("propagate", "throw");
        var backend = new Option<Backend>("--backend") { Description = "Auto | Cpu | Cuda | Reference", DefaultValueFactory = _ => Backend.Auto };
        var outputFile = new Option<FileInfo>("--output") { Description = "Output .safetensors file", Required = true };

        var command = new Command("quantize", "Quantize one weight tensor of a safetensors file")
        {
            input, tensor, format, rule, layout, element, nonFinite, backend, outputFile,
        };
        command.SetAction(r => CliOutput.Run(r, output =>
        {
            var options = new QuantizationOptions(QuantizedSafeTensors.ParseFormat(r.GetValue(format)!))
            {
                Rule = r.GetValue(rule) == "ceil" ? MxScaleRule.Ceil : MxScaleRule.Floor,
                Layout = r.GetValue(layout) == "swizzled" ? ScaleLayout.Swizzled128x4 : ScaleLayout.Linear,
                Element = r.GetValue(element) == "e5m2" ? Fp8Element.E5M2 : Fp8Element.E4M3,
                NonFinite = r.GetValue(nonFinite) == "throw" ? NonFinitePolicy.Throw : NonFinitePolicy.Propagate,
            };
            var written = Run(r.GetValue(input)!, r.GetValue(tensor)!, options, r.GetValue(backend), r.GetValue(outputFile)!);
            output.Set("quantized", written);
            return 0;
        }));
        return command;
    }

    /// <summary>What <c>quantize</c> wrote.</summary>
    internal sealed record Written(string Tensor, int Rows, int Columns, string Format, double BitsPerValue, string Output);

    internal static Written Run(FileInfo input, string tensorName, QuantizationOptions options, Backend backend, FileInfo output)
    {
        if (!input.Exists)
            throw new FileNotFoundException($"Input file '{input.FullName}' does not exist.");
        float[] values;
        int rows, columns;
        using (var file = SafeTensorsFile.Open(input.FullName))
        {
            var info = file.GetInfo(tensorName);
            if (info.Shape.Count != 2)
                throw new ArgumentException($"Tensor '{tensorName}' has rank {info.Shape.Count}; quantize takes rank 2 [rows, K].", "--tensor");
            if (info.DType is not (SafeTensorsDType.F32 or SafeTensorsDType.F16 or SafeTensorsDType.BF16))
                throw new ArgumentException($"Tensor '{tensorName}' is {info.DType}; quantize takes F32, F16 or BF16.", "--tensor");
            rows = checked((int)info.Shape[0]);
            columns = checked((int)info.Shape[1]);
            values = file.ReadAsSingle(tensorName); // F16 and BF16 widen exactly
        }
        using var quantized = Quantizer.Quantize(values, rows, columns, options, backend);
        var writer = new SafeTensorsWriter();
        QuantizedSafeTensors.AddTo(writer, quantized);
        writer.Metadata["source_tensor"] = tensorName;
        writer.Save(output.FullName);
        Console.WriteLine($"{tensorName} [{rows}, {columns}] -> {options} ({quantized.BitsPerValue:0.##} bits/value) -> {output.FullName}");
        return new Written(tensorName, rows, columns, options.ToString(), quantized.BitsPerValue, output.FullName);
    }
}
