using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace Microscale.Interop;

/// <summary>
/// Finds libmicroscale for this assembly only: <c>MICROSCALE_NATIVE_PATH</c> (a file or folder), then
/// <c>runtimes/&lt;rid&gt;/native</c> beside the assembly, then the default probing. Every attempt goes into <see cref="Trace"/>,
/// which the load failure reports.
/// </summary>
internal static class NativeLibraryResolver
{
    private static int s_registered;
    private static readonly StringBuilder s_trace = new();

    /// <summary>What each probe tried, in order.</summary>
    public static string Trace
    {
        get { lock (s_trace) return s_trace.ToString(); }
    }

    /// <summary>Registers the resolver once for <paramref name="assembly"/> (the runtime allows one per assembly).</summary>
    public static void EnsureRegistered(Assembly assembly)
    {
        if (Interlocked.Exchange(ref s_registered, 1) == 0)
            NativeLibrary.SetDllImportResolver(assembly, Resolve);
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != NativeLibraryName.Value)
            return IntPtr.Zero;
        string fileName = OperatingSystem.IsWindows() ? "microscale.dll" : OperatingSystem.IsMacOS() ? "libmicroscale.dylib" : "libmicroscale.so";
        var candidates = new List<string>();
        string? overridePath = Environment.GetEnvironmentVariable(NativeLibraryName.PathVariable);
        if (!string.IsNullOrEmpty(overridePath))
            candidates.Add(Directory.Exists(overridePath) ? Path.Combine(overridePath, fileName) : overridePath);
        string baseDirectory = Path.GetDirectoryName(assembly.Location) is { Length: > 0 } dir ? dir : AppContext.BaseDirectory;
        candidates.Add(Path.Combine(baseDirectory, "runtimes", RuntimeInformation.RuntimeIdentifier, "native", fileName));
        candidates.Add(Path.Combine(baseDirectory, fileName));
        foreach (string candidate in candidates)
        {
            if (!File.Exists(candidate))
            {
                Log($"{candidate}: not found");
                continue;
            }
            if (NativeLibrary.TryLoad(candidate, out IntPtr handle))
            {
                Log($"{candidate}: loaded");
                return handle;
            }
            Log($"{candidate}: exists but failed to load (missing dependency or wrong architecture)");
        }
        if (NativeLibrary.TryLoad(name, assembly, searchPath, out IntPtr fallback))
        {
            Log($"default probing for '{name}': loaded");
            return fallback;
        }
        Log($"default probing for '{name}': not found");
        return IntPtr.Zero;
    }

    private static void Log(string line)
    {
        lock (s_trace)
            s_trace.AppendLine(line);
    }
}
