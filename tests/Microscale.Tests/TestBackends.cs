namespace Microscale.Tests;

/// <summary>
/// The backends a test runs on. CPU backends always; GPU backends as cases of category <c>Gpu</c> (excluded from CI), which
/// call <see cref="Require"/> so that a machine without the device or library ignores them with the reason instead of passing.
/// </summary>
internal static class TestBackends
{
    public const string GpuCategory = "Gpu";

    public static readonly Backend[] Cpu = { Backend.Reference, Backend.Cpu };
    public static readonly Backend[] Gpu = { Backend.Cuda, Backend.Native };
    public static readonly Backend[] All = { Backend.Reference, Backend.Cpu, Backend.Cuda, Backend.Native };

    public static bool IsGpu(Backend backend) => backend is Backend.Cuda or Backend.Native;

    /// <summary>A case for <paramref name="backend"/>, tagged <c>Gpu</c> when it needs a device.</summary>
    public static TestCaseData Case(string name, Backend backend, params object?[] arguments)
    {
        var data = new TestCaseData(arguments).SetName(name);
        return IsGpu(backend) ? data.SetCategory(GpuCategory) : data;
    }

    /// <summary>One case per backend, named after the method and the backend; for <c>[TestCaseSource(typeof(TestBackends), nameof(Each))]</c>.</summary>
    public static IEnumerable<TestCaseData> Each() => All.Select(b => Case("{m}_" + b, b, b));

    /// <summary>Reference, Cpu and Cuda (ILGPU on every device), for features the native library leaves to the ILGPU kernels.</summary>
    public static IEnumerable<TestCaseData> EachIlgpu() => All.Where(b => b != Backend.Native).Select(b => Case("{m}_" + b, b, b));

    /// <summary>Ignores the test, with the reason, when <paramref name="backend"/> cannot run here.</summary>
    public static void Require(Backend backend)
    {
        var status = MicroscaleRuntime.DescribeBackends().Single(s => s.Backend == backend);
        if (!status.IsAvailable)
            Assert.Ignore($"{backend} is not available here: {status.Detail}");
    }
}
