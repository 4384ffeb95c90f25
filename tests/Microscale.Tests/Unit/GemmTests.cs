using Microscale.IO;

namespace Microscale.Tests.Unit;

/// <summary>Every GEMM pair against the golden float64 products and against a float64 reference on random shapes, within the
/// derived bound of <see cref="GemmBounds"/>; exact-by-construction cases bit for bit.</summary>
[TestFixture]
public sealed class GemmTests
{
    private static readonly Backend[] s_backends = TestBackends.All;

    public static IEnumerable<TestCaseData> GoldenCases() =>
        from file in Golden.Files("gemm_*.safetensors")
        from scheme in new[] { "mxfp4", "nvfp4", "fp8row", "w4a8" }
        from backend in s_backends
        select TestBackends.Case($"{Path.GetFileNameWithoutExtension(file)}_{scheme}_{backend}", backend, file, scheme, backend);

    private static QuantizedTensor Operand(SafeTensorsFile f, string scheme, char side, int rows, int k)
    {
        string p = $"{scheme}_{side}_";
        bool fp8 = scheme == "fp8row" || (scheme == "w4a8" && side == 'a');
        if (fp8)
            return QuantizedTensor.FromParts(new QuantizationOptions(QuantFormat.Fp8PerRow), rows, k, f.GetBytes(p + "q"), default, f.Read<float>(p + "g"));
        if (scheme == "nvfp4")
            return QuantizedTensor.FromParts(new QuantizationOptions(QuantFormat.Nvfp4), rows, k, f.GetBytes(p + "q"), f.GetBytes(p + "s"), f.Read<float>(p + "g"));
        return QuantizedTensor.FromParts(new QuantizationOptions(QuantFormat.Mxfp4), rows, k, f.GetBytes(p + "q"), f.GetBytes(p + "s"), default);
    }

    [TestCaseSource(nameof(GoldenCases))]
    public void GoldenProductsWithinBound(string file, string scheme, Backend backend)
    {
        TestBackends.Require(backend);
        using var f = SafeTensorsFile.Open(Golden.PathOf(file));
        int m = (int)f.GetInfo("a").Shape[0], n = (int)f.GetInfo("b").Shape[0], k = (int)f.GetInfo("a").Shape[1];
        using var context = MicroscaleContext.Create(backend);
        using var hostA = Operand(f, scheme, 'a', m, k);
        using var hostB = Operand(f, scheme, 'b', n, k);
        using var a = context.Upload(hostA);
        using var b = context.Upload(hostB);
        double[] expected = f.Read<double>($"{scheme}_c"), abs = f.Read<double>($"{scheme}_abs_c");
        using (var c = context.Gemm(a, b))
            GemmBounds.AssertWithin<float>(expected, abs, c.ToArray(), n, k, 1f, $"{file} {scheme} f32", context.LastGemmKernel);
        using (var c = context.AllocateTensor<BFloat16>(m, n))
        {
            context.Gemm(a, b, c);
            GemmBounds.AssertWithin<BFloat16>(expected, abs, c.ToArray(), n, k, 1f, $"{file} {scheme} bf16", context.LastGemmKernel);
        }
        using (var c = context.AllocateTensor<Half>(m, n))
        {
            context.Gemm(a, b, c);
            GemmBounds.AssertWithin<Half>(expected, abs, c.ToArray(), n, k, 1f, $"{file} {scheme} f16", context.LastGemmKernel);
        }
    }

    private static readonly (int M, int N, int K)[] s_shapes = { (1, 1, 1), (1, 70, 100), (33, 17, 64), (5, 40, 300), (64, 65, 96) };

    public static IEnumerable<TestCaseData> PairCases()
    {
        var pairs = new (string Name, QuantizationOptions? A, QuantizationOptions B)[]
        {
            ("W4A4_MXFP4", new(QuantFormat.Mxfp4), new(QuantFormat.Mxfp4) { Layout = ScaleLayout.Swizzled128x4 }),
            ("W4A4_NVFP4", new(QuantFormat.Nvfp4) { Layout = ScaleLayout.Swizzled128x4 }, new(QuantFormat.Nvfp4)),
            ("W4A8_MXFP4_FP8row", new(QuantFormat.Fp8PerRow), new(QuantFormat.Mxfp4)),
            ("W4A8_NVFP4_MXFP8", new(QuantFormat.Mxfp8) { Rule = MxScaleRule.Ceil }, new(QuantFormat.Nvfp4)),
            ("W4A8_NVFP4_FP8tensor", new(QuantFormat.Fp8PerTensor), new(QuantFormat.Nvfp4)),
            ("W8A8_tensor", new(QuantFormat.Fp8PerTensor), new(QuantFormat.Fp8PerTensor)),
            ("W8A8_row_E5M2", new(QuantFormat.Fp8PerRow) { Element = Fp8Element.E5M2 }, new(QuantFormat.Fp8PerRow)),
            ("W8A8_MXFP8", new(QuantFormat.Mxfp8), new(QuantFormat.Mxfp8) { Layout = ScaleLayout.Swizzled128x4 }),
            ("W4A16_MXFP4", null, new(QuantFormat.Mxfp4)),
            ("W4A16_NVFP4", null, new(QuantFormat.Nvfp4) { Layout = ScaleLayout.Swizzled128x4 }),
            ("W8A16_FP8row", null, new(QuantFormat.Fp8PerRow)),
            ("W8A16_FP8tensor_E5M2", null, new(QuantFormat.Fp8PerTensor) { Element = Fp8Element.E5M2 }),
            ("MXINT8", new(QuantFormat.Mxint8) { Rule = MxScaleRule.Ceil }, new(QuantFormat.Mxint8) { Rule = MxScaleRule.Ceil }),
            ("MXINT4", new(QuantFormat.Mxint4), new(QuantFormat.Mxint4) { Layout = ScaleLayout.Swizzled128x4 }),
            ("NVINT4", new(QuantFormat.Nvint4), new(QuantFormat.Nvint4)),
        };
        foreach (var (name, a, b) in pairs)
        foreach (var backend in s_backends)
            yield return TestBackends.Case($"Pair_{name}_{backend}", backend, a, b, backend);
    }

