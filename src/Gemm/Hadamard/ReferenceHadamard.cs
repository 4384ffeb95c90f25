namespace Microscale;

/// <summary>The plain managed reference of the block Hadamard rotation (NUMERICS.md §4).</summary>
internal static class ReferenceHadamard
{
    /// <summary>y = rotate(x) for a row-major [rows, columns] tensor; columns is a multiple of g.</summary>
    public static void Rotate(ReadOnlySpan<float> x, int rows, int columns, HadamardTransform h, Span<float> y)
    {
        int g = h.BlockSize;
        ReadOnlySpan<float> signs = h.Signs;
        Span<float> block = stackalloc float[g];
        for (int r = 0; r < rows; r++)
        for (int first = 0; first < columns; first += g)
        {
            int offset = r * columns + first;
            for (int i = 0; i < g; i++)
                block[i] = x[offset + i] * signs[i];
            Fwht.Transform(block, g);
            for (int i = 0; i < g; i++)
                y[offset + i] = block[i] * h.Scale;
        }
    }
}
