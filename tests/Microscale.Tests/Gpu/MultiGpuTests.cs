using System.Runtime.InteropServices;

namespace Microscale.Tests.Gpu;

/// <summary>
/// Several GPUs in one process: one context per device, one thread per device running quantize + every GEMM pair
/// concurrently; the bytes equal a sequential run on device 0, device memory does not grow over rounds, and a tensor of one
/// device is refused by another device's context. Skips with fewer than 2 CUDA devices.
/// </summary>
[TestFixture]
[Category("Gpu")]
[Category("MultiGpu")]
public sealed class MultiGpuTests
{
    // Every operand pair of NUMERICS.md §5 (null activations: dense BF16, W4A16 / W8A16).
    private static readonly (QuantizationOptions? A, QuantizationOptions B)[] s_pairs =
    [
        (Q(QuantFormat.Mxfp4), Q(QuantFormat.Mxfp4)), (Q(QuantFormat.Nvfp4), Q(QuantFormat.Nvfp4)),
        (Q(QuantFormat.Fp8PerRow), Q(QuantFormat.Mxfp4)), (Q(QuantFormat.Fp8PerTensor), Q(QuantFormat.Nvfp4)),
        (Q(QuantFormat.Mxfp8), Q(QuantFormat.Mxfp4)), (Q(QuantFormat.Fp8PerRow), Q(QuantFormat.Fp8PerRow)),
        (Q(QuantFormat.Fp8PerTensor), Q(QuantFormat.Fp8PerTensor)), (Q(QuantFormat.Mxfp8), Q(QuantFormat.Mxfp8)),
        (Q(QuantFormat.Mxint8), Q(QuantFormat.Mxint8)), (Q(QuantFormat.Mxint6), Q(QuantFormat.Mxint6)),
        (Q(QuantFormat.Mxint4), Q(QuantFormat.Mxint4)), (Q(QuantFormat.Nvint4), Q(QuantFormat.Nvint4)),
        (null, Q(QuantFormat.Mxfp4)), (null, Q(QuantFormat.Nvfp4)), (null, Q(QuantFormat.Fp8PerRow)),
    ];

    // Token counts that take the decode kernel (M <= 64) and the large-M kernels (wgmma for FP8 x FP8 on sm_90).
    private static readonly int[] s_tokens = [8, 192];

    private static QuantizationOptions Q(QuantFormat format) => new(format);

    private static int RequireDevices()
    {
        TestBackends.Require(Backend.Native);
        int count = MicroscaleRuntime.CudaDevices().Count;
        if (count < 2)
            Assert.Ignore($"needs 2 or more CUDA devices, found {count}");
        return count;
    }

    // Every pair's output bytes (and the quantized activations' bytes) for seeded inputs, on one device's context.
    private static List<byte[]> RunPairs(MicroscaleContext context)
    {
        const int n = 256, k = 1024;
        var results = new List<byte[]>();
        using var b = context.CreateTensor<float>(SeededGaussian.Create(n * k, 2), n, k);
        foreach (int m in s_tokens)
        {
            using var a = context.CreateTensor<float>(SeededGaussian.Create(m * k, 1), m, k);
            using var dense = context.CreateTensor<BFloat16>(SeededGaussian.Create(m * k, 1).Select(v => (BFloat16)v).ToArray(), m, k);
            using var c = context.AllocateTensor<BFloat16>(m, n);
            foreach (var (af, bf) in s_pairs)
            {
                using var qb = context.Quantize(b, bf);
                if (af is null)
                    context.Gemm(dense, qb, c);
                else
                {
                    using var qa = context.Quantize(a, af);
                    context.Gemm(qa, qb, c);
                    using var hostA = qa.ToHost();
                    results.Add(hostA.Data.ToArray());
                }
                results.Add(MemoryMarshal.AsBytes(c.ToArray().AsSpan()).ToArray());
            }
        }
        return results;
    }

    [Test]
    public void OneThreadPerDeviceMatchesASequentialRun()
    {
        int count = RequireDevices();
        List<byte[]> expected;
        using (var first = MicroscaleContext.Create(Backend.Native, 0))
            expected = RunPairs(first);
        var contexts = Enumerable.Range(0, count).Select(d => MicroscaleContext.Create(Backend.Native, d)).ToArray();
        try
        {
            Assert.That(contexts.Select(c => c.DeviceOrdinal), Is.EqualTo(Enumerable.Range(0, count)));
            var free = new long[count][];
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = count }, d =>
            {
                free[d] = new long[4];
                for (int round = 0; round < 4; round++)
                {
                    var got = RunPairs(contexts[d]);
                    for (int i = 0; i < got.Count; i++)
                        Assert.That(got[i], Is.EqualTo(expected[i]), $"device {d}, round {round}, result {i}");
                    contexts[d].Synchronize();
                    free[d][round] = DeviceMemoryProbe.FreeBytes(contexts[d]);
                }
            });
            for (int d = 0; d < count; d++)
                Assert.That(free[d][3], Is.GreaterThanOrEqualTo(free[d][1] - (64L << 20)), $"device {d} lost memory over rounds: {string.Join(", ", free[d])}");
        }
        finally
        {
            foreach (var c in contexts)
                c.Dispose();
        }
    }

    [Test]
    public void TensorsStayWithTheirDevice()
    {
        RequireDevices();
        using var zero = MicroscaleContext.Create(Backend.Native, 0);
        using var one = MicroscaleContext.Create(Backend.Native, 1);
        using var a = zero.CreateTensor<float>(new float[64], 1, 64);
        Assert.Throws<ArgumentException>(() => one.Quantize(a, new QuantizationOptions(QuantFormat.Mxfp4)).Dispose());
    }
}
