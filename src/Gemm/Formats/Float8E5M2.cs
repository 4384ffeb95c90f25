using Microscale.Formats;

namespace Microscale;

/// <summary>
/// OCP FP8 E5M2: 1 sign, 5 exponent (bias 15), 2 mantissa bits; max 57344, smallest 2^−16, ±Inf,
/// NaN (NUMERICS.md §1). Quantizers write NaN as 0x7F.
/// </summary>
/// <remarks>The explicit cast from <see cref="float"/> uses <see cref="OverflowMode.Ieee"/> (as PyTorch does);
/// quantizers use <see cref="OverflowMode.Saturate"/>.</remarks>
public readonly struct Float8E5M2 : ISmallFloat<Float8E5M2>
{
    /// <summary>The raw 8-bit code.</summary>
    public byte RawValue { get; }

    private Float8E5M2(byte raw) => RawValue = raw;

    /// <summary>Largest finite value, 57344.</summary>
    public static Float8E5M2 MaxValue => new(0x7B);
    /// <summary>Smallest positive value, 2^−16.</summary>
    public static Float8E5M2 Epsilon => new(0x01);
    /// <summary>The canonical NaN, 0x7F.</summary>
    public static Float8E5M2 NaN => new(0x7F);

    /// <summary>Reinterprets a raw code.</summary>
    public static Float8E5M2 FromRawValue(byte raw) => new(raw);

    /// <inheritdoc/>
    public static Float8E5M2 FromSingle(float value, OverflowMode mode) =>
        new((byte)(mode == OverflowMode.Saturate ? FloatBits.ToE5M2Saturate(value) : FloatBits.ToE5M2Ieee(value)));

    /// <inheritdoc/>
    public float ToSingle() => FloatBits.FromE5M2(RawValue);

    /// <summary>True for the NaN codes (exponent all ones, mantissa non-zero).</summary>
    public bool IsNaN => (RawValue & 0x7F) > 0x7C;

    /// <summary>Positive infinity, 0x7C.</summary>
    public static Float8E5M2 PositiveInfinity => new(0x7C);
    /// <summary>True for ±Inf.</summary>
    public bool IsInfinity => (RawValue & 0x7F) == 0x7C;

    /// <summary>Converts with <see cref="OverflowMode.Ieee"/>.</summary>
    public static explicit operator Float8E5M2(float value) => FromSingle(value, OverflowMode.Ieee);
    /// <summary>Exact widening.</summary>
    public static implicit operator float(Float8E5M2 value) => value.ToSingle();
    /// <summary>IEEE equality (NaN ≠ NaN, +0 = −0).</summary>
    public static bool operator ==(Float8E5M2 a, Float8E5M2 b) => SmallFloat.ValueEquals(a.ToSingle(), b.ToSingle());
    /// <summary>IEEE inequality.</summary>
    public static bool operator !=(Float8E5M2 a, Float8E5M2 b) => !(a == b);
    /// <inheritdoc/>
    public bool Equals(Float8E5M2 other) => SmallFloat.StrictEquals(ToSingle(), other.ToSingle());
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Float8E5M2 other && Equals(other);
    /// <inheritdoc/>
    public override int GetHashCode() => SmallFloat.HashOf(ToSingle());
    /// <inheritdoc/>
    public override string ToString() => ToString(null, null);
    /// <inheritdoc/>
    public string ToString(string? format, IFormatProvider? formatProvider) => SmallFloat.Format(ToSingle(), format, formatProvider);
}
