using System.Diagnostics.CodeAnalysis;

namespace Microscale.IO;

/// <summary>
/// The element types of a safetensors file that this library reads and writes. The member names are exactly the
/// <c>"dtype"</c> strings of the format (case-sensitive), e.g. <c>"F8_E4M3"</c>.
/// </summary>
public enum SafeTensorsDType
{
    /// <summary>IEEE binary64, 8 bytes (<see cref="double"/>).</summary>
    F64,
    /// <summary>IEEE binary32, 4 bytes (<see cref="float"/>).</summary>
    F32,
    /// <summary>IEEE binary16, 2 bytes (<see cref="System.Half"/>).</summary>
    F16,
    /// <summary>bfloat16, 2 bytes (<see cref="BFloat16"/>).</summary>
    BF16,
    /// <summary>Signed 32-bit integer, 4 bytes (<see cref="int"/>).</summary>
    I32,
    /// <summary>Signed 64-bit integer, 8 bytes (<see cref="long"/>).</summary>
    I64,
    /// <summary>Unsigned 8-bit integer, 1 byte (<see cref="byte"/>).</summary>
    U8,
    /// <summary>Unsigned 16-bit integer, 2 bytes (<see cref="ushort"/>).</summary>
    U16,
    /// <summary>OCP FP8 E4M3FN, 1 byte (<see cref="byte"/> codes or <see cref="Float8E4M3"/>).</summary>
    F8_E4M3,
    /// <summary>OCP FP8 E5M2, 1 byte (<see cref="byte"/> codes or <see cref="Float8E5M2"/>).</summary>
    F8_E5M2,
}

