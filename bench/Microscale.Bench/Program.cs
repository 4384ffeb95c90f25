using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Microscale.Bench.QuantizeBench).Assembly).Run(args);
