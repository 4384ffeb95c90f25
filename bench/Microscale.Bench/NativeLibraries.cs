using System.Reflection;
using System.Runtime.InteropServices;

namespace Microscale.Bench;

/// <summary>
/// Finds the bench's native libraries. .NET allows one DllImport resolver per assembly, so every P/Invoke of the bench resolves
/// here; each class that imports calls <see cref="Register"/> from its static constructor.
/// </summary>
internal static class NativeLibraries
{
    /// <summary>cuBLASLt baselines (native/bench), from MICROSCALE_BASELINES_PATH, else the default search.</summary>
    public const string BaselinesLibrary = "microscale_baselines";

    /// <summary>The CUDA driver API. It ships with the driver (no toolkit needed) under these names; libcuda.so alone is a dev symlink.</summary>
    public const string CudaDriverLibrary = "cuda";

    static NativeLibraries() => NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);

    /// <summary>Installs the resolver: calling it runs the static constructor, once.</summary>
    public static void Register()
    {
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        string? file = name switch
        {
            BaselinesLibrary => Environment.GetEnvironmentVariable("MICROSCALE_BASELINES_PATH"),
            CudaDriverLibrary => OperatingSystem.IsWindows() ? "nvcuda.dll" : "libcuda.so.1",
            _ => null,
        };
        return file is not null && NativeLibrary.TryLoad(file, out var handle) ? handle : IntPtr.Zero;
    }
}
