using System.Runtime.InteropServices;
using Microscale.Interop;

namespace Microscale.Tests.Interop;

/// <summary>
/// libmicroscale loads (no GPU needed: cudart is static and the driver is opened lazily), its ABI matches, and statuses come
/// back as <see cref="MicroscaleException"/>s naming the C argument. Ignored, with the loader's trace, where the library was
/// not built (set MICROSCALE_NATIVE_PATH).
/// </summary>
[TestFixture]
[Category("Interop")]
public sealed class NativeAbiTests
{
    [SetUp]
    public void RequireLibrary()
    {
        if (!NativeRuntime.IsAvailable)
            Assert.Ignore(NativeRuntime.Problem);
    }

    [Test]
    public void AbiAndStructSizesMatchTheHeader()
    {
        Assert.That(NativeMethods.ms_abi_version(), Is.EqualTo(MsAbi.Version));
        Assert.That(NativeRuntime.Version, Does.Match(@"^\d+\.\d+\.\d+"));
        // Sizes of the C structs on LP64 (microscale.h): a change here is an ABI break.
        Assert.That(Marshal.SizeOf<MsQTensor>(), Is.EqualTo(64));
        Assert.That(Marshal.SizeOf<MsQuantizeDesc>(), Is.EqualTo(24));
        Assert.That(Marshal.SizeOf<MsGemmDesc>(), Is.EqualTo(52));
        Assert.That(Marshal.SizeOf<MsGemmOperands>(), Is.EqualTo(152));
    }

    [Test]
    public void InvalidArgumentsNameTheArgumentBeforeAnyCudaCall()
    {
        var desc = MsQuantizeDesc.Create();
        var dst = MsQTensor.Create();
        dst.Format = 2; // nvfp4
        dst.Rows = 4;
        dst.Cols = 64;
        dst.Data = 16;
        dst.BlockScales = 16;
        dst.DecodeScales = 16;
        var ex = Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_quantize(desc, 0, dst, 0, 0, 0)))!;
        Assert.That(ex.Status, Is.EqualTo(MsStatus.InvalidArgument));
        Assert.That(ex.Argument, Is.EqualTo("src"));

        dst.DecodeScales = 18; // not 4-byte aligned
        ex = Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_quantize(desc, 64, dst, 0, 0, 0)))!;
        Assert.That(ex.Status, Is.EqualTo(MsStatus.Misaligned));

        var small = dst;
        small.StructSize = 8;
        ex = Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_quantize(desc, 64, small, 0, 0, 0)))!;
        Assert.That(ex.Status, Is.EqualTo(MsStatus.AbiMismatch));

        desc.HadamardBlock = 24;
        dst.DecodeScales = 16;
        ex = Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_quantize(desc, 64, dst, 16, 4, 0)))!;
        Assert.That(ex.Argument, Is.EqualTo("desc.hadamard_block"));
        Assert.That(ex.Message, Does.Contain("24"));
    }

    [Test]
    public void UnsupportedPairsAreRefusedAtPlanCreation()
    {
        var desc = MsGemmDesc.Create();
        (desc.M, desc.N, desc.K) = (1, 1, 32);
        (desc.AFormat, desc.BFormat) = (0, 4); // mxfp4 x fp8-row
        var ex = Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_gemm_plan_create(desc, out _)))!;
        Assert.That(ex.Status, Is.EqualTo(MsStatus.Unsupported));
        Assert.That(ex.Message, Does.Contain("mxfp4").And.Contain("fp8-row"));

        (desc.AFormat, desc.BFormat) = (0, 0);
        NativeStatus.ThrowIfFailed(NativeMethods.ms_gemm_plan_create(desc, out var plan));
        using (plan)
            Assert.That(plan.IsInvalid, Is.False);
        desc.M = 0;
        ex = Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_gemm_plan_create(desc, out _)))!;
        Assert.That(ex.Message, Does.Contain("m, n, k"));
    }

    [Test]
    public void WithoutABoundContextTheLibraryRefusesInsteadOfCreatingOne()
    {
        // This thread has no CUDA context (and CI has no driver at all): a launch must fail cleanly, never create one.
        var desc = MsQuantizeDesc.Create();
        var dst = MsQTensor.Create();
        (dst.Format, dst.Rows, dst.Cols, dst.Data, dst.BlockScales) = (0, 1, 32, 16, 16);
        MicroscaleException? ex = null;
        var thread = new Thread(() => ex = Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_quantize(desc, 64, dst, 0, 0, 0))));
        thread.Start();
        thread.Join();
        Assert.That(ex!.Status, Is.EqualTo(MsStatus.Cuda));
        Assert.That(ex.Message, Does.Contain("context").Or.Contain("libcuda"));
    }
}
