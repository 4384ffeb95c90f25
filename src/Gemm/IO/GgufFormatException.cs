namespace Microscale.IO;

/// <summary>
/// A GGUF file is malformed (bad magic or version, truncated or inconsistent header, a tensor outside the data section) or
/// holds what Microscale cannot convert. The message names the file (when it has one), the tensor (when one is at fault)
/// and what is wrong.
/// </summary>
public sealed class GgufFormatException : Exception
{
    /// <summary>Creates an exception with the given message.</summary>
    /// <param name="message">What is wrong.</param>
    public GgufFormatException(string message)
        : base(message)
    {
    }

    internal GgufFormatException(string problem, string? filePath, string? tensorName)
        : base((filePath is null ? "Invalid GGUF data (in memory)" : $"Invalid GGUF file '{filePath}'")
               + (tensorName is null ? "" : $", tensor '{tensorName}'") + ": " + problem)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The path of the malformed file; null when it was parsed from memory or is not known.</summary>
    public string? FilePath { get; }

    /// <summary>The name of the offending tensor; null when the problem is not with one tensor.</summary>
    public string? TensorName { get; }
}
