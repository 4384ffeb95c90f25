using System.Runtime.InteropServices;

namespace Microscale.Interop;

/// <summary>Whether libmicroscale loads here and matches our ABI, and why not (probed once).</summary>
internal static class NativeRuntime
{
    private static readonly Lazy<string> s_problem = new(Probe, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>True when the library loaded and its ABI version matches.</summary>
    public static bool IsAvailable => s_problem.Value.Length == 0;

    /// <summary>Empty when available; else what went wrong, with the loader's probe trace.</summary>
    public static string Problem => s_problem.Value;

    /// <summary>The library's version string (empty when unavailable).</summary>
    public static string Version => IsAvailable ? Marshal.PtrToStringUTF8(NativeMethods.ms_version()) ?? "" : "";

    private static string Probe()
    {
        try
        {
            int abi = NativeMethods.ms_abi_version();
            return abi == MsAbi.Version ? "" : $"libmicroscale ABI {abi} differs from the managed ABI {MsAbi.Version}";
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return $"libmicroscale not loaded ({ex.GetType().Name}). Probes:{Environment.NewLine}{NativeLibraryResolver.Trace}".TrimEnd();
        }
    }

    /// <summary>The current context's compute capability and kernel families (needs a bound CUDA context).</summary>
    public static unsafe (int Sm, string Families) Query()
    {
        byte* buffer = stackalloc byte[512];
        NativeStatus.ThrowIfFailed(NativeMethods.ms_query(out int sm, buffer, 512));
        return (sm, Marshal.PtrToStringUTF8((nint)buffer) ?? "");
    }
}
