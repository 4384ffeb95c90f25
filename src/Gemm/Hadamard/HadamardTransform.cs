namespace Microscale;

/// <summary>
/// A block-diagonal Hadamard rotation along K (NUMERICS.md §4): each block v of <see cref="BlockSize"/> values becomes
/// y = c · H_g · (D ⊙ v), with H_g the Sylvester Hadamard matrix, D the ±1 <see cref="Signs"/> and c = 1/√g rounded once.
/// </summary>
/// <remarks>
/// Apply the same transform to both GEMM operands along K: A·Bᵀ is then unchanged in exact arithmetic, while outliers are
/// spread over the block before quantization. Evaluation order is fixed (signs, FWHT stages s = 0, 1, …, then × c), so every
/// backend gives the same bits.
/// </remarks>
public sealed class HadamardTransform
{
    private readonly float[] _signs;

    private HadamardTransform(int blockSize, float[] signs)
    {
        BlockSize = blockSize;
        _signs = signs;
        Scale = (float)(1.0 / Math.Sqrt(blockSize));
    }

    /// <summary>The block size g: 16, 32, 64, 128 or 256.</summary>
    public int BlockSize { get; }

    /// <summary>The ±1 sign vector D of length g (all +1 when created without signs).</summary>
    public ReadOnlySpan<float> Signs => _signs;

    /// <summary>c = 1/√g, rounded once from double.</summary>
    public float Scale { get; }

    internal float[] SignArray => _signs;

    /// <summary>A transform with user-supplied signs (or none: all +1).</summary>
    /// <param name="blockSize">g: 16, 32, 64, 128 or 256.</param>
    /// <param name="signs">Empty, or exactly g values each +1 or −1.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="blockSize"/> is not one of the supported sizes.</exception>
    /// <exception cref="ArgumentException"><paramref name="signs"/> has the wrong length or a value other than ±1.</exception>
    public static HadamardTransform Create(int blockSize, ReadOnlySpan<float> signs = default)
    {
        if (blockSize is not (16 or 32 or 64 or 128 or 256))
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "Hadamard block size must be 16, 32, 64, 128 or 256.");
        if (signs.IsEmpty)
            return new HadamardTransform(blockSize, Enumerable.Repeat(1.0f, blockSize).ToArray());
        ThrowHelper.ThrowIfLengthIsNot(blockSize, signs.Length, nameof(signs), "signs (one per block element)");
        for (int i = 0; i < signs.Length; i++)
            if (signs[i] is not (1.0f or -1.0f))
                ThrowHelper.ThrowArgument(nameof(signs), $"Sign {i} is {signs[i]}; every sign must be +1 or -1.");
        return new HadamardTransform(blockSize, signs.ToArray());
    }

    /// <summary>A random Hadamard transform: signs drawn uniformly from ±1 by a generator seeded with <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="blockSize"/> is not one of the supported sizes.</exception>
    public static HadamardTransform CreateRandom(int blockSize, int seed)
    {
        var random = new Random(seed);
        var signs = new float[Math.Max(0, blockSize)];
        for (int i = 0; i < signs.Length; i++)
            signs[i] = random.Next(2) == 0 ? 1.0f : -1.0f;
        return Create(blockSize, signs);
    }

    /// <summary>Throws unless <paramref name="columns"/> is a multiple of <see cref="BlockSize"/>.</summary>
    internal void ThrowIfColumnsNotMultiple(int columns, string paramName)
    {
        if (columns % BlockSize != 0)
            ThrowHelper.ThrowArgument(paramName, $"K ({columns}) must be a multiple of the Hadamard block size ({BlockSize}).");
    }

    /// <inheritdoc/>
    public override string ToString() => $"Hadamard(g={BlockSize}{(_signs.All(s => s == 1.0f) ? "" : ", signed")})";
}

/// <summary>The FWHT of NUMERICS.md §4 on one block, shared by the managed reference and the ILGPU kernels.</summary>
internal static class Fwht
{
    /// <summary>In place on <paramref name="v"/>[0..g): stage s pairs i and i ^ (1 &lt;&lt; s): lower gets a + b, higher a − b.</summary>
    public static void Transform(Span<float> v, int g)
    {
        for (int stride = 1; stride < g; stride <<= 1)
            for (int i = 0; i < g; i++)
                if ((i & stride) == 0)
                {
                    float a = v[i], b = v[i + stride];
                    v[i] = a + b;
                    v[i + stride] = a - b;
                }
    }
}
