namespace Microscale.Tests.Gpu;

/// <summary>
/// The decode GEMM (native/kernels/sm80_decode_gemm_nt.cu; built for M ≤ 64, blocks of 64 tokens above) against the float64 reference within its NUMERICS.md §5
/// bound: every M of the decode list, odd N with a partial 128-row tile, K with a partial chunk, every weight format (MXFP4 and
/// NVFP4 in both scale layouts, FP8 per-tensor / per-row, E4M3 and E5M2) with BF16 and FP8 activations, alpha, bias, every output
/// type, split-K (large N x K) run twice for identical bytes; and exactness: one-hot activations read every weight code and scale
/// (extreme MX exponents, every UE4M3 scale, every FP8 code) back bit for bit. On sm_90 the pairs above 64 tokens run the BF16
/// wgmma family instead (native/kernels/sm90_bf16_gemm_nt.cu) and are checked the same way.
/// </summary>
[TestFixture]
[Category("Gpu")]
public sealed class DecodeGemmTests : NativeFixture
{
    // Every token tile count, and 130 tokens: three 64-token blocks along grid z, the last partial.
    private static readonly int[] s_tokens = { 1, 2, 4, 8, 16, 32, 64, 130 };

    // The heuristic (native/src/api.cpp): on sm_90, FP8 x FP8 above 16 tokens goes to the FP8 wgmma family (Sm90Fp8GemmTests),
    // MXINT8 / MXFP8 pairs (no decode kernel) at any M and the other pairs above 64 tokens to the BF16 wgmma family
    // (Sm90Bf16GemmTests); elsewhere MXINT8 / MXFP8 pairs take the generic kernel and everything else here the decode kernel.
    private static string ExpectedKernel(QuantizationOptions? a, QuantizationOptions b, int m)
    {
        bool w8a8 = a?.Format is QuantFormat.Fp8PerRow or QuantFormat.Fp8PerTensor && b.Format is QuantFormat.Fp8PerRow or QuantFormat.Fp8PerTensor;
        bool mx8 = b.Format is QuantFormat.Mxint8 or QuantFormat.Mxfp8;
        if (mx8)
            return Sm == 90 ? Sm90Bf16Prefix : "ms_smxx_gemm_generic";
        if (Sm == 90 && w8a8 && m > 16)
            return Sm90Fp8Prefix;
        return Sm == 90 && !w8a8 && m > 64 ? Sm90Bf16Prefix : DecodePrefix;
    }

    public static IEnumerable<TestCaseData> WeightFormats()
    {
        yield return new TestCaseData(new QuantizationOptions(QuantFormat.Mxfp4)).SetName("{m}_mxfp4");
        yield return new TestCaseData(new QuantizationOptions(QuantFormat.Mxfp4) { Layout = ScaleLayout.Swizzled128x4 }).SetName("{m}_mxfp4_swizzled");
        yield return new TestCaseData(new QuantizationOptions(QuantFormat.Nvfp4)).SetName("{m}_nvfp4");
        yield return new TestCaseData(new QuantizationOptions(QuantFormat.Nvfp4) { Layout = ScaleLayout.Swizzled128x4 }).SetName("{m}_nvfp4_swizzled");
        yield return new TestCaseData(new QuantizationOptions(QuantFormat.Fp8PerTensor)).SetName("{m}_fp8_tensor");
        yield return new TestCaseData(new QuantizationOptions(QuantFormat.Fp8PerRow)).SetName("{m}_fp8_row");
        yield return new TestCaseData(new QuantizationOptions(QuantFormat.Fp8PerRow) { Element = Fp8Element.E5M2 }).SetName("{m}_fp8_row_e5m2");
    }

    /// <summary>BF16 activations (W4A16 / W8A16), FP8 per-token and per-tensor activations (W4A8 / W8A8) and, with FP4
    /// weights, activations of the same format and scale layout (W4A4) for every M.</summary>
    [TestCaseSource(nameof(WeightFormats))]
    public void WithinBoundForEveryTokenCount(QuantizationOptions weights)
    {
        const int n = 333, k = 1088; // 3 row tiles, the last partial; 8.5 FP4 chunks
        var activations = new List<QuantizationOptions?> { null, new(QuantFormat.Fp8PerRow), new(QuantFormat.Fp8PerTensor) };
        if (weights.Format is QuantFormat.Mxfp4 or QuantFormat.Nvfp4)
            activations.Add(new QuantizationOptions(weights.Format) { Layout = weights.Layout });
        foreach (int m in s_tokens)
            foreach (var a in activations)
                RunAndCheck(a, weights, m, n, k, repeat: false, ExpectedKernel(a, weights, m));
    }

