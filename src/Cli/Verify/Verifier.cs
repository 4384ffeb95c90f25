using Microscale.Cli.Commands;
using Microscale.IO;

namespace Microscale.Cli.Verify;

/// <summary>One verified case: what ran, whether it is right, and by how much.</summary>
/// <param name="Worst">Exact cases: mismatching bytes or values (0 passes). GEMM cases: max |C − C_ref| / bound (≤ 1 passes).</param>
internal sealed record VerifyResult(string Group, string Case, string Backend, string Kernel, bool Passed, double Worst, string Measure, string Detail);

/// <summary>
/// Runs every operation and GEMM pair of a backend over a fixed, seeded set of shapes and compares with the managed
/// reference: bit-exact for quantization, dequantization and the Hadamard rotation (NUMERICS.md), within
/// ε(K) (<see cref="GemmAccuracy.Epsilon"/>, per kernel) · |alpha| · Σ|a·b| + one output ulp for GEMMs against float64; plus the
/// golden vectors.
/// </summary>
internal sealed class Verifier
{
    private readonly MicroscaleContext _context;
    private readonly MicroscaleContext _reference;
    private readonly bool _full;
    private readonly Action<VerifyResult> _report;

    private Verifier(MicroscaleContext context, MicroscaleContext reference, bool full, Action<VerifyResult> report)
    {
        (_context, _reference, _full, _report) = (context, reference, full, report);
    }

    public static List<VerifyResult> Run(Backend backend, bool full, string? goldenDirectory, Action<VerifyResult>? progress = null)
    {
        var results = new List<VerifyResult>();
        using var context = MicroscaleContext.Create(backend);
        using var reference = MicroscaleContext.Create(Backend.Reference);
        var verifier = new Verifier(context, reference, full, r => { results.Add(r); progress?.Invoke(r); });
        verifier.Quantization();
        verifier.Hadamard();
        verifier.Gemm();
        verifier.Golden(goldenDirectory);
        return results;
    }

    private string QuantizeKernel => _context.LastQuantizeKernel;

    private void Exact(string group, string name, string kernel, int mismatches, string detail) =>
        _report(new VerifyResult(group, name, _context.Backend.ToString(), kernel, mismatches == 0, mismatches, "mismatches", detail));

    private (int Rows, int Columns)[] QuantShapes => _full
        ? new[] { (1, 32), (7, 100), (130, 257), (1, 4096), (257, 1000), (33, 7168), (4, 16384) }
        : new[] { (1, 32), (7, 100), (130, 257) };

    /// <summary>Every valid combination of format, rule, layout and element that a quantizer writes (not the prepacked
    /// <see cref="ScaleLayout.Tiled16x128"/>, which only <see cref="MicroscaleContext.Relayout"/> makes).</summary>
    internal static IEnumerable<QuantizationOptions> AllOptions()
    {
        foreach (var format in Enum.GetValues<QuantFormat>())
        foreach (var rule in Enum.GetValues<MxScaleRule>())
        foreach (var layout in new[] { ScaleLayout.Linear, ScaleLayout.Swizzled128x4 })
        foreach (var element in Enum.GetValues<Fp8Element>())
        {
            var o = new QuantizationOptions(format) { Rule = rule, Layout = layout, Element = element };
            bool valid = true;
            try { o.Validate(); } catch (ArgumentException) { valid = false; }
            if (valid)
                yield return o;
        }
    }

    /// <summary>Seeded Gaussian rows at magnitudes 2^−60..2^60 with NaN, ±Inf, ±0, subnormals and ties sprinkled in.</summary>
    internal static float[] Input(int rows, int columns, int seed)
    {
        var x = SeededGaussian.Create(rows * columns, seed);
        var random = new Random(seed);
        for (int r = 0; r < rows; r++)
        {
            float scale = MathF.Pow(2, random.Next(-60, 60));
            for (int c = 0; c < columns; c++)
                x[r * columns + c] *= scale;
        }
        float[] specials = { float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f, 1e-45f, 3e38f, 464f, 6f, 2.5f };
        for (int i = 0; i < Math.Min(x.Length / 40, specials.Length); i++)
            x[random.Next(x.Length)] = specials[i];
        return x;
    }

    private static int Mismatches<T>(ReadOnlySpan<T> expected, ReadOnlySpan<T> actual) where T : unmanaged
    {
        if (expected.Length != actual.Length)
            return Math.Max(expected.Length, actual.Length);
        var e = System.Runtime.InteropServices.MemoryMarshal.AsBytes(expected);
        var a = System.Runtime.InteropServices.MemoryMarshal.AsBytes(actual);
        int count = 0;
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        for (int i = 0; i < e.Length; i += size)
            if (!e.Slice(i, size).SequenceEqual(a.Slice(i, size)))
                count++;
        return count;
    }

