namespace Microscale.IO;

/// <summary>ggml tensor types as stored in GGUF tensor infos (ggml.h, ggml-org/ggml d99724f2, 2026-08-21): names and values
/// are ggml's <c>GGML_TYPE_*</c>.</summary>
#pragma warning disable CS1591 // the members are ggml's type names
public enum GgufTensorType
{
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
    I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35,
    /// <summary>Blocks of 32 E2M1 values: 1 byte E8M0 scale, then 16 bytes; value j in the low nibble of byte j, value j + 16 in its high nibble.</summary>
    MXFP4 = 39,
    /// <summary>Blocks of 64 E2M1 values: 4 UE4M3 scales (one per 16), then 32 bytes; sub-block s uses bytes 8s..8s+7, value 16s + j
    /// in the low nibble of byte 8s + j, value 16s + j + 8 in its high nibble. No tensor scale (llama.cpp stores one beside, as <c>NAME.scale</c>).</summary>
    NVFP4 = 40,
    Q1_0 = 41, Q2_0 = 42,
}

/// <summary>GGUF metadata value types (gguf.h <c>GGUF_TYPE_*</c>).</summary>
public enum GgufValueType
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7, String = 8, Array = 9,
    UInt64 = 10, Int64 = 11, Float64 = 12,
}
#pragma warning restore CS1591

/// <summary>A GGUF metadata value: a scalar (byte, sbyte, ushort, short, uint, int, float, bool, string, ulong, long, double)
/// or, for <see cref="GgufValueType.Array"/>, an <see cref="Array"/> of <see cref="ElementType"/> (string[] for strings).</summary>
/// <param name="Type">The stored type.</param>
/// <param name="Value">The value.</param>
/// <param name="ElementType">The element type of an array; equal to <paramref name="Type"/> otherwise.</param>
public sealed record GgufValue(GgufValueType Type, object Value, GgufValueType ElementType)
{
    /// <summary>A scalar value.</summary>
    public GgufValue(GgufValueType type, object value)
        : this(type, value, type)
    {
    }

    /// <inheritdoc/>
    public override string ToString() => Value is System.Array a ? $"{ElementType}[{a.Length}]" : $"{Value}";
}

/// <summary>One tensor of a GGUF file.</summary>
/// <param name="Name">Its name.</param>
/// <param name="Dimensions">ggml order: <c>Dimensions[0]</c> varies fastest (the row length, K of a weight), then rows, then
/// further dimensions (for example experts).</param>
/// <param name="Type">Its ggml type.</param>
/// <param name="DataOffset">Offset of its bytes from the start of the data section.</param>
/// <param name="ByteLength">Its size in bytes.</param>
public sealed record GgufTensorInfo(string Name, IReadOnlyList<long> Dimensions, GgufTensorType Type, long DataOffset, long ByteLength)
{
    /// <summary>Elements per row: <c>Dimensions[0]</c> (1 for a scalar).</summary>
    public long RowLength => Dimensions.Count > 0 ? Dimensions[0] : 1;

    /// <summary>Rows: the product of the other dimensions.</summary>
    public long Rows => Dimensions.Skip(1).Aggregate(1L, (a, b) => a * b);

    /// <summary>Values per block and bytes per block of a ggml type (ggml.c type_traits); (0, 0) for ids ggml does not define.</summary>
    public static (int BlockSize, int TypeSize) Traits(GgufTensorType type) => type switch
    {
        GgufTensorType.F32 or GgufTensorType.I32 => (1, 4),
        GgufTensorType.F16 or GgufTensorType.BF16 or GgufTensorType.I16 => (1, 2),
        GgufTensorType.F64 or GgufTensorType.I64 => (1, 8),
        GgufTensorType.I8 => (1, 1),
        GgufTensorType.Q4_0 or GgufTensorType.IQ4_NL => (32, 18),
        GgufTensorType.Q4_1 => (32, 20),
        GgufTensorType.Q5_0 => (32, 22),
        GgufTensorType.Q5_1 => (32, 24),
        GgufTensorType.Q8_0 => (32, 34),
        GgufTensorType.Q8_1 => (32, 36),
        GgufTensorType.MXFP4 => (32, 17),
        GgufTensorType.NVFP4 => (64, 36),
        GgufTensorType.Q1_0 => (128, 18),
        GgufTensorType.Q2_0 => (64, 18),
        GgufTensorType.Q2_K => (256, 84),
        GgufTensorType.Q3_K or GgufTensorType.IQ3_S => (256, 110),
        GgufTensorType.Q4_K => (256, 144),
        GgufTensorType.Q5_K => (256, 176),
        GgufTensorType.Q6_K => (256, 210),
        GgufTensorType.Q8_K => (256, 292),
        GgufTensorType.IQ2_XXS or GgufTensorType.TQ2_0 => (256, 66),
        GgufTensorType.IQ2_XS => (256, 74),
        GgufTensorType.IQ3_XXS => (256, 98),
        GgufTensorType.IQ2_S => (256, 82),
        GgufTensorType.IQ1_S => (256, 50),
        GgufTensorType.IQ1_M => (256, 56),
        GgufTensorType.IQ4_XS => (256, 136),
        GgufTensorType.TQ1_0 => (256, 54),
        _ => (0, 0),
    };
}