    /// <summary>N x K large enough that the heuristic splits K over CTAs: the partial sums add in split order, so two runs
    /// give the same bytes.</summary>
    [TestCaseSource(nameof(WeightFormats))]
    public void SplitKWithinBoundAndDeterministic(QuantizationOptions weights)
    {
        RunAndCheck(null, weights, 3, 1000, 8192, repeat: true, DecodePrefix);
        RunAndCheck(new QuantizationOptions(QuantFormat.Fp8PerRow), weights, 16, 520, 4096, repeat: true, DecodePrefix);
        if (weights.Format is QuantFormat.Mxfp4 or QuantFormat.Nvfp4)
            RunAndCheck(new QuantizationOptions(weights.Format) { Layout = weights.Layout }, weights, 5, 1000, 8192, repeat: true, DecodePrefix);
    }

    /// <summary>GemmOptions.StaticWeights (programmatic dependent launch with the first weight loads before the wait on
    /// sm_90+): back-to-back runs, each launched while the one before still runs, give the bytes of a plain run.</summary>
    [TestCase(1)]
    [TestCase(16)]
    public void StaticWeightsGiveThePlainRunsBytes(int m)
    {
        const int n = 1000, k = 8192; // split K
        using var weightSource = Context.CreateTensor<float>(Unit.HadamardTests.StudentT3(n * k, seed: 11), n, k);
        using var qb = Context.Quantize(weightSource, new QuantizationOptions(QuantFormat.Mxfp4));
        using var dense = Context.CreateTensor<BFloat16>(SeededGaussian.Create(m * k, seed: 12).Select(v => (BFloat16)v).ToArray(), m, k);
        using var c = Context.AllocateTensor<float>(m, n);
        Context.Gemm(dense, qb, c, GemmOptions.Default);
        var plain = c.ToArray(); // synchronizes: nothing writes the weights from here on, as StaticWeights promises
        var options = new GemmOptions { StaticWeights = true };
        for (int run = 0; run < 4; ++run)
            Context.Gemm(dense, qb, c, options);
        Assert.That(Context.LastGemmKernel, Does.StartWith(DecodePrefix));
        Assert.That(c.ToArray(), Is.EqualTo(plain));
    }

    // 64 tokens: the decode kernel; 128: on sm_90 the BF16 wgmma family (exact BF16 copies of the weights), else decode.
    public static IEnumerable<TestCaseData> ExactWeights() =>
        from m in new[] { 64, 128 }
        from c in new[] { (QuantFormat.Mxfp4, Fp8Element.E4M3, "mxfp4"), (QuantFormat.Nvfp4, Fp8Element.E4M3, "nvfp4"),
                          (QuantFormat.Fp8PerRow, Fp8Element.E4M3, "fp8_row_e4m3"), (QuantFormat.Fp8PerTensor, Fp8Element.E5M2, "fp8_tensor_e5m2") }
        select new TestCaseData(c.Item1, c.Item2, m).SetName($"{{m}}_{c.Item3}_m{m}");

    /// <summary>
    /// Token m's activations are 1 at k = m and 0 elsewhere, so C[m, n] = deq(W)[n, m], one exact product: the result must
    /// equal the reference dequantization bit for bit, NaN where the reference has NaN (a NaN scale, or 0 x Inf from an
    /// exponent that overflows). MX scales cover exponent codes 0 … 255 (the kernel's two-factor path above 128), NVFP4
    /// every UE4M3 code 0x00 … 0x7F with a tensor scale that is not a power of two, FP8 every code.
    /// </summary>
    [TestCaseSource(nameof(ExactWeights))]
    public void OneHotActivationsReadEveryWeightCodeExactly(QuantFormat format, Fp8Element element, int m)
    {
        const int n = 256;
        int k = m;
        var options = new QuantizationOptions(format) { Element = element };
        var spec = FormatSpec.Of(options);
        var random = new Random(11);
        var data = new byte[spec.DataBytes(n, k)];
        random.NextBytes(data);
        var scales = new byte[spec.BlockScaleBytes(n, k, ScaleLayout.Linear)];
        for (int i = 0; i < scales.Length; i++)
            scales[i] = format == QuantFormat.Mxfp4 ? (byte)(i * 7 % 256) : (byte)(i % 128);
        var decode = new float[spec.DecodeScaleCount(n)];
        for (int i = 0; i < decode.Length; i++)
            decode[i] = format == QuantFormat.Nvfp4 ? 0.3f : MathF.ScaleB(1.5f, i % 9 - 4);
        using var host = QuantizedTensor.FromParts(options, n, k, data, scales, decode);
        using var weights = Context.Upload(host);

        var oneHot = new BFloat16[m * k];
        for (int i = 0; i < m; i++)
            oneHot[i * k + i] = (BFloat16)1f;
        using var a = Context.CreateTensor<BFloat16>(oneHot, m, k);
        using var c = Context.AllocateTensor<float>(m, n);
        Context.Gemm(a, weights, c);
        Assert.That(Context.LastGemmKernel, Does.StartWith(ExpectedKernel(null, options, m)));

        var (expected, _) = GemmBounds.Reference(oneHot.Select(v => (float)v).ToArray(), host.Dequantize(Backend.Reference), m, n, k);
        AssertBitExact(expected, c.ToArray(), n, $"{options}", "the weight");
    }