    private static int FloatMismatches(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        int count = Math.Abs(expected.Length - actual.Length);
        for (int i = 0; i < Math.Min(expected.Length, actual.Length); i++)
            if (!(float.IsNaN(expected[i]) && float.IsNaN(actual[i])) &&
                BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                count++;
        return count;
    }

    private int Compare(QuantizedTensor expected, QuantizedTensor actual)
    {
        using var e = expected.ToHost();
        using var a = actual.ToHost();
        return Mismatches(e.Data, a.Data) + Mismatches(e.BlockScales, a.BlockScales) + FloatMismatches(e.DecodeScales, a.DecodeScales);
    }

    private void Quantization()
    {
        foreach (var options in AllOptions())
        foreach (var (rows, columns) in QuantShapes)
        {
            float[] x = Input(rows, columns, rows * 31 + columns);
            using var source = _context.CreateTensor<float>(x, rows, columns);
            using var referenceSource = _reference.CreateTensor<float>(x, rows, columns);
            using var q = _context.Quantize(source, options);
            using var expected = _reference.Quantize(referenceSource, options);
            int bad = Compare(expected, q);
            using var deq = _context.Dequantize(q);
            using var expectedDeq = _reference.Dequantize(expected);
            int badDeq = FloatMismatches(expectedDeq.ToArray(), deq.ToArray());
            Exact("quantize", $"{options} {rows}x{columns}", QuantizeKernel, bad + badDeq, $"codes+scales {bad}, dequantized {badDeq}");
        }
        // BF16 input, read directly by the kernels.
        foreach (var format in new[] { QuantFormat.Nvfp4, QuantFormat.Mxfp4, QuantFormat.Fp8PerRow })
        {
            var x = Input(9, 160, 5).Select(v => (BFloat16)v).ToArray();
            using var source = _context.CreateTensor<BFloat16>(x, 9, 160);
            using var referenceSource = _reference.CreateTensor<BFloat16>(x, 9, 160);
            var options = new QuantizationOptions(format);
            using var q = _context.Quantize(source, options);
            using var expected = _reference.Quantize(referenceSource, options);
            Exact("quantize", $"{options} bf16 input 9x160", QuantizeKernel, Compare(expected, q), "codes+scales");
        }
    }

    private void Hadamard()
    {
        int rows = _full ? 65 : 5;
        foreach (int g in new[] { 16, 32, 64, 128, 256 })
        {
            int columns = g * (_full ? 12 : 3);
            float[] x = Input(rows, columns, g);
            var h = HadamardTransform.CreateRandom(g, seed: g + 1);
            using var source = _context.CreateTensor<float>(x, rows, columns);
            using var referenceSource = _reference.CreateTensor<float>(x, rows, columns);
            using var y = _context.HadamardRotate(source, h);
            using var expected = _reference.HadamardRotate(referenceSource, h);
            Exact("hadamard", $"rotate g={g} {rows}x{columns}", QuantizeKernel, FloatMismatches(expected.ToArray(), y.ToArray()), "binary32 bits");
            foreach (var options in new[] { new QuantizationOptions(QuantFormat.Mxfp4), new QuantizationOptions(QuantFormat.Nvfp4) { Layout = ScaleLayout.Swizzled128x4 },
                                            new QuantizationOptions(QuantFormat.Fp8PerRow), new QuantizationOptions(QuantFormat.Mxfp8) { Rule = MxScaleRule.Ceil } })
            {
                using var q = _context.QuantizeRotated(source, h, options);
                using var e = _reference.QuantizeRotated(referenceSource, h, options);
                Exact("hadamard", $"rotate+quantize {options} g={g}", QuantizeKernel, Compare(e, q), "codes+scales");
            }
        }
    }

    private (int M, int N, int K)[] GemmShapes => _full
        ? new[] { (1, 64, 64), (7, 33, 100), (65, 130, 300), (1, 4096, 4096), (33, 257, 7168), (128, 512, 2048) }
        : new[] { (1, 64, 64), (7, 33, 100), (65, 130, 300) };

    private void Gemm()
    {
        int shapeIndex = 0;
        foreach (var (m, n, k) in GemmShapes)
        foreach (string pair in PairPresets.Names)
        foreach (var weights in pair is "w4a8" or "w4a16" ? new QuantFormat?[] { QuantFormat.Mxfp4, QuantFormat.Nvfp4 } : new QuantFormat?[] { null })
        {
            var layout = shapeIndex++ % 2 == 0 ? ScaleLayout.Linear : ScaleLayout.Swizzled128x4; // every scale layout
            var (aOptions, bOptions) = PairPresets.For(pair, weights, layout);
            float[] a = SeededGaussian.Create(m * k, seed: m + k);
            float[] w = SeededGaussian.Create(n * k, seed: n + 2 * k);
            float[] biasValues = SeededGaussian.Create(n, seed: 3);
            const float alpha = 0.5f;
            using var at = _context.CreateTensor<float>(a, m, k);
            using var wt = _context.CreateTensor<float>(w, n, k);
            using var bias = _context.CreateTensor<float>(biasValues, 1, n);
            using var qb = _context.Quantize(wt, bOptions);
            using var qa = aOptions is null ? null : _context.Quantize(at, aOptions);
            using var c = _context.AllocateTensor<float>(m, n);
            var options = new GemmOptions { Alpha = alpha, Bias = bias };
            if (qa is null) _context.Gemm(at, qb, c, options);
            else _context.Gemm(qa, qb, c, options);
            float[] da = qa is null ? a : _context.Dequantize(qa).ToArray();
            float[] db = _context.Dequantize(qb).ToArray();
            var (expected, abs) = GemmAccuracy.Reference(da, db, m, n, k, alpha, biasValues);
            var (worst, worstIndex) = GemmAccuracy.Check<float>(expected, abs, c.ToArray(), k, alpha, _context.LastGemmKernel);
            string where = $"worst at (m {worstIndex / n}, n {worstIndex % n})";
            string name = $"{pair}{(weights is null ? "" : "/" + weights.ToString()!.ToLowerInvariant())} {layout.ToString().ToLowerInvariant()} m={m} n={n} k={k}";
            string kernel = _context.LastGemmKernel;
            _report(new VerifyResult("gemm", name, _context.Backend.ToString(), kernel, worst <= 1.0, worst, "|err|/bound", where));
            if (bOptions.Format is QuantFormat.Mxfp4 or QuantFormat.Nvfp4 && layout == ScaleLayout.Linear)
                Prepacked(name, qa, at, qb, c.ToArray(), kernel, options, expected, abs, k, alpha);
        }
    }

    /// <summary>The same GEMM on prepacked weights (<see cref="MicroscaleContext.Prepack"/>): the linear run's bytes where the
    /// same kernel runs, else within the bound (on Blackwell tiled weights keep a GEMM on the decode kernel).</summary>
    private void Prepacked(string name, QuantizedTensor? qa, DeviceTensor<float> at, QuantizedTensor qb, float[] linear, string linearKernel,
                           GemmOptions options, double[] expected, double[] abs, int k, float alpha)
    {
        using var packed = _context.Prepack(qb);
        using var c = _context.AllocateTensor<float>(at.Rows, qb.Rows);
        if (qa is null) _context.Gemm(at, packed, c, options);
        else _context.Gemm(qa, packed, c, options);
        string kernel = _context.LastGemmKernel;
        if (kernel == linearKernel)
        {
            Exact("gemm", name + " prepacked", kernel, FloatMismatches(linear, c.ToArray()), "binary32 bits against the linear weights");
            return;
        }
        var (worst, _) = GemmAccuracy.Check<float>(expected, abs, c.ToArray(), k, alpha, kernel);
        _report(new VerifyResult("gemm", name + " prepacked", _context.Backend.ToString(), kernel, worst <= 1.0, worst, "|err|/bound", $"linear ran {linearKernel}"));
    }

    private void Golden(string? directory)
    {
        if (directory is null)
        {
            _report(new VerifyResult("golden", "golden vectors", _context.Backend.ToString(), "", true, 0, "skipped",
                                     "tests/golden not found (pass --golden DIR); not verified"));
            return;
        }
        foreach (string path in Directory.GetFiles(directory, "quant_*.safetensors").Order())
        {
            using var f = SafeTensorsFile.Open(path);
            var info = f.GetInfo("x");
            int rows = (int)info.Shape[0], columns = (int)info.Shape[1];
            using var x = _context.CreateTensor<float>(f.Read<float>("x"), rows, columns);
            int bad = 0;
            foreach (var (options, q, s) in new (QuantizationOptions, string, string)[]
                     {
                         (new(QuantFormat.Mxfp4), "mxfp4_floor_q", "mxfp4_floor_s"),
                         (new(QuantFormat.Mxfp4) { Rule = MxScaleRule.Ceil, Layout = ScaleLayout.Swizzled128x4 }, "mxfp4_ceil_q", "mxfp4_ceil_s_swz"),
                         (new(QuantFormat.Mxfp8) { Rule = MxScaleRule.Ceil }, "mxfp8_ceil_q", "mxfp8_ceil_s"),
                         (new(QuantFormat.Mxfp8) { Layout = ScaleLayout.Swizzled128x4 }, "mxfp8_floor_q", "mxfp8_floor_s_swz"),
                         (new(QuantFormat.Nvfp4) { Layout = ScaleLayout.Swizzled128x4 }, "nvfp4_q", "nvfp4_s_swz"),
                         (new(QuantFormat.Fp8PerRow), "fp8_row_q", "fp8_row_g"),
                         (new(QuantFormat.Fp8PerTensor), "fp8_tensor_q", "fp8_tensor_g"),
                     })
            {
                using var device = _context.Quantize(x, options);
                using var host = device.ToHost();
                bad += Mismatches<byte>(f.GetBytes(q), host.Data);
                bad += options.Format is QuantFormat.Fp8PerRow or QuantFormat.Fp8PerTensor
                    ? FloatMismatches(f.Read<float>(s), host.DecodeScales)
                    : Mismatches<byte>(f.GetBytes(s), host.BlockScales);
                if (options.Format == QuantFormat.Nvfp4)
                    bad += FloatMismatches(f.Read<float>("nvfp4_g"), host.DecodeScales);
            }
            Exact("golden", Path.GetFileName(path), QuantizeKernel, bad, "every format, rule and layout vs ml_dtypes");
        }
        string hadamardPath = Path.Combine(directory, "hadamard.safetensors");
        if (File.Exists(hadamardPath))
        {
            using var f = SafeTensorsFile.Open(hadamardPath);
            foreach (int g in new[] { 16, 32, 64, 128, 256 })
            {
                var info = f.GetInfo($"x_g{g}");
                using var x = _context.CreateTensor<float>(f.Read<float>($"x_g{g}"), (int)info.Shape[0], (int)info.Shape[1]);
                var h = HadamardTransform.Create(g, f.Read<float>($"signs_g{g}"));
                using var y = _context.HadamardRotate(x, h);
                int bad = FloatMismatches(f.Read<float>($"y_g{g}"), y.ToArray());
                using var nv = _context.QuantizeRotated(x, h, new QuantizationOptions(QuantFormat.Nvfp4)).ToHost();
                bad += Mismatches<byte>(f.GetBytes($"y_g{g}_nvfp4_q"), nv.Data) + Mismatches<byte>(f.GetBytes($"y_g{g}_nvfp4_s"), nv.BlockScales);
                using var mx = _context.QuantizeRotated(x, h, new QuantizationOptions(QuantFormat.Mxfp4)).ToHost();
                bad += Mismatches<byte>(f.GetBytes($"y_g{g}_mxfp4_q"), mx.Data) + Mismatches<byte>(f.GetBytes($"y_g{g}_mxfp4_s"), mx.BlockScales);
                Exact("golden", $"hadamard g={g}", QuantizeKernel, bad, "rotation and fused NVFP4/MXFP4 vs numpy");
            }
        }
        foreach (string path in Directory.GetFiles(directory, "gemm_*.safetensors").Order())
        {
            using var f = SafeTensorsFile.Open(path);
            int m = (int)f.GetInfo("a").Shape[0], n = (int)f.GetInfo("b").Shape[0], k = (int)f.GetInfo("a").Shape[1];
            foreach (string scheme in new[] { "mxfp4", "nvfp4", "fp8row", "w4a8" })
            {
                QuantizedTensor Part(char side, int rows)
                {
                    string p = $"{scheme}_{side}_";
                    if (scheme == "fp8row" || (scheme == "w4a8" && side == 'a'))
                        return QuantizedTensor.FromParts(new(QuantFormat.Fp8PerRow), rows, k, f.GetBytes(p + "q"), default, f.Read<float>(p + "g"));
                    if (scheme == "nvfp4")
                        return QuantizedTensor.FromParts(new(QuantFormat.Nvfp4), rows, k, f.GetBytes(p + "q"), f.GetBytes(p + "s"), f.Read<float>(p + "g"));
                    return QuantizedTensor.FromParts(new(QuantFormat.Mxfp4), rows, k, f.GetBytes(p + "q"), f.GetBytes(p + "s"), default);
                }
                using var ha = Part('a', m);
                using var hb = Part('b', n);
                using var qa = _context.Upload(ha);
                using var qb = _context.Upload(hb);
                using var c = _context.Gemm(qa, qb);
                var (worst, _) = GemmAccuracy.Check<float>(f.Read<double>($"{scheme}_c"), f.Read<double>($"{scheme}_abs_c"), c.ToArray(), k, 1f,
                                                           _context.LastGemmKernel);
                _report(new VerifyResult("golden", $"{Path.GetFileNameWithoutExtension(path)} {scheme}", _context.Backend.ToString(),
                                         _context.LastGemmKernel, worst <= 1.0, worst, "|err|/bound", "vs float64 from numpy"));
            }
        }
    }
}
