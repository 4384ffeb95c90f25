using System.Reflection;
using System.Runtime.InteropServices;

namespace Microscale.Bench;

/// <summary>cuBLASLt GEMMs from native microscale_baselines (built with -DMICROSCALE_BUILD_BASELINES=ON, bench only).</summary>
internal static partial class Baselines
{
    private const string Library = "microscale_baselines";

    static Baselines() => NativeLibrary.SetDllImportResolver(typeof(Baselines).Assembly, Resolve);

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != Library)
            return IntPtr.Zero;
        string? file = Environment.GetEnvironmentVariable("MICROSCALE_BASELINES_PATH");
        return file is not null && NativeLibrary.TryLoad(file, out var handle) ? handle : IntPtr.Zero;
    }

    /// <summary>dtype 0: BF16 x BF16 → BF16; 1: FP8 E4M3 x E4M3 (per-tensor scales) → BF16. A [m,k], B [n,k], D [m,n] row-major.</summary>
    [LibraryImport(Library)]
    internal static partial int msb_gemm(int dtype, int m, int n, int k, nint a, nint b, nint d, nint aScale, nint bScale,
                                         nint workspace, nuint workspaceBytes, nint stream);

    [LibraryImport(Library)]
    internal static partial nint msb_last_error();

    public static bool IsAvailable
    {
        get
        {
            try
            {
                _ = msb_last_error();
                return true;
            }
            catch (DllNotFoundException)
            {
                return false;
            }
        }
    }

    public static void Gemm(int dtype, int m, int n, int k, nint a, nint b, nint d, nint aScale, nint bScale, nint workspace, nuint bytes, nint stream)
    {
        int status = msb_gemm(dtype, m, n, k, a, b, d, aScale, bScale, workspace, bytes, stream);
        if (status != 0)
            throw new InvalidOperationException(Marshal.PtrToStringUTF8(msb_last_error()));
    }
}
