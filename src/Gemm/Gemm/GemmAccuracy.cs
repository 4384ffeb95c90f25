namespace Microscale;

/// <summary>
/// The error bounds GEMM results are checked against (NUMERICS.md §5):
/// |C − C_ref| ≤ ε · |alpha| · Σ_k |deq a · deq b| + one ulp of the output type, with C_ref the float64 product of the
/// dequantized operands.
/// </summary>
public static class GemmAccuracy
{
    /// <summary>
    /// ε for a kernel (by the name <see cref="MicroscaleContext.LastGemmKernel"/> reports) and reduction length K.
    /// <list type="bullet">
    /// <item>binary32 accumulation (ILGPU kernels, the generic CUDA kernel): one rounding per dequantized operand value,
    /// one per product, K − 1 additions, alpha and bias: ε = (K + 4)·2^−24.</item>
    /// <item>Hopper FP8 tensor cores (<c>sm90_fp8</c> kernels): each 128-wide K block is accumulated by wgmma with reduced
    /// precision, then promoted into binary32. Measured on the H100 (microscale_selftest): worst block error 5.1·2^−13 of the
    /// block's Σ|a·b|; the bound takes 2^−9 (a 3× margin). Blocks add at most linearly, so
    /// ε = 2^−9 + (⌈K/128⌉ + 4)·2^−24.</item>
    /// </list>
    /// </summary>
    /// <param name="k">The reduction length K.</param>
    /// <param name="kernel">The kernel name; empty or unknown names get the binary32 bound.</param>
    public static double Epsilon(int k, string? kernel)
    {
        if (kernel is not null && kernel.Contains("sm90_fp8", StringComparison.Ordinal))
            return Math.Pow(2, -9) + ((k + 127) / 128 + 4) * Math.Pow(2, -24);
        return (k + 4) * Math.Pow(2, -24);
    }
}
