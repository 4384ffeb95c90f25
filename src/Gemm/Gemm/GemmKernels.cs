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
    public int Family;
    public int PerRow;
    public int ElementKind;
    public int ElementBits;
    public int BlockSize;
    public int PaddedColumns;
    public int ScaleColumns;
    /// <summary><see cref="ScaleRules.LayoutLinear"/>, <see cref="ScaleRules.LayoutSwizzled"/> or <see cref="ScaleRules.LayoutTiled"/>.</summary>
    public int Layout;

    public const int DenseFormat = -1;

    /// <summary>The dequantized value at (row, column).</summary>
    public float Load(int row, int column, int columns) => Format == DenseFormat
        ? Dense[(long)row * columns + column]
        : QuantizedOperand.Decode(Data, BlockScales, DecodeScales, row, column, Family, PerRow, ElementKind, ElementBits, BlockSize,
                                  PaddedColumns, ScaleColumns, columns, Layout);
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
/// The portable ILGPU GEMM: C[m, n] = alpha · Σ_k deq(A)[m, k] · deq(B)[n, k] + bias[n], binary32 accumulation in k order.
/// <list type="bullet">
/// <item>GPUs (<c>tiled_32x32x32_g16x16_m2x2</c>): a group of 16×16 threads computes a 32×32 tile of C, each thread a 2×2
/// micro-tile; operands are dequantized as they are loaded into shared memory, 32 of K at a time (K-major, one float of
/// padding against bank conflicts).</item>
/// <item>The CPU accelerator (<c>cpu_dequant_blocked_4x4</c>), whose logical threads cost about 1 µs each and whose groups
/// hold at most 16 threads: both operands are dequantized once into binary32 buffers, then each logical thread computes
/// 4×4 blocks of C with sixteen register accumulators, few fat threads.</item>
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
    private const int Block = 4;

    private readonly Accelerator _accelerator;
    private readonly bool _cpu;
    private readonly Action<KernelConfig, GemmOperand, GemmOperand, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, GemmParams>? _tiled;
    private readonly Action<Index1D, GemmOperand, ArrayView<float>, int, int, long>? _dequantize;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, GemmParams, int>? _blocked;

    public GemmKernels(Accelerator a)
    {
        _accelerator = a;
        _cpu = a.AcceleratorType == AcceleratorType.CPU;
        if (_cpu)
        {
            _dequantize = a.LoadAutoGroupedStreamKernel<Index1D, GemmOperand, ArrayView<float>, int, int, long>(DequantizeOperandKernel);
            _blocked = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, GemmParams, int>(BlockedKernel);
        }
        else
        {
            _tiled = a.LoadStreamKernel<GemmOperand, GemmOperand, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, GemmParams>(Tiled16x16Kernel);
        }
    }

    /// <summary>The configuration name of the loaded kernel, as benchmarks and messages print it.</summary>
    public string Name => _cpu ? "cpu_dequant_blocked_4x4" : "tiled_32x32x32_g16x16_m2x2";

    public void Run(GemmOperand a, GemmOperand b, ArrayView<float> bias, ArrayView<float> output, ArrayView<ushort> output16, GemmParams p)
    {
        if (!_cpu)
        {
            var config = new KernelConfig(new Index2D((p.N + Tile - 1) / Tile, (p.M + Tile - 1) / Tile), new Index2D(16, 16));
            _tiled!(config, a, b, bias, output, output16, p);
            return;
        }
        using var denseB = _accelerator.Allocate1D<float>((long)p.N * p.K);
        Dequantize(b, denseB.View, p.N, p.K);
        MemoryBuffer1D<float, Stride1D.Dense>? denseA = null;
        try
        {
            ArrayView<float> aView = a.Dense;
            if (a.Format != GemmOperand.DenseFormat)
            {
                denseA = _accelerator.Allocate1D<float>((long)p.M * p.K);
                Dequantize(a, denseA.View, p.M, p.K);
                aView = denseA.View;
            }
            long blocks = (long)((p.M + Block - 1) / Block) * ((p.N + Block - 1) / Block);
            int perThread = (int)Math.Max(1, (blocks + 63) / 64);
            _blocked!((int)((blocks + perThread - 1) / perThread), aView, denseB.View, bias, output, output16, p, perThread);
            _accelerator.Synchronize(); // the dequantized operands are freed at the end of this scope
        }
        finally
        {
            denseA?.Dispose();
        }
    }

    private void Dequantize(GemmOperand operand, ArrayView<float> destination, int rows, int columns)
    {
        long total = (long)rows * columns;
        int perThread = (int)Math.Max(1, (total + 255) / 256);
        _dequantize!((int)((total + perThread - 1) / perThread), operand, destination, columns, perThread, total);
    }

    // 64-bit element indices: a weight may hold more than 2^31 values (65536 × 40960, say).
    private static void DequantizeOperandKernel(Index1D thread, GemmOperand operand, ArrayView<float> destination, int columns, int perThread, long total)
    {
        long first = (long)thread.X * perThread, end = Math.Min(total, first + perThread);
        for (long i = first; i < end; i++)
        {
            int row = (int)(i / columns);
            destination[i] = operand.Load(row, (int)(i - (long)row * columns), columns);
        }
    }

    /// <summary>4×4 blocks of C from binary32 operands; rows/columns past the matrix re-read the last one and are not stored.</summary>
    private static void BlockedKernel(Index1D thread, ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias, ArrayView<float> output,
                                      ArrayView<ushort> output16, GemmParams p, int perThread)
    {
        int blocksN = (p.N + Block - 1) / Block;
        int total = ((p.M + Block - 1) / Block) * blocksN;
        int end = QuantizeKernels.ChunkEnd(thread, perThread, total);
        for (int item = thread * perThread; item < end; item++)
        {
            int r0 = item / blocksN * Block, c0 = (item % blocksN) * Block;
            long a0 = (long)Math.Min(r0, p.M - 1) * p.K, a1 = (long)Math.Min(r0 + 1, p.M - 1) * p.K;
            long a2 = (long)Math.Min(r0 + 2, p.M - 1) * p.K, a3 = (long)Math.Min(r0 + 3, p.M - 1) * p.K;
            long b0 = (long)Math.Min(c0, p.N - 1) * p.K, b1 = (long)Math.Min(c0 + 1, p.N - 1) * p.K;
            long b2 = (long)Math.Min(c0 + 2, p.N - 1) * p.K, b3 = (long)Math.Min(c0 + 3, p.N - 1) * p.K;
            float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
            float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
            for (int k = 0; k < p.K; k++)
            {
                float x0 = a[a0 + k], x1 = a[a1 + k], x2 = a[a2 + k], x3 = a[a3 + k];
                float y0 = b[b0 + k], y1 = b[b1 + k], y2 = b[b2 + k], y3 = b[b3 + k];
                c00 += x0 * y0; c01 += x0 * y1; c02 += x0 * y2; c03 += x0 * y3;
                c10 += x1 * y0; c11 += x1 * y1; c12 += x1 * y2; c13 += x1 * y3;
                c20 += x2 * y0; c21 += x2 * y1; c22 += x2 * y2; c23 += x2 * y3;
                c30 += x3 * y0; c31 += x3 * y1; c32 += x3 * y2; c33 += x3 * y3;
            }
            Store(r0, c0, c00, bias, output, output16, p); Store(r0, c0 + 1, c01, bias, output, output16, p);
            Store(r0, c0 + 2, c02, bias, output, output16, p); Store(r0, c0 + 3, c03, bias, output, output16, p);
            Store(r0 + 1, c0, c10, bias, output, output16, p); Store(r0 + 1, c0 + 1, c11, bias, output, output16, p);
            Store(r0 + 1, c0 + 2, c12, bias, output, output16, p); Store(r0 + 1, c0 + 3, c13, bias, output, output16, p);
            Store(r0 + 2, c0, c20, bias, output, output16, p); Store(r0 + 2, c0 + 1, c21, bias, output, output16, p);
            Store(r0 + 2, c0 + 2, c22, bias, output, output16, p); Store(r0 + 2, c0 + 3, c23, bias, output, output16, p);
            Store(r0 + 3, c0, c30, bias, output, output16, p); Store(r0 + 3, c0 + 1, c31, bias, output, output16, p);
            Store(r0 + 3, c0 + 2, c32, bias, output, output16, p); Store(r0 + 3, c0 + 3, c33, bias, output, output16, p);
        }
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
