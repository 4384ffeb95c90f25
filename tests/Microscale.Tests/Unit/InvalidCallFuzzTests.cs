namespace Microscale.Tests.Unit;

/// <summary>
/// Reliability on every backend (the GPU cases are category Gpu): a seeded generator of invalid calls against the context's
/// public operations (shapes that disagree, zero or negative sizes, formats without a pair, wrong destination types, disposed
/// and foreign tensors, rotations that do not divide K, non-finite values under the Throw policy) must raise a .NET argument /
/// support / disposal exception (or the native library's <see cref="MicroscaleException"/>, which names its argument)
/// naming the problem, never anything else; and threads with their own contexts (on a GPU: their own streams) give the bytes
/// of a sequential run.
/// </summary>
[TestFixture]
public sealed class InvalidCallFuzzTests
{
    private static readonly Type[] s_expected =
        [typeof(ArgumentException), typeof(NotSupportedException), typeof(ObjectDisposedException), typeof(InvalidOperationException),
         typeof(MicroscaleException)];

    [TestCaseSource(typeof(TestBackends), nameof(TestBackends.Each))]
    public void InvalidCallsRaiseClearExceptions(Backend backend)
    {
        TestBackends.Require(backend);
        using var context = MicroscaleContext.Create(backend);
        using var foreign = MicroscaleContext.Create(Backend.Reference);
        var random = new Random(20261123);
        var formats = Enum.GetValues<QuantFormat>();
        int tried = 0;
        var kinds = new Dictionary<string, int>();
        for (int i = 0; i < 400; i++)
        {
            int rows = random.Next(1, 9), k = 32 * random.Next(1, 5);
            var options = new QuantizationOptions(formats[random.Next(formats.Length)]);
            using var source = context.CreateTensor<float>(SeededGaussian.Create(rows * k, i), rows, k);
            using var weights = context.CreateTensor<float>(SeededGaussian.Create(rows * k, i + 1), rows, k);
            int kind = random.Next(9);
            Action call = kind switch
            {
                0 => () => context.Quantize(context.AllocateTensor<float>(rows, k), context.AllocateQuantized(rows, k + 32, options)),
                1 => () => context.AllocateTensor<float>(random.Next(-3, 1), k),
                2 => () =>
                {
                    using var qa = context.Quantize(source, options);
                    using var qb = context.Quantize(weights, new QuantizationOptions(formats[random.Next(formats.Length)]));
                    using var c = context.AllocateTensor<float>(rows + 1, rows);  // wrong destination shape, or no pair at all
                    context.Gemm(qa, qb, c);
                },
                3 => () =>
                {
                    var q = context.Quantize(source, options);
                    q.Dispose();
                    context.Dequantize(q);
                },
                4 => () =>
                {
                    using var other = foreign.CreateTensor<float>(new float[rows * k], rows, k);
                    context.Quantize(other, options);
                },
                5 => () => context.QuantizeRotated(source, HadamardTransform.Create(k * 2), options),
                6 => () =>
                {
                    var bad = SeededGaussian.Create(rows * k, i);
                    bad[random.Next(bad.Length)] = random.Next(2) == 0 ? float.NaN : float.PositiveInfinity;
                    using var t = context.CreateTensor<float>(bad, rows, k);
                    context.Quantize(t, options with { NonFinite = NonFinitePolicy.Throw });
                },
                7 => () =>
                {
                    using var q = context.Quantize(source, options);
                    using var wrong = context.AllocateTensor<float>(rows, k + 1);
                    context.Dequantize(q, wrong);
                },
                _ => () => context.CreateTensor<float>(new float[rows * k - 1], rows, k),
            };
            Exception? thrown = null;
            try
            {
                call();
            }
            catch (Exception e)
            {
                thrown = e;
            }
            tried++;
            string name = thrown?.GetType().Name ?? "none";
            kinds[name] = kinds.GetValueOrDefault(name) + 1;
            if (thrown is null)
                continue;  // a few generated calls are valid (e.g. a pair that exists with a matching destination)
            Assert.That(s_expected.Any(t => t.IsInstanceOfType(thrown)), Is.True, $"case {i} (kind {kind}, {options}): {thrown}");
            Assert.That(thrown.Message, Is.Not.Empty);
        }
        TestContext.Out.WriteLine($"{backend}: {tried} invalid calls tried: " + string.Join(", ", kinds.Select(p => $"{p.Key} {p.Value}")));
        Assert.That(kinds.GetValueOrDefault("none"), Is.LessThan(tried / 4), "most generated calls must be invalid");
    }

    /// <summary>Four threads, each with its own context, quantize and multiply; their bytes equal a sequential run's (and so
    /// repeated runs give identical bytes).</summary>
    [TestCaseSource(typeof(TestBackends), nameof(TestBackends.Each))]
    public void ThreadsWithTheirOwnContextsMatchASequentialRun(Backend backend)
    {
        TestBackends.Require(backend);
        (byte[] Codes, float[] Product) Work(int seed)
        {
            using var context = MicroscaleContext.Create(backend);
            using var a = context.CreateTensor<float>(SeededGaussian.Create(16 * 256, seed), 16, 256);
            using var b = context.CreateTensor<float>(SeededGaussian.Create(48 * 256, seed + 100), 48, 256);
            using var qa = context.Quantize(a, new QuantizationOptions(QuantFormat.Nvfp4));
            using var qb = context.Quantize(b, new QuantizationOptions(QuantFormat.Nvfp4));
            using var c = context.Gemm(qa, qb);
            using var host = qa.ToHost();
            return (host.Data.ToArray().Concat(host.BlockScales.ToArray()).ToArray(), c.ToArray());
        }
        var sequential = Enumerable.Range(0, 4).Select(Work).ToArray();
        var concurrent = new (byte[] Codes, float[] Product)[4];
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => concurrent[i] = Work(i));
        for (int i = 0; i < 4; i++)
        {
            Assert.That(concurrent[i].Codes, Is.EqualTo(sequential[i].Codes), $"thread {i} codes");
            Assert.That(concurrent[i].Product, Is.EqualTo(sequential[i].Product), $"thread {i} GEMM");
        }
    }
}
