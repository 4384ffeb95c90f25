using System.Runtime.InteropServices;

namespace Microscale.Bench;

/// <summary>
/// A few CUDA events (driver API) for timing work on a stream on the GPU's own clock. Events belong to the context current on
/// the calling thread: create, record and read them with the accelerator bound (<c>accelerator.BindScoped()</c>).
/// </summary>
internal sealed partial class CudaEvents : IDisposable
{
    private readonly nint[] _events;

    static CudaEvents() => NativeLibraries.Register();

    public CudaEvents(int count)
    {
        _events = new nint[count];
        try
        {
            for (int i = 0; i < count; i++)
                Check(cuEventCreate(out _events[i], 0), nameof(cuEventCreate)); // flags 0: CU_EVENT_DEFAULT, timing enabled
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Enqueues event <paramref name="index"/> on <paramref name="stream"/>.</summary>
    public void Record(int index, nint stream) => Check(cuEventRecord(_events[index], stream), nameof(cuEventRecord));

    /// <summary>Waits until event <paramref name="index"/> has completed.</summary>
    public void Synchronize(int index) => Check(cuEventSynchronize(_events[index]), nameof(cuEventSynchronize));

    /// <summary>GPU time in milliseconds from event <paramref name="start"/> to event <paramref name="end"/> (both completed).</summary>
    public double ElapsedMilliseconds(int start, int end)
    {
        Check(cuEventElapsedTime(out float ms, _events[start], _events[end]), nameof(cuEventElapsedTime));
        return ms;
    }

    public void Dispose()
    {
        for (int i = 0; i < _events.Length; i++)
        {
            if (_events[i] != 0)
                _ = cuEventDestroy_v2(_events[i]); // never throws: a failed destroy only leaks one event
            _events[i] = 0;
        }
    }

    private static void Check(int result, string function)
    {
        if (result != 0)
            throw new InvalidOperationException($"CUDA driver {function} failed: CUresult {result} ({ErrorName(result)}).");
    }

    private static string ErrorName(int result) =>
        cuGetErrorName(result, out nint name) == 0 && Marshal.PtrToStringUTF8(name) is { } text ? text : "unknown error";

    [LibraryImport(NativeLibraries.CudaDriverLibrary)]
    private static partial int cuEventCreate(out nint phEvent, uint flags);

    [LibraryImport(NativeLibraries.CudaDriverLibrary)]
    private static partial int cuEventRecord(nint hEvent, nint hStream);

    [LibraryImport(NativeLibraries.CudaDriverLibrary)]
    private static partial int cuEventSynchronize(nint hEvent);

    [LibraryImport(NativeLibraries.CudaDriverLibrary)]
    private static partial int cuEventElapsedTime(out float pMilliseconds, nint hStart, nint hEnd);

    [LibraryImport(NativeLibraries.CudaDriverLibrary)]
    private static partial int cuEventDestroy_v2(nint hEvent);

    [LibraryImport(NativeLibraries.CudaDriverLibrary)]
    private static partial int cuGetErrorName(int error, out nint pStr);
}
