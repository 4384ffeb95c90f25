using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Microscale.Interop;
using Microscale.Tensors;

namespace Microscale.Backends;

/// <summary>
/// The operations of <see cref="Backend.Native"/>: libmicroscale's kernels on memory and the default stream of an ILGPU CUDA
/// accelerator, whose (non-primary) context is bound for the duration of each call. Inputs are validated by
/// <see cref="MicroscaleContext"/> first; native checks are the backstop.
/// </summary>
internal static class NativeOps
{
    /// <summary>
    /// Whether libmicroscale has kernels for these options: its formats are MXFP4, MXFP8, NVFP4, FP8 per-tensor/per-row and
    /// MXINT8, rounded to nearest or stochastically, with 1D blocks. The Native context runs everything else with the ILGPU
    /// kernels on the same CUDA device.
    /// </summary>
    public static bool Supports(QuantizationOptions options) => GemmReads(options) && !options.TwoDimensionalBlocks;

    /// <summary>Whether the dual (both orientations, one read) kernel takes a destination of these options with this rotation
    /// from a source of <paramref name="columns"/> values per row of <paramref name="sourceKind"/> (F32 or BF16): MXFP4, MXFP8,
    /// NVFP4, rotations of 16 or 32, rows of whole 16-byte pieces, non-finite policy Propagate; NVFP4 2D blocks unrotated and on
    /// the <paramref name="rowSide"/> only.</summary>
    public static bool DualTakes(QuantizationOptions options, HadamardTransform? rotation, int sourceKind, int columns, bool rowSide) =>
        options.Format is QuantFormat.Mxfp4 or QuantFormat.Mxfp8 or QuantFormat.Nvfp4 &&
        (!options.TwoDimensionalBlocks || (rowSide && rotation is null)) &&
        options.NonFinite == NonFinitePolicy.Propagate && (rotation is null || rotation.BlockSize <= 32) &&
        (sourceKind == 1 ? columns % 8 == 0 : sourceKind == 0 && columns % 4 == 0);

    /// <summary>Whether libmicroscale's GEMM reads operands of these options: its formats, however they were quantized (stochastic
    /// rounding and NVFP4 2D blocks change the bytes, not the layout: NUMERICS.md §7, §9).</summary>
    public static bool GemmReads(QuantizationOptions options) => options.Format <= QuantFormat.Fp8PerRow || options.Format == QuantFormat.Mxint8;

    private static nint Pointer<T>(TensorStorage<T> storage) where T : unmanaged =>
        storage.Length == 0 ? 0 : storage.View.LoadEffectiveAddressAsPtr();

    private static nint Stream(IlgpuDevice device) => ((CudaStream)device.Accelerator.DefaultStream).StreamPtr;

    /// <summary>The C description of a quantized tensor's parts.</summary>
    public static MsQTensor Describe(QuantizationOptions options, int rows, int columns, QuantizedTensor.Parts parts) =>
        Describe(options, rows, columns, Pointer(parts.Data), Pointer(parts.BlockScales), Pointer(parts.DecodeScales));

    /// <summary>The C description of a quantized tensor at device addresses.</summary>
    public static MsQTensor Describe(QuantizationOptions options, int rows, int columns, nint data, nint blockScales, nint decodeScales)
    {
        var t = MsQTensor.Create();
        t.Format = (int)options.Format;
        t.Element = (int)options.Element;
        t.Layout = (int)options.Layout;  // the C ABI's MS_LAYOUT_* values
        t.Rows = rows;
        t.Cols = columns;
        t.Data = data;
        t.BlockScales = blockScales;
        t.DecodeScales = decodeScales;
        return t;
    }

    /// <summary>The C description of dense activations [rows, columns] of <paramref name="kind"/> (a native dtype).</summary>
    public static MsQTensor DescribeDense(int rows, int columns, int kind, nint data)
    {
        var t = MsQTensor.Create();
        t.Format = MsAbi.FormatDense;
        t.Rows = rows;
        t.Cols = columns;
        t.DType = kind;
        t.Dense = data;
        return t;
    }

    public static MsQuantizeDesc QuantizeDesc(QuantizationOptions? options, int sourceKind, nint signs, HadamardTransform? rotation)
    {
        var desc = MsQuantizeDesc.Create();
        desc.Rule = options?.Rule == MxScaleRule.Ceil ? 1 : 0;
        desc.SrcDType = sourceKind;
        desc.HadamardBlock = rotation?.BlockSize ?? 0;
        desc.HadamardSigns = signs;
        if (options?.Rounding == RoundingMode.Stochastic)
            (desc.Rounding, desc.Seed) = (MsAbi.RoundStochastic, options.Seed);
        desc.TwoDimensionalBlocks = options?.TwoDimensionalBlocks == true ? 1 : 0;
        return desc;
    }

