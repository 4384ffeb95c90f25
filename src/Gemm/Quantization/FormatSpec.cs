using ILGPU;
using Microscale.Formats;

namespace Microscale;

/// <summary>Element kinds as plain integers, so ILGPU kernels can branch on them.</summary>
internal static class ElementKind
{
    public const int E2M1 = 0;
    public const int E4M3 = 1;
    public const int E5M2 = 2;
    public const int Int8 = 3;
    public const int Int6 = 4;
    public const int Int4 = 5;

    public static bool IsInteger(int kind) => kind >= Int8;

    /// <summary>Round-half-even of a finite binary32 value to an integer, clamped to ±qmax (magic-number rounding: |v| ≤ 2^22 is exact).</summary>
    private static int RoundToInt(float v, int qmax)
    {
        float a = MathF.Abs(v);
        if (a > 4194304.0f)
            a = 4194304.0f;
        float r = (a + 12582912.0f) - 12582912.0f;
        int q = r > qmax ? qmax : (int)r;
        return v < 0 ? -q : q;
    }

    /// <summary>binary32 → element code, RNE, satfinite (NUMERICS.md §1).</summary>
    public static uint Encode(float value, int kind) => kind switch
    {
        E2M1 => FloatBits.ToE2M1(value),
        E4M3 => FloatBits.ToE4M3Saturate(value),
        E5M2 => FloatBits.ToE5M2Saturate(value),
        Int4 => (uint)RoundToInt(value, 7) & 0xFu,
        _ => (uint)RoundToInt(value, (int)MaxValue(kind)) & 0xFFu, // two's complement byte (6-bit values sign-extended)
    };

    /// <summary>Element code → binary32.</summary>
    public static float Decode(uint code, int kind) => kind switch
    {
        E2M1 => FloatBits.FromE2M1(code),
        E4M3 => FloatBits.FromE4M3(code),
        E5M2 => FloatBits.FromE5M2(code),
        Int4 => ((int)(code << 28)) >> 28,
        _ => ((int)(code << 24)) >> 24, // sign-extend with shifts: ILGPU's PTX backend decoded (sbyte)(byte)code wrongly (H100, 2026-11-23)
    };

    /// <summary>Largest finite element value.</summary>
    public static float MaxValue(int kind) => kind switch
    {
        E2M1 => 6.0f, E4M3 => 448.0f, E5M2 => 57344.0f, Int8 => 127.0f, Int6 => 31.0f, _ => 7.0f,
    };

    /// <summary>The exponent the MX floor rule subtracts: emax_elem for FP elements (OCP), b − 2 for b-bit integers (NUMERICS.md §8).</summary>
    public static int MaxExponent(int kind) => kind switch { E2M1 => 2, E4M3 => 8, E5M2 => 15, Int8 => 6, Int6 => 4, _ => 2 };
}

/// <summary>
/// The scale rules of NUMERICS.md §3 as pure functions, shared by the managed reference and the ILGPU kernels.
/// </summary>
internal static class ScaleRules
{
    public const uint E8M0Nan = 0xFF;
    public const uint UE4M3Nan = 0x7F;
    public const int RuleFloor = 0;
    public const int RuleCeil = 1;

    /// <summary>Unclamped-then-clamped MX exponent e for a block with finite amax &gt; 0.</summary>
    public static int MxExponent(float amax, int rule, int elementKind)
    {
        int e;
        if (rule == RuleFloor)
        {
            e = FloatBits.FloorLog2(amax) - ElementKind.MaxExponent(elementKind);
        }
        else
        {
            float t = amax / ElementKind.MaxValue(elementKind);
            e = t == 0.0f ? -127 : FloatBits.CeilLog2(t);
        }
        return e < -127 ? -127 : e > 127 ? 127 : e;
    }