    /// <summary>Random shapes (M = 1, N and K not multiples of the tile, K padded), alpha and bias, float64 reference from our dequantized operands.</summary>
    [TestCaseSource(nameof(PairCases))]
    public void PairWithinBoundOnOddShapes(QuantizationOptions? aOptions, QuantizationOptions bOptions, Backend backend)
    {
        TestBackends.Require(backend);
        using var context = MicroscaleContext.Create(backend);
        foreach (var (m, n, k) in s_shapes)
        {
            var a = SeededGaussian.Create(m * k, seed: m + 7 * k);
            var w = HadamardTests.StudentT3(n * k, seed: n + 3 * k);
            var biasValues = SeededGaussian.Create(n, seed: 5);
            const float alpha = 0.75f;
            using var at = context.CreateTensor<float>(a, m, k);
            using var wt = context.CreateTensor<float>(w, n, k);
            using var bias = context.CreateTensor<float>(biasValues, 1, n);
            using var qb = context.Quantize(wt, bOptions);
            var options = new GemmOptions { Alpha = alpha, Bias = bias };
            float[] da;
            using var c = context.AllocateTensor<float>(m, n);
            if (aOptions is null)
            {
                // W4A16 / W8A16: dense BF16 activations.
                var bf = a.Select(v => (BFloat16)v).ToArray();
                using var abf = context.CreateTensor<BFloat16>(bf, m, k);
                context.Gemm(abf, qb, c, options);
                da = bf.Select(v => v.ToSingle()).ToArray();
            }
            else
            {
                using var qa = context.Quantize(at, aOptions);
                context.Gemm(qa, qb, c, options);
                da = context.Dequantize(qa).ToArray();
            }
            var (expected, abs) = GemmBounds.Reference(da, context.Dequantize(qb).ToArray(), m, n, k, alpha, biasValues);
            GemmBounds.AssertWithin<float>(expected, abs, c.ToArray(), n, k, alpha, $"{aOptions?.ToString() ?? "bf16"} x {bOptions} m={m},n={n},k={k}",
                                           context.LastGemmKernel);
        }
    }

    [TestCaseSource(typeof(TestBackends), nameof(TestBackends.Each))]
    public void ExactByConstructionIsBitExactOnEveryBackend(Backend backend)
    {
        TestBackends.Require(backend);
        // E2M1 grid values with power-of-two MX scales and small K: every product and partial sum is exact in binary32.
        const int m = 9, n = 37, k = 64;
        float[] grid = { 0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f };
        var random = new Random(4);
        float[] Draw(int count) => Enumerable.Range(0, count).Select(i => grid[random.Next(8)] * (random.Next(2) == 0 ? 1 : -1) * (i % 32 == 0 ? 0 : 1) + (i % 32 == 0 ? 6f : 0f)).ToArray();
        var a = Draw(m * k);
        var b = Draw(n * k);
        var (expected, _) = GemmBounds.Reference(a, b, m, n, k);
        {
            using var context = MicroscaleContext.Create(backend);
            using var qa = context.Quantize(context.CreateTensor<float>(a, m, k), new QuantizationOptions(QuantFormat.Mxfp4));
            using var qb = context.Quantize(context.CreateTensor<float>(b, n, k), new QuantizationOptions(QuantFormat.Mxfp4));
            Exact.AssertFloats(a, context.Dequantize(qa).ToArray(), $"{backend}: A is exactly representable");
            Exact.AssertFloats(expected.Select(v => (float)v).ToArray(), context.Gemm(qa, qb).ToArray(), $"{backend} C", n);
        }
    }

    [TestCaseSource(typeof(TestBackends), nameof(TestBackends.Each))]
    public void NaNBlocksPropagateToTheOutputsThatReadThem(Backend backend)
    {
        TestBackends.Require(backend);
        var a = SeededGaussian.Create(2 * 64, seed: 1);
        a[64 + 40] = float.NaN; // row 1, second block
        var b = SeededGaussian.Create(3 * 64, seed: 2);
        {
            using var context = MicroscaleContext.Create(backend);
            using var qa = context.Quantize(context.CreateTensor<float>(a, 2, 64), new QuantizationOptions(QuantFormat.Mxfp4));
            using var qb = context.Quantize(context.CreateTensor<float>(b, 3, 64), new QuantizationOptions(QuantFormat.Mxfp4));
            var c = context.Gemm(qa, qb).ToArray();
            Assert.That(c.Take(3), Is.All.Not.NaN, backend.ToString());
            Assert.That(c.Skip(3), Is.All.NaN, backend.ToString());
        }
    }
}
