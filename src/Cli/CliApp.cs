using System.CommandLine;
using Microscale.Cli.Commands;

namespace Microscale.Cli;

/// <summary>The <c>microscale</c> command tree (built here so tests can run it in-process).</summary>
internal static class CliApp
{
    public static RootCommand Build() => new("microscale: FP4/FP8 quantization and GEMM for .NET")
    {
        CliOutput.Quiet,
        CliOutput.Json,
        QuantizeCommand.Create(),
        InfoCommand.Create(),
        DemoCommand.Create(),
        MlpCommand.Create(),
        QuantizeModelCommand.Create(),
        GemmCommand.Create(),
        VerifyCommand.Create(),
        QsnrCommand.Create(),
    };
}