    /// <summary>Per-tensor (or per-row) decode scale g = T / max, or 1 when g is not a normal binary32.</summary>
    public static float TensorDecodeScale(float amax, float maxValue)
    {
        float g = amax / maxValue;
        return g >= 1.17549435E-38f ? g : 1.0f; // also false for NaN
    }

    /// <summary>NVFP4 / NVINT4 block scale code: UE4M3 satfinite of (amax_b / max_elem) / g (max_elem 6 or 7).</summary>
    public static uint NvBlockScale(float blockAmax, float g, int elementKind) => FloatBits.ToUE4M3(blockAmax / ElementKind.MaxValue(elementKind) / g);

    /// <summary>Scale families as integers for kernels: MX (E8M0 per 32), NV (UE4M3 per 16 × g), FP8 per-tensor/row.</summary>
    public const int FamilyMx = 0, FamilyNv = 1, FamilyScaled = 2;

    /// <summary>Byte offset of scale (row, scaleColumn) in the 128×4 swizzled layout.</summary>
    public static int SwizzledOffset(int row, int scaleColumn, int paddedScaleColumns) =>
        ((row >> 7) * (paddedScaleColumns >> 2) + (scaleColumn >> 2)) * 512 + (row & 31) * 16 + ((row & 127) >> 5) * 4 + (scaleColumn & 3);

    /// <summary>Byte offset of scale (row, scaleColumn) in either layout.</summary>
    public static int ScaleOffset(int row, int scaleColumn, int scaleColumns, bool swizzled) =>
        swizzled ? SwizzledOffset(row, scaleColumn, RoundUp(scaleColumns, 4)) : row * scaleColumns + scaleColumn;

    public static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;

    /// <summary>Layouts as integers for kernels (the <see cref="ScaleLayout"/> values, which the C ABI shares).</summary>
    public const int LayoutLinear = 0, LayoutSwizzled = 1, LayoutTiled = 2;

    /// <summary>Tiles of 16 × 128 along K in the tiled layout (K = <paramref name="columns"/>, logical).</summary>
    public static int TiledColumnChunks(int columns) => (columns + 127) / 128;

    /// <summary>Tiles of 16 rows × 128 values a [rows, columns] tensor takes in the tiled layout.</summary>
    public static long TiledTiles(int rows, int columns) => (long)((rows + 15) / 16) * TiledColumnChunks(columns);

    /// <summary>Tile index of (row, column) in the tiled layout.</summary>
    private static long TiledTile(int row, int column, int columns) => (long)(row >> 4) * TiledColumnChunks(columns) + (column >> 7);

    /// <summary>Byte holding code (row, column) in the tiled layout (the nibble as in the linear layout: column &amp; 1).</summary>
    public static long TiledCodeByte(int row, int column, int columns) =>
        TiledTile(row, column, columns) * 1024 + (row & 15) * 64 + ((column & 127) >> 1);

    /// <summary>Byte offset of scale (row, block) in the tiled layout (blocks of 32 or 16 values).</summary>
    public static long TiledScaleOffset(int row, int block, int blockSize, int columns)
    {
        int perLane = 32 / blockSize, inChunk = block % (128 / blockSize), lane = (row & 7) * 4 + inChunk / perLane;
        return TiledTile(row, block * blockSize, columns) * (16 * 128 / blockSize) + lane * 2 * perLane + ((row >> 3) & 1) * perLane + inChunk % perLane;
    }

    /// <summary>Byte of code (row, column) in any layout: <paramref name="elementBits"/> 4 or 8, K = <paramref name="columns"/>.</summary>
    public static long CodeByte(int row, int column, int paddedColumns, int columns, int elementBits, int layout) => layout == LayoutTiled
        ? TiledCodeByte(row, column, columns)
        : ((long)row * paddedColumns + column) * elementBits / 8;

    /// <summary>Code (row, column) in any layout.</summary>
    public static uint Code(ArrayView<byte> data, int row, int column, int paddedColumns, int columns, int elementBits, int layout)
    {
        uint b = data[CodeByte(row, column, paddedColumns, columns, elementBits, layout)];
        return elementBits == 8 ? b : (b >> (4 * (column & 1))) & 0xFu;
    }

