namespace Microscale;

/// <summary>Status codes of the native library. Must stay in sync with <c>ms_status_t</c> in native/include/microscale.h.</summary>
public enum MsStatus
{
    /// <summary>Success.</summary>
    Ok = 0,
    /// <summary>An argument is invalid (see <see cref="MicroscaleException.Argument"/>).</summary>
    InvalidArgument = 1,
    /// <summary>A pointer is not aligned as the kernel needs.</summary>
    Misaligned = 2,
    /// <summary>The combination of formats or sizes has no kernel.</summary>
    Unsupported = 3,
    /// <summary>The device's architecture has no kernel for the request.</summary>
    ArchMismatch = 4,
    /// <summary>A CUDA call failed (the message names it).</summary>
    Cuda = 5,
    /// <summary>Host or device memory ran out.</summary>
    OutOfMemory = 6,
    /// <summary>The managed and native ABI versions differ.</summary>
    AbiMismatch = 7,
    /// <summary>A bug in the library.</summary>
    Internal = 8,
    /// <summary>A NaN or Inf was found where the policy forbids it.</summary>
    NonFinite = 9,
}

/// <summary>A failure reported by the native library, with its status, the argument it concerns and its message.</summary>
public sealed class MicroscaleException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MicroscaleException(MsStatus status, string? argument, string message)
        : base($"{message} [{status}{(string.IsNullOrEmpty(argument) ? "" : ", argument " + argument)}]")
    {
        Status = status;
        Argument = string.IsNullOrEmpty(argument) ? null : argument;
    }

    /// <summary>The native status.</summary>
    public MsStatus Status { get; }

    /// <summary>The C argument the failure concerns, if any.</summary>
    public string? Argument { get; }
}
