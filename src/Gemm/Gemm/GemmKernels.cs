using ILGPU;
using ILGPU.Runtime;
using Microscale.Formats;

namespace Microscale.Backends;

/// <summary>One GEMM operand as the kernel reads it: quantized parts, or a dense binary32 matrix (Format = -1).</summary>
internal struct GemmOperand
{
    public ArrayView<byte> Data;
    public ArrayView<byte> BlockScales;
    public ArrayView<float> DecodeScales;
    public ArrayView<float> Dense;
    public int Format;
    public int ElementKind;
    public int ElementBits;
    public int BlockSize;
    public int PaddedColumns;
    public int ScaleColumns;
    public int Swizzled;

    public const int DenseFormat = -1;

    /// <summary>The dequantized value at (row, column).</summary>
    public float Load(int row, int column, int columns) => Format == DenseFormat
        ? Dense[(long)row * columns + column]
        : QuantizedOperand.Decode(Data, BlockScales, DecodeScales, row, column, Format, ElementKind, ElementBits, BlockSize,
                                  PaddedColumns, ScaleColumns, Swizzled);
}

internal struct GemmParams
{
    public int M;
    public int N;
    public int K;
    public float Alpha;
    public int HasBias;
    /// <summary>0: binary32, 1: BF16, 2: FP16.</summary>
    public int OutputKind;
}

/// <summary>
/// The portable tiled GEMM: C[m, n] = alpha · Σ_k deq(A)[m, k] · deq(B)[n, k] + bias[n], binary32 accumulation.
/// Tile 32×32×32 per group of 16×16 threads, each thread a 2×2 micro-tile; operands are dequantized as they are loaded
/// into shared memory (stored K-major with one float of padding against bank conflicts).
/// </summary>
/// <remarks>Error bound (NUMERICS.md §5, binary32 on CUDA cores or CPU): each operand value rounds once when dequantized
/// (NVFP4: e2m1 × s × g), the product once, K − 1 additions, alpha once: |C − C_ref| ≤ (K + 3)·2^−24 · Σ|a·b| + ulp_out.</remarks>
internal sealed class GemmKernels
{
    public const int Tile = 32;
    public const int TileK = 32;
    public const int GroupSide = 16;
    private const int Stride = Tile + 1;

    public readonly Action<KernelConfig, GemmOperand, GemmOperand, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, GemmParams> Tiled;

    public GemmKernels(Accelerator a)
    {
        Tiled = a.LoadStreamKernel<GemmOperand, GemmOperand, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, GemmParams>(TiledKernel);
    }

    public static KernelConfig Config(int m, int n) =>
        new(new Index2D((n + Tile - 1) / Tile, (m + Tile - 1) / Tile), new Index2D(GroupSide, GroupSide));

    private static void TiledKernel(GemmOperand a, GemmOperand b, ArrayView<float> bias, ArrayView<float> output, ArrayView<ushort> output16, GemmParams p)
    {
        var aTile = SharedMemory.Allocate<float>(TileK * Stride);
        var bTile = SharedMemory.Allocate<float>(TileK * Stride);
        int tx = Group.IdxX, ty = Group.IdxY;
        int thread = ty * GroupSide + tx;
        int rowBase = Grid.IdxY * Tile, colBase = Grid.IdxX * Tile;
        float c00 = 0, c01 = 0, c10 = 0, c11 = 0;

        for (int k0 = 0; k0 < p.K; k0 += TileK)
        {
            for (int l = thread; l < Tile * TileK; l += GroupSide * GroupSide)
            {
                int r = l / TileK, kk = l - r * TileK;
                int k = k0 + kk;
                aTile[kk * Stride + r] = rowBase + r < p.M && k < p.K ? a.Load(rowBase + r, k, p.K) : 0.0f;
                bTile[kk * Stride + r] = colBase + r < p.N && k < p.K ? b.Load(colBase + r, k, p.K) : 0.0f;
            }
            Group.Barrier();
            for (int kk = 0; kk < TileK; kk++)
            {
                float a0 = aTile[kk * Stride + ty * 2], a1 = aTile[kk * Stride + ty * 2 + 1];
                float b0 = bTile[kk * Stride + tx * 2], b1 = bTile[kk * Stride + tx * 2 + 1];
                c00 += a0 * b0;
                c01 += a0 * b1;
                c10 += a1 * b0;
                c11 += a1 * b1;
            }
            Group.Barrier();
        }

        Store(rowBase + ty * 2, colBase + tx * 2, c00, bias, output, output16, p);
        Store(rowBase + ty * 2, colBase + tx * 2 + 1, c01, bias, output, output16, p);
        Store(rowBase + ty * 2 + 1, colBase + tx * 2, c10, bias, output, output16, p);
        Store(rowBase + ty * 2 + 1, colBase + tx * 2 + 1, c11, bias, output, output16, p);
    }

    private static void Store(int m, int n, float acc, ArrayView<float> bias, ArrayView<float> output, ArrayView<ushort> output16, GemmParams p)
    {
        if (m >= p.M || n >= p.N)
            return;
        float value = p.Alpha * acc;
        if (p.HasBias != 0)
            value += bias[n];
        long index = (long)m * p.N + n;
        if (p.OutputKind == 0)
            output[index] = value;
        else
            output16[index] = p.OutputKind == 1 ? FloatBits.ToBFloat16(value) : FloatBits.ToHalfBits(value);
    }
}
