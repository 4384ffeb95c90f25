namespace Microscale.Interop;

/// <summary>The one name of the native library (libmicroscale.so / microscale.dll).</summary>
internal static class NativeLibraryName
{
    public const string Value = "microscale";

    /// <summary>Environment variable naming the library file (or its folder) to load first.</summary>
    public const string PathVariable = "MICROSCALE_NATIVE_PATH";
}
