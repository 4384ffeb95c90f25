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
        Assert.That(Marshal.SizeOf<MsQuantizeDesc>(), Is.EqualTo(40));
        Assert.That(Marshal.SizeOf<MsGemmDesc>(), Is.EqualTo(56));
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
    public void OlderQuantizeDescsRoundToNearestAndRoundingIsChecked()
    {
        var dst = MsQTensor.Create();
        (dst.Format, dst.Rows, dst.Cols, dst.Data, dst.BlockScales) = (0, 4, 64, 16, 16);
        // A caller built against the first ABI passes a 24-byte desc: accepted, the fields past it read as round-to-nearest
        // (whatever lies there), so the next check to fail is the NULL source's.
        var old = MsQuantizeDesc.Create();
        (old.StructSize, old.Rounding) = (24, 7);
        Assert.That(Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_quantize(old, 0, dst, 0, 0, 0)))!.Argument,
                    Is.EqualTo("src"));
        old.StructSize = 20;
        Assert.That(Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_quantize(old, 64, dst, 0, 0, 0)))!.Status,
                    Is.EqualTo(MsStatus.AbiMismatch));
        var desc = MsQuantizeDesc.Create();
        desc.Rounding = 7;
        Assert.That(Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_quantize(desc, 64, dst, 0, 0, 0)))!.Argument,
                    Is.EqualTo("desc.rounding"));
        desc.Rounding = MsAbi.RoundStochastic;
        dst.Format = 5; // mxint8: integers are never rounded stochastically
        var ex = Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_quantize(desc, 64, dst, 0, 0, 0)))!;
        Assert.That(ex.Argument, Is.EqualTo("desc"));
        Assert.That(ex.Message, Does.Contain("stochastic").And.Contain("mxint8"));
    }

    [Test]
    public unsafe void DualQuantizeArgumentsAreNamed()
    {
        var rowDesc = MsQuantizeDesc.Create();
        var colDesc = MsQuantizeDesc.Create();
        rowDesc.SrcDType = colDesc.SrcDType = 1; // bf16
        var rowDst = MsQTensor.Create();
        (rowDst.Format, rowDst.Rows, rowDst.Cols, rowDst.Data, rowDst.BlockScales) = (0, 128, 64, 256, 256);
        var colDst = rowDst;
        (colDst.Rows, colDst.Cols) = (64, 128);
        string? Argument(int rows, int cols, MsQuantizeDesc* rd, MsQTensor* r, MsQuantizeDesc* cd, MsQTensor* c)
        {
            var status = NativeMethods.ms_quantize_dual(64, rows, cols, rd, r, cd, c, 0, 0, 0);
            Assert.That(status, Is.Not.EqualTo(MsStatus.Ok));
            return Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(status))!.Argument;
        }
        Assert.That(Argument(128, 64, null, null, null, null), Is.EqualTo("row_dst"));
        Assert.That(Argument(128, 32, &rowDesc, &rowDst, null, null), Is.EqualTo("row_dst"), "row_dst must be [rows, cols]");
        Assert.That(Argument(64, 128, null, null, &colDesc, &colDst), Is.EqualTo("col_dst"), "col_dst must be [cols, rows]");
        colDesc.HadamardBlock = 64;
        Assert.That(Argument(128, 64, &rowDesc, &rowDst, &colDesc, &colDst), Is.EqualTo("col_desc"), "rotations of 16 or 32");
        colDesc.HadamardBlock = 0;
        colDesc.TwoDimensionalBlocks = 1;
        Assert.That(Argument(128, 64, &rowDesc, &rowDst, &colDesc, &colDst), Is.EqualTo("col_desc"), "2D blocks: nvfp4 rows only");
        colDesc.TwoDimensionalBlocks = 0;
        colDesc.SrcDType = 0;
        Assert.That(Argument(128, 64, &rowDesc, &rowDst, &colDesc, &colDst), Is.EqualTo("col_desc"), "one source dtype");
        colDesc.SrcDType = 1;
        colDst.Format = 2; // nvfp4 beside mxfp4
        colDst.DecodeScales = 256;
        Assert.That(Argument(128, 64, &rowDesc, &rowDst, &colDesc, &colDst), Is.EqualTo("col_dst"), "one format");
        rowDst.Format = 4; // fp8-row
        rowDst.DecodeScales = 256;
        Assert.That(Argument(128, 64, &rowDesc, &rowDst, null, null), Is.EqualTo("row_dst"), "mxfp4, mxfp8 or nvfp4 only");
        rowDst.Format = 2;
        Assert.That(Argument(128, 60, &rowDesc, &rowDst, null, null), Is.EqualTo("row_dst"));
        rowDst.Cols = 60;
        Assert.That(Argument(128, 60, &rowDesc, &rowDst, null, null), Is.EqualTo("cols"), "whole 16-byte pieces of BF16");
        rowDst.Cols = 64;
        Assert.That(Argument(128, 64, &rowDesc, &rowDst, null, null), Is.EqualTo("workspace"), "nvfp4 needs the amax workspace");
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
    public void GemmDescFlagsAreOptionalAndUnknownBitsRefused()
    {
        var desc = MsGemmDesc.Create();
        (desc.M, desc.N, desc.K) = (1, 64, 64);
        desc.Flags = MsGemmDesc.StaticWeights;
        NativeStatus.ThrowIfFailed(NativeMethods.ms_gemm_plan_create(desc, out var plan));
        plan.Dispose();
        // A caller built before `flags` existed passes the shorter struct; the field is then read as 0, whatever follows.
        desc.StructSize = 52;
        desc.Flags = 0x40;
        NativeStatus.ThrowIfFailed(NativeMethods.ms_gemm_plan_create(desc, out plan));
        plan.Dispose();
        desc.StructSize = 56;
        var ex = Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_gemm_plan_create(desc, out _)))!;
        Assert.That(ex.Status, Is.EqualTo(MsStatus.InvalidArgument));
        Assert.That(ex.Argument, Is.EqualTo("desc.flags"));
        desc.StructSize = 48;
        ex = Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_gemm_plan_create(desc, out _)))!;
        Assert.That(ex.Status, Is.EqualTo(MsStatus.AbiMismatch));
    }

    [Test]
    public void TensorSizesMatchTheManagedOnesInEveryLayout()
    {
        foreach (var format in new[] { QuantFormat.Mxfp4, QuantFormat.Nvfp4, QuantFormat.Mxfp8, QuantFormat.Fp8PerRow })
            foreach (var layout in Enum.GetValues<ScaleLayout>())
                foreach (var (rows, columns) in new[] { (1, 32), (37, 288), (130, 4096) })
                {
                    var options = new QuantizationOptions(format) { Layout = layout };
                    var t = MsQTensor.Create();
                    (t.Format, t.Layout, t.Rows, t.Cols) = ((int)format, (int)layout, rows, columns);
                    bool applies = (layout == ScaleLayout.Linear || format != QuantFormat.Fp8PerRow) &&
                                   (layout != ScaleLayout.Tiled16x128 || format is QuantFormat.Mxfp4 or QuantFormat.Nvfp4);
                    string what = $"{format} {layout} [{rows}, {columns}]";
                    if (!applies)
                    {
                        var ex = Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_qtensor_bytes(t, out _, out _)), what)!;
                        Assert.That(ex.Argument, Is.EqualTo("t"), what);
                        Assert.That(ex.Message, Does.Contain("layout"), what);
                        continue;
                    }
                    NativeStatus.ThrowIfFailed(NativeMethods.ms_qtensor_bytes(t, out nuint data, out nuint scales));
                    var spec = FormatSpec.Of(options);
                    Assert.That((long)data, Is.EqualTo(spec.DataBytes(rows, columns, layout)), what + " codes");
                    Assert.That((long)scales, Is.EqualTo(spec.BlockScaleBytes(rows, columns, layout)), what + " scales");
                }
    }

    [Test]
    public void TiledLayoutsAreCheckedByName()
    {
        var desc = MsGemmDesc.Create();
        (desc.M, desc.N, desc.K) = (1, 64, 64);
        (desc.AFormat, desc.ADType, desc.BFormat, desc.BLayout) = (MsAbi.FormatDense, 1, (int)QuantFormat.Mxfp4, MsAbi.LayoutTiled);
        NativeStatus.ThrowIfFailed(NativeMethods.ms_gemm_plan_create(desc, out var plan));
        plan.Dispose();
        desc.BFormat = (int)QuantFormat.Fp8PerRow;
        var ex = Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_gemm_plan_create(desc, out _)))!;
        Assert.That(ex.Argument, Is.EqualTo("desc.b_layout"));
        (desc.AFormat, desc.ALayout, desc.BFormat) = ((int)QuantFormat.Mxfp4, MsAbi.LayoutTiled, (int)QuantFormat.Mxfp4);
        ex = Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_gemm_plan_create(desc, out _)))!;
        Assert.That(ex.Argument, Is.EqualTo("desc.a_layout"));

        // ms_relayout checks its tensors before it needs a context: the same codes buffer on both sides is refused.
        var src = MsQTensor.Create();
        (src.Format, src.Rows, src.Cols, src.Data, src.BlockScales) = ((int)QuantFormat.Mxfp4, 16, 128, 256, 512);
        var dst = src;
        dst.Layout = MsAbi.LayoutTiled;
        ex = Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_relayout(src, dst, 0)))!;
        Assert.That(ex.Argument, Is.EqualTo("dst"));
        dst.Data = 1024;
        dst.Cols = 96;
        ex = Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_relayout(src, dst, 0)))!;
        Assert.That(ex.Message, Does.Contain("[16, 128]"));
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
