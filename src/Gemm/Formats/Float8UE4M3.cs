using Microscale.Formats;

namespace Microscale;

/// <summary>
/// UE4M3, the NVFP4 block-scale format: E4M3 with the sign bit always 0; max 448, smallest 2^−9, NaN 0x7F (NUMERICS.md §1).
/// </summary>
/// <remarks>Conversion takes |x|; <see cref="OverflowMode.Saturate"/> maps overflow and +Inf to 448 and NaN to 0x7F,
/// <see cref="OverflowMode.Ieee"/> maps overflow to NaN.</remarks>
public readonly struct Float8UE4M3 : ISmallFloat<Float8UE4M3>
{
    /// <summary>The raw 8-bit code (bit 7 clear).</summary>
    public byte RawValue { get; }

    private Float8UE4M3(byte raw) => RawValue = raw;

    /// <summary>Reinterprets a raw code; the sign bit is cleared.</summary>
    public static Float8UE4M3 FromRawValue(byte raw) => new((byte)(raw & 0x7F));

    /// <inheritdoc/>
    public static Float8UE4M3 FromSingle(float value, OverflowMode mode = OverflowMode.Saturate)
    {
        float magnitude = MathF.Abs(value);
        return new((byte)(mode == OverflowMode.Saturate ? FloatBits.ToE4M3Saturate(magnitude) : FloatBits.ToE4M3Ieee(magnitude)));
    }

    /// <inheritdoc/>
    public float ToSingle() => FloatBits.FromE4M3(RawValue);

    /// <summary>True for the NaN code 0x7F.</summary>
    public bool IsNaN => RawValue == 0x7F;

    /// <summary>Converts with saturation.</summary>
    public static explicit operator Float8UE4M3(float value) => FromSingle(value);
    /// <summary>Exact widening.</summary>
    public static implicit operator float(Float8UE4M3 value) => value.ToSingle();
    /// <summary>IEEE equality.</summary>
    public static bool operator ==(Float8UE4M3 a, Float8UE4M3 b) => SmallFloat.ValueEquals(a.ToSingle(), b.ToSingle());
    /// <summary>IEEE inequality.</summary>
    public static bool operator !=(Float8UE4M3 a, Float8UE4M3 b) => !(a == b);
    /// <inheritdoc/>
    public bool Equals(Float8UE4M3 other) => RawValue == other.RawValue;
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Float8UE4M3 other && Equals(other);
    /// <inheritdoc/>
    public override int GetHashCode() => RawValue;
    /// <inheritdoc/>
    public override string ToString() => ToString(null, null);
    /// <inheritdoc/>
    public string ToString(string? format, IFormatProvider? formatProvider) => SmallFloat.Format(ToSingle(), format, formatProvider);
}
