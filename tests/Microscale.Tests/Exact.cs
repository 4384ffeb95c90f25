namespace Microscale.Tests;

/// <summary>Bit-exact comparisons that report the first mismatching position, not just "not equal".</summary>
internal static class Exact
{
    public static void AssertBytes(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual, string what, int rowLength = 0)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: length");
        for (int i = 0; i < expected.Length; i++)
            if (expected[i] != actual[i])
                Assert.Fail($"{what}: first mismatch at {Where(i, rowLength)}: expected 0x{expected[i]:X2}, got 0x{actual[i]:X2}");
    }

    /// <summary>Same binary32 bits, except that any NaN equals any NaN.</summary>
    public static void AssertFloats(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what, int rowLength = 0)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: length");
        for (int i = 0; i < expected.Length; i++)
        {
            bool same = float.IsNaN(expected[i])
                ? float.IsNaN(actual[i])
                : BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]);
            if (!same)
                Assert.Fail($"{what}: first mismatch at {Where(i, rowLength)}: expected {expected[i]:R}, got {actual[i]:R}");
        }
    }

    private static string Where(int i, int rowLength) => rowLength > 0 ? $"(row {i / rowLength}, col {i % rowLength})" : $"index {i}";
}
