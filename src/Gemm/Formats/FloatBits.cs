namespace Microscale.Formats;

/// <summary>
/// The one description of every element and scale format (NUMERICS.md sections 1 and 3): pure integer
/// and binary32 arithmetic, no allocation, no exceptions, so the same functions run in the managed
/// reference and inside ILGPU kernels (CPU and CUDA accelerators).
/// </summary>
internal static class FloatBits
{
    public const uint NanCode8 = 0x7F;
    public const uint E4M3MaxCode = 0x7E;
    public const uint E5M2MaxCode = 0x7B;
    public const uint E2M1MaxCode = 0x7;

    public static uint Bits(float x) => (uint)BitConverter.SingleToInt32Bits(x);

    public static float FromBits(uint bits) => BitConverter.Int32BitsToSingle((int)bits);

    /// <summary>|x| of a binary32 value as bits.</summary>
    public static uint AbsBits(float x) => Bits(x) & 0x7FFF_FFFFu;

    public static bool IsNaNBits(uint absBits) => absBits > 0x7F80_0000u;

    public static bool IsFiniteBits(uint absBits) => absBits < 0x7F80_0000u;

    /// <summary>
    /// Rounds the finite, non-negative binary32 value with bits <paramref name="absBits"/> to nearest-even
    /// on the grid of a small float format with <paramref name="mantissaBits"/> and smallest normal
    /// exponent <paramref name="minExponent"/>, returning the unsaturated magnitude code
    /// (exponent field and mantissa as one integer; a value past the largest exponent just keeps counting).
    /// </summary>
    public static uint RoundToMagnitudeCode(uint absBits, int mantissaBits, int minExponent)
    {
        uint biasedExponent = absBits >> 23;
        // Every binary32 subnormal is far below half the smallest subnormal of the 4- and 8-bit formats.
        if (biasedExponent == 0)
            return 0;
        int exponent = (int)biasedExponent - 127;
        uint significand = (absBits & 0x7F_FFFFu) | 0x80_0000u;
        int targetExponent = exponent > minExponent ? exponent : minExponent;
        int shift = targetExponent - exponent + 23 - mantissaBits;
        if (shift >= 25)
            return 0;
        uint rounded = significand >> shift;
        uint remainder = significand & ((1u << shift) - 1u);
        uint half = 1u << (shift - 1);
        if (remainder > half || (remainder == half && (rounded & 1u) != 0))
            rounded++;
        return ((uint)(targetExponent - minExponent) << mantissaBits) + rounded;
    }

    // ---------------------------------------------------------------- E2M1 (FP4)

    /// <summary>binary32 → E2M1 code (4 bits), RNE, satfinite; NaN → 0x7 (+6).</summary>
    public static uint ToE2M1(float x)
    {
        uint bits = Bits(x);
        uint abs = bits & 0x7FFF_FFFFu;
        uint sign = (bits >> 28) & 0x8u;
        if (IsNaNBits(abs))
            return E2M1MaxCode;
        uint code = RoundToMagnitudeCode(abs, 1, 0);
        return sign | (code > E2M1MaxCode ? E2M1MaxCode : code);
    }

    /// <summary>E2M1 code (low 4 bits used) → binary32.</summary>
    public static float FromE2M1(uint code)
    {
        uint magnitude = code & 7u;
        // 0, 0.5, 1, 1.5, 2, 3, 4, 6: exponent field e = m >> 1, mantissa bit m & 1.
        uint e = magnitude >> 1;
        float value = e == 0
            ? (magnitude & 1u) * 0.5f
            : FromBits(((e + 126u) << 23) | ((magnitude & 1u) << 22));
        return (code & 8u) != 0 ? -value : value;
    }

    // ---------------------------------------------------------------- E4M3FN

    /// <summary>binary32 → E4M3FN code, RNE, satfinite (±Inf → ±448, NaN → 0x7F).</summary>
    public static uint ToE4M3Saturate(float x) => ToFp8(x, 3, -6, E4M3MaxCode, saturate: true);

    /// <summary>binary32 → E4M3FN code, RNE, ieee overflow (|x| &gt; 464 or ±Inf → NaN with the sign).</summary>
    public static uint ToE4M3Ieee(float x) => ToFp8(x, 3, -6, E4M3MaxCode, saturate: false);

    /// <summary>E4M3FN code → binary32 (0x7F / 0xFF → NaN).</summary>
    public static float FromE4M3(uint code) => FromSmallFloat(code & 0xFFu, 3, 7, true);

    /// <summary>binary32 → E5M2 code, RNE, satfinite (±Inf → ±57344, NaN → 0x7F).</summary>
    public static uint ToE5M2Saturate(float x) => ToFp8(x, 2, -14, E5M2MaxCode, saturate: true);

    /// <summary>binary32 → E5M2 code, RNE, ieee overflow (|x| ≥ 61440 → ±Inf).</summary>
    public static uint ToE5M2Ieee(float x) => ToFp8(x, 2, -14, E5M2MaxCode, saturate: false);

    /// <summary>E5M2 code → binary32 (exponent field 31: Inf or NaN).</summary>
    public static float FromE5M2(uint code) => FromSmallFloat(code & 0xFFu, 2, 15, false);

