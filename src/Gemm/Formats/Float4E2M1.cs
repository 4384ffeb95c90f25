using Microscale.Formats;

namespace Microscale;

/// <summary>
/// OCP FP4 E2M1: 1 sign, 2 exponent (bias 1), 1 mantissa bit; magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6; no Inf, no NaN
/// (NUMERICS.md §1). Stored one code per value here; packed tensors hold two per byte (element 2i in the low nibble).
/// </summary>
/// <remarks>Every conversion saturates: ±Inf and values beyond 6 become ±6, NaN becomes +6 (code 0x7).</remarks>
public readonly struct Float4E2M1 : ISmallFloat<Float4E2M1>
{
    /// <summary>The 4-bit code in the low nibble.</summary>
    public byte RawValue { get; }

    private Float4E2M1(byte raw) => RawValue = (byte)(raw & 0xF);

    /// <summary>Largest value, 6.</summary>
    public static Float4E2M1 MaxValue => new(0x7);
    /// <summary>Smallest positive value, 0.5.</summary>
    public static Float4E2M1 Epsilon => new(0x1);

    /// <summary>Reinterprets the low nibble of <paramref name="raw"/>.</summary>
    public static Float4E2M1 FromRawValue(byte raw) => new(raw);

    /// <summary>Converts with round-to-nearest-even; E2M1 has only the saturating mode, so <paramref name="mode"/> is ignored.</summary>
    public static Float4E2M1 FromSingle(float value, OverflowMode mode = OverflowMode.Saturate) => new((byte)FloatBits.ToE2M1(value));

    /// <inheritdoc/>
    public float ToSingle() => FloatBits.FromE2M1(RawValue);

    /// <summary>Packs codes two per byte, element 2i in the low nibble; an odd tail gets a zero high nibble.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than ⌈source.Length / 2⌉.</exception>
    public static void Pack(ReadOnlySpan<Float4E2M1> source, Span<byte> destination)
    {
        int bytes = (source.Length + 1) / 2;
        ThrowHelper.ThrowIfDestinationTooShort(bytes, destination.Length, nameof(destination));
        for (int i = 0; i < bytes; i++)
        {
            int high = 2 * i + 1 < source.Length ? source[2 * i + 1].RawValue : 0;
            destination[i] = (byte)(source[2 * i].RawValue | (high << 4));
        }
    }

    /// <summary>Unpacks <paramref name="destination"/>.Length codes from packed bytes (element 2i from the low nibble).</summary>
    /// <exception cref="ArgumentException"><paramref name="source"/> holds fewer than destination.Length codes.</exception>
    public static void Unpack(ReadOnlySpan<byte> source, Span<Float4E2M1> destination)
    {
        ThrowHelper.ThrowIfDestinationTooShort((destination.Length + 1) / 2, source.Length, nameof(source));
        for (int i = 0; i < destination.Length; i++)
            destination[i] = new((byte)(source[i >> 1] >> (4 * (i & 1))));
    }

    /// <summary>Converts with round-to-nearest-even and saturation.</summary>
    public static explicit operator Float4E2M1(float value) => FromSingle(value);
    /// <summary>Exact widening.</summary>
    public static implicit operator float(Float4E2M1 value) => value.ToSingle();
    /// <summary>Value equality (+0 = −0).</summary>
    public static bool operator ==(Float4E2M1 a, Float4E2M1 b) => a.ToSingle() == b.ToSingle();
    /// <summary>Value inequality.</summary>
    public static bool operator !=(Float4E2M1 a, Float4E2M1 b) => !(a == b);
    /// <inheritdoc/>
    public bool Equals(Float4E2M1 other) => this == other;
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Float4E2M1 other && Equals(other);
    /// <inheritdoc/>
    public override int GetHashCode() => SmallFloat.HashOf(ToSingle());
    /// <inheritdoc/>
    public override string ToString() => ToString(null, null);
    /// <inheritdoc/>
    public string ToString(string? format, IFormatProvider? formatProvider) => SmallFloat.Format(ToSingle(), format, formatProvider);
}
