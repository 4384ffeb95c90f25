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
}
