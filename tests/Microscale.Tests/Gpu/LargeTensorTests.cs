namespace Microscale.Tests.Gpu;

/// <summary>
/// Scale (issue 12): a 65536 × 40960 MXFP4 weight (2.7 × 10^9 values, past 2^31) uploads and a GEMM with one-hot
/// activations reads every row, those beyond element 2^31 included, exactly; dense tensors stop at 2^31 elements and
/// say so. Device memory running out is an <see cref="InsufficientMemoryException"/> and the context stays
/// usable. The CPU backend runs the same large case only when named (it needs about 14 GB of host memory).
/// </summary>
[TestFixture]
[NonParallelizable] // tens of GB of device memory
public sealed class LargeTensorTests
{
    private const int Rows = 65536, Columns = 40960; // Rows × Columns = 2,684,354,560 > 2^31

    public static IEnumerable<TestCaseData> Backends()
    {
        foreach (var backend in TestBackends.Gpu)
            yield return TestBackends.Case("{m}_" + backend, backend, backend);
        yield return new TestCaseData(Backend.Cpu).SetName("{m}_Cpu").Explicit("about 14 GB of host memory and a minute of CPU time");
    }

    [TestCaseSource(nameof(Backends))]
    public void MoreThanTwoBillionValuesIndexCorrectly(Backend backend)
    {
        TestBackends.Require(backend);
        var options = new QuantizationOptions(QuantFormat.Mxfp4);
        var spec = FormatSpec.Of(options);
        // Random codes without -0 (code 8, which the reference reads as -0 and a sum of products turns into +0).
        var data = new byte[spec.DataBytes(Rows, Columns)];
        var random = new Random(12);
        random.NextBytes(data);
        for (long i = 0; i < data.LongLength; i++)
        {
            int lo = data[i] & 0xF, hi = data[i] >> 4;
            if (lo == 8) lo = 0;
            if (hi == 8) hi = 1;
            data[i] = (byte)(lo | hi << 4);
        }
        var scales = new byte[spec.BlockScaleBytes(Rows, Columns, ScaleLayout.Linear)];
        for (long i = 0; i < scales.LongLength; i++)
            scales[i] = (byte)(110 + i % 31);
        using var host = QuantizedTensor.FromParts(options, Rows, Columns, data, scales, []);
        using var context = MicroscaleContext.Create(backend);
        using var weights = context.Upload(host);

        // Dense tensors stop at 2^31 elements (QuantizerChecks.MaxElements): decoding the whole weight is refused by name.
        var refused = Assert.Throws<ArgumentException>(() => context.Dequantize(weights).Dispose())!;
        Assert.That(refused.Message, Does.Contain("exceeds"));

        // C[m, n] = W[n, k_m] for one-hot activations: 8 tokens, each reading one column of every row, rows past 2^31 / K included.
        const int tokens = 8;
        var oneHot = new BFloat16[tokens * Columns];
        var columnOf = Enumerable.Range(0, tokens).Select(m => Columns - 1 - 4099 * m).ToArray();
        for (int m = 0; m < tokens; m++)
            oneHot[m * Columns + columnOf[m]] = (BFloat16)1f;
        using var a = context.CreateTensor<BFloat16>(oneHot, tokens, Columns);
        using var c = context.AllocateTensor<float>(tokens, Rows);
        context.Gemm(a, weights, c);
        var got = c.ToArray();
        int past = 0;
        for (int m = 0; m < tokens; m++)
            for (int n = 0; n < Rows; n++)
            {
                long element = (long)n * Columns + columnOf[m];
                int code = element % 2 == 0 ? data[element / 2] & 0xF : data[element / 2] >> 4;
                float want = Float4E2M1.FromRawValue((byte)code).ToSingle() * MathF.ScaleB(1f, scales[element / 32] - 127);
                if (BitConverter.SingleToInt32Bits(got[m * Rows + n]) != BitConverter.SingleToInt32Bits(want))
                    Assert.Fail($"{backend}: C[{m}, {n}] = {got[m * Rows + n]:R}, W[{n}, {columnOf[m]}] = {want:R} ({context.LastGemmKernel})");
                if (element > int.MaxValue)
                    past++;
            }
        TestContext.Out.WriteLine($"{backend}: {tokens * Rows} exact, {past} of them past element 2^31 ({context.LastGemmKernel})");
    }

    public static IEnumerable<TestCaseData> GpuBackends() => TestBackends.Gpu.Select(b => TestBackends.Case("{m}_" + b, b, b));

    [TestCaseSource(nameof(GpuBackends))]
    public void RunningOutOfDeviceMemoryIsAClearExceptionAndTheContextStaysUsable(Backend backend)
    {
        TestBackends.Require(backend);
        using var context = MicroscaleContext.Create(backend);
        // One tensor stops at 2^31 elements (8 GiB of floats), so hold 8 GiB tensors until the device runs out (at most 1 TiB).
        var held = new List<DeviceTensor<float>>();
        var ex = Assert.Throws<InsufficientMemoryException>(() =>
        {
            for (int i = 0; i < 128; i++)
                held.Add(context.AllocateTensor<float>(1 << 15, (1 << 16) - 1));
        })!;
        TestContext.Out.WriteLine($"{backend}: out of memory after {held.Count} tensors of 8 GiB: {ex.Message}");
        held.ForEach(t => t.Dispose());
        Assert.That(ex.Message, Does.Contain("device memory").And.Contain(context.DeviceName));
        using var x = context.CreateTensor<float>(SeededGaussian.Create(4 * 64, seed: 3), 4, 64);
        using var q = context.Quantize(x, new QuantizationOptions(QuantFormat.Mxfp4));
        using var back = context.Dequantize(q);
        Assert.That(QuantizationMetrics.Qsnr(x.ToArray(), back.ToArray()), Is.GreaterThan(10), "the context works after the failure");
    }
}
