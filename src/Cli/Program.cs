using System.CommandLine;
using Microscale.Cli.Commands;

var root = new RootCommand("microscale: FP4/FP8 quantization and GEMM for .NET")
{
    QuantizeCommand.Create(),
    InfoCommand.Create(),
    DemoCommand.Create(),
};
return root.Parse(args).Invoke();
