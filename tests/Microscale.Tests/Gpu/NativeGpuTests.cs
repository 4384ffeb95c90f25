using ILGPU.Runtime;
using Microscale.Interop;

namespace Microscale.Tests.Gpu;

/// <summary>Native-backend behaviour that needs the device: device query, misaligned pointers, disposed tensors.</summary>
[TestFixture]
[Category("Gpu")]
public sealed class NativeGpuTests : NativeFixture
{
    [Test]
    public void AutoPicksNativeAndTheDeviceReportsItsArchitecture()
    {
        Assert.That(MicroscaleRuntime.Resolve(Backend.Auto).Backend, Is.EqualTo(Backend.Native));
        using var device = Backends.IlgpuDevice.Create(cuda: true);
        using var binding = device.Accelerator.BindScoped();
        var (sm, families) = NativeRuntime.Query();
        Assert.That(sm, Is.GreaterThanOrEqualTo(80));
        Assert.That(families, Does.Contain("gemm_generic"));
        TestContext.Out.WriteLine($"sm_{sm}: {families}; {Context.DeviceName}");
    }

    [Test]
    public void CudaDevicesAreListedAndOrdinalsChecked()
    {
        var devices = MicroscaleRuntime.CudaDevices();
        Assert.That(devices, Is.Not.Empty);
        Assert.That(devices.Select(d => d.Ordinal), Is.EqualTo(Enumerable.Range(0, devices.Count)));
        Assert.That(devices.All(d => d.Multiprocessors > 0 && d.MemoryBytes > 0 && d.Major >= 8 && d.Name.Length > 0), string.Join("; ", devices));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => MicroscaleContext.Create(Backend.Native, devices.Count))!.ParamName, Is.EqualTo("device"));
        using var last = MicroscaleContext.Create(Backend.Native, devices.Count - 1);
        Assert.That(last.DeviceOrdinal, Is.EqualTo(devices.Count - 1));
        TestContext.Out.WriteLine(string.Join(Environment.NewLine, devices));
    }

    [Test]
    public void MisalignedDevicePointerIsRefusedByName()
    {
        using var device = Backends.IlgpuDevice.Create(cuda: true);
        using var binding = device.Accelerator.BindScoped();
        using var buffer = device.Accelerator.Allocate1D<float>(1024);
        nint address = buffer.View.BaseView.LoadEffectiveAddressAsPtr();
        var desc = MsQuantizeDesc.Create();
        var dst = MsQTensor.Create();
        (dst.Format, dst.Rows, dst.Cols, dst.Data, dst.BlockScales) = (0, 2, 32, address + 512, address + 1024);
        var ex = Assert.Throws<MicroscaleException>(() => NativeStatus.ThrowIfFailed(NativeMethods.ms_quantize(desc, address + 2, dst, 0, 0, 0)))!;
        Assert.That(ex.Status, Is.EqualTo(MsStatus.Misaligned));
        Assert.That(ex.Argument, Is.EqualTo("src"));
    }

    [Test]
    public void GemmReportsTheKernelItRanAndDisposedOperandsAreRejected()
    {
        using var a = Context.CreateTensor<float>(SeededGaussian.Create(4 * 64, 1), 4, 64);
        using var qa = Context.Quantize(a, new QuantizationOptions(QuantFormat.Mxfp4));
        var qb = Context.Quantize(a, new QuantizationOptions(QuantFormat.Mxfp4));
        using (Context.Gemm(qa, qb)) { }
        Assert.That(Context.LastGemmKernel, Does.StartWith("ms_sm80_decode_gemm_nt_")); // W4A4 at 4 tokens
        qb.Dispose();
        Assert.That(Assert.Throws<ObjectDisposedException>(() => Context.Gemm(qa, qb))!.ObjectName, Is.EqualTo("b"));
    }
}
