using Microscale.Cli;

namespace Microscale.Tests;

/// <summary>Runs the <c>microscale</c> command tree in-process and captures standard error (tests using it are NonParallelizable).</summary>
internal static class CliRunner
{
    public static (int ExitCode, string Error) Run(params string[] args)
    {
        var error = new StringWriter();
        var saved = Console.Error;
        Console.SetError(error);
        try
        {
            return (CliApp.Build().Parse(args).Invoke(), error.ToString());
        }
        finally
        {
            Console.SetError(saved);
        }
    }

    /// <summary>Runs the command with stdout captured too (the --quiet and --json modes write there, not through Spectre).</summary>
    public static (int ExitCode, string Output, string Error) RunCapturing(params string[] args)
    {
        var output = new StringWriter();
        var saved = Console.Out;
        Console.SetOut(output);
        try
        {
            var (exitCode, error) = Run(args);
            return (exitCode, output.ToString(), error);
        }
        finally
        {
            Console.SetOut(saved);
        }
    }
}