    /// <summary>
    /// binary32 → 8-bit float code. NaN → 0x7F. Magnitudes past <paramref name="maxCode"/> (±Inf included) become ±max when
    /// saturating, else the next code: E4M3FN's NaN slot 0x7F, E5M2's Inf 0x7C.
    /// </summary>
    private static uint ToFp8(float x, int mantissaBits, int minExponent, uint maxCode, bool saturate)
    {
        uint bits = Bits(x);
        uint abs = bits & 0x7FFF_FFFFu;
        if (IsNaNBits(abs))
            return NanCode8;
        uint sign = (bits >> 24) & 0x80u;
        uint code = abs == 0x7F80_0000u ? maxCode + 1 : RoundToMagnitudeCode(abs, mantissaBits, minExponent);
        if (code > maxCode)
            code = saturate ? maxCode : maxCode + 1;
        return sign | code;
    }

    /// <summary>Decodes an 8-bit float code with 1 sign bit, (7 − m) exponent bits and m mantissa bits.</summary>
    private static float FromSmallFloat(uint code, int mantissaBits, int bias, bool finiteOnly)
    {
        uint sign = (code & 0x80u) << 24;
        uint magnitude = code & 0x7Fu;
        uint exponentField = magnitude >> mantissaBits;
        uint mantissa = magnitude & ((1u << mantissaBits) - 1u);
        uint maxField = (1u << (7 - mantissaBits)) - 1u;
        if (finiteOnly ? magnitude == 0x7Fu : exponentField == maxField)
            return FromBits(sign | 0x7F80_0000u | (finiteOnly || mantissa != 0 ? 0x40_0000u : 0u));
        if (exponentField == 0)
        {
            // Subnormal: mantissa · 2^(1 − bias − m), exact in binary32.
            float subnormal = mantissa * Pow2(1 - bias - mantissaBits);
            return FromBits(sign | Bits(subnormal));
        }
        return FromBits(sign | ((uint)(exponentField - bias + 127) << 23) | (mantissa << (23 - mantissaBits)));
    }

    // ---------------------------------------------------------------- scales

    /// <summary>binary32 → UE4M3 scale code (sign bit 0): E4M3 satfinite of |x|, NaN → 0x7F.</summary>
    public static uint ToUE4M3(float x) => ToE4M3Saturate(FromBits(AbsBits(x)));

    /// <summary>E8M0 code → 2^(code − 127), 0xFF → NaN. Code 0 is the binary32 subnormal 2^−127.</summary>
    public static float FromE8M0(uint code)
    {
        code &= 0xFFu;
        if (code == 0xFFu)
            return FromBits(0x7FC0_0000u);
        return FromBits(code == 0 ? 0x40_0000u : code << 23);
    }

    /// <summary>2^n as binary32 for n in [−149, 127] (subnormal below −126).</summary>
    public static float Pow2(int n) => n >= -126 ? FromBits((uint)(n + 127) << 23) : FromBits(1u << (n + 149));

    /// <summary>floor(log2(a)) of a finite, positive binary32 value, exact (subnormals included).</summary>
    public static int FloorLog2(float a)
    {
        uint bits = AbsBits(a);
        uint biasedExponent = bits >> 23;
        if (biasedExponent != 0)
            return (int)biasedExponent - 127;
        // Subnormal: scaling by 2^64 is exact and makes it normal.
        return (int)(AbsBits(a * 18446744073709551616f) >> 23) - 127 - 64;
    }

    /// <summary>ceil(log2(t)) of a finite, positive binary32 value, exact: a power of two gives its own exponent.</summary>
    public static int CeilLog2(float t)
    {
        int floor = FloorLog2(t);
        return t == Pow2(floor) ? floor : floor + 1;
    }

    // ---------------------------------------------------------------- BF16 and FP16

    /// <summary>binary32 → BF16 bits, RNE; every NaN → 0x7FC0.</summary>
    public static ushort ToBFloat16(float x)
    {
        uint bits = Bits(x);
        if (IsNaNBits(bits & 0x7FFF_FFFFu))
            return 0x7FC0;
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }

    /// <summary>BF16 bits → binary32 (exact).</summary>
    public static float FromBFloat16(uint bits) => FromBits((bits & 0xFFFFu) << 16);

    /// <summary>IEEE binary16 bits → binary32 (exact), written with integer operations so ILGPU kernels can use it.</summary>
    public static float FromHalfBits(uint h)
    {
        uint sign = (h & 0x8000u) << 16;
        uint exponent = (h >> 10) & 0x1Fu;
        uint mantissa = h & 0x3FFu;
        if (exponent == 0x1F)
            return FromBits(sign | 0x7F80_0000u | (mantissa << 13));
        if (exponent == 0)
            return FromBits(sign | Bits(mantissa * Pow2(-24)));
        return FromBits(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    }

    /// <summary>binary32 → IEEE binary16 bits, RNE, overflow to ±Inf, NaN → 0x7E00 (with sign); written for ILGPU kernels.</summary>
    public static ushort ToHalfBits(float x)
    {
        uint bits = Bits(x);
        uint abs = bits & 0x7FFF_FFFFu;
        uint sign = (bits >> 16) & 0x8000u;
        if (IsNaNBits(abs))
            return (ushort)(sign | 0x7E00u);
        uint code = abs == 0x7F80_0000u ? 0x7C00u : RoundToMagnitudeCode(abs, 10, -14);
        return (ushort)(sign | (code > 0x7C00u ? 0x7C00u : code));
    }
}
