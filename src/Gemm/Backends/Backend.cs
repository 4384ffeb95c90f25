namespace Microscale;

/// <summary>Where an operation runs.</summary>
public enum Backend
{
    /// <summary>The best backend present: <see cref="Native"/> when libmicroscale loads and a CUDA device is found, else ILGPU CUDA,
    /// else the ILGPU CPU accelerator.</summary>
    Auto,
    /// <summary>The plain managed scalar reference (slow, obviously correct; what the others are tested against).</summary>
    Reference,
    /// <summary>ILGPU kernels on the ILGPU CPU accelerator (runs anywhere).</summary>
    Cpu,
    /// <summary>ILGPU kernels on the ILGPU CUDA accelerator (first CUDA device).</summary>
    Cuda,
    /// <summary>libmicroscale's CUDA kernels, on memory and streams of an ILGPU CUDA accelerator (first CUDA device).</summary>
    Native,
}
