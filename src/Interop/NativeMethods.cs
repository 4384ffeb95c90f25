using System.Runtime.InteropServices;

namespace Microscale.Interop;

/// <summary>The C ABI of native/include/microscale.h, one method per function with the C name verbatim.</summary>
internal static unsafe partial class NativeMethods
{
    static NativeMethods() => NativeLibraryResolver.EnsureRegistered(typeof(NativeMethods).Assembly);

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial int ms_abi_version();

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial nint ms_version();

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial nint ms_last_error_message();

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial nint ms_last_error_argument();

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial MsStatus ms_query(out int sm, byte* families, nuint familiesCapacity);

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial MsStatus ms_quantize_workspace_size(in MsQTensor dst, in MsQuantizeDesc desc, out nuint bytes);

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial MsStatus ms_quantize(in MsQuantizeDesc desc, nint src, in MsQTensor dst, nint workspace, nuint workspaceBytes, nint stream);

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial MsStatus ms_quantize_dual(nint src, int rows, int cols, MsQuantizeDesc* rowDesc, MsQTensor* rowDst, MsQuantizeDesc* colDesc,
                                                      MsQTensor* colDst, nint workspace, nuint workspaceBytes, nint stream);

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial MsStatus ms_find_first_nonfinite(in MsQuantizeDesc desc, nint src, int rows, int cols, nint workspace,
                                                             nuint workspaceBytes, nint stream, out long index);

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial MsStatus ms_dequantize(in MsQTensor src, nint dst, nint stream);

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial MsStatus ms_hadamard_rotate(in MsQuantizeDesc desc, nint src, int rows, int cols, nint dst, nint stream);

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial MsStatus ms_qtensor_bytes(in MsQTensor t, out nuint dataBytes, out nuint scaleBytes);

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial MsStatus ms_relayout(in MsQTensor src, in MsQTensor dst, nint stream);

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial MsStatus ms_gguf_repack(int ggmlType, nint src, in MsQTensor dst, float globalScale, nint stream);

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial MsStatus ms_gemm_plan_create(in MsGemmDesc desc, out GemmPlanHandle plan);

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial MsStatus ms_gemm_kernel_for(in MsGemmDesc desc, int sm, int multiprocessors, byte* name, nuint capacity);

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial MsStatus ms_gemm_plan_name(GemmPlanHandle plan, byte* name, nuint capacity);

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial MsStatus ms_gemm_plan_workspace_size(GemmPlanHandle plan, out nuint bytes);

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial MsStatus ms_gemm_plan_run(GemmPlanHandle plan, in MsGemmOperands ops, nint workspace, nint stream);

    [LibraryImport(NativeLibraryName.Value)]
    internal static partial void ms_gemm_plan_destroy(nint plan);
}
