using Microscale.Cli.Verify;
using Microscale.IO;

namespace Microscale.Tests.Unit;

/// <summary><c>microscale gemm</c> and <c>microscale verify</c> on the CPU backends, bad inputs included.</summary>
[TestFixture]
[NonParallelizable] // redirects Console.Error
public sealed class CliGemmVerifyTests
{
    private string _dir = null!;
    private string _input = null!;

    [SetUp]
    public void CreateInput()
    {
        _dir = Directory.CreateTempSubdirectory("microscale-gemm-").FullName;
        var w = new SafeTensorsWriter();
        w.Add<float>("a", SeededGaussian.Create(5 * 96, 1), 5, 96);
        w.Add<BFloat16>("b", SeededGaussian.Create(40 * 96, 2).Select(v => (BFloat16)v).ToArray(), 40, 96);
        w.Add<float>("b_short", new float[40 * 64], 40, 64);
        w.Add<float>("rank1", new float[96], 96);
        w.Add<int>("ints", new int[96], 1, 96);
        _input = Path.Combine(_dir, "in.safetensors");
        w.Save(_input);
    }

    [TearDown]
    public void Delete() => Directory.Delete(_dir, recursive: true);

    private static (int ExitCode, string Error) Run(params string[] args) => CliRunner.Run(args);

    [TestCase("mxfp4", "f32", 0)]
    [TestCase("nvfp4", "bf16", 16)]
    [TestCase("w4a8", "f16", 32)]
    [TestCase("w4a16", "f32", 0)]
    [TestCase("fp8-tensor", "f32", 0)]
    public void GemmMatchesTheLibraryAndNamesWhatRan(string pair, string dtype, int hadamard)
    {
        string output = Path.Combine(_dir, "c.safetensors");
        var (rc, err) = Run("gemm", "--input", _input, "--a", "a", "--b", "b", "--pair", pair, "--out-dtype", dtype, "--hadamard", hadamard.ToString(),
                            "--backend", "cpu", "--output", output);
        Assert.That(rc, Is.EqualTo(0), err);
        using var f = SafeTensorsFile.Open(output);
        Assert.That(f.GetInfo("c").Shape, Is.EqualTo(new long[] { 5, 40 }));
        Assert.That(f.Metadata["backend"], Is.EqualTo("Cpu"));
        Assert.That(f.Metadata["kernel"], Is.EqualTo("ilgpu_cpu_dequant_blocked_4x4"));
        Assert.That(f.Metadata["pair"], Is.EqualTo(pair));
        float[] c = f.ReadAsSingle("c");

        // The same computation through the library on the reference backend: within the bound plus the output's rounding.
        using var input = SafeTensorsFile.Open(_input);
        using var context = MicroscaleContext.Create(Backend.Reference);
        using var a = context.CreateTensor<float>(input.ReadAsSingle("a"), 5, 96);
        using var b = context.CreateTensor<float>(input.ReadAsSingle("b"), 40, 96);
        var rotation = hadamard == 0 ? null : HadamardTransform.Create(hadamard);
        var (ao, bo) = Cli.Commands.PairPresets.For(pair);
        using var qb = rotation is null ? context.Quantize(b, bo) : context.QuantizeRotated(b, rotation, bo);
        float[] expected;
        if (ao is null)
            expected = context.Gemm(a, qb).ToArray();
        else
        {
            using var qa = rotation is null ? context.Quantize(a, ao) : context.QuantizeRotated(a, rotation, ao);
            expected = context.Gemm(qa, qb).ToArray();
        }
        double tolerance = dtype == "f32" ? 1e-4 : dtype == "bf16" ? 1e-2 : 2e-3;
        for (int i = 0; i < c.Length; i++)
            Assert.That(c[i], Is.EqualTo(expected[i]).Within(tolerance * Math.Max(1, Math.Abs(expected[i]))), $"element {i}");
    }

    [Test]
    public void GemmAcceptsOperandsQuantizedByTheQuantizeCommand()
    {
        string qa = Path.Combine(_dir, "qa.safetensors"), qb = Path.Combine(_dir, "qb.safetensors"), output = Path.Combine(_dir, "c.safetensors");
        Assert.That(Run("quantize", "--input", _input, "--tensor", "a", "--format", "nvfp4", "--output", qa).ExitCode, Is.EqualTo(0));
        Assert.That(Run("quantize", "--input", _input, "--tensor", "b", "--format", "nvfp4", "--layout", "swizzled", "--output", qb).ExitCode, Is.EqualTo(0));
        var (rc, err) = Run("gemm", "--a-quantized", qa, "--b-quantized", qb, "--pair", "nvfp4", "--backend", "cpu", "--output", output);
        Assert.That(rc, Is.EqualTo(0), err);
        string direct = Path.Combine(_dir, "direct.safetensors");
        Assert.That(Run("gemm", "--input", _input, "--a", "a", "--b", "b", "--pair", "nvfp4", "--backend", "cpu", "--output", direct).ExitCode, Is.EqualTo(0));
        using var f1 = SafeTensorsFile.Open(output);
        using var f2 = SafeTensorsFile.Open(direct);
        Exact.AssertFloats(f2.Read<float>("c"), f1.Read<float>("c"), "pre-quantized and quantized here agree bit for bit");
    }

