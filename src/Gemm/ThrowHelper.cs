using System.Diagnostics.CodeAnalysis;

namespace Microscale;

/// <summary>Throw helpers: every one names the argument and shows the values, and none returns.</summary>
internal static class ThrowHelper
{
    public static void ThrowIfDestinationTooShort(long needed, long actual, string paramName)
    {
        if (actual < needed)
            ThrowArgument(paramName, $"Destination is too short: needs {needed} elements, has {actual}.");
    }

    public static void ThrowIfLengthIsNot(long expected, long actual, string paramName, string what = "elements")
    {
        if (actual != expected)
            ThrowArgument(paramName, $"Expected {expected} {what}, got {actual}.");
    }

    public static void ThrowIfNotPositive(long value, string paramName)
    {
        if (value <= 0)
            throw new ArgumentOutOfRangeException(paramName, value, "Must be at least 1.");
    }

    public static void ThrowIfUndefined<TEnum>(TEnum value, string paramName) where TEnum : struct, Enum
    {
        if (!Enum.IsDefined(value))
            throw new ArgumentOutOfRangeException(paramName, value, $"Not a defined {typeof(TEnum).Name}.");
    }

    [DoesNotReturn]
    public static void ThrowArgument(string paramName, string message) => throw new ArgumentException(message, paramName);
}
