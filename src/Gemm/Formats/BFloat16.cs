using System.Runtime.InteropServices;
using Microscale.Formats;

namespace Microscale;

/// <summary>
/// bfloat16: the upper 16 bits of binary32 (1 sign, 8 exponent, 7 mantissa bits). Blittable, two bytes, so spans of it
/// can be copied to devices and written to safetensors (<c>BF16</c>) directly.
/// </summary>
/// <remarks>From <see cref="float"/>: round-to-nearest-even, overflow to ±Inf, every NaN → 0x7FC0. To <see cref="float"/>: exact.</remarks>
[StructLayout(LayoutKind.Sequential, Size = 2)]
public readonly struct BFloat16 : ISmallFloat<BFloat16>, IComparable<BFloat16>
{
    /// <summary>The raw 16-bit pattern.</summary>
    public ushort RawValue { get; }

    private BFloat16(ushort raw) => RawValue = raw;

    /// <summary>Largest finite value.</summary>
    public static BFloat16 MaxValue => new(0x7F7F);
    /// <summary>Smallest positive subnormal.</summary>
    public static BFloat16 Epsilon => new(0x0001);
    /// <summary>The canonical NaN, 0x7FC0.</summary>
    public static BFloat16 NaN => new(0x7FC0);
    /// <summary>+Inf.</summary>
    public static BFloat16 PositiveInfinity => new(0x7F80);

    /// <summary>Reinterprets a raw bit pattern.</summary>
    public static BFloat16 FromRawValue(ushort raw) => new(raw);

    /// <summary>Converts with round-to-nearest-even; BF16 has binary32's range, so <paramref name="mode"/> is ignored.</summary>
    public static BFloat16 FromSingle(float value, OverflowMode mode = OverflowMode.Ieee) => new(FloatBits.ToBFloat16(value));

    /// <inheritdoc/>
    public float ToSingle() => FloatBits.FromBFloat16(RawValue);

    /// <summary>True for NaN.</summary>
    public bool IsNaN => (RawValue & 0x7FFF) > 0x7F80;

    /// <summary>Converts with round-to-nearest-even.</summary>
    public static explicit operator BFloat16(float value) => FromSingle(value);
    /// <summary>Converts through binary32 (double → float → bf16 can round twice; use a float source for exact RNE).</summary>
    public static explicit operator BFloat16(double value) => FromSingle((float)value);
    /// <summary>Exact widening.</summary>
    public static implicit operator float(BFloat16 value) => value.ToSingle();
    /// <summary>Exact widening.</summary>
    public static implicit operator double(BFloat16 value) => value.ToSingle();
    /// <summary>IEEE equality.</summary>
    public static bool operator ==(BFloat16 a, BFloat16 b) => SmallFloat.ValueEquals(a.ToSingle(), b.ToSingle());
    /// <summary>IEEE inequality.</summary>
    public static bool operator !=(BFloat16 a, BFloat16 b) => !(a == b);
    /// <summary>IEEE less-than.</summary>
    public static bool operator <(BFloat16 a, BFloat16 b) => a.ToSingle() < b.ToSingle();
    /// <summary>IEEE greater-than.</summary>
    public static bool operator >(BFloat16 a, BFloat16 b) => a.ToSingle() > b.ToSingle();
    /// <summary>IEEE less-or-equal.</summary>
    public static bool operator <=(BFloat16 a, BFloat16 b) => a.ToSingle() <= b.ToSingle();
    /// <summary>IEEE greater-or-equal.</summary>
    public static bool operator >=(BFloat16 a, BFloat16 b) => a.ToSingle() >= b.ToSingle();
    /// <inheritdoc/>
    public int CompareTo(BFloat16 other) => ToSingle().CompareTo(other.ToSingle());
    /// <inheritdoc/>
    public bool Equals(BFloat16 other) => SmallFloat.StrictEquals(ToSingle(), other.ToSingle());
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is BFloat16 other && Equals(other);
    /// <inheritdoc/>
    public override int GetHashCode() => SmallFloat.HashOf(ToSingle());
    /// <inheritdoc/>
    public override string ToString() => ToString(null, null);
    /// <inheritdoc/>
    public string ToString(string? format, IFormatProvider? formatProvider) => SmallFloat.Format(ToSingle(), format, formatProvider);
}
