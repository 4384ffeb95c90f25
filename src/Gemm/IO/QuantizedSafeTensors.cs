using System.Globalization;

namespace Microscale.IO;

/// <summary>
/// Stores a <see cref="QuantizedTensor"/> as safetensors, the layout the <c>microscale quantize</c> CLI writes:
/// <c>q</c> (U8 packed codes, K padded), <c>scale</c> (U8 E8M0/UE4M3 codes, [rows, K/block] linear or flat swizzled;
/// F32 [1] or [rows] for FP8 per-tensor/per-row), <c>global_scale</c> (F32 [1], NVFP4 only, the decode scale g),
/// and metadata <c>format</c>, <c>rule</c>, <c>layout</c>, <c>element</c>, <c>nonfinite</c>, <c>logical_k</c>.
/// </summary>
public static class QuantizedSafeTensors
{
    /// <summary>Adds the tensors and metadata of <paramref name="tensor"/> to <paramref name="writer"/>.</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ObjectDisposedException"><paramref name="tensor"/> was disposed.</exception>
    public static void AddTo(SafeTensorsWriter writer, QuantizedTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(tensor);
        QuantizerChecks.ThrowIfTiledInput(tensor, nameof(tensor));
        var o = tensor.Options;
        writer.Add("q", SafeTensorsDType.U8, [tensor.Rows, tensor.Data.Length / tensor.Rows], tensor.Data);
        if (tensor.BlockSize > 0)
        {
            long[] shape = o.Layout == ScaleLayout.Linear ? [tensor.Rows, tensor.ScaleColumns] : [tensor.BlockScales.Length];
            writer.Add("scale", SafeTensorsDType.U8, shape, tensor.BlockScales);
            if (tensor.Spec.IsNv)
                writer.Add<float>("global_scale", tensor.DecodeScales, 1);
        }
        else
        {
            writer.Add<float>("scale", tensor.DecodeScales, tensor.DecodeScales.Length);
        }
        writer.Metadata["format"] = FormatName(o.Format);
        writer.Metadata["rule"] = o.Rule.ToString().ToLowerInvariant();
        writer.Metadata["layout"] = o.Layout == ScaleLayout.Linear ? "linear" : "swizzled";
        writer.Metadata["element"] = tensor.Spec.HasFp8Element ? o.Element.ToString().ToLowerInvariant()
            : tensor.Spec.IsInteger ? $"int{tensor.Spec.ElementBits switch { 4 => 4, _ => tensor.Format == QuantFormat.Mxint6 ? 6 : 8 }}" : "e2m1";
        writer.Metadata["nonfinite"] = o.NonFinite.ToString().ToLowerInvariant();
        writer.Metadata["logical_k"] = tensor.Columns.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Reads a tensor written by <see cref="AddTo"/> (or by the CLI).</summary>
    /// <exception cref="SafeTensorsFormatException">A tensor or metadata entry is missing or inconsistent.</exception>
    public static QuantizedTensor Read(SafeTensorsFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        string Meta(string key) => file.Metadata.TryGetValue(key, out var v)
            ? v : throw new SafeTensorsFormatException($"Quantized safetensors lacks metadata '{key}'.");
        var format = ParseFormat(Meta("format"));
        var options = new QuantizationOptions(format)
        {
            Rule = Enum.Parse<MxScaleRule>(Meta("rule"), ignoreCase: true),
            Layout = Meta("layout") == "swizzled" ? ScaleLayout.Swizzled128x4 : ScaleLayout.Linear,
            Element = format is QuantFormat.Mxfp8 or QuantFormat.Fp8PerTensor or QuantFormat.Fp8PerRow
                ? Enum.Parse<Fp8Element>(Meta("element"), ignoreCase: true) : Fp8Element.E4M3,
            NonFinite = Enum.Parse<NonFinitePolicy>(Meta("nonfinite"), ignoreCase: true),
        };
        int rows = checked((int)file.GetInfo("q").Shape[0]);
        int columns = int.Parse(Meta("logical_k"), CultureInfo.InvariantCulture);
        try
        {
            return format switch
            {
                QuantFormat.Nvfp4 or QuantFormat.Nvint4 =>
                    QuantizedTensor.FromParts(options, rows, columns, file.GetBytes("q"), file.GetBytes("scale"), file.Read<float>("global_scale")),
                QuantFormat.Mxfp4 or QuantFormat.Mxfp8 or QuantFormat.Mxint8 or QuantFormat.Mxint6 or QuantFormat.Mxint4 =>
                    QuantizedTensor.FromParts(options, rows, columns, file.GetBytes("q"), file.GetBytes("scale"), default),
                _ => QuantizedTensor.FromParts(options, rows, columns, file.GetBytes("q"), default, file.Read<float>("scale")),
            };
        }
        catch (ArgumentException ex)
        {
            throw new SafeTensorsFormatException($"Quantized safetensors is inconsistent: {ex.Message}");
        }
    }

    /// <summary>The CLI spelling of a format: mxfp4, mxfp8, nvfp4, fp8-tensor, fp8-row.</summary>
    public static string FormatName(QuantFormat format) => format switch
    {
        QuantFormat.Mxfp4 => "mxfp4",
        QuantFormat.Mxfp8 => "mxfp8",
        QuantFormat.Nvfp4 => "nvfp4",
        QuantFormat.Fp8PerTensor => "fp8-tensor",
        QuantFormat.Fp8PerRow => "fp8-row",
        QuantFormat.Mxint8 => "mxint8",
        QuantFormat.Mxint6 => "mxint6",
        QuantFormat.Mxint4 => "mxint4",
        QuantFormat.Nvint4 => "nvint4",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "Not a defined QuantFormat."),
    };

    /// <summary>Parses the CLI spelling of a format.</summary>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    public static QuantFormat ParseFormat(string name) => name switch
    {
        "mxfp4" => QuantFormat.Mxfp4,
        "mxfp8" => QuantFormat.Mxfp8,
        "nvfp4" => QuantFormat.Nvfp4,
        "fp8-tensor" => QuantFormat.Fp8PerTensor,
        "fp8-row" => QuantFormat.Fp8PerRow,
        "mxint8" => QuantFormat.Mxint8,
        "mxint6" => QuantFormat.Mxint6,
        "mxint4" => QuantFormat.Mxint4,
        "nvint4" => QuantFormat.Nvint4,
        _ => throw new ArgumentException($"Unknown format '{name}': expected mxfp4, mxfp8, nvfp4, fp8-tensor, fp8-row, mxint8, mxint6, mxint4 or nvint4.", nameof(name)),
    };
}