    /// <summary>Byte offset of scale (row, block) in any layout.</summary>
    public static long ScaleOffset(int row, int block, int scaleColumns, int blockSize, int columns, int layout) => layout == LayoutTiled
        ? TiledScaleOffset(row, block, blockSize, columns)
        : ScaleOffset(row, block, scaleColumns, layout == LayoutSwizzled);
}

/// <summary>
/// What <see cref="MicroscaleContext.Relayout"/> copies where: items [0, CodeItems) are code bytes (row-major over the
/// source's [Rows, code bytes per row]: a code byte holds the same values in every layout), the rest block scales (row-major
/// over [Rows, ScaleColumns]). The destination starts zeroed, so its padding stays zero.
/// </summary>
internal struct RelayoutParams
{
    public int Rows;
    public int Columns;
    public int PaddedColumns;
    public int ScaleColumns;
    public int BlockSize;
    public int ElementBits;
    public int SourceLayout;
    public int DestinationLayout;
    public int CodeItems;
    public int TotalItems;
    public int ItemsPerThread;

    public static RelayoutParams For(FormatSpec spec, int rows, int columns, ScaleLayout source, ScaleLayout destination)
    {
        int padded = spec.PaddedColumns(columns), scaleColumns = spec.ScaleColumns(columns);
        int codeItems = rows * (padded * spec.ElementBits / 8);
        return new()
        {
            Rows = rows, Columns = columns, PaddedColumns = padded, ScaleColumns = scaleColumns, BlockSize = spec.BlockSize,
            ElementBits = spec.ElementBits, SourceLayout = (int)source, DestinationLayout = (int)destination, CodeItems = codeItems,
            TotalItems = codeItems + rows * scaleColumns,
        };
    }

    /// <summary>Source and destination byte of item <paramref name="item"/>; <paramref name="isCode"/>: in the codes, else in the scales.</summary>
    public readonly void Map(int item, out bool isCode, out long source, out long destination)
    {
        isCode = item < CodeItems;
        if (isCode)
        {
            int rowBytes = PaddedColumns * ElementBits / 8, row = item / rowBytes, column = item % rowBytes * 8 / ElementBits;
            source = ScaleRules.CodeByte(row, column, PaddedColumns, Columns, ElementBits, SourceLayout);
            destination = ScaleRules.CodeByte(row, column, PaddedColumns, Columns, ElementBits, DestinationLayout);
        }
        else
        {
            int scale = item - CodeItems, row = scale / ScaleColumns, block = scale % ScaleColumns;
            source = ScaleRules.ScaleOffset(row, block, ScaleColumns, BlockSize, Columns, SourceLayout);
            destination = ScaleRules.ScaleOffset(row, block, ScaleColumns, BlockSize, Columns, DestinationLayout);
        }
    }
}

