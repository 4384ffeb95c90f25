namespace Microscale.IO;

/// <summary>
/// A safetensors file is malformed: its header cannot be parsed, or its entries are inconsistent with each other or
/// with the file's length. The message names the file (when it has one), the tensor (when one is at fault) and what is
/// wrong.
/// </summary>
public sealed class SafeTensorsFormatException : Exception
{
    /// <summary>Creates an exception with a generic message.</summary>
    public SafeTensorsFormatException()
        : base("Invalid safetensors file.")
    {
    }

    /// <summary>Creates an exception with the given message.</summary>
    /// <param name="message">What is wrong.</param>
    public SafeTensorsFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception with the given message and cause.</summary>
    /// <param name="message">What is wrong.</param>
    /// <param name="innerException">The exception that revealed the problem.</param>
    public SafeTensorsFormatException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates an exception whose message is composed from the file, the tensor and the problem.</summary>
    internal SafeTensorsFormatException(string problem, string? filePath, string? tensorName, Exception? innerException = null)
        : base(Compose(problem, filePath, tensorName), innerException)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    /// <summary>The path of the malformed file; null when it was parsed from memory or is not known.</summary>
    public string? FilePath { get; }

    /// <summary>The name of the offending tensor; null when the problem is not with one tensor.</summary>
    public string? TensorName { get; }

    private static string Compose(string problem, string? filePath, string? tensorName)
    {
        string where = filePath is null ? "Invalid safetensors data (in memory)" : $"Invalid safetensors file '{filePath}'";
        return tensorName is null ? $"{where}: {problem}" : $"{where}, tensor '{tensorName}': {problem}";
    }
}
