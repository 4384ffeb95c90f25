using Microscale.Formats;

namespace Microscale;

/// <summary>Element kinds as plain integers, so ILGPU kernels can branch on them.</summary>
internal static class ElementKind
{
    public const int E2M1 = 0;
    public const int E4M3 = 1;
    public const int E5M2 = 2;

    /// <summary>binary32 → element code, RNE, satfinite (NUMERICS.md §1).</summary>
    public static uint Encode(float value, int kind) => kind switch
    {
        E2M1 => FloatBits.ToE2M1(value),
        E4M3 => FloatBits.ToE4M3Saturate(value),
        _ => FloatBits.ToE5M2Saturate(value),
    };

    /// <summary>Element code → binary32.</summary>
    public static float Decode(uint code, int kind) => kind switch
    {
        E2M1 => FloatBits.FromE2M1(code),
        E4M3 => FloatBits.FromE4M3(code),
        _ => FloatBits.FromE5M2(code),
    };

    /// <summary>Largest finite element value.</summary>
    public static float MaxValue(int kind) => kind switch { E2M1 => 6.0f, E4M3 => 448.0f, _ => 57344.0f };

    /// <summary>floor(log2(max)) of the element format: emax_elem of the OCP floor rule.</summary>
    public static int MaxExponent(int kind) => kind switch { E2M1 => 2, E4M3 => 8, _ => 15 };
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

    /// <summary>NVFP4 block scale code: UE4M3 satfinite of (amax_b / 6) / g.</summary>
    public static uint NvBlockScale(float blockAmax, float g) => FloatBits.ToUE4M3(blockAmax / 6.0f / g);

    /// <summary>Byte offset of scale (row, scaleColumn) in the 128×4 swizzled layout.</summary>
    public static int SwizzledOffset(int row, int scaleColumn, int paddedScaleColumns) =>
        ((row >> 7) * (paddedScaleColumns >> 2) + (scaleColumn >> 2)) * 512 + (row & 31) * 16 + ((row & 127) >> 5) * 4 + (scaleColumn & 3);

    /// <summary>Byte offset of scale (row, scaleColumn) in either layout.</summary>
    public static int ScaleOffset(int row, int scaleColumn, int scaleColumns, bool swizzled) =>
        swizzled ? SwizzledOffset(row, scaleColumn, RoundUp(scaleColumns, 4)) : row * scaleColumns + scaleColumn;

    public static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;
}

/// <summary>Sizes and kinds derived from <see cref="QuantizationOptions"/>: the one place that knows what a format stores.</summary>
internal readonly record struct FormatSpec(QuantFormat Format, int BlockSize, int ElementKind, int ElementBits, string Name)
{
    public bool IsMx => Format is QuantFormat.Mxfp4 or QuantFormat.Mxfp8;
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
            _ => new(o.Format, 0, fp8, 8, "fp8-row" + e5),
        };
    }

    /// <summary>K zero-padded to the block size.</summary>
    public int PaddedColumns(int columns) => IsBlockScaled ? ScaleRules.RoundUp(columns, BlockSize) : columns;

    public int ScaleColumns(int columns) => IsBlockScaled ? PaddedColumns(columns) / BlockSize : 0;

    public long DataBytes(int rows, int columns) => (long)rows * PaddedColumns(columns) * ElementBits / 8;

    public long BlockScaleBytes(int rows, int columns, ScaleLayout layout) => !IsBlockScaled ? 0
        : layout == ScaleLayout.Swizzled128x4
            ? (long)ScaleRules.RoundUp(rows, 128) * ScaleRules.RoundUp(ScaleColumns(columns), 4)
            : (long)rows * ScaleColumns(columns);

    /// <summary>binary32 decode scales: NVFP4 and FP8 per-tensor one, FP8 per-row one per row, MX none.</summary>
    public int DecodeScaleCount(int rows) => Format switch
    {
        QuantFormat.Nvfp4 or QuantFormat.Fp8PerTensor => 1,
        QuantFormat.Fp8PerRow => rows,
        _ => 0,
    };

    /// <summary>The max the per-tensor/per-row amax is divided by: 2688 = 6 × 448 for NVFP4, the element max for FP8.</summary>
    public float DecodeScaleDivisor => Format == QuantFormat.Nvfp4 ? 2688.0f : Microscale.ElementKind.MaxValue(ElementKind);

    /// <summary>Bits stored per value, scales included (logical K a multiple of the block).</summary>
    public double BitsPerValue => ElementBits + (IsBlockScaled ? 8.0 / BlockSize : 0.0);
}
