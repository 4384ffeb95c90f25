using System.Text.Json;

namespace Microscale.Tests.Unit;

/// <summary>The global <c>--json</c> and <c>--quiet</c> options of every command: one JSON document with the results (or the
/// error) on stdout, or nothing at all; errors still reach stderr and the exit code.</summary>
[TestFixture]
[NonParallelizable] // redirects Console.Out and Console.Error
public sealed class CliOutputTests
{
    [Test]
    public void InfoAsJsonListsTheBackends()
    {
        var (exitCode, output, error) = CliRunner.RunCapturing("info", "--json");
        Assert.That(exitCode, Is.Zero, error);
        using var json = JsonDocument.Parse(output);
        var backends = json.RootElement.GetProperty("backends").EnumerateArray().ToList();
        Assert.That(backends.Select(b => b.GetProperty("backend").GetString()), Does.Contain("Reference"));
        Assert.That(backends.Single(b => b.GetProperty("backend").GetString() == "Reference").GetProperty("available").GetBoolean(), Is.True);
        Assert.That(json.RootElement.GetProperty("auto").GetProperty("backend").GetString(), Is.Not.Empty);
        Assert.That(json.RootElement.GetProperty("exit_code").GetInt32(), Is.Zero);
    }

    [Test]
    public void DemoAsJsonCarriesEveryFormatAndPair()
    {
        var (exitCode, output, error) = CliRunner.RunCapturing("demo", "--rows", "64", "--columns", "64", "--tokens", "4", "--backend", "Cpu", "--json");
        Assert.That(exitCode, Is.Zero, error);
        using var json = JsonDocument.Parse(output);
        var formats = json.RootElement.GetProperty("formats").EnumerateArray().ToList();
        Assert.That(formats, Has.Count.EqualTo(7));
        Assert.That(formats.Select(f => f.GetProperty("qsnr_db").GetDouble()), Is.All.GreaterThan(10));
        var layers = json.RootElement.GetProperty("linear_layer").EnumerateArray().ToList();
        Assert.That(layers, Has.Count.EqualTo(6));
        Assert.That(layers.Select(l => l.GetProperty("relative_error").GetDouble()), Is.All.InRange(0.0, 0.5));
    }

    [Test]
    public void QuietPrintsNothing()
    {
        var (exitCode, output, error) = CliRunner.RunCapturing("qsnr", "--blocks", "16", "--quiet");
        Assert.That(exitCode, Is.Zero, error);
        Assert.That(output, Is.Empty);
    }

    [Test]
    public void ErrorsReachStderrAndTheJsonDocument()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"microscale-missing-{Guid.NewGuid():N}.safetensors");
        var (exitCode, output, error) = CliRunner.RunCapturing("quantize", "--input", missing, "--tensor", "w", "--format", "mxfp4",
                                                               "--output", missing + ".out", "--json");
        Assert.That(exitCode, Is.EqualTo(1));
        Assert.That(error, Does.StartWith("error: ").And.Contain("does not exist"));
        using var json = JsonDocument.Parse(output);
        Assert.That(json.RootElement.GetProperty("error").GetString(), Does.Contain("does not exist"));
        Assert.That(json.RootElement.GetProperty("exit_code").GetInt32(), Is.EqualTo(1));

        (exitCode, output, error) = CliRunner.RunCapturing("quantize", "--input", missing, "--tensor", "w", "--format", "mxfp4",
                                                           "--output", missing + ".out", "--quiet");
        Assert.That((exitCode, output), Is.EqualTo((1, "")));
        Assert.That(error, Does.StartWith("error: "));
    }
}
