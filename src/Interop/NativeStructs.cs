using System.Runtime.InteropServices;

namespace Microscale.Interop;

// Mirrors of the structs in native/include/microscale.h: same fields, same order, blittable. Keep in sync.

/// <summary><c>ms_qtensor_t</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct MsQTensor
{
    public uint StructSize;
    public int Format;
    public int Element;
    public int Layout;
    public int Rows;
    public int Cols;
    public int DType;
    public int Reserved;
    public nint Data;
    public nint BlockScales;
    public nint DecodeScales;
    public nint Dense;

    public static MsQTensor Create() => new() { StructSize = (uint)Marshal.SizeOf<MsQTensor>() };
}

/// <summary><c>ms_quantize_desc_t</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct MsQuantizeDesc
{
    public uint StructSize;
    public int Rule;
    public int SrcDType;
    public int HadamardBlock;
    public nint HadamardSigns;
    public int Rounding;
    public int TwoDimensionalBlocks;
    public ulong Seed;

    public static MsQuantizeDesc Create() => new() { StructSize = (uint)Marshal.SizeOf<MsQuantizeDesc>() };
}

/// <summary><c>ms_gemm_desc_t</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct MsGemmDesc
{
    public uint StructSize;
    public int M, N, K;
    public int AFormat, AElement, ALayout, ADType;
    public int BFormat, BElement, BLayout;
    public int OutDType;
    public int HasBias;
    public int Flags;

    /// <summary><c>MS_GEMM_STATIC_WEIGHTS</c>.</summary>
    public const int StaticWeights = 1;

    public static MsGemmDesc Create() => new() { StructSize = (uint)Marshal.SizeOf<MsGemmDesc>() };
}

/// <summary><c>ms_gemm_operands_t</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct MsGemmOperands
{
    public uint StructSize;
    public float Alpha;
    public MsQTensor A;
    public MsQTensor B;
    public nint Out;
    public nint Bias;

    public static MsGemmOperands Create() => new() { StructSize = (uint)Marshal.SizeOf<MsGemmOperands>() };
}

/// <summary>Constants of the C ABI (microscale.h).</summary>
internal static class MsAbi
{
    public const int Version = 1;
    public const int FormatDense = -1;
    public const int LayoutSwizzled = 1;
    public const int LayoutTiled = 2;
    public const int RoundStochastic = 1;
    public const int QuantizeDualWorkspaceBytes = 8;
}
