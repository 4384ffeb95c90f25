namespace Microscale.Bench;

internal static class OperandSets
{
    /// <summary>How many operand sets the GEMM sweeps rotate through, so that no operand is still in L2 from the previous call.</summary>
    public const int Count = 4;
}

/// <summary>A_i [M, K] and B_i [N, K] for i = 0..<see cref="OperandSets.Count"/>−1, disposed together.</summary>
internal sealed class OperandSets<T>(Func<int, T> a, Func<int, T> b) : IDisposable where T : IDisposable
{
    public T[] A { get; } = Enumerable.Range(0, OperandSets.Count).Select(a).ToArray();
    public T[] B { get; } = Enumerable.Range(0, OperandSets.Count).Select(b).ToArray();

    public void Dispose()
    {
        foreach (var t in A.Concat(B))
            t.Dispose();
    }
}