    /// <summary>
    /// Both orientations of <paramref name="source"/> [rows, columns] in one read: <paramref name="rowParts"/> = Quantize(source),
    /// <paramref name="columnParts"/> = Quantize(sourceᵀ); either may be null (then its options and rotation are ignored).
    /// </summary>
    public static unsafe void QuantizeDual<T>(IlgpuDevice device, TensorStorage<T> source, int sourceKind, int rows, int columns,
                                              QuantizationOptions rowOptions, HadamardTransform? rowRotation, QuantizedTensor.Parts? rowParts,
                                              QuantizationOptions columnOptions, HadamardTransform? columnRotation,
                                              QuantizedTensor.Parts? columnParts) where T : unmanaged
    {
        using var binding = device.Accelerator.BindScoped();
        nint Signs(HadamardTransform? rotation) => rotation is null ? 0 : device.Scratch.Signs(rotation).LoadEffectiveAddressAsPtr();
        var rowDesc = QuantizeDesc(rowOptions, sourceKind, Signs(rowRotation), rowRotation);
        var columnDesc = QuantizeDesc(columnOptions, sourceKind, Signs(columnRotation), columnRotation);
        var rowDst = rowParts is null ? default : Describe(rowOptions, rows, columns, rowParts);
        var columnDst = columnParts is null ? default : Describe(columnOptions, columns, rows, columnParts);
        var workspace = device.Scratch.Ints(MsAbi.QuantizeDualWorkspaceBytes / 4).LoadEffectiveAddressAsPtr();
        NativeStatus.ThrowIfFailed(NativeMethods.ms_quantize_dual(Pointer(source), rows, columns, rowParts is null ? null : &rowDesc,
                                                                  rowParts is null ? null : &rowDst, columnParts is null ? null : &columnDesc,
                                                                  columnParts is null ? null : &columnDst, workspace,
                                                                  MsAbi.QuantizeDualWorkspaceBytes, Stream(device)));
    }

    public static void Quantize<T>(IlgpuDevice device, TensorStorage<T> source, int sourceKind, int rows, int columns, QuantizationOptions options,
                                   HadamardTransform? rotation, QuantizedTensor.Parts parts) where T : unmanaged
    {
        using var binding = device.Accelerator.BindScoped();
        var desc = QuantizeDesc(options, sourceKind, rotation is null ? 0 : device.Scratch.Signs(rotation).LoadEffectiveAddressAsPtr(), rotation);
        nint src = Pointer(source);
        if (options.NonFinite == NonFinitePolicy.Throw)
        {
            NativeStatus.ThrowIfFailed(NativeMethods.ms_find_first_nonfinite(desc, src, rows, columns, device.Scratch.Ints(2).LoadEffectiveAddressAsPtr(), 8,
                                                                             Stream(device), out long first));
            if (first >= 0)
                QuantizerChecks.ThrowNonFinite((int)(first / columns), (int)(first % columns));
        }
        var dst = Describe(options, rows, columns, parts);
        NativeStatus.ThrowIfFailed(NativeMethods.ms_quantize_workspace_size(dst, desc, out nuint bytes));
        var workspace = device.Scratch.Ints(((long)bytes + 3) / 4);
        NativeStatus.ThrowIfFailed(NativeMethods.ms_quantize(desc, src, dst, workspace.LoadEffectiveAddressAsPtr(), bytes, Stream(device)));
    }

    /// <summary>GGUF MXFP4 / NVFP4 blocks already on the device into <paramref name="parts"/> (libmicroscale's repack kernel).</summary>
    public static void RepackGguf(IlgpuDevice device, int ggmlType, ArrayView<byte> blocks, QuantizationOptions options, int rows, int columns,
                                  float globalScale, QuantizedTensor.Parts parts)
    {
        using var binding = device.Accelerator.BindScoped();
        NativeStatus.ThrowIfFailed(NativeMethods.ms_gguf_repack(ggmlType, blocks.LoadEffectiveAddressAsPtr(), Describe(options, rows, columns, parts),
                                                                globalScale, Stream(device)));
    }

    public static void Dequantize(IlgpuDevice device, QuantizedTensor source, TensorStorage<float> destination)
    {
        using var binding = device.Accelerator.BindScoped();
        NativeStatus.ThrowIfFailed(NativeMethods.ms_dequantize(Describe(source.Options, source.Rows, source.Columns, source.Storage),
                                                               Pointer(destination), Stream(device)));
    }

    /// <summary>source's codes and block scales into <paramref name="destination"/> (options <paramref name="destinationOptions"/>).</summary>
    public static void Relayout(IlgpuDevice device, QuantizedTensor source, QuantizationOptions destinationOptions, QuantizedTensor.Parts destination)
    {
        using var binding = device.Accelerator.BindScoped();
        NativeStatus.ThrowIfFailed(NativeMethods.ms_relayout(Describe(source.Options, source.Rows, source.Columns, source.Storage),
                                                             Describe(destinationOptions, source.Rows, source.Columns, destination), Stream(device)));
    }