    // Every C equals the reference's binary32 rounding bit for bit (NaN where it is NaN); returns how many were NaN.
    private static int AssertBitExact(double[] expected, float[] got, int n, string what, string source)
    {
        int nan = 0;
        for (int i = 0; i < got.Length; i++)
        {
            float want = (float)expected[i];
            if (float.IsNaN(want))
                nan++;
            if (!(float.IsNaN(want) ? float.IsNaN(got[i]) : BitConverter.SingleToInt32Bits(got[i]) == BitConverter.SingleToInt32Bits(want)))
                Assert.Fail($"{what}: C[{i / n}, {i % n}] = {got[i]:R}, {source} dequantizes to {want:R}");
        }
        TestContext.Out.WriteLine($"{what}: {got.Length} values exact, {nan} NaN");
        return nan;
    }

    public static IEnumerable<TestCaseData> ExactActivations() =>
        from m in new[] { 64, 128 }
        from format in new[] { QuantFormat.Mxfp4, QuantFormat.Nvfp4, QuantFormat.Mxint8, QuantFormat.Mxfp8 }
        select new TestCaseData(format, m).SetName($"{{m}}_{format}_m{m}");

    /// <summary>
    /// W4A4, MXINT8 and MXFP8 pairs: weight row n is 1 at k = n and 0 elsewhere, so C[m, n] = deq(A)[m, n]: every activation code
    /// and scale must come back bit for bit (NaN where the reference has NaN: a NaN scale, or 0 x Inf in a row holding a value that
    /// overflows binary32). MX activation scales cover exponent codes 0 … 255; NVFP4 every UE4M3 code with a tensor scale that is not
    /// a power of two; MXINT8 every byte, −128 included; MXFP8 every E4M3 code but NaN, with scale codes 3 … 255. FP4 at 64 tokens runs the decode kernel; on
    /// sm_90 the rest runs the BF16 wgmma family.
    /// </summary>
    [TestCaseSource(nameof(ExactActivations))]
    public void OneHotWeightsReadEveryActivationCodeExactly(QuantFormat format, int m)
    {
        const int k = 256, n = 256;
        var options = new QuantizationOptions(format);
        var spec = FormatSpec.Of(options);
        bool fp4 = format is QuantFormat.Mxfp4 or QuantFormat.Nvfp4;
        var random = new Random(13);
        var aData = new byte[spec.DataBytes(m, k)];
        random.NextBytes(aData);
        if (format == QuantFormat.Mxfp8)
            for (int i = 0; i < aData.Length; i++)
                aData[i] = (aData[i] & 0x7F) == 0x7F ? (byte)(aData[i] - 1) : aData[i]; // a NaN element would make its whole row NaN
        var aScales = new byte[spec.BlockScaleBytes(m, k, ScaleLayout.Linear)];
        for (int i = 0; i < aScales.Length; i++)
            aScales[i] = format switch
            {
                QuantFormat.Nvfp4 => (byte)(i % 128),
                // E8M0 codes 0-2 put E4M3 subnormals below BF16's smallest subnormal: the sm_90 BF16 family rounds those
                // (documented in sm90_bf16_gemm_nt.cu), so this exactness check starts at code 3.
                QuantFormat.Mxfp8 => (byte)(3 + i * 7 % 253),
                _ => (byte)(i * 7 % 256),
            };
        var aDecode = new float[spec.DecodeScaleCount(m)];
        Array.Fill(aDecode, format == QuantFormat.Nvfp4 ? 0.3f : 1f);
        using var aHost = QuantizedTensor.FromParts(options, m, k, aData, aScales, aDecode);

        var wData = new byte[spec.DataBytes(n, k)];
        for (int row = 0; row < n; row++)
        {
            if (fp4)
                wData[(row * k + row) / 2] = (byte)(row % 2 == 0 ? 0x02 : 0x20); // E2M1 code 2 = 1.0 at k = row
            else
                wData[row * k + row] = format == QuantFormat.Mxint8 ? (byte)1 : (byte)0x38; // integer 1; E4M3 1.0
        }
        var wScales = new byte[spec.BlockScaleBytes(n, k, ScaleLayout.Linear)];
        Array.Fill(wScales, format == QuantFormat.Nvfp4 ? (byte)0x38 : (byte)127); // UE4M3 1.0; 2^0
        var wDecode = new float[spec.DecodeScaleCount(n)];
        Array.Fill(wDecode, 1f);
        using var wHost = QuantizedTensor.FromParts(options, n, k, wData, wScales, wDecode);

        using var a = Context.Upload(aHost);
        using var w = Context.Upload(wHost);
        using var c = Context.AllocateTensor<float>(m, n);
        Context.Gemm(a, w, c);
        Assert.That(Context.LastGemmKernel, Does.StartWith(ExpectedKernel(options, options, m)));

        var (expected, _) = GemmBounds.Reference(aHost.Dequantize(Backend.Reference), wHost.Dequantize(Backend.Reference), m, n, k);
        int nan = AssertBitExact(expected, c.ToArray(), n, $"{options} activations", "the activation");
        Assert.That(nan, Is.LessThan(m * n / 2), "most rows must hold finite values to compare");
    }
}
