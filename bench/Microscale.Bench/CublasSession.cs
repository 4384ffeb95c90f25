namespace Microscale.Bench;

/// <summary>
/// What the parts that compare with cuBLASLt share: a Native context with its accelerator bound (events, cuBLASLt and the
/// fill kernel act on the current context), a cuBLASLt workspace on its stream, CUDA events, and the interleaved timing.
/// </summary>
internal sealed class CublasSession : IDisposable
{
    private readonly IDisposable _binding;

    private CublasSession(MicroscaleContext context)
    {
        Context = context;
        var accelerator = GpuSweep.ContextAccelerator(context);
        _binding = accelerator.BindScoped();
        Cublas = new Baselines.Workspace(accelerator);
        Events = new CudaEvents(3);
        Random = new DeviceRandom(context);
    }

    public MicroscaleContext Context { get; }

    public Baselines.Workspace Cublas { get; }

    public CudaEvents Events { get; }

    public DeviceRandom Random { get; }

    /// <summary>A session for <paramref name="part"/>, or null (having said why) without the Native backend or the baselines.</summary>
    public static CublasSession? Open(string part) => GpuSweep.NativeWithBaselines(part) is { } context ? new CublasSession(context) : null;

    /// <summary>
    /// Warm-up, then per iteration i: an untimed <paramref name="candidate"/>(i + 1) (it keeps the GPU busy while the timed pair
    /// is queued, so neither side's host launch overhead lands in its interval), e0, <paramref name="baseline"/>(i), e1,
    /// <paramref name="candidate"/>(i), e2, wait. Both sides see the same clocks (an H100 runs power-limited). Medians in µs.
    /// </summary>
    public (double Microseconds, double BaselineMicroseconds) Interleaved(Action<int> baseline, Action<int> candidate, int warmup, int iterations)
    {
        for (int i = 0; i < warmup; i++)
        {
            baseline(i);
            candidate(i);
        }
        var baselineMs = new double[iterations];
        var ms = new double[iterations];
        for (int i = 0; i < iterations; i++)
        {
            candidate(i + 1);
            Events.Record(0, Cublas.Stream);
            baseline(i);
            Events.Record(1, Cublas.Stream);
            candidate(i);
            Events.Record(2, Cublas.Stream);
            Events.Synchronize(2);
            baselineMs[i] = Events.ElapsedMilliseconds(0, 1);
            ms[i] = Events.ElapsedMilliseconds(1, 2);
        }
        return (Report.Median(ms) * 1e3, Report.Median(baselineMs) * 1e3);
    }

    /// <summary>
    /// Like <see cref="Interleaved"/>, but each timed interval holds <paramref name="batch"/> launches back to back (call j of
    /// iteration i gets i * batch + j), as an engine issues them: a kernel's start can overlap the previous one's end
    /// (programmatic dependent launch). Medians per launch in µs.
    /// </summary>
    public (double Microseconds, double BaselineMicroseconds) InterleavedBatches(Action<int> baseline, Action<int> candidate, int batch, int warmup,
                                                                                int iterations)
    {
        void Run(Action<int> action, int i)
        {
            for (int j = 0; j < batch; j++)
                action(i * batch + j);
        }
        var (us, baselineUs) = Interleaved(i => Run(baseline, i), i => Run(candidate, i), warmup, iterations);
        return (us / batch, baselineUs / batch);
    }

    public void Dispose()
    {
        Events.Dispose();
        Cublas.Dispose();
        _binding.Dispose();
        Context.Dispose();
    }
}
