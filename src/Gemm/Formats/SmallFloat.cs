namespace Microscale;

/// <summary>The members the narrow float value types share, so bulk conversions are written once.</summary>
/// <typeparam name="TSelf">The value type.</typeparam>
public interface ISmallFloat<TSelf> : IEquatable<TSelf>, IFormattable
    where TSelf : unmanaged, ISmallFloat<TSelf>
{
    /// <summary>Converts a binary32 value with round-to-nearest-even and the given overflow mode.</summary>
    static abstract TSelf FromSingle(float value, OverflowMode mode);

    /// <summary>The exact binary32 value of this code.</summary>
    float ToSingle();
}

/// <summary>Bulk conversions between <see cref="float"/> spans and the narrow float types (destination last).</summary>
public static class SmallFloat
{
    /// <summary>Converts every element of <paramref name="source"/> into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="source"/>.</exception>
    public static void ConvertFromSingle<T>(ReadOnlySpan<float> source, Span<T> destination, OverflowMode mode = OverflowMode.Saturate)
        where T : unmanaged, ISmallFloat<T>
    {
        ThrowHelper.ThrowIfDestinationTooShort(source.Length, destination.Length, nameof(destination));
        for (int i = 0; i < source.Length; i++)
            destination[i] = T.FromSingle(source[i], mode);
    }

    /// <summary>Converts every element of <paramref name="source"/> to binary32 (exact).</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="source"/>.</exception>
    public static void ConvertToSingle<T>(ReadOnlySpan<T> source, Span<float> destination)
        where T : unmanaged, ISmallFloat<T>
    {
        ThrowHelper.ThrowIfDestinationTooShort(source.Length, destination.Length, nameof(destination));
        for (int i = 0; i < source.Length; i++)
            destination[i] = source[i].ToSingle();
    }

    /// <summary>IEEE equality of two decoded values (NaN ≠ NaN, +0 = −0).</summary>
    internal static bool ValueEquals(float a, float b) => a == b;

    /// <summary>The <see cref="object.Equals(object)"/> rule of <see cref="Half"/>: like ==, but NaN equals NaN.</summary>
    internal static bool StrictEquals(float a, float b) => a == b || (float.IsNaN(a) && float.IsNaN(b));

    internal static int HashOf(float value) => float.IsNaN(value) ? int.MinValue : value == 0 ? 0 : value.GetHashCode();

    internal static string Format(float value, string? format, IFormatProvider? provider) =>
        value.ToString(format, provider ?? System.Globalization.CultureInfo.InvariantCulture);
}
