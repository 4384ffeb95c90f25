using System.CommandLine;
using Microscale.IO;

namespace Microscale.Cli.Commands;

/// <summary><c>microscale gemm</c>: C = A·Bᵀ for A [M,K] and B [N,K] from safetensors, quantized with a pair's formats (or already quantized).</summary>
internal static class GemmCommand
{
    public static Command Create()
    {
        var input = new Option<FileInfo?>("--input") { Description = "safetensors file holding A and B (F32/F16/BF16, rank 2)" };
        var a = new Option<string?>("--a") { Description = "Name of A [M,K] (activations) in --input" };
        var b = new Option<string?>("--b") { Description = "Name of B [N,K] (weights) in --input" };
        var aFile = new Option<FileInfo?>("--a-quantized") { Description = "A already quantized: a file written by 'microscale quantize'" };
        var bFile = new Option<FileInfo?>("--b-quantized") { Description = "B already quantized: a file written by 'microscale quantize'" };
        var pair = new Option<string>("--pair") { Description = string.Join(" | ", PairPresets.Names), Required = true };
        pair.AcceptOnlyFromAmong(PairPresets.Names);
        var hadamard = new Option<int>("--hadamard") { Description = "Rotate both operands along K with a block Hadamard of this size (16..256) first" };
        var backend = new Option<string>("--backend") { Description = "auto | native | cuda | cpu | reference", DefaultValueFactory = _ => "auto" };
        var outDtype = new Option<string>("--out-dtype") { Description = "f32 | bf16 | f16", DefaultValueFactory = _ => "f32" };
        outDtype.AcceptOnlyFromAmong("f32", "bf16", "f16");
        var output = new Option<FileInfo>("--output") { Description = "Output .safetensors (tensor 'c' [M,N])", Required = true };
        var command = new Command("gemm", "Quantize A and B with a pair's formats and multiply: C = A·Bᵀ")
        {
            input, a, b, aFile, bFile, pair, hadamard, backend, outDtype, output,
        };
        command.SetAction(r => CliOutput.Run(r, report =>
        {
            var result = Run(r.GetValue(input), r.GetValue(a), r.GetValue(b), r.GetValue(aFile), r.GetValue(bFile), r.GetValue(pair)!,
                             r.GetValue(hadamard), PairPresets.ParseBackend(r.GetValue(backend)!), r.GetValue(outDtype)!, r.GetValue(output)!);
            Console.WriteLine(result.Summary);
            report.Set("gemm", result);
            return 0;
        }));
        return command;
    }

    private static (float[] Values, int Rows, int Columns) ReadDense(SafeTensorsFile file, string name, string option)
    {
        if (!file.Contains(name))
            throw new ArgumentException($"{option}: tensor '{name}' is not in the input file.", option);
        var info = file.GetInfo(name);
        if (info.Shape.Count != 2)
            throw new ArgumentException($"{option}: tensor '{name}' has rank {info.Shape.Count}; expected rank 2.", option);
        if (info.DType is not (SafeTensorsDType.F32 or SafeTensorsDType.F16 or SafeTensorsDType.BF16))
            throw new ArgumentException($"{option}: tensor '{name}' is {info.DType}; expected F32, F16 or BF16.", option);
        return (file.ReadAsSingle(name), checked((int)info.Shape[0]), checked((int)info.Shape[1]));
    }

    private static QuantizedTensor ReadQuantized(FileInfo file, string option)
    {
        if (!file.Exists)
            throw new FileNotFoundException($"{option}: '{file.FullName}' does not exist.");
        using var f = SafeTensorsFile.Open(file.FullName);
        return QuantizedSafeTensors.Read(f);
    }

    /// <summary>What <c>gemm</c> computed and wrote.</summary>
    internal sealed record Product(int M, int N, int K, string Pair, int Hadamard, string OutDtype, Backend Backend, string Device, string Kernel,
                                   string Output)
    {
        public string Summary => $"c [{M}, {N}] {OutDtype} = {Pair}{(Hadamard == 0 ? "" : $" (Hadamard g={Hadamard})")} on {Backend} " +
                                 $"({Device}), kernel {Kernel} -> {Output}";
    }

