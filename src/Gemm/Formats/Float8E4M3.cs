using Microscale.Formats;

namespace Microscale;

/// <summary>
/// OCP FP8 E4M3FN: 1 sign, 4 exponent (bias 7), 3 mantissa bits; max 448, smallest 2^−9, no Inf,
/// NaN = S.1111.111 (NUMERICS.md §1).
/// </summary>
/// <remarks>The explicit cast from <see cref="float"/> uses <see cref="OverflowMode.Ieee"/> (as PyTorch does);
/// quantizers use <see cref="OverflowMode.Saturate"/>.</remarks>
public readonly struct Float8E4M3 : ISmallFloat<Float8E4M3>
{
    /// <summary>The raw 8-bit code.</summary>
    public byte RawValue { get; }

    private Float8E4M3(byte raw) => RawValue = raw;

    /// <summary>Largest finite value, 448.</summary>
    public static Float8E4M3 MaxValue => new(0x7E);
    /// <summary>Smallest positive value, 2^−9.</summary>
    public static Float8E4M3 Epsilon => new(0x01);
    /// <summary>The canonical NaN, 0x7F.</summary>
    public static Float8E4M3 NaN => new(0x7F);

    /// <summary>Reinterprets a raw code.</summary>
    public static Float8E4M3 FromRawValue(byte raw) => new(raw);

    /// <inheritdoc/>
    public static Float8E4M3 FromSingle(float value, OverflowMode mode) =>
        new((byte)(mode == OverflowMode.Saturate ? FloatBits.ToE4M3Saturate(value) : FloatBits.ToE4M3Ieee(value)));

    /// <inheritdoc/>
    public float ToSingle() => FloatBits.FromE4M3(RawValue);

    /// <summary>True for the two NaN codes.</summary>
    public bool IsNaN => (RawValue & 0x7F) == 0x7F;

    /// <summary>Converts with <see cref="OverflowMode.Ieee"/>.</summary>
    public static explicit operator Float8E4M3(float value) => FromSingle(value, OverflowMode.Ieee);
    /// <summary>Exact widening.</summary>
    public static implicit operator float(Float8E4M3 value) => value.ToSingle();
    /// <summary>IEEE equality (NaN ≠ NaN, +0 = −0).</summary>
    public static bool operator ==(Float8E4M3 a, Float8E4M3 b) => SmallFloat.ValueEquals(a.ToSingle(), b.ToSingle());
    /// <summary>IEEE inequality.</summary>
    public static bool operator !=(Float8E4M3 a, Float8E4M3 b) => !(a == b);
    /// <inheritdoc/>
    public bool Equals(Float8E4M3 other) => SmallFloat.StrictEquals(ToSingle(), other.ToSingle());
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Float8E4M3 other && Equals(other);
    /// <inheritdoc/>
    public override int GetHashCode() => SmallFloat.HashOf(ToSingle());
    /// <inheritdoc/>
    public override string ToString() => ToString(null, null);
    /// <inheritdoc/>
    public string ToString(string? format, IFormatProvider? formatProvider) => SmallFloat.Format(ToSingle(), format, formatProvider);
}
