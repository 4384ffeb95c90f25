using System.Runtime.InteropServices;

namespace Microscale.Interop;

/// <summary>The only place a native status becomes an exception.</summary>
internal static class NativeStatus
{
    /// <summary>Throws <see cref="MicroscaleException"/> for a failure, reading the thread-local detail right away on this thread.</summary>
    public static void ThrowIfFailed(MsStatus status)
    {
        if (status == MsStatus.Ok)
            return;
        string message = Marshal.PtrToStringUTF8(NativeMethods.ms_last_error_message()) ?? "";
        string? argument = Marshal.PtrToStringUTF8(NativeMethods.ms_last_error_argument());
        throw new MicroscaleException(status, argument, message.Length > 0 ? message : $"native call failed with {status}");
    }
}