    internal static Product Run(FileInfo? input, string? aName, string? bName, FileInfo? aQuantized, FileInfo? bQuantized, string pairName,
                               int hadamard, Backend backend, string outDtype, FileInfo output)
    {
        var (aOptions, bOptions) = PairPresets.For(pairName);
        if (aOptions is null ? aName is null : (aName is null) == (aQuantized is null))
            throw new ArgumentException(aOptions is null ? "w4a16 takes dense activations: give --a NAME with --input."
                                                         : "Give A either as --a NAME (with --input) or as --a-quantized FILE.", "--a");
        if ((bName is null) == (bQuantized is null))
            throw new ArgumentException("Give B either as --b NAME (with --input) or as --b-quantized FILE.", "--b");
        if ((aName is not null || bName is not null) && input is null)
            throw new ArgumentException("--a / --b name tensors of --input, which is missing.", "--input");
        if (hadamard != 0 && (aQuantized is not null || bQuantized is not null))
            throw new ArgumentException("--hadamard applies only to operands quantized here, not to --a-quantized / --b-quantized.", "--hadamard");
        var rotation = hadamard == 0 ? null : HadamardTransform.Create(hadamard);
        if (input is { Exists: false })
            throw new FileNotFoundException($"Input file '{input.FullName}' does not exist.");

        using var file = input is null ? null : SafeTensorsFile.Open(input.FullName);
        using var context = MicroscaleContext.Create(backend);
        var owned = new Stack<IDisposable>();
        try
        {
            T Own<T>(T x) where T : IDisposable { owned.Push(x); return x; }

            DeviceTensor<float> Dense(string name, string option)
            {
                var (values, rows, columns) = ReadDense(file!, name, option);
                return Own(context.CreateTensor<float>(values, rows, columns)); // the library checks K against the Hadamard block
            }

            QuantizedTensor Quantized(string? name, FileInfo? quantized, QuantizationOptions options, string option)
            {
                if (quantized is null)
                {
                    var dense = Dense(name!, option);
                    return Own(rotation is null ? context.Quantize(dense, options) : context.QuantizeRotated(dense, rotation, options));
                }
                var host = Own(ReadQuantized(quantized, option + "-quantized"));
                if (host.Format != options.Format)
                    throw new ArgumentException($"{option}-quantized holds {host.Format}; pair {pairName} needs {options.Format}.", option + "-quantized");
                return Own(context.Upload(host));
            }

            var qb = Quantized(bName, bQuantized, bOptions, "--b");
            QuantizedTensor? qa = null;
            DeviceTensor<float>? denseA = null;
            if (aOptions is null)
            {
                denseA = Dense(aName!, "--a");
                if (rotation is not null)
                    denseA = Own(context.HadamardRotate(denseA, rotation));
            }
            else
            {
                qa = Quantized(aName, aQuantized, aOptions, "--a");
            }
            int m = qa?.Rows ?? denseA!.Rows, k = qa?.Columns ?? denseA!.Columns, n = qb.Rows;
            if (k != qb.Columns)
                throw new ArgumentException($"K differs: A is [{m}, {k}], B is [{n}, {qb.Columns}].", "--b");

            var writer = new SafeTensorsWriter();
            switch (outDtype)
            {
                case "bf16": AddResult<BFloat16>(context, qa, denseA, qb, writer); break;
                case "f16": AddResult<Half>(context, qa, denseA, qb, writer); break;
                default: AddResult<float>(context, qa, denseA, qb, writer); break;
            }
            writer.Metadata["pair"] = pairName;
            writer.Metadata["a_format"] = qa?.Options.ToString() ?? "dense";
            writer.Metadata["b_format"] = qb.Options.ToString();
            writer.Metadata["hadamard"] = hadamard.ToString(System.Globalization.CultureInfo.InvariantCulture);
            writer.Metadata["backend"] = context.Backend.ToString();
            writer.Metadata["device"] = context.DeviceName;
            writer.Metadata["kernel"] = context.LastGemmKernel;
            writer.Metadata["out_dtype"] = outDtype;
            writer.Save(output.FullName);
            return new Product(m, n, k, pairName, hadamard, outDtype, context.Backend, context.DeviceName, context.LastGemmKernel, output.FullName);
        }
        finally
        {
            while (owned.Count > 0)
                owned.Pop().Dispose();
        }
    }

    private static void AddResult<TOut>(MicroscaleContext context, QuantizedTensor? qa, DeviceTensor<float>? denseA, QuantizedTensor qb,
                                        SafeTensorsWriter writer) where TOut : unmanaged
    {
        int m = qa?.Rows ?? denseA!.Rows;
        using var c = context.AllocateTensor<TOut>(m, qb.Rows);
        if (qa is null)
            context.Gemm(denseA!, qb, c);
        else
            context.Gemm(qa, qb, c);
        writer.Add<TOut>("c", c.ToArray(), m, qb.Rows);
    }
}