    public static void Rotate<T>(IlgpuDevice device, TensorStorage<T> source, int sourceKind, int rows, int columns, HadamardTransform rotation,
                                 TensorStorage<float> destination) where T : unmanaged
    {
        using var binding = device.Accelerator.BindScoped();
        var desc = QuantizeDesc(null, sourceKind, device.Scratch.Signs(rotation).LoadEffectiveAddressAsPtr(), rotation);
        NativeStatus.ThrowIfFailed(NativeMethods.ms_hadamard_rotate(desc, Pointer(source), rows, columns, Pointer(destination), Stream(device)));
    }

    /// <summary>The native GEMM; A is quantized, or dense of <paramref name="denseKind"/> (then <paramref name="quantizedA"/> is null).</summary>
    public static unsafe string Gemm<TOut>(IlgpuDevice device, int m, int n, int k, QuantizedTensor? quantizedA, nint denseA, int denseKind,
                                           QuantizedTensor b, TensorStorage<TOut> destination, int outputKind, GemmOptions options) where TOut : unmanaged
    {
        using var binding = device.Accelerator.BindScoped();
        var a = quantizedA is null ? DescribeDense(m, k, denseKind, denseA) : Describe(quantizedA.Options, m, k, quantizedA.Storage);
        var bias = options.Bias is null ? 0 : Pointer(options.Bias.Storage);
        // The plan's workspace (decode plans split K with it) is the scratch's zero-filled GEMM workspace.
        return RunGemm(a, Describe(b.Options, n, k, b.Storage), Pointer(destination), outputKind, options.Alpha, bias,
                       bytes => device.Scratch.GemmWorkspace(bytes).LoadEffectiveAddressAsPtr(), Stream(device), options.StaticWeights);
    }

    /// <summary>Bytes of workspace the plan for this problem can use (0: none).</summary>
    public static long GemmWorkspaceBytes(in MsQTensor a, in MsQTensor b, int outputKind, bool hasBias)
    {
        var desc = Desc(a, b, outputKind, hasBias);
        NativeStatus.ThrowIfFailed(NativeMethods.ms_gemm_plan_create(desc, out var plan));
        using (plan)
        {
            NativeStatus.ThrowIfFailed(NativeMethods.ms_gemm_plan_workspace_size(plan, out nuint bytes));
            return (long)bytes;
        }
    }

    /// <summary>The kernel libmicroscale's dispatch table picks for this problem on a device of compute capability
    /// <paramref name="sm"/> with <paramref name="multiprocessors"/> SMs (no CUDA context needed); A dense BF16 when
    /// <paramref name="a"/> is null.</summary>
    public static unsafe string GemmKernelFor(int sm, int multiprocessors, int m, int n, int k, QuantizationOptions? a, QuantizationOptions b,
                                              int outputKind, bool hasBias)
    {
        var qa = a is null ? DescribeDense(m, k, 1, 0) : Describe(a, m, k, 0, 0, 0);
        var desc = Desc(qa, Describe(b, n, k, 0, 0, 0), outputKind, hasBias);
        byte* name = stackalloc byte[256];
        NativeStatus.ThrowIfFailed(NativeMethods.ms_gemm_kernel_for(desc, sm, multiprocessors, name, 256));
        return System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)name) ?? "";
    }

    private static MsGemmDesc Desc(in MsQTensor a, in MsQTensor b, int outputKind, bool hasBias, bool staticWeights = false)
    {
        var desc = MsGemmDesc.Create();
        (desc.M, desc.N, desc.K) = (a.Rows, b.Rows, a.Cols);
        (desc.AFormat, desc.AElement, desc.ALayout, desc.ADType) = (a.Format, a.Element, a.Layout, a.DType);
        (desc.BFormat, desc.BElement, desc.BLayout) = (b.Format, b.Element, b.Layout);
        desc.OutDType = outputKind;
        desc.HasBias = hasBias ? 1 : 0;
        desc.Flags = staticWeights ? MsGemmDesc.StaticWeights : 0;
        return desc;
    }

    /// <summary>Plans and runs one native GEMM; <paramref name="workspace"/> supplies the plan's workspace when it needs one.
    /// Returns the kernel's name.</summary>
    public static unsafe string RunGemm(in MsQTensor a, in MsQTensor b, nint output, int outputKind, float alpha, nint bias,
                                        Func<long, nint> workspace, nint stream, bool staticWeights = false)
    {
        var ops = MsGemmOperands.Create();
        (ops.A, ops.B, ops.Out, ops.Alpha, ops.Bias) = (a, b, output, alpha, bias);
        var desc = Desc(a, b, outputKind, bias != 0, staticWeights);
        NativeStatus.ThrowIfFailed(NativeMethods.ms_gemm_plan_create(desc, out var plan));
        using (plan)
        {
            byte* name = stackalloc byte[256];
            NativeStatus.ThrowIfFailed(NativeMethods.ms_gemm_plan_name(plan, name, 256));
            NativeStatus.ThrowIfFailed(NativeMethods.ms_gemm_plan_workspace_size(plan, out nuint bytes));
            nint space = bytes == 0 ? 0 : workspace((long)bytes);
            NativeStatus.ThrowIfFailed(NativeMethods.ms_gemm_plan_run(plan, ops, space, stream));
            return System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)name) ?? "";
        }
    }
}
