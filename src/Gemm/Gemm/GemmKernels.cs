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
/// A group computes a 32×32 tile of C; operands are dequantized as they are loaded into shared memory, 32 of K at a time
/// (stored K-major with one float of padding against bank conflicts). Two thread layouts of the same loop:
/// <list type="bullet">
/// <item><c>Tiled16x16</c> (GPUs): 16×16 threads, each a 2×2 micro-tile in registers.</item>
/// <item><c>Tiled4x4</c> (the ILGPU CPU accelerator, whose groups hold at most 16 threads): 4×4 threads, each an 8×8 micro-tile.</item>
/// </list>
/// </summary>
/// <remarks>Error bound (NUMERICS.md §5, binary32 on CUDA cores or CPU): each operand value rounds once when dequantized
/// (NVFP4: e2m1 × s × g), the product once, K − 1 additions, alpha and bias once each:
/// |C − C_ref| ≤ (K + 4)·2^−24 · |alpha| · Σ|a·b| + one output ulp.</remarks>
internal sealed class GemmKernels
{
    public const int Tile = 32;
    public const int TileK = 32;
    private const int Stride = Tile + 1;
    private const int CpuSide = 4;
    private const int CpuMicro = Tile / CpuSide;

    private readonly Action<KernelConfig, GemmOperand, GemmOperand, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, GemmParams> _kernel;
    private readonly int _groupSide;

    public GemmKernels(Accelerator a)
    {
        bool cpu = a.AcceleratorType == AcceleratorType.CPU;
        _groupSide = cpu ? CpuSide : 16;
        _kernel = cpu
            ? a.LoadStreamKernel<GemmOperand, GemmOperand, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, GemmParams>(Tiled4x4Kernel)
            : a.LoadStreamKernel<GemmOperand, GemmOperand, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, GemmParams>(Tiled16x16Kernel);
    }

    /// <summary>The configuration name of the loaded kernel, as benchmarks and messages print it.</summary>
    public string Name => _groupSide == 16 ? "tiled_32x32x32_g16x16_m2x2" : "tiled_32x32x32_g4x4_m8x8";

    public void Run(GemmOperand a, GemmOperand b, ArrayView<float> bias, ArrayView<float> output, ArrayView<ushort> output16, GemmParams p)
    {
        var config = new KernelConfig(new Index2D((p.N + Tile - 1) / Tile, (p.M + Tile - 1) / Tile), new Index2D(_groupSide, _groupSide));
        _kernel(config, a, b, bias, output, output16, p);
    }

    /// <summary>Dequantizes A[rowBase.., k0..] and B[colBase.., k0..] into the shared tiles (zero outside the matrices).</summary>
    private static void LoadTiles(GemmOperand a, GemmOperand b, ArrayView<float> aTile, ArrayView<float> bTile, int rowBase, int colBase, int k0,
                                  int thread, int threads, GemmParams p)
    {
        for (int l = thread; l < Tile * TileK; l += threads)
        {
            int r = l / TileK, kk = l - r * TileK;
            int k = k0 + kk;
            aTile[kk * Stride + r] = rowBase + r < p.M && k < p.K ? a.Load(rowBase + r, k, p.K) : 0.0f;
            bTile[kk * Stride + r] = colBase + r < p.N && k < p.K ? b.Load(colBase + r, k, p.K) : 0.0f;
        }
    }

    private static void Tiled16x16Kernel(GemmOperand a, GemmOperand b, ArrayView<float> bias, ArrayView<float> output, ArrayView<ushort> output16, GemmParams p)
    {
        var aTile = SharedMemory.Allocate<float>(TileK * Stride);
        var bTile = SharedMemory.Allocate<float>(TileK * Stride);
        int tx = Group.IdxX, ty = Group.IdxY;
        int rowBase = Grid.IdxY * Tile, colBase = Grid.IdxX * Tile;
        float c00 = 0, c01 = 0, c10 = 0, c11 = 0;
        for (int k0 = 0; k0 < p.K; k0 += TileK)
        {
            LoadTiles(a, b, aTile, bTile, rowBase, colBase, k0, ty * 16 + tx, 256, p);
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

    private static void Tiled4x4Kernel(GemmOperand a, GemmOperand b, ArrayView<float> bias, ArrayView<float> output, ArrayView<ushort> output16, GemmParams p)
    {
        var aTile = SharedMemory.Allocate<float>(TileK * Stride);
        var bTile = SharedMemory.Allocate<float>(TileK * Stride);
        var acc = LocalMemory.Allocate<float>(CpuMicro * CpuMicro);
        int tx = Group.IdxX, ty = Group.IdxY;
        int rowBase = Grid.IdxY * Tile, colBase = Grid.IdxX * Tile;
        for (int i = 0; i < CpuMicro * CpuMicro; i++)
            acc[i] = 0.0f;
        for (int k0 = 0; k0 < p.K; k0 += TileK)
        {
            LoadTiles(a, b, aTile, bTile, rowBase, colBase, k0, ty * CpuSide + tx, CpuSide * CpuSide, p);
            Group.Barrier();
            for (int kk = 0; kk < TileK; kk++)
                for (int i = 0; i < CpuMicro; i++)
                {
                    float av = aTile[kk * Stride + ty * CpuMicro + i];
                    for (int j = 0; j < CpuMicro; j++)
                        acc[i * CpuMicro + j] += av * bTile[kk * Stride + tx * CpuMicro + j];
                }
            Group.Barrier();
        }
        for (int i = 0; i < CpuMicro; i++)
            for (int j = 0; j < CpuMicro; j++)
                Store(rowBase + ty * CpuMicro + i, colBase + tx * CpuMicro + j, acc[i * CpuMicro + j], bias, output, output16, p);
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
