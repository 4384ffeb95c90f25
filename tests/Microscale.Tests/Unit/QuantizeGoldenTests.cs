using Microscale.IO;

namespace Microscale.Tests.Unit;

/// <summary>
/// Every quantizer, rule and layout against every quant_*.safetensors file (made with ml_dtypes), bit for bit, on the
/// managed reference, the ILGPU CPU accelerator and (category Gpu) ILGPU CUDA and the native library.
/// </summary>
[TestFixture]
public sealed class QuantizeGoldenTests
{
    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (string file in Golden.Files("quant_*.safetensors"))
        foreach (var backend in TestBackends.All)
            yield return TestBackends.Case($"{Path.GetFileNameWithoutExtension(file)}_{backend}", backend, file, backend);
    }

    private static (float[] X, int Rows, int Columns) Input(SafeTensorsFile f)
    {
        var info = f.GetInfo("x");
        return (f.Read<float>("x"), (int)info.Shape[0], (int)info.Shape[1]);
    }

    [TestCaseSource(nameof(Cases))]
    public void Mx(string file, Backend backend)
    {
        TestBackends.Require(backend);
        using var f = SafeTensorsFile.Open(Golden.PathOf(file));
        var (x, rows, columns) = Input(f);
        foreach (var format in new[] { QuantFormat.Mxfp4, QuantFormat.Mxfp8 })
        foreach (var rule in new[] { MxScaleRule.Floor, MxScaleRule.Ceil })
        {
            string name = $"{(format == QuantFormat.Mxfp4 ? "mxfp4" : "mxfp8")}_{rule.ToString().ToLowerInvariant()}";
            using var linear = Quantizer.Quantize(x, rows, columns, new QuantizationOptions(format) { Rule = rule }, backend);
            Exact.AssertBytes(f.Read<byte>($"{name}_q"), linear.Data, $"{file} {name}_q", linear.Data.Length / rows);
            Exact.AssertBytes(f.Read<byte>($"{name}_s"), linear.BlockScales, $"{file} {name}_s", linear.ScaleColumns);
            AssertDequantized(f, $"{name}_deq", linear, backend);

            using var swizzled = Quantizer.Quantize(x, rows, columns, new QuantizationOptions(format) { Rule = rule, Layout = ScaleLayout.Swizzled128x4 }, backend);
            Exact.AssertBytes(f.Read<byte>($"{name}_s_swz"), swizzled.BlockScales, $"{file} {name}_s_swz");
            Exact.AssertBytes(linear.Data, swizzled.Data, $"{file} {name}_q (swizzled run)");
            AssertDequantized(f, $"{name}_deq", swizzled, backend);
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void Nvfp4(string file, Backend backend)
    {
        TestBackends.Require(backend);
        using var f = SafeTensorsFile.Open(Golden.PathOf(file));
        var (x, rows, columns) = Input(f);
        using var q = Quantizer.Quantize(x, rows, columns, new QuantizationOptions(QuantFormat.Nvfp4), backend);
        Exact.AssertFloats(f.Read<float>("nvfp4_g"), q.DecodeScales, $"{file} nvfp4_g");
        Exact.AssertBytes(f.Read<byte>("nvfp4_s"), q.BlockScales, $"{file} nvfp4_s", q.ScaleColumns);
        Exact.AssertBytes(f.Read<byte>("nvfp4_q"), q.Data, $"{file} nvfp4_q", q.Data.Length / rows);
        AssertDequantized(f, "nvfp4_deq", q, backend);

        using var swizzled = Quantizer.Quantize(x, rows, columns, new QuantizationOptions(QuantFormat.Nvfp4) { Layout = ScaleLayout.Swizzled128x4 }, backend);
        Exact.AssertBytes(f.Read<byte>("nvfp4_s_swz"), swizzled.BlockScales, $"{file} nvfp4_s_swz");
        AssertDequantized(f, "nvfp4_deq", swizzled, backend);
    }

    [TestCaseSource(nameof(Cases))]
    public void Fp8(string file, Backend backend)
    {
        TestBackends.Require(backend);
        using var f = SafeTensorsFile.Open(Golden.PathOf(file));
        var (x, rows, columns) = Input(f);
        foreach (var (format, name) in new[] { (QuantFormat.Fp8PerTensor, "fp8_tensor"), (QuantFormat.Fp8PerRow, "fp8_row") })
        {
            using var q = Quantizer.Quantize(x, rows, columns, new QuantizationOptions(format), backend);
            Exact.AssertFloats(f.Read<float>($"{name}_g"), q.DecodeScales, $"{file} {name}_g");
            Exact.AssertBytes(f.Read<byte>($"{name}_q"), q.Data, $"{file} {name}_q", columns);
            // FP8 dequantization is one rounding of code × g: check it against the golden codes and scales in float64.
            var deq = q.Dequantize(backend);
            float[] g = f.Read<float>($"{name}_g");
            byte[] codes = f.Read<byte>($"{name}_q");
            var expected = new float[deq.Length];
            for (int i = 0; i < expected.Length; i++)
                expected[i] = (float)((double)Float8E4M3.FromRawValue(codes[i]).ToSingle() * g[format == QuantFormat.Fp8PerRow ? i / columns : 0]);
            Exact.AssertFloats(expected, deq, $"{file} {name} dequantized", columns);
        }
    }

    /// <summary>The golden F64 dequantized values are exact products; ours round them once to binary32.</summary>
    private static void AssertDequantized(SafeTensorsFile f, string tensor, QuantizedTensor q, Backend backend)
    {
        float[] expected = f.Read<double>(tensor).Select(v => (float)v).ToArray();
        Exact.AssertFloats(expected, q.Dequantize(backend), $"{tensor} ({backend})", q.Columns);
    }
}
