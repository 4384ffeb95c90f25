using System.Globalization;
using Microscale.IO;

namespace Microscale.Tests.Unit;

/// <summary>The <c>microscale quantize</c> command in-process: golden bytes out, one-line errors and exit code 1 on bad input.</summary>
[TestFixture]
[NonParallelizable] // redirects Console.Error
public sealed class CliTests
{
    private string _dir = null!;

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("microscale-cli-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    private static (int ExitCode, string Error) Run(params string[] args) => CliRunner.Run(args);

    [TestCase("nvfp4", "modelopt", 0)]
    [TestCase("nvfp4", "compressed-tensors", 16)]
    [TestCase("mxfp4", "modelopt", 32)]
    [TestCase("fp8", "modelopt", 0)]
    public void QuantizeModelWritesALoadableCheckpoint(string format, string convention, int hadamard)
    {
        string directory = Path.Combine(Path.GetTempPath(), $"microscale-qm-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        try
        {
            var w = SeededGaussian.Create(48 * 128, seed: 3);
            var norm = SeededGaussian.Create(128, seed: 4);
            var model = new IO.SafeTensorsWriter();
            model.Add<BFloat16>("model.layers.0.mlp.down_proj.weight", w.Select(v => (BFloat16)v).ToArray(), 48, 128);
            model.Add<float>("model.layers.0.input_layernorm.weight", norm, 128);
            model.Save(Path.Combine(directory, "model.safetensors"));
            string output = Path.Combine(directory, "quantized.safetensors");
            var (exitCode, error) = Run("quantize-model", "--input", directory, "--output", output, "--format", format, "--convention", convention,
                                        "--hadamard", hadamard.ToString(CultureInfo.InvariantCulture), "--backend", "Cpu");
            Assert.That(exitCode, Is.Zero, error);
            using var checkpoint = IO.SafeTensorsCheckpoint.Open(output);
            Assert.That(checkpoint.FileOf("model.layers.0.input_layernorm.weight").Read<float>("model.layers.0.input_layernorm.weight"), Is.EqualTo(norm));
            var loaded = IO.QuantizedCheckpoint.Read(checkpoint, "model.layers.0.mlp.down_proj");
            using var weight = loaded.Weight;
            Assert.That((weight.Rows, weight.Columns), Is.EqualTo((48, 128)));
            // Without a rotation the weight decodes close to the original; with one, close to the rotated original.
            var expected = w.Select(v => ((BFloat16)v).ToSingle()).ToArray();
            if (hadamard > 0)
            {
                var rotated = new float[expected.Length];
                ReferenceHadamard.Rotate(expected, 48, 128, HadamardTransform.CreateRandom(hadamard, 20261123), rotated);
                expected = rotated;
            }
            Assert.That(QuantizationMetrics.Qsnr(expected, weight.Dequantize(Backend.Reference)), Is.GreaterThan(format == "fp8" ? 28 : 15));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>--method gptq / mr-gptq with a calibration file: the written weight reproduces the layer's outputs on the
    /// calibration inputs better than RTN's; a missing calibration tensor is a one-line error.</summary>
    [TestCase("gptq")]
    [TestCase("mr-gptq")]
    public void QuantizeModelWithGptqUsesTheCalibrationInputs(string method)
    {
        const int n = 32, k = 128, tokens = 256;
        var w = HadamardTests.StudentT3(n * k, seed: 3);
        var z = SeededGaussian.Create(tokens * 8, seed: 4);
        var basis = SeededGaussian.Create(8 * k, seed: 5);
        var x = new float[tokens * k];  // correlated inputs: a rank-8 signal plus a little noise
        for (int t = 0; t < tokens; t++)
            for (int c = 0; c < k; c++)
            {
                float s = 0.05f * MathF.Sin(t * 7 + c);
                for (int r = 0; r < 8; r++)
                    s += z[t * 8 + r] * basis[r * k + c];
                x[t * k + c] = s;
            }
        string layer = "model.layers.0.mlp.down_proj";
        var model = new IO.SafeTensorsWriter();
        model.Add<float>(layer + ".weight", w, n, k);
        model.Save(Path.Combine(_dir, "model.safetensors"));
        var calibration = new IO.SafeTensorsWriter();
        calibration.Add<float>(layer + ".input", x, tokens, k);
        string calibrationPath = Path.Combine(_dir, "calibration.safetensors");
        calibration.Save(calibrationPath);

        double OutputError(string m)
        {
            string output = Path.Combine(_dir, m + ".safetensors");
            var args = new List<string> { "quantize-model", "--input", Path.Combine(_dir, "model.safetensors"), "--output", output, "--format", "mxfp4",
                                          "--backend", "Cpu", "--method", m, "--hadamard", m == "mr-gptq" ? "32" : "0" };
            if (m != "rtn")
                args.AddRange(["--calibration", calibrationPath]);
            var (exitCode, error) = Run(args.ToArray());
            Assert.That(exitCode, Is.Zero, error);
            using var checkpoint = IO.SafeTensorsCheckpoint.Open(output);
            using var weight = IO.QuantizedCheckpoint.Read(checkpoint, layer).Weight;
            float[] q = weight.Dequantize(Backend.Reference), xr = x;
            if (m == "mr-gptq")
            {
                xr = new float[x.Length];
                ReferenceHadamard.Rotate(x, tokens, k, HadamardTransform.CreateRandom(32, 20261123), xr);
            }
            double error2 = 0;
            for (int t = 0; t < tokens; t++)
                for (int r = 0; r < n; r++)
                {
                    double d = 0;
                    for (int c = 0; c < k; c++)
                        d += (double)x[t * k + c] * w[r * k + c] - (double)xr[t * k + c] * q[r * k + c];
                    error2 += d * d;
                }
            return error2;
        }

        Assert.That(OutputError(method), Is.LessThan(0.5 * OutputError("rtn")));
        var missing = new IO.SafeTensorsWriter();
        missing.Add<float>("other.input", x, tokens, k);
        missing.Save(calibrationPath);
        var (code, message) = Run("quantize-model", "--input", Path.Combine(_dir, "model.safetensors"), "--output", Path.Combine(_dir, "x.safetensors"),
                                  "--format", "mxfp4", "--backend", "Cpu", "--method", method, "--calibration", calibrationPath);
        Assert.That(code, Is.Not.Zero);
        Assert.That(message, Does.Contain(layer + ".input"));
    }

    [Test]
    public void QuantizeModelConstrainsNvfp4ScalesToRowPowersOfTwo()
    {
        var w = SeededGaussian.Create(32 * 128, seed: 6);
        var model = new IO.SafeTensorsWriter();
        model.Add<float>("layer.weight", w, 32, 128);
        string input = Path.Combine(_dir, "model.safetensors"), output = Path.Combine(_dir, "out.safetensors");
        model.Save(input);
        var (exitCode, error) = Run("quantize-model", "--input", input, "--output", output, "--format", "nvfp4", "--backend", "Cpu", "--pow2-row-scales");
        Assert.That(exitCode, Is.Zero, error);
        using (var checkpoint = IO.SafeTensorsCheckpoint.Open(output))
        using (var weight = IO.QuantizedCheckpoint.Read(checkpoint, "layer").Weight)
        {
            Assert.That(QuantizationMetrics.Qsnr(w, weight.Dequantize(Backend.Reference)), Is.GreaterThan(14));
            for (int r = 0; r < 32; r++)
            {
                var scales = weight.BlockScales.Slice(r * 8, 8).ToArray().Select(c => (double)Formats.FloatBits.FromE4M3(c)).ToArray();
                foreach (double s in scales.Where(s => s >= 1.0 / 64))
                    Assert.That(Math.Log2(scales.Max() / s) % 1, Is.EqualTo(0).Within(1e-9), $"row {r}");
            }
        }
        (exitCode, error) = Run("quantize-model", "--input", input, "--output", output, "--format", "mxfp4", "--backend", "Cpu", "--pow2-row-scales");
        Assert.That(exitCode, Is.Not.Zero);
        Assert.That(error, Does.Contain("--pow2-row-scales"));
    }

    [Test]
    public void QsnrSweepsCrestFactorsAndReportsATensor()
    {
        string json = Path.Combine(_dir, "sweep.json");
        var (exitCode, error) = Run("qsnr", "--blocks", "64", "--json-file", json);
        Assert.That(exitCode, Is.Zero, error);
        using (var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json)))
        {
            Assert.That(doc.RootElement.GetProperty("sweep").GetArrayLength(), Is.EqualTo(31));  // κ 1.5 … 9 by 0.25
            Assert.That(doc.RootElement.GetProperty("crossovers").GetArrayLength(), Is.EqualTo(3));
        }
        var model = new IO.SafeTensorsWriter();
        model.Add<float>("w", HadamardTests.StudentT3(8 * 64, seed: 2), 8, 64);
        string file = Path.Combine(_dir, "w.safetensors");
        model.Save(file);
        string tensorJson = Path.Combine(_dir, "tensor.json");
        (exitCode, error) = Run("qsnr", "--input", file, "--tensor", "w", "--json-file", tensorJson);
        Assert.That(exitCode, Is.Zero, error);
        using (var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(tensorJson)))
        {
            Assert.That(doc.RootElement.GetArrayLength(), Is.EqualTo(Offline.QsnrStudy.Formats.Count));
            foreach (var row in doc.RootElement.EnumerateArray())
                Assert.That(row.GetProperty("plain").GetDouble(), Is.GreaterThan(5).And.LessThan(60), row.ToString());
        }
        (exitCode, error) = Run("qsnr", "--input", file);
        Assert.That(exitCode, Is.Not.Zero);
        Assert.That(error, Does.Contain("--tensor"));
    }

    [Test]
    public void MlpRunsEveryBlockAndRefusesBadSizes()
    {
        Assert.That(Run("mlp", "--hidden", "64", "--intermediate", "96", "--tokens", "1", "3", "--backend", "Cpu").ExitCode, Is.Zero);
        var (exitCode, error) = Run("mlp", "--hidden", "48", "--backend", "Cpu");
        Assert.That(exitCode, Is.Not.Zero);
        Assert.That(error, Does.Contain("multiples of 32"));
    }

    [TestCase("F32")]
    [TestCase("F16")]
    [TestCase("BF16")]
    public void QuantizeNvfp4SwizzledMatchesGolden(string dtype)
    {
        string golden = Golden.PathOf("quant_gauss_130x128.safetensors");
        using var g = SafeTensorsFile.Open(golden);
        float[] x = g.Read<float>("x");
        string input = golden;
        if (dtype != "F32")
        {
            // Narrow the input, and quantize the widened values with the library for the expected bytes.
            var w = new SafeTensorsWriter();
            if (dtype == "F16") { var h = x.Select(v => (Half)v).ToArray(); w.Add<Half>("w", h, 130, 128); x = h.Select(v => (float)v).ToArray(); }
            else { var b = x.Select(v => (BFloat16)v).ToArray(); w.Add<BFloat16>("w", b, 130, 128); x = b.Select(v => v.ToSingle()).ToArray(); }
            input = Path.Combine(_dir, "in.safetensors");
            w.Save(input);
        }
        string output = Path.Combine(_dir, "out.safetensors");
        var (rc, err) = Run("quantize", "--input", input, "--tensor", dtype == "F32" ? "x" : "w", "--format", "nvfp4", "--layout", "swizzled", "--backend", "Cpu", "--output", output);
        Assert.That(rc, Is.EqualTo(0), err);

        using var o = SafeTensorsFile.Open(output);
        using var expected = Quantizer.Quantize(x, 130, 128, new QuantizationOptions(QuantFormat.Nvfp4) { Layout = ScaleLayout.Swizzled128x4 }, Backend.Reference);
        if (dtype == "F32")
        {
            Exact.AssertBytes(g.GetBytes("nvfp4_q"), o.GetBytes("q"), "q");
            Exact.AssertBytes(g.GetBytes("nvfp4_s_swz"), o.GetBytes("scale"), "scale");
            Exact.AssertFloats(g.Read<float>("nvfp4_g"), o.Read<float>("global_scale"), "global_scale");
        }
        Exact.AssertBytes(expected.Data, o.GetBytes("q"), "q vs library");
        Assert.That(o.Metadata["format"], Is.EqualTo("nvfp4"));
        Assert.That(o.Metadata["layout"], Is.EqualTo("swizzled"));
        Assert.That(o.Metadata["logical_k"], Is.EqualTo("128"));
        Assert.That(o.GetInfo("q").Shape, Is.EqualTo(new long[] { 130, 64 }));

        using var back = QuantizedSafeTensors.Read(o);
        Exact.AssertFloats(expected.Dequantize(Backend.Reference), back.Dequantize(Backend.Reference), "round trip");
    }

    [TestCase("mxfp4", "ceil", "mxfp4_ceil_q", "mxfp4_ceil_s")]
    [TestCase("mxfp8", "floor", "mxfp8_floor_q", "mxfp8_floor_s")]
    public void QuantizeMxLinearMatchesGolden(string format, string rule, string qName, string sName)
    {
        string golden = Golden.PathOf("quant_special_4x1000.safetensors");
        string output = Path.Combine(_dir, "out.safetensors");
        var (rc, err) = Run("quantize", "--input", golden, "--tensor", "x", "--format", format, "--rule", rule, "--output", output);
        Assert.That(rc, Is.EqualTo(0), err);
        using var g = SafeTensorsFile.Open(golden);
        using var o = SafeTensorsFile.Open(output);
        Exact.AssertBytes(g.GetBytes(qName), o.GetBytes("q"), "q");
        Exact.AssertBytes(g.GetBytes(sName), o.GetBytes("scale"), "scale");
        Assert.That(o.GetInfo("scale").Shape, Is.EqualTo(new long[] { 4, 32 }));
        Assert.That(o.Metadata["logical_k"], Is.EqualTo("1000"));
    }

    [Test]
    public void QuantizeFp8RowWritesPerRowScales()
    {
        string golden = Golden.PathOf("quant_laplace_3x80.safetensors");
        string output = Path.Combine(_dir, "out.safetensors");
        Assert.That(Run("quantize", "--input", golden, "--tensor", "x", "--format", "fp8-row", "--output", output).ExitCode, Is.EqualTo(0));
        using var g = SafeTensorsFile.Open(golden);
        using var o = SafeTensorsFile.Open(output);
        Exact.AssertBytes(g.GetBytes("fp8_row_q"), o.GetBytes("q"), "q");
        Exact.AssertFloats(g.Read<float>("fp8_row_g"), o.Read<float>("scale"), "scale");
        Assert.That(o.Contains("global_scale"), Is.False);
    }

    [Test]
    public void BadInputsGiveOneLineErrorAndExitCodeOne()
    {
        string golden = Golden.PathOf("codecs.safetensors");
        string output = Path.Combine(_dir, "out.safetensors");
        string[][] cases =
        {
            new[] { "quantize", "--input", Path.Combine(_dir, "missing.safetensors"), "--tensor", "x", "--format", "nvfp4", "--output", output },
            new[] { "quantize", "--input", golden, "--tensor", "no_such_tensor", "--format", "nvfp4", "--output", output },
            new[] { "quantize", "--input", golden, "--tensor", "input_f32", "--format", "nvfp4", "--output", output },   // rank 1
            new[] { "quantize", "--input", golden, "--tensor", "e2m1_sat", "--format", "nvfp4", "--output", output },    // U8 rank 1
            new[] { "quantize", "--input", Golden.PathOf("quant_special_3x80.safetensors"), "--tensor", "x", "--format", "nvfp4",
                    "--nonfinite", "throw", "--output", output },
            new[] { "quantize", "--input", Golden.PathOf("quant_gauss_3x80.safetensors"), "--tensor", "mxfp4_floor_q", "--format", "nvfp4", "--output", output }, // U8 rank 2
        };
        foreach (var args in cases)
        {
            var (rc, err) = Run(args);
            Assert.That(rc, Is.EqualTo(1), string.Join(' ', args));
            Assert.That(err, Does.StartWith("error: "), string.Join(' ', args));
            Assert.That(err.TrimEnd().Split('\n'), Has.Length.EqualTo(1), err);
        }
        Assert.That(File.Exists(output), Is.False, "nothing written on failure");
        var malformed = Path.Combine(_dir, "bad.safetensors");
        File.WriteAllBytes(malformed, new byte[] { 1, 2, 3 });
        Assert.That(Run("quantize", "--input", malformed, "--tensor", "x", "--format", "mxfp4", "--output", output).ExitCode, Is.EqualTo(1));
        Assert.That(Run("quantize", "--input", golden, "--tensor", "x", "--format", "int3", "--output", output).ExitCode, Is.Not.EqualTo(0));
    }

    [Test]
    public void InfoListsEveryBackend() => Assert.That(Run("info").ExitCode, Is.EqualTo(0));
}
