namespace Microscale.Cli.Commands;

/// <summary>Turns expected failures (bad input, bad files) into one line on stderr and exit code 1.</summary>
internal static class CliErrors
{
    public static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception ex) when (ex is ArgumentException or IOException or UnauthorizedAccessException or NotSupportedException
                                       or InvalidOperationException or KeyNotFoundException or IO.SafeTensorsFormatException)
        {
            Console.Error.WriteLine($"error: {ex.Message.ReplaceLineEndings(" ")}");
            return 1;
        }
    }
}