/// <summary>Sizes and kinds derived from <see cref="QuantizationOptions"/>: the one place that knows what a format stores.</summary>
internal readonly record struct FormatSpec(QuantFormat Format, int BlockSize, int ElementKind, int ElementBits, string Name)
{
    public bool IsMx => Format is QuantFormat.Mxfp4 or QuantFormat.Mxfp8 or QuantFormat.Mxint8 or QuantFormat.Mxint6 or QuantFormat.Mxint4;
    public bool IsNv => Format is QuantFormat.Nvfp4 or QuantFormat.Nvint4;
    public bool IsInteger => Microscale.ElementKind.IsInteger(ElementKind);
    public bool HasFp8Element => Format is QuantFormat.Mxfp8 or QuantFormat.Fp8PerTensor or QuantFormat.Fp8PerRow;
    /// <summary><see cref="ScaleRules.FamilyMx"/>, <see cref="ScaleRules.FamilyNv"/> or <see cref="ScaleRules.FamilyScaled"/>.</summary>
    public int Family => IsMx ? ScaleRules.FamilyMx : IsNv ? ScaleRules.FamilyNv : ScaleRules.FamilyScaled;
    public bool IsBlockScaled => BlockSize > 0;
    public bool IsFp8Scaled => Format is QuantFormat.Fp8PerTensor or QuantFormat.Fp8PerRow;

    public static FormatSpec Of(QuantizationOptions o)
    {
        int fp8 = o.Element == Fp8Element.E5M2 ? Microscale.ElementKind.E5M2 : Microscale.ElementKind.E4M3;
        string e5 = o.Element == Fp8Element.E5M2 ? "-e5m2" : "";
        return o.Format switch
        {
            QuantFormat.Mxfp4 => new(o.Format, 32, Microscale.ElementKind.E2M1, 4, "mxfp4"),
            QuantFormat.Mxfp8 => new(o.Format, 32, fp8, 8, "mxfp8" + e5),
            QuantFormat.Nvfp4 => new(o.Format, 16, Microscale.ElementKind.E2M1, 4, "nvfp4"),
            QuantFormat.Fp8PerTensor => new(o.Format, 0, fp8, 8, "fp8-tensor" + e5),
            QuantFormat.Mxint8 => new(o.Format, 32, Microscale.ElementKind.Int8, 8, "mxint8"),
            QuantFormat.Mxint6 => new(o.Format, 32, Microscale.ElementKind.Int6, 8, "mxint6"),
            QuantFormat.Mxint4 => new(o.Format, 32, Microscale.ElementKind.Int4, 4, "mxint4"),
            QuantFormat.Nvint4 => new(o.Format, 16, Microscale.ElementKind.Int4, 4, "nvint4"),
            _ => new(o.Format, 0, fp8, 8, "fp8-row" + e5),
        };
    }

    /// <summary>K zero-padded to the block size.</summary>
    public int PaddedColumns(int columns) => IsBlockScaled ? ScaleRules.RoundUp(columns, BlockSize) : columns;

    public int ScaleColumns(int columns) => IsBlockScaled ? PaddedColumns(columns) / BlockSize : 0;

    public long DataBytes(int rows, int columns, ScaleLayout layout = ScaleLayout.Linear) => layout == ScaleLayout.Tiled16x128
        ? ScaleRules.TiledTiles(rows, columns) * 1024
        : (long)rows * PaddedColumns(columns) * ElementBits / 8;

    public long BlockScaleBytes(int rows, int columns, ScaleLayout layout) => !IsBlockScaled ? 0
        : layout == ScaleLayout.Swizzled128x4
            ? (long)ScaleRules.RoundUp(rows, 128) * ScaleRules.RoundUp(ScaleColumns(columns), 4)
            : layout == ScaleLayout.Tiled16x128
                ? ScaleRules.TiledTiles(rows, columns) * (16 * 128 / BlockSize)
                : (long)rows * ScaleColumns(columns);

    /// <summary>binary32 decode scales: NVFP4 and FP8 per-tensor one, FP8 per-row one per row, MX none.</summary>
    public int DecodeScaleCount(int rows) => Format switch
    {
        QuantFormat.Nvfp4 or QuantFormat.Nvint4 or QuantFormat.Fp8PerTensor => 1,
        QuantFormat.Fp8PerRow => rows,
        _ => 0,
    };

    /// <summary>The max the per-tensor/per-row amax is divided by: 2688 = 6 × 448 for NVFP4, the element max for FP8.</summary>
    public float DecodeScaleDivisor => IsNv ? Microscale.ElementKind.MaxValue(ElementKind) * 448.0f : Microscale.ElementKind.MaxValue(ElementKind);

    /// <summary>Bits stored per value, scales included (logical K a multiple of the block).</summary>
    public double BitsPerValue => ElementBits + (IsBlockScaled ? 8.0 / BlockSize : 0.0);
}
