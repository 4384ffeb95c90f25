using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;

namespace Microscale.Cli.Commands;

/// <summary>
/// The three ways every command reports, chosen by the global options: for people (Spectre tables, progress bars), <c>--quiet</c>
/// (nothing on stdout; errors on stderr, the exit code says how it went) and <c>--json</c> (one JSON document on stdout: the
/// command's results as added with <see cref="Add"/> / <see cref="Set"/>, <c>exit_code</c>, and <c>error</c> on failure).
/// Commands write their human output with AnsiConsole / Console as usual; in the other modes that output goes nowhere.
/// </summary>
internal sealed class CliOutput
{
    public static readonly Option<bool> Quiet = new("--quiet") { Description = "Print nothing but errors; the exit code says how it went", Recursive = true };
    public static readonly Option<bool> Json = new("--json") { Description = "Print the results as one JSON document instead of tables", Recursive = true };

    private static readonly JsonSerializerOptions s_json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, // NaN and Infinity stay numbers
        Converters = { new JsonStringEnumConverter() },
    };

    private readonly Dictionary<string, object?> _document = new();

    /// <summary>True when people read the output: worth drawing tables and progress.</summary>
    public bool IsHuman { get; private init; }

    /// <summary>A result field of the JSON document.</summary>
    public void Set(string key, object? value) => _document[key] = value;

    /// <summary>Appends an item (a record or anonymous object) to the JSON document's list <paramref name="key"/>.</summary>
    public void Add(string key, object item)
    {
        if (!_document.TryGetValue(key, out var list) || list is not List<object> items)
            _document[key] = items = [];
        items.Add(item);
    }

    /// <summary>Runs a command's action in the mode the parse result asks for; returns the exit code.</summary>
    public static int Run(ParseResult parse, Func<CliOutput, int> action)
    {
        bool json = parse.GetValue(Json), quiet = parse.GetValue(Quiet) && !json;
        var output = new CliOutput { IsHuman = !json && !quiet };
        var stdout = Console.Out;
        var console = AnsiConsole.Console;
        if (!output.IsHuman)
        {
            Console.SetOut(TextWriter.Null);
            AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null) });
        }
        int exitCode;
        try
        {
            exitCode = action(output);
        }
        catch (Exception ex) when (CliErrors.IsExpected(ex))
        {
            Console.Error.WriteLine($"error: {CliErrors.Message(ex)}");
            output.Set("error", CliErrors.Message(ex));
            exitCode = 1;
        }
        finally
        {
            Console.SetOut(stdout);
            AnsiConsole.Console = console;
        }
        if (json)
        {
            output.Set("exit_code", exitCode);
            stdout.WriteLine(JsonSerializer.Serialize(output._document, s_json));
        }
        return exitCode;
    }
}
