using System.CommandLine;
using Spectre.Console;

namespace Microscale.Cli.Commands;

/// <summary><c>microscale info</c>: which backends and devices this machine has, and what Auto picks.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var command = new Command("info", "List the backends and devices found, and what Backend.Auto picks");
        command.SetAction(r => CliOutput.Run(r, output =>
        {
            var table = new Table().AddColumns("Backend", "Available", "Device", "Detail");
            foreach (var b in MicroscaleRuntime.DescribeBackends())
            {
                table.AddRow(b.Backend.ToString(), b.IsAvailable ? "yes" : "no", Markup.Escape(b.Device), Markup.Escape(b.Detail));
                output.Add("backends", new { b.Backend, Available = b.IsAvailable, b.Device, b.Detail });
            }
            AnsiConsole.Write(table);
            var (picked, reason) = MicroscaleRuntime.Resolve(Backend.Auto);
            AnsiConsole.MarkupLine($"Auto -> [bold]{picked}[/] ({Markup.Escape(reason)})");
            output.Set("auto", new { Backend = picked, Reason = reason });
            return 0;
        }));
        return command;
    }
}
