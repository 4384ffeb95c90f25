using Microscale.Formats;

namespace Microscale;

/// <summary>How quantizers round element values (NUMERICS.md §7). Scales are always rounded as §3 says.</summary>
public enum RoundingMode
{
    /// <summary>Round to nearest, ties to even (the default).</summary>
    Nearest,
    /// <summary>Stochastic rounding with random bytes that are a pure function of (<see cref="QuantizationOptions.Seed"/>, element index).</summary>
    Stochastic,
}

/// <summary>
/// Stochastic rounding of NUMERICS.md §7 as pure functions (managed reference and ILGPU kernels share them):
/// Philox4x32-10 random bytes keyed by the seed and the element's row-major index in the padded tensor, then
/// t = |v| + (r/256)·step(|v|), q = min(floor(t/step(t))·step(t), max), sign kept.
/// </summary>
internal static class StochasticRounding
{
    /// <summary>The random byte of element <paramref name="index"/>: word (index &amp; 15) / 4, byte index &amp; 3 of Philox(counter = index / 16).</summary>
    public static uint RandomByte(ulong seed, ulong index)
    {
        ulong group = index >> 4;
        uint c0 = (uint)group, c1 = (uint)(group >> 32), c2 = 0, c3 = 0;
        uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
        for (int round = 0; round < 10; round++)
        {
            if (round != 0)
            {
                k0 += 0x9E3779B9u;
                k1 += 0xBB67AE85u;
            }
            ulong p0 = 0xD2511F53ul * c0, p1 = 0xCD9E8D57ul * c2;
            uint n0 = (uint)(p1 >> 32) ^ c1 ^ k0, n1 = (uint)p1, n2 = (uint)(p0 >> 32) ^ c3 ^ k1, n3 = (uint)p0;
            c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        }
        uint b = (uint)(index & 15);
        uint word = (b >> 2) == 0 ? c0 : (b >> 2) == 1 ? c1 : (b >> 2) == 2 ? c2 : c3;
        return (word >> (int)(8 * (b & 3))) & 0xFFu;
    }

    /// <summary>Spacing of the element grid at a ≥ 0 (E2M1: 0.5 / 1 / 2; E4M3: 2^(max(⌊log2 a⌋, −6) − 3); E5M2 by analogy, min exponent −14).</summary>
    private static float Step(float a, int kind)
    {
        if (kind == ElementKind.E2M1)
            return a >= 4.0f ? 2.0f : a >= 2.0f ? 1.0f : 0.5f;
        int mantissa = kind == ElementKind.E4M3 ? 3 : 2, minExponent = kind == ElementKind.E4M3 ? -6 : -14;
        if (a == 0.0f)
            return FloatBits.Pow2(minExponent - mantissa);
        int e = FloatBits.FloorLog2(a);
        return FloatBits.Pow2((e > minExponent ? e : minExponent) - mantissa);
    }

    /// <summary>The element code of <paramref name="v"/> rounded stochastically with random byte <paramref name="r"/> (NaN as satfinite).</summary>
    public static uint Encode(float v, uint r, int kind)
    {
        uint abs = FloatBits.AbsBits(v);
        if (FloatBits.IsNaNBits(abs))
            return ElementKind.Encode(v, kind);
        float a = FloatBits.FromBits(abs), max = ElementKind.MaxValue(kind), q;
        if (a >= max)
        {
            q = max;
        }
        else
        {
            float t = a + r / 256.0f * Step(a, kind);
            float step = Step(t, kind);
            q = MathF.Floor(t / step) * step;
            if (q > max)
                q = max;
        }
        // q lies on the grid, so the round-to-nearest encoder returns its code exactly; the sign of v is kept.
        return ElementKind.Encode(FloatBits.FromBits(FloatBits.Bits(q) | (FloatBits.Bits(v) & 0x8000_0000u)), kind);
    }

    /// <summary>Round-to-nearest or stochastic encoding of element <paramref name="index"/>, as the options say.</summary>
    public static uint EncodeElement(float v, int kind, int stochastic, ulong seed, long index) =>
        stochastic != 0 ? Encode(v, RandomByte(seed, (ulong)index), kind) : ElementKind.Encode(v, kind);
}
