using System.Runtime.InteropServices;
using Microscale.Interop;

namespace Microscale.Tests.Gpu;

/// <summary>
/// An engine that owns its CUDA: the test plays one with the driver API — the device's primary context (not ILGPU's),
/// cuMemAlloc'd buffers and its own stream — and runs quantize + GEMM through <see cref="ExternalCuda"/>; the codes must
/// match the reference quantizer bit for bit and C must be within the GEMM bound. A stream of another context is refused.
/// </summary>
[TestFixture]
[Category("Gpu")]
public sealed partial class ExternalCudaGpuTests
{
    private nint _context;
    private nint _stream;
    private int _device;
    private readonly List<nint> _allocations = [];

    [SetUp]
    public void CreateEngineContext()
    {
        TestBackends.Require(Backend.Native);
        Check(cuInit(0), "cuInit");
        Check(cuDeviceGet(out _device, 0), "cuDeviceGet");
        Check(cuDevicePrimaryCtxRetain(out _context, _device), "cuDevicePrimaryCtxRetain");
        Check(cuCtxPushCurrent_v2(_context), "cuCtxPushCurrent");
        Check(cuStreamCreate(out _stream, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate");
    }

    [TearDown]
    public void DestroyEngineContext()
    {
        if (_context == 0)
            return;
        foreach (var p in _allocations)
            cuMemFree_v2(p);
        _allocations.Clear();
        if (_stream != 0)
            cuStreamDestroy_v2(_stream);
        cuCtxPopCurrent_v2(out _);
        cuDevicePrimaryCtxRelease_v2(_device);
        _context = 0;
    }

    private DeviceMemory Upload<T>(T[] values) where T : unmanaged
    {
        var memory = Allocate(Math.Max(1, values.Length) * Marshal.SizeOf<T>());
        var handle = GCHandle.Alloc(values, GCHandleType.Pinned);
        try
        {
            Check(cuMemcpyHtoD_v2(memory.Address, handle.AddrOfPinnedObject(), (nuint)(values.Length * Marshal.SizeOf<T>())), "cuMemcpyHtoD");
        }
        finally
        {
            handle.Free();
        }
        return memory;
    }

    private DeviceMemory Allocate(long bytes)
    {
        Check(cuMemAlloc_v2(out nint pointer, (nuint)Math.Max(bytes, 1)), "cuMemAlloc");
        _allocations.Add(pointer);
        return new DeviceMemory(pointer, bytes);
    }

    private T[] Download<T>(DeviceMemory memory, long count) where T : unmanaged
    {
        var values = new T[count];
        var handle = GCHandle.Alloc(values, GCHandleType.Pinned);
        try
        {
            Check(cuMemcpyDtoH_v2(handle.AddrOfPinnedObject(), memory.Address, (nuint)(count * Marshal.SizeOf<T>())), "cuMemcpyDtoH");
        }
        finally
        {
            handle.Free();
        }
        return values;
    }

    private ExternalQuantizedTensor AllocateQuantized(QuantizationOptions options, int rows, int columns) =>
        new(options, rows, columns, Allocate(ExternalQuantizedTensor.DataBytes(options, rows, columns)),
            Allocate(ExternalQuantizedTensor.BlockScaleBytes(options, rows, columns)), Allocate(ExternalQuantizedTensor.DecodeScaleBytes(options, rows)));

    private QuantizedTensor DownloadQuantized(ExternalQuantizedTensor t) =>
        QuantizedTensor.FromParts(t.Options, t.Rows, t.Columns,
                                  Download<byte>(t.Data, ExternalQuantizedTensor.DataBytes(t.Options, t.Rows, t.Columns)),
                                  Download<byte>(t.BlockScales, ExternalQuantizedTensor.BlockScaleBytes(t.Options, t.Rows, t.Columns)),
                                  Download<float>(t.DecodeScales, ExternalQuantizedTensor.DecodeScaleBytes(t.Options, t.Rows) / 4));

    [TestCase(QuantFormat.Fp8PerRow, QuantFormat.Fp8PerRow, 130, 264, 1040)]
    [TestCase(QuantFormat.Fp8PerTensor, QuantFormat.Mxfp4, 7, 96, 256)]
    [TestCase(QuantFormat.Nvfp4, QuantFormat.Nvfp4, 33, 80, 512)]
    public void QuantizeAndGemmOnTheEnginesStreamMatchTheReference(QuantFormat aFormat, QuantFormat bFormat, int m, int n, int k)
    {
        var aValues = SeededGaussian.Create(m * k, seed: 1).Select(v => (BFloat16)v).ToArray();
        var bValues = SeededGaussian.Create(n * k, seed: 2).Select(v => (BFloat16)v).ToArray();
        var aOptions = new QuantizationOptions(aFormat);
        var bOptions = new QuantizationOptions(bFormat);
        var qa = AllocateQuantized(aOptions, m, k);
        var qb = AllocateQuantized(bOptions, n, k);
        var workspace = Allocate(1 << 20);
        ExternalCuda.Quantize(Upload(aValues), DenseElement.BFloat16, qa, _stream, workspace);
        ExternalCuda.Quantize(Upload(bValues), DenseElement.BFloat16, qb, _stream, workspace);
        var biasValues = SeededGaussian.Create(n, seed: 3);
        var output = Allocate((long)m * n * 4);
        string kernel = ExternalCuda.Gemm(qa, qb, output, DenseElement.Float32, _stream, alpha: 0.5f, bias: Upload(biasValues));
        Check(cuStreamSynchronize(_stream), "cuStreamSynchronize");

        // Quantization is bit-exact with the reference (NUMERICS.md); the GEMM is within its kernel's bound.
        using var expectedA = Quantizer.Quantize(aValues, m, k, aOptions, Backend.Reference);
        using var expectedB = Quantizer.Quantize(bValues, n, k, bOptions, Backend.Reference);
        using var gotA = DownloadQuantized(qa);
        using var gotB = DownloadQuantized(qb);
        Assert.That(gotA.Data.ToArray(), Is.EqualTo(expectedA.Data.ToArray()), "A codes");
        Assert.That(gotA.BlockScales.ToArray(), Is.EqualTo(expectedA.BlockScales.ToArray()), "A block scales");
        Assert.That(gotA.DecodeScales.ToArray(), Is.EqualTo(expectedA.DecodeScales.ToArray()), "A decode scales");
        Assert.That(gotB.Data.ToArray(), Is.EqualTo(expectedB.Data.ToArray()), "B codes");
        var (c, abs) = GemmBounds.Reference(expectedA.Dequantize(Backend.Reference), expectedB.Dequantize(Backend.Reference), m, n, k, 0.5f, biasValues);
        GemmBounds.AssertWithin<float>(c, abs, Download<float>(output, (long)m * n), n, k, 0.5f, $"{aFormat} x {bFormat} {m}x{n}x{k}", kernel);
        TestContext.Out.WriteLine($"{aFormat} x {bFormat}: {kernel} on the engine's own context and stream");
    }

    [Test]
    public void DenseActivationsTimesQuantizedWeights()
    {
        const int m = 5, n = 72, k = 320;
        var aValues = SeededGaussian.Create(m * k, seed: 4).Select(v => (BFloat16)v).ToArray();
        var bOptions = new QuantizationOptions(QuantFormat.Mxfp4);
        using var host = Quantizer.Quantize(SeededGaussian.Create(n * k, seed: 5), n, k, bOptions, Backend.Reference);
        var qb = new ExternalQuantizedTensor(bOptions, n, k, Upload(host.Data.ToArray()), Upload(host.BlockScales.ToArray()), default);
        var output = Allocate((long)m * n * 2);
        string kernel = ExternalCuda.Gemm(Upload(aValues), DenseElement.BFloat16, m, qb, output, DenseElement.BFloat16, _stream);
        Check(cuStreamSynchronize(_stream), "cuStreamSynchronize");
        var (c, abs) = GemmBounds.Reference(aValues.Select(v => v.ToSingle()).ToArray(), host.Dequantize(Backend.Reference), m, n, k);
        GemmBounds.AssertWithin<BFloat16>(c, abs, Download<BFloat16>(output, (long)m * n), n, k, 1f, "bf16 x mxfp4", kernel);
    }

    [TestCase(QuantFormat.Mxfp4, 1)]
    [TestCase(QuantFormat.Nvfp4, 9)]
    public void PrepackedWeightsOnTheEnginesStreamGiveTheLinearBytes(QuantFormat format, int m)
    {
        const int n = 200, k = 1024;
        var options = new QuantizationOptions(format);
        using var host = Quantizer.Quantize(SeededGaussian.Create(n * k, seed: 6), n, k, options, Backend.Reference);
        var decode = host.DecodeScales.Length == 0 ? default : Upload(host.DecodeScales.ToArray());
        var linear = new ExternalQuantizedTensor(options, n, k, Upload(host.Data.ToArray()), Upload(host.BlockScales.ToArray()), decode);
        var tiledOptions = options with { Layout = ScaleLayout.Tiled16x128 };
        var tiled = new ExternalQuantizedTensor(tiledOptions, n, k, Allocate(ExternalQuantizedTensor.DataBytes(tiledOptions, n, k)),
                                                Allocate(ExternalQuantizedTensor.BlockScaleBytes(tiledOptions, n, k)), decode);
        ExternalCuda.Relayout(linear, tiled, _stream);
        var a = Upload(SeededGaussian.Create(m * k, seed: 7).Select(v => (BFloat16)v).ToArray());
        var expected = Allocate((long)m * n * 4);
        var actual = Allocate((long)m * n * 4);
        var workspace = Allocate(ExternalCuda.GemmWorkspaceBytes(null, tiled, DenseElement.Float32, m: m));
        Check(cuMemsetD8_v2(workspace.Address, 0, (nuint)workspace.ByteLength), "cuMemsetD8");
        string linearKernel = ExternalCuda.Gemm(a, DenseElement.BFloat16, m, linear, expected, DenseElement.Float32, _stream, workspace: workspace);
        string tiledKernel = ExternalCuda.Gemm(a, DenseElement.BFloat16, m, tiled, actual, DenseElement.Float32, _stream, workspace: workspace);
        Check(cuStreamSynchronize(_stream), "cuStreamSynchronize");
        Assert.That(tiledKernel, Is.EqualTo(linearKernel));
        Assert.That(Download<float>(actual, (long)m * n), Is.EqualTo(Download<float>(expected, (long)m * n)), $"{format} m={m}: {tiledKernel}");
    }

    [TestCase(IO.GgufTensorType.MXFP4, ScaleLayout.Linear)]
    [TestCase(IO.GgufTensorType.MXFP4, ScaleLayout.Swizzled128x4)]
    [TestCase(IO.GgufTensorType.NVFP4, ScaleLayout.Linear)]
    public void GgufBlocksRepackOnTheEnginesStream(IO.GgufTensorType type, ScaleLayout layout)
    {
        const int rows = 150, columns = 320;
        var blocks = Unit.GgufTests.RandomBlocks(type, rows, columns, seed: 9);
        var options = new QuantizationOptions(type == IO.GgufTensorType.MXFP4 ? QuantFormat.Mxfp4 : QuantFormat.Nvfp4) { Layout = layout };
        var destination = AllocateQuantized(options, rows, columns);
        float g = type == IO.GgufTensorType.NVFP4 ? 0.5f : 1f;
        ExternalCuda.RepackGguf(type, Upload(blocks), destination, _stream, g);
        Check(cuStreamSynchronize(_stream), "cuStreamSynchronize");
        using var got = DownloadQuantized(destination);
        using var expected = IO.GgufQuantized.FromBlocks(type, blocks, rows, columns, g);
        Assert.That(got.Data.ToArray(), Is.EqualTo(expected.Data.ToArray()), "codes");
        Assert.That(got.Dequantize(Backend.Reference), Is.EqualTo(expected.Dequantize(Backend.Reference)), "values");
    }

    [Test]
    public void AStreamOfAnotherContextIsRefused()
    {
        Check(cuCtxCreate_v2(out nint other, 0, _device), "cuCtxCreate"); // becomes current: make a stream in it, then pop it
        Check(cuStreamCreate(out nint foreign, 1), "cuStreamCreate");
        Check(cuCtxPopCurrent_v2(out _), "cuCtxPopCurrent");
        try
        {
            var options = new QuantizationOptions(QuantFormat.Mxfp4);
            var q = AllocateQuantized(options, 4, 64);
            var ex = Assert.Throws<MicroscaleException>(() => ExternalCuda.Quantize(Upload(new float[4 * 64]), DenseElement.Float32, q, foreign))!;
            Assert.That((ex.Status, ex.Argument), Is.EqualTo((MsStatus.InvalidArgument, "stream")));
            Assert.That(ex.Message, Does.Contain("another CUDA context"));
        }
        finally
        {
            cuCtxPushCurrent_v2(other);
            cuStreamDestroy_v2(foreign);
            cuCtxPopCurrent_v2(out _);
            cuCtxDestroy_v2(other);
        }
    }

    private static void Check(int result, string what)
    {
        if (result != 0)
            Assert.Fail($"{what} failed with CUresult {result}");
    }

    private const string Driver = "libcuda.so.1";
    [LibraryImport(Driver)] private static partial int cuInit(uint flags);
    [LibraryImport(Driver)] private static partial int cuDeviceGet(out int device, int ordinal);
    [LibraryImport(Driver)] private static partial int cuDevicePrimaryCtxRetain(out nint context, int device);
    [LibraryImport(Driver)] private static partial int cuDevicePrimaryCtxRelease_v2(int device);
    [LibraryImport(Driver)] private static partial int cuCtxCreate_v2(out nint context, uint flags, int device);
    [LibraryImport(Driver)] private static partial int cuCtxDestroy_v2(nint context);
    [LibraryImport(Driver)] private static partial int cuCtxPushCurrent_v2(nint context);
    [LibraryImport(Driver)] private static partial int cuCtxPopCurrent_v2(out nint context);
    [LibraryImport(Driver)] private static partial int cuMemAlloc_v2(out nint pointer, nuint bytes);
    [LibraryImport(Driver)] private static partial int cuMemsetD8_v2(nint pointer, byte value, nuint count);
    [LibraryImport(Driver)] private static partial int cuMemFree_v2(nint pointer);
    [LibraryImport(Driver)] private static partial int cuMemcpyHtoD_v2(nint destination, nint source, nuint bytes);
    [LibraryImport(Driver)] private static partial int cuMemcpyDtoH_v2(nint destination, nint source, nuint bytes);
    [LibraryImport(Driver)] private static partial int cuStreamCreate(out nint stream, uint flags);
    [LibraryImport(Driver)] private static partial int cuStreamSynchronize(nint stream);
    [LibraryImport(Driver)] private static partial int cuStreamDestroy_v2(nint stream);
}
