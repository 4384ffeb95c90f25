using BenchmarkDotNet.Running;

if (args.Length > 0 && args[0] == "gpu-sweep")
    return Microscale.Bench.GpuSweep.Run(args[1..]);
if (args.Length > 0 && args[0] == "plot")
    return Microscale.Bench.Plots.Run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(Microscale.Bench.QuantizeBench).Assembly).Run(args, new Microscale.Bench.BenchConfig());
return 0;
