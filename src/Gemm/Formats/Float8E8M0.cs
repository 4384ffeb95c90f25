using Microscale.Formats;

namespace Microscale;

/// <summary>
/// E8M0 (UE8M0), the MX block-scale format: the value is 2^(code − 127); no sign, no zero, no subnormals;
/// code 0xFF is NaN (NUMERICS.md §1).
/// </summary>
public readonly struct Float8E8M0 : IEquatable<Float8E8M0>, IFormattable
{
    /// <summary>The raw 8-bit code.</summary>
    public byte RawValue { get; }

    private Float8E8M0(byte raw) => RawValue = raw;

    /// <summary>The NaN code 0xFF.</summary>
    public static Float8E8M0 NaN => new(0xFF);

    /// <summary>Reinterprets a raw code.</summary>
    public static Float8E8M0 FromRawValue(byte raw) => new(raw);

    /// <summary>The scale 2^<paramref name="exponent"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="exponent"/> is outside [−127, 127].</exception>
    public static Float8E8M0 FromExponent(int exponent)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(exponent, -127);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(exponent, 127);
        return new((byte)(exponent + 127));
    }

    /// <summary>The exponent code − 127 (meaningless for NaN).</summary>
    public int Exponent => RawValue - 127;

    /// <summary>True for the NaN code.</summary>
    public bool IsNaN => RawValue == 0xFF;

    /// <summary>2^(code − 127) as binary32 (code 0 is the subnormal 2^−127), NaN for 0xFF.</summary>
    public float ToSingle() => FloatBits.FromE8M0(RawValue);

    /// <summary>Exact widening.</summary>
    public static implicit operator float(Float8E8M0 value) => value.ToSingle();
    /// <summary>Code equality.</summary>
    public static bool operator ==(Float8E8M0 a, Float8E8M0 b) => a.RawValue == b.RawValue;
    /// <summary>Code inequality.</summary>
    public static bool operator !=(Float8E8M0 a, Float8E8M0 b) => a.RawValue != b.RawValue;
    /// <inheritdoc/>
    public bool Equals(Float8E8M0 other) => RawValue == other.RawValue;
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Float8E8M0 other && Equals(other);
    /// <inheritdoc/>
    public override int GetHashCode() => RawValue;
    /// <inheritdoc/>
    public override string ToString() => ToString(null, null);
    /// <inheritdoc/>
    public string ToString(string? format, IFormatProvider? formatProvider) =>
        IsNaN ? "NaN" : $"2^{Exponent.ToString(formatProvider ?? System.Globalization.CultureInfo.InvariantCulture)}";
}
