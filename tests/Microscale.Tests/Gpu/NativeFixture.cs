using System.Runtime.InteropServices;
using Microscale.Interop;

namespace Microscale.Tests.Gpu;

/// <summary>A fixture whose tests each get a fresh Native-backend context (ignored where the native library or a GPU is missing).</summary>
public abstract class NativeFixture
{
    private static readonly Lazy<int> s_sm = new(QuerySm);

    protected const string DecodePrefix = "ms_sm80_decode_gemm_nt_", Sm90Fp8Prefix = "ms_sm90_fp8_gemm_nt_", Sm90Bf16Prefix = "ms_sm90_bf16_gemm_nt_";

    protected MicroscaleContext Context { get; private set; } = null!;

    /// <summary>Compute capability of CUDA device 0 as libmicroscale sees it (90 for an H100).</summary>
    protected static int Sm => s_sm.Value;

    [SetUp]
    public void CreateNativeContext()
    {
        TestBackends.Require(Backend.Native);
        Context = MicroscaleContext.Create(Backend.Native);
    }

    [TearDown]
    public void DisposeNativeContext()
    {
        Context?.Dispose();
        if (OperatingSystem.IsLinux())
        {
            NativeEnvironment.Unset("MS_FORCE_CONFIG");
            NativeEnvironment.Unset("MS_STREAM_K");
        }
    }

    /// <summary>Quantization options of a format and scale layout (and FP8 element).</summary>
    protected static QuantizationOptions O(QuantFormat format, ScaleLayout layout = ScaleLayout.Linear, Fp8Element element = Fp8Element.E4M3) =>
        new(format) { Layout = layout, Element = element };

    /// <summary>The W4A8 pairs both Blackwell families take, on <paramref name="config"/>: E4M3 activations as MXFP8 (linear and
    /// swizzled scales), FP8 per-token and FP8 per-tensor, times MXFP4 weights.</summary>
    protected static IEnumerable<TestCaseData> W4A8Pairs(string config)
    {
        var swizzled = ScaleLayout.Swizzled128x4;
        yield return new TestCaseData(O(QuantFormat.Mxfp8), O(QuantFormat.Mxfp4), config).SetName("{m}_mxfp8_mxfp4");
        yield return new TestCaseData(O(QuantFormat.Mxfp8, swizzled), O(QuantFormat.Mxfp4, swizzled), config).SetName("{m}_mxfp8swizzled_mxfp4swizzled");
        yield return new TestCaseData(O(QuantFormat.Fp8PerRow), O(QuantFormat.Mxfp4, swizzled), config).SetName("{m}_fp8row_mxfp4swizzled");
        yield return new TestCaseData(O(QuantFormat.Fp8PerTensor), O(QuantFormat.Mxfp4), config).SetName("{m}_fp8tensor_mxfp4");
    }

    /// <summary>Asserts that <paramref name="config"/>, forced onto a 64 x 64 x k problem of these formats it cannot run, is refused
    /// with an exception naming MS_FORCE_CONFIG.</summary>
    protected void AssertForcedConfigRefused(string config, QuantizationOptions aOptions, QuantizationOptions bOptions, int k)
    {
        NativeEnvironment.Set("MS_FORCE_CONFIG", config);
        using var source = Context.CreateTensor<float>(SeededGaussian.Create(64 * k, seed: 3), 64, k);
        using var weights = Context.Quantize(source, bOptions);
        using var activations = Context.Quantize(source, aOptions);
        using var c = Context.AllocateTensor<float>(64, 64);
        var ex = Assert.Throws<MicroscaleException>(() => Context.Gemm(activations, weights, c))!;
        Assert.That(ex.Argument, Is.EqualTo("MS_FORCE_CONFIG"));
    }

