using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Microscale.Bench;

/// <summary>cuBLASLt GEMMs from native microscale_baselines (built with -DMICROSCALE_BUILD_BASELINES=ON, bench only).</summary>
internal static partial class Baselines
{
    static Baselines() => NativeLibraries.Register();

    /// <summary>dtype 0: BF16 x BF16 → BF16; 1: FP8 E4M3 x E4M3 (per-tensor scales) → BF16; 2: FP8 with row-wise scales (a [m], b [n],
    /// cuBLASLt ≥ 12.9). A [m,k], B [n,k], D [m,n] row-major. Scales are device pointers to binary32 decode scales.</summary>
    [LibraryImport(NativeLibraries.BaselinesLibrary)]
    internal static partial int msb_gemm(int dtype, int m, int n, int k, nint a, nint b, nint d, nint aScale, nint bScale,
                                         nint workspace, nuint workspaceBytes, nint stream);

    [LibraryImport(NativeLibraries.BaselinesLibrary)]
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

    /// <exception cref="InvalidOperationException">cuBLASLt refused or failed (the message says which call).</exception>
    public static void Gemm(int dtype, int m, int n, int k, nint a, nint b, nint d, nint aScale, nint bScale, nint workspace, nuint bytes, nint stream)
    {
        int status = msb_gemm(dtype, m, n, k, a, b, d, aScale, bScale, workspace, bytes, stream);
        if (status != 0)
            throw new InvalidOperationException(Marshal.PtrToStringUTF8(msb_last_error()));
    }

    /// <summary>cuBLASLt's workspace on an accelerator and its default stream, where Microscale's operations run too. Use it with
    /// the accelerator bound: cuBLASLt runs in the context current on the thread.</summary>
    internal sealed class Workspace(Accelerator accelerator) : IDisposable
    {
        private const int Bytes = 32 << 20;
        private readonly MemoryBuffer1D<byte, Stride1D.Dense> _buffer = accelerator.Allocate1D<byte>(Bytes);

        public nint Stream { get; } = ((CudaStream)accelerator.DefaultStream).StreamPtr;

        public void Gemm(int dtype, int m, int n, int k, nint a, nint b, nint d, nint aScale = 0, nint bScale = 0) =>
            Baselines.Gemm(dtype, m, n, k, a, b, d, aScale, bScale, _buffer.View.BaseView.LoadEffectiveAddressAsPtr(), Bytes, Stream);

        public void Dispose() => _buffer.Dispose();
    }
}
