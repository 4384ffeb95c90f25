namespace Microscale.Cli.Commands;

/// <summary>Expected failures (bad input, bad files): one line on stderr and exit code 1, in every output mode.</summary>
internal static class CliErrors
{
    public static bool IsExpected(Exception ex) =>
        ex is ArgumentException or IOException or UnauthorizedAccessException or NotSupportedException or InvalidOperationException
           or KeyNotFoundException or IO.SafeTensorsFormatException;

    public static string Message(Exception ex) => ex.Message.ReplaceLineEndings(" ");
}