    /// <summary>C = alpha · A·Bᵀ + bias for A dense BF16 (<paramref name="aOptions"/> null) or quantized from BF16, B quantized from
    /// heavy-tailed values, against the float64 reference within the NUMERICS.md §5 bound for BF16 and FP32 outputs (and FP16 at
    /// M = 1 or with <paramref name="repeat"/>, which also requires a second run to give the same bytes); the kernel must start
    /// with <paramref name="expectedPrefix"/>.</summary>
    protected void RunAndCheck(QuantizationOptions? aOptions, QuantizationOptions bOptions, int m, int n, int k, bool repeat, string expectedPrefix)
    {
        const float alpha = 0.75f;
        var biasValues = SeededGaussian.Create(n, seed: 5);
        var aValues = SeededGaussian.Create(m * k, seed: m + 7 * k);
        using var weightSource = Context.CreateTensor<float>(Unit.HadamardTests.StudentT3(n * k, seed: n + 3 * k), n, k);
        using var qb = Context.Quantize(weightSource, bOptions);
        using var bias = Context.CreateTensor<float>(biasValues, 1, n);
        var options = new GemmOptions { Alpha = alpha, Bias = bias };
        string what = $"{aOptions?.ToString() ?? "bf16"} x {bOptions} m={m},n={n},k={k}";

        // Dense activations are BF16 (what the kernel reads); the reference gets the same BF16 values.
        var aBf16 = aValues.Select(v => (BFloat16)v).ToArray();
        using var dense = Context.CreateTensor<BFloat16>(aBf16, m, k);
        using var qa = aOptions is null ? null : Context.Quantize(dense, aOptions);
        float[] aReference = qa is null ? aBf16.Select(v => (float)v).ToArray() : Context.Dequantize(qa).ToArray();
        var (expected, abs) = GemmBounds.Reference(aReference, Context.Dequantize(qb).ToArray(), m, n, k, alpha, biasValues);

        T[] Run<T>() where T : unmanaged
        {
            using var c = Context.AllocateTensor<T>(m, n);
            if (qa is null)
                Context.Gemm(dense, qb, c, options);
            else
                Context.Gemm(qa, qb, c, options);
            Assert.That(Context.LastGemmKernel, Does.StartWith(expectedPrefix), what);
            return c.ToArray();
        }

        AssertRunWithin(Run<BFloat16>, expected, abs, n, k, alpha, what, repeat);
        AssertRunWithin(Run<float>, expected, abs, n, k, alpha, what, repeat);
        if (m == 1 || repeat)
            AssertRunWithin(Run<Half>, expected, abs, n, k, alpha, what, repeat);
        var (worst, _) = GemmAccuracy.Check(expected, abs, Run<float>(), k, alpha, Context.LastGemmKernel);
        TestContext.Out.WriteLine($"{what}: worst |err| / bound {worst:E2} [{Context.LastGemmKernel}]");
    }

    /// <summary>Runs a GEMM and checks its output against the float64 reference within the NUMERICS.md §5 bound of the kernel
    /// that ran; with <paramref name="repeat"/> a second run must give the same bytes.</summary>
    protected void AssertRunWithin<T>(Func<T[]> run, double[] expected, double[] abs, int n, int k, float alpha, string what, bool repeat)
        where T : unmanaged
    {
        var first = run();
        GemmBounds.AssertWithin<T>(expected, abs, first, n, k, alpha, $"{what} {typeof(T).Name}", Context.LastGemmKernel);
        if (repeat)
            Assert.That(run(), Is.EqualTo(first), $"{what} {typeof(T).Name}: a second run differs");
    }

    private static int QuerySm()
    {
        using var device = Backends.IlgpuDevice.Create(cuda: true);
        using var binding = device.Accelerator.BindScoped();
        return NativeRuntime.Query().Sm;
    }
}

/// <summary>Environment variables libmicroscale reads with getenv (MS_FORCE_CONFIG): .NET's Environment.SetEnvironmentVariable does not
/// reach them on Unix, libc's setenv does.</summary>
internal static partial class NativeEnvironment
{
    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    [LibraryImport("libc", EntryPoint = "unsetenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UnsetEnv(string name);

    public static void Set(string name, string value)
    {
        if (!OperatingSystem.IsLinux())
            Assert.Ignore($"{name} is set through libc");
        SetEnv(name, value, 1);
    }

    public static void Unset(string name) => UnsetEnv(name);
}