/// <summary>Helpers for <see cref="SafeTensorsDType"/>.</summary>
public static class SafeTensorsDTypeExtensions
{
    /// <summary>The size of one element in bytes.</summary>
    /// <param name="dtype">The element type.</param>
    /// <returns>1, 2, 4 or 8.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dtype"/> is not a defined value.</exception>
    public static int ElementSize(this SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.F64 or SafeTensorsDType.I64 => 8,
        SafeTensorsDType.F32 or SafeTensorsDType.I32 => 4,
        SafeTensorsDType.F16 or SafeTensorsDType.BF16 or SafeTensorsDType.U16 => 2,
        SafeTensorsDType.U8 or SafeTensorsDType.F8_E4M3 or SafeTensorsDType.F8_E5M2 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, $"Not a defined {nameof(SafeTensorsDType)}."),
    };

    /// <summary>The <c>"dtype"</c> string written in a safetensors header, e.g. <c>"BF16"</c>.</summary>
    /// <param name="dtype">The element type.</param>
    /// <returns>The format's name of <paramref name="dtype"/>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dtype"/> is not a defined value.</exception>
    public static string ToFormatString(this SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.F64 => "F64",
        SafeTensorsDType.F32 => "F32",
        SafeTensorsDType.F16 => "F16",
        SafeTensorsDType.BF16 => "BF16",
        SafeTensorsDType.I32 => "I32",
        SafeTensorsDType.I64 => "I64",
        SafeTensorsDType.U8 => "U8",
        SafeTensorsDType.U16 => "U16",
        SafeTensorsDType.F8_E4M3 => "F8_E4M3",
        SafeTensorsDType.F8_E5M2 => "F8_E5M2",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, $"Not a defined {nameof(SafeTensorsDType)}."),
    };

    /// <summary>Parses a header <c>"dtype"</c> string exactly (case-sensitive; no numbers, no aliases).</summary>
    internal static bool TryParse(string text, out SafeTensorsDType dtype)
    {
        switch (text)
        {
            case "F64": dtype = SafeTensorsDType.F64; return true;
            case "F32": dtype = SafeTensorsDType.F32; return true;
            case "F16": dtype = SafeTensorsDType.F16; return true;
            case "BF16": dtype = SafeTensorsDType.BF16; return true;
            case "I32": dtype = SafeTensorsDType.I32; return true;
            case "I64": dtype = SafeTensorsDType.I64; return true;
            case "U8": dtype = SafeTensorsDType.U8; return true;
            case "U16": dtype = SafeTensorsDType.U16; return true;
            case "F8_E4M3": dtype = SafeTensorsDType.F8_E4M3; return true;
            case "F8_E5M2": dtype = SafeTensorsDType.F8_E5M2; return true;
            default: dtype = default; return false;
        }
    }

    /// <summary>True when elements of type <typeparamref name="T"/> may be read from or written as <paramref name="dtype"/>.</summary>
    internal static bool IsCompatible<T>(SafeTensorsDType dtype) where T : unmanaged => dtype switch
    {
        SafeTensorsDType.F64 => typeof(T) == typeof(double),
        SafeTensorsDType.F32 => typeof(T) == typeof(float),
        SafeTensorsDType.F16 => typeof(T) == typeof(Half),
        SafeTensorsDType.BF16 => typeof(T) == typeof(BFloat16) || typeof(T) == typeof(ushort),
        SafeTensorsDType.I32 => typeof(T) == typeof(int),
        SafeTensorsDType.I64 => typeof(T) == typeof(long),
        SafeTensorsDType.U8 => typeof(T) == typeof(byte),
        SafeTensorsDType.U16 => typeof(T) == typeof(ushort),
        SafeTensorsDType.F8_E4M3 => typeof(T) == typeof(byte) || typeof(T) == typeof(Float8E4M3),
        SafeTensorsDType.F8_E5M2 => typeof(T) == typeof(byte) || typeof(T) == typeof(Float8E5M2),
        _ => false,
    };

    /// <summary>The .NET element types accepted for <paramref name="dtype"/>, for error messages.</summary>
    internal static string CompatibleTypeNames(SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.F64 => "double",
        SafeTensorsDType.F32 => "float",
        SafeTensorsDType.F16 => "System.Half",
        SafeTensorsDType.BF16 => "Microscale.BFloat16 or ushort",
        SafeTensorsDType.I32 => "int",
        SafeTensorsDType.I64 => "long",
        SafeTensorsDType.U8 => "byte",
        SafeTensorsDType.U16 => "ushort",
        SafeTensorsDType.F8_E4M3 => "byte or Microscale.Float8E4M3",
        SafeTensorsDType.F8_E5M2 => "byte or Microscale.Float8E5M2",
        _ => "(none)",
    };

    /// <summary>The dtype that <c>SafeTensorsWriter.Add&lt;T&gt;</c> infers from <typeparamref name="T"/>.</summary>
    internal static bool TryInfer<T>([NotNullWhen(true)] out SafeTensorsDType? dtype) where T : unmanaged
    {
        dtype = typeof(T) == typeof(double) ? SafeTensorsDType.F64
            : typeof(T) == typeof(float) ? SafeTensorsDType.F32
            : typeof(T) == typeof(Half) ? SafeTensorsDType.F16
            : typeof(T) == typeof(BFloat16) ? SafeTensorsDType.BF16
            : typeof(T) == typeof(int) ? SafeTensorsDType.I32
            : typeof(T) == typeof(long) ? SafeTensorsDType.I64
            : typeof(T) == typeof(byte) ? SafeTensorsDType.U8
            : typeof(T) == typeof(ushort) ? SafeTensorsDType.U16
            : typeof(T) == typeof(Float8E4M3) ? SafeTensorsDType.F8_E4M3
            : typeof(T) == typeof(Float8E5M2) ? SafeTensorsDType.F8_E5M2
            : null;
        return dtype is not null;
    }

    /// <summary>Product of the dimensions, with checked overflow; null when a dimension is negative.</summary>
    /// <exception cref="OverflowException">The product does not fit in a <see cref="long"/>.</exception>
    internal static long? ElementCountOf(ReadOnlySpan<long> shape)
    {
        foreach (long d in shape)
        {
            if (d < 0)
                return null;
            if (d == 0)
                return 0; // zero-element tensors are valid whatever the other dimensions are
        }
        long count = 1;
        foreach (long d in shape)
            count = checked(count * d);
        return count;
    }

    /// <summary>The little-endian check every entry point makes.</summary>
    /// <exception cref="PlatformNotSupportedException">The host is big-endian.</exception>
    internal static void EnsureLittleEndian()
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors data is little-endian; Microscale.IO supports little-endian hosts only.");
    }
}