    [Test]
    public void GemmBadInputsGiveOneLineErrors()
    {
        string output = Path.Combine(_dir, "c.safetensors");
        string[][] cases =
        {
            new[] { "gemm", "--input", _input, "--a", "missing", "--b", "b", "--pair", "mxfp4", "--output", output },
            new[] { "gemm", "--input", _input, "--a", "rank1", "--b", "b", "--pair", "mxfp4", "--output", output },
            new[] { "gemm", "--input", _input, "--a", "ints", "--b", "b", "--pair", "mxfp4", "--output", output },
            new[] { "gemm", "--input", _input, "--a", "a", "--b", "b_short", "--pair", "mxfp4", "--output", output },
            new[] { "gemm", "--input", _input, "--a", "a", "--b", "b", "--pair", "mxfp4", "--hadamard", "24", "--output", output },
            new[] { "gemm", "--input", _input, "--b", "b", "--pair", "mxfp4", "--output", output },
            new[] { "gemm", "--a", "a", "--b", "b", "--pair", "mxfp4", "--output", output },
            new[] { "gemm", "--input", Path.Combine(_dir, "nope.safetensors"), "--a", "a", "--b", "b", "--pair", "mxfp4", "--output", output },
            new[] { "gemm", "--input", _input, "--a", "a", "--b", "b", "--pair", "mxfp4", "--backend", "tpu", "--output", output },
        };
        foreach (var args in cases)
        {
            var (rc, err) = Run(args);
            Assert.That(rc, Is.EqualTo(1), string.Join(' ', args));
            Assert.That(err, Does.StartWith("error: "), string.Join(' ', args));
            Assert.That(err.TrimEnd().Split('\n'), Has.Length.EqualTo(1), err);
        }
        Assert.That(Run("gemm", "--input", _input, "--a", "a", "--b", "b", "--pair", "int2", "--output", output).ExitCode, Is.Not.EqualTo(0));
        Assert.That(File.Exists(output), Is.False);
    }

    [Test]
    public void VerifyQuickPassesOnTheCpuBackendAndCoversEveryGroup()
    {
        string json = Path.Combine(_dir, "verify.json");
        var (rc, err) = Run("verify", "--backend", "cpu", "--json-file", json);
        Assert.That(rc, Is.EqualTo(0), err);
        string text = File.ReadAllText(json);
        foreach (string group in new[] { "\"quantize\"", "\"hadamard\"", "\"gemm\"", "\"golden\"" })
            Assert.That(text, Does.Contain(group));
        Assert.That(text, Does.Contain("w4a16").And.Contain("swizzled").And.Contain("quant_special_130x128"));
        Assert.That(text, Does.Not.Contain("\"Passed\": false"));
    }

    [Test]
    public void VerifyWithoutGoldenVectorsSaysSoAndStillChecksEveryOperation()
    {
        var streamed = new List<VerifyResult>();
        var results = Verifier.Run(Backend.Reference, full: false, goldenDirectory: null, streamed.Add);
        Assert.That(streamed, Is.EqualTo(results));
        Assert.That(results, Is.All.Matches<VerifyResult>(r => r.Passed));
        Assert.That(results.Single(r => r.Group == "golden").Measure, Is.EqualTo("skipped"));
        Assert.That(results.Count(r => r.Group == "gemm" && !r.Case.EndsWith(" prepacked", StringComparison.Ordinal)), Is.EqualTo(3 * 11),
                    "3 shapes x 11 pair variants");
        // The variants with FP4 weights in the linear layout (the layouts alternate) run again on prepacked weights.
        Assert.That(results.Count(r => r.Group == "gemm" && r.Case.EndsWith(" prepacked", StringComparison.Ordinal)), Is.EqualTo(9));
    }

    [Test]
    public void VerifyRejectsContradictoryFlagsAndUnavailableBackends()
    {
        Assert.That(Run("verify", "--quick", "--full").ExitCode, Is.EqualTo(1));
        if (!Backends.IlgpuDevice.IsCudaAvailable)
        {
            var (rc, err) = Run("verify", "--backend", "cuda");
            Assert.That(rc, Is.EqualTo(1));
            Assert.That(err, Does.StartWith("error: ").And.Contain("Cuda"));
        }
    }
}
