using System.Runtime.InteropServices;

namespace Microscale.Tests;

/// <summary>Free device memory of a context's GPU (the driver's cuMemGetInfo, with the context bound), for leak checks.</summary>
internal static partial class DeviceMemoryProbe
{
    public static long FreeBytes(MicroscaleContext context)
    {
        using var binding = context.Accelerator!.BindScoped();
        return cuMemGetInfo_v2(out nuint free, out _) == 0 ? (long)free : -1;
    }

    [LibraryImport("libcuda.so.1")]
    private static partial int cuMemGetInfo_v2(out nuint free, out nuint total);
}
