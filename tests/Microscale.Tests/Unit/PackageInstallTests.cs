using System.Diagnostics;

namespace Microscale.Tests.Unit;

/// <summary>
/// The NuGet packages as a user gets them: Microscale.Interop and Microscale packed (a unique prerelease version, so no
/// cached copy stands in) into a local feed, a fresh console app outside the repository references Microscale from it,
/// restores through the machine's NuGet sources, and quantizes and multiplies on ILGPU CPU.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class PackageInstallTests
{
    [Test]
    public void ThePackageInstallsIntoAConsoleAppAndRunsAQuantizedGemm()
    {
        string root = RepositoryRoot();
        string work = Directory.CreateTempSubdirectory("microscale-package-").FullName;
        try
        {
            string feed = Path.Combine(work, "feed"), app = Path.Combine(work, "app");
            Directory.CreateDirectory(app);
            string version = $"0.1.0-test.{DateTime.UtcNow:yyyyMMddHHmmssfff}";
            foreach (string project in new[] { "src/Interop", "src/Gemm" })
                Run(root, "dotnet", "pack", Path.Combine(root, project), "-c", "Release", "-o", feed, $"-p:Version={version}");

            File.WriteAllText(Path.Combine(app, "App.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <ImplicitUsings>enable</ImplicitUsings>
                    <Nullable>enable</Nullable>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="Microscale" Version="{version}" />
                  </ItemGroup>
                </Project>
                """);
            // The local feed beside the machine's own sources (ILGPU and the rest come from those).
            File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
                <configuration>
                  <packageSources>
                    <add key="microscale-local" value="{feed}" />
                  </packageSources>
                </configuration>
                """);
            File.WriteAllText(Path.Combine(app, "Program.cs"), """
                using Microscale;
                var a = new float[4 * 64];
                var b = new float[8 * 64];
                for (int i = 0; i < a.Length; i++) a[i] = (i % 7) - 3;
                for (int i = 0; i < b.Length; i++) b[i] = (i % 5) - 2;
                using var context = MicroscaleContext.Create(Backend.Cpu);
                using var ta = context.CreateTensor<float>(a, 4, 64);
                using var tb = context.CreateTensor<float>(b, 8, 64);
                using var qa = context.Quantize(ta, new QuantizationOptions(QuantFormat.Mxfp8));
                using var qb = context.Quantize(tb, new QuantizationOptions(QuantFormat.Mxfp8));
                using var c = context.Gemm(qa, qb);
                float[] values = c.ToArray();
                double expected = 0;
                for (int k = 0; k < 64; k++) expected += a[k] * b[k];
                Console.WriteLine($"gemm {values[0]} expected {expected} on {context.Backend}");
                """);
            string output = Run(app, "dotnet", "run", "-c", "Release");
            // Small integers are exact in MXFP8, so C[0, 0] is the exact dot product.
            var line = output.Split('\n').Single(l => l.StartsWith("gemm ", StringComparison.Ordinal));
            var parts = line.Split(' ');
            Assert.That(parts[1], Is.EqualTo(parts[3]), line);
            Assert.That(line, Does.EndWith("on Cpu").Or.EndWith("on Cpu\r"));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Microscale.slnx")))
                return dir.FullName;
        throw new InvalidOperationException("Microscale.slnx not found above the test directory.");
    }

    /// <summary>Runs a command to completion (5 minutes at most) and returns its output; a failure fails the test with it.</summary>
    private static string Run(string directory, string file, params string[] arguments)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        // The test host runs under `dotnet test`: its MSBuild variables would steer the nested builds.
        foreach (string key in start.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(key);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{file} {string.Join(' ', arguments)} timed out");
        }
        string output = stdout.Result + stderr.Result;
        Assert.That(process.ExitCode, Is.Zero, $"{file} {string.Join(' ', arguments)}:\n{output}");
        return output;
    }
}
