using ILGPU;
using ILGPU.Runtime;
using Microscale.Formats;

namespace Microscale.Backends;

/// <summary>Launch parameters shared by the quantize, rotate and dequantize kernels (plain integers, so kernels can branch on them).</summary>
internal struct QuantizeParams
{
    public int Rows;
    public int Columns;
    public int PaddedColumns;
    public int ScaleColumns;
    public int BlockSize;
    public int ElementKind;
    public int ElementBits;
    public int Rule;
    /// <summary>The tensor's layout: <see cref="ScaleRules.LayoutLinear"/>, <see cref="ScaleRules.LayoutSwizzled"/> or (read only) <see cref="ScaleRules.LayoutTiled"/>.</summary>
    public int Layout;
    public int Format;
    /// <summary>Scale family: <see cref="ScaleRules.FamilyMx"/>, <see cref="ScaleRules.FamilyNv"/> or <see cref="ScaleRules.FamilyScaled"/>.</summary>
    public int Family;
    public float DecodeScaleDivisor;
    /// <summary>Hadamard block g, 0 for no rotation.</summary>
    public int HadamardSize;
    public float HadamardScale;
    /// <summary>Values one work item loads (and rotates) at once: a multiple of g and of the quantization block.</summary>
    public int ChunkWidth;
    public int ChunksPerRow;
    /// <summary>1: amax per row (FP8 per-row); 0: one amax for the tensor.</summary>
    public int PerRow;
    /// <summary>1: stochastic rounding keyed by <see cref="Seed"/> (NUMERICS.md §7).</summary>
    public int Stochastic;
    public ulong Seed;
    /// <summary>1: NVFP4 block amax over the 16 x 16 tile (NUMERICS.md §9; no rotation).</summary>
    public int TwoDimensional;
    public int ItemsPerThread;
    public int TotalItems;

    /// <summary>The largest chunk (the largest Hadamard block); kernels keep one chunk in local memory.</summary>
    public const int MaxChunk = 256;

    public static QuantizeParams For(FormatSpec spec, QuantizationOptions o, int rows, int columns, HadamardTransform? h)
    {
        int g = h?.BlockSize ?? 0;
        int chunk = Math.Max(g, spec.IsBlockScaled ? spec.BlockSize : (g > 0 ? g : 64));
        return new()
        {
            Rows = rows,
            Columns = columns,
            PaddedColumns = spec.PaddedColumns(columns),
            ScaleColumns = spec.ScaleColumns(columns),
            BlockSize = spec.BlockSize,
            ElementKind = spec.ElementKind,
            ElementBits = spec.ElementBits,
            Rule = o.Rule == MxScaleRule.Ceil ? ScaleRules.RuleCeil : ScaleRules.RuleFloor,
            Layout = (int)o.Layout,
            Format = (int)spec.Format,
            Family = spec.Family,
            DecodeScaleDivisor = spec.DecodeScaleDivisor,
            HadamardSize = g,
            HadamardScale = h?.Scale ?? 1.0f,
            ChunkWidth = chunk,
            ChunksPerRow = (spec.PaddedColumns(columns) + chunk - 1) / chunk,
            PerRow = spec.Format == QuantFormat.Fp8PerRow ? 1 : 0,
            Stochastic = o.Rounding == RoundingMode.Stochastic ? 1 : 0,
            Seed = o.Seed,
            TwoDimensional = o.TwoDimensionalBlocks ? 1 : 0,
        };
    }

    /// <summary>Parameters for a plain rotation (no quantization) of [rows, columns] by <paramref name="h"/>.</summary>
    public static QuantizeParams ForRotation(int rows, int columns, HadamardTransform h) => new()
    {
        Rows = rows,
        Columns = columns,
        PaddedColumns = columns,
        HadamardSize = h.BlockSize,
        HadamardScale = h.Scale,
        ChunkWidth = h.BlockSize,
        ChunksPerRow = columns / h.BlockSize,
    };

    /// <summary>A copy that splits <paramref name="totalItems"/> over threads of <paramref name="perThread"/> items; returns the thread count.</summary>
    public QuantizeParams Split(long totalItems, int perThread, out int threads)
    {
        var p = this;
        p.TotalItems = (int)totalItems;
        p.ItemsPerThread = perThread;
        threads = (int)((totalItems + perThread - 1) / perThread);
        return p;
    }
}

/// <summary>
/// ILGPU kernels for quantization and Hadamard rotation (NUMERICS.md §3, §4, §6). Each logical thread takes
/// <see cref="QuantizeParams.ItemsPerThread"/> consecutive items; an item is one chunk of one row (loaded into local memory
/// and rotated when g &gt; 0), one row, or one element. They call the same format functions as the managed reference and must
/// match it bit for bit.
/// </summary>
internal sealed class QuantizeKernels
{
    public readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, QuantizeParams> AbsMax;
    public readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, QuantizeParams> FirstNonFinite;
    public readonly Action<Index1D, ArrayView<int>, ArrayView<float>, QuantizeParams> DecodeScales;
    public readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<byte>, ArrayView<byte>, ArrayView<float>, QuantizeParams> BlockQuantize;
    public readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<byte>, ArrayView<float>, QuantizeParams> Fp8Quantize;
    public readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, QuantizeParams> Rotate;
    public readonly Action<Index1D, ArrayView<byte>, ArrayView<byte>, ArrayView<float>, ArrayView<float>, QuantizeParams> Dequantize;
    public readonly Action<Index1D, ArrayView<ushort>, ArrayView<float>, int, int, int> Widen16;
    public readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> SiluMultiply;
    public readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, int, int> SiluMultiplyToBf16;
    public readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int> Transpose;
    public readonly Action<Index1D, ArrayView<byte>, ArrayView<byte>, ArrayView<byte>, ArrayView<byte>, RelayoutParams> Relayout;

    public QuantizeKernels(Accelerator a)
    {
        AbsMax = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, QuantizeParams>(AbsMaxKernel);
        FirstNonFinite = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, QuantizeParams>(FirstNonFiniteKernel);
        DecodeScales = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<float>, QuantizeParams>(DecodeScalesKernel);
        BlockQuantize = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<byte>, ArrayView<byte>, ArrayView<float>, QuantizeParams>(BlockQuantizeKernel);
        Fp8Quantize = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<byte>, ArrayView<float>, QuantizeParams>(Fp8QuantizeKernel);
        Rotate = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, QuantizeParams>(RotateKernel);
        Dequantize = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<byte>, ArrayView<float>, ArrayView<float>, QuantizeParams>(DequantizeKernel);
        Widen16 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>, int, int, int>(Widen16Kernel);
        SiluMultiply = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(SiluMultiplyKernel);
        SiluMultiplyToBf16 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, int, int>(SiluMultiplyToBf16Kernel);
        Transpose = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int>(TransposeKernel);
        Relayout = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<byte>, ArrayView<byte>, ArrayView<byte>, RelayoutParams>(RelayoutKernel);
    }

    private static int Begin(Index1D thread, QuantizeParams p) => thread * p.ItemsPerThread;

    private static int End(Index1D thread, QuantizeParams p) => ChunkEnd(thread, p.ItemsPerThread, p.TotalItems);

    /// <summary>One past the last item of a thread's chunk of <paramref name="perThread"/>, in 64 bits: (thread + 1) ·
    /// perThread overflows an int for totals within a chunk of 2^31.</summary>
    internal static int ChunkEnd(Index1D thread, int perThread, int total) => (int)Math.Min(total, ((long)thread.X + 1) * perThread);

    /// <summary>
    /// Loads columns [first, first + ChunkWidth) of a row into <paramref name="local"/> (zero past K), then, when g &gt; 0,
    /// rotates every g-block that lies inside K: signs, FWHT stages s = 0, 1, …, × c (NUMERICS.md §4).
    /// </summary>
    private static void LoadChunk(ArrayView<float> x, ArrayView<float> signs, ArrayView<float> local, int row, int first, QuantizeParams p)
    {
        long rowStart = (long)row * p.Columns;
        for (int i = 0; i < p.ChunkWidth; i++)
            local[i] = first + i < p.Columns ? x[rowStart + first + i] : 0.0f;
        int g = p.HadamardSize;
        if (g == 0)
            return;
        for (int block = 0; block < p.ChunkWidth && first + block < p.Columns; block += g)
        {
            for (int i = 0; i < g; i++)
                local[block + i] = local[block + i] * signs[i];
            for (int stride = 1; stride < g; stride <<= 1)
                for (int i = 0; i < g; i++)
                    if ((i & stride) == 0)
                    {
                        float a = local[block + i], b = local[block + i + stride];
                        local[block + i] = a + b;
                        local[block + i + stride] = a - b;
                    }
            for (int i = 0; i < g; i++)
                local[block + i] = local[block + i] * p.HadamardScale;
        }
    }

    /// <summary>Loads work item (row, chunk) into <paramref name="local"/>; returns the row and the chunk's first column.</summary>
    private static int LoadItem(int item, ArrayView<float> x, ArrayView<float> signs, ArrayView<float> local, QuantizeParams p, out int first)
    {
        int row = item / p.ChunksPerRow;
        first = (item - row * p.ChunksPerRow) * p.ChunkWidth;
        LoadChunk(x, signs, local, row, first, p);
        return row;
    }

    /// <summary>Atomic max of the finite |value| bits (non-negative binary32 bits order like their values), per tensor or per row.</summary>
    private static void AbsMaxKernel(Index1D thread, ArrayView<float> x, ArrayView<float> signs, ArrayView<int> result, QuantizeParams p)
    {
        var local = LocalMemory.Allocate<float>(QuantizeParams.MaxChunk);
        for (int item = Begin(thread, p); item < End(thread, p); item++)
        {
            int row = LoadItem(item, x, signs, local, p, out int first);
            uint max = 0;
            for (int i = 0; i < p.ChunkWidth; i++)
            {
                uint bits = FloatBits.AbsBits(local[i]);
                if (FloatBits.IsFiniteBits(bits) && bits > max)
                    max = bits;
            }
            if (max != 0)
                Atomic.Max(ref result[p.PerRow != 0 ? row : 0], (int)max);
        }
    }

    /// <summary>Atomic min of the row-major index of NaN/±Inf values (after rotation); result pre-set to int.MaxValue.</summary>
    private static void FirstNonFiniteKernel(Index1D thread, ArrayView<float> x, ArrayView<float> signs, ArrayView<int> result, QuantizeParams p)
    {
        var local = LocalMemory.Allocate<float>(QuantizeParams.MaxChunk);
        for (int item = Begin(thread, p); item < End(thread, p); item++)
        {
            int row = LoadItem(item, x, signs, local, p, out int first);
            for (int i = 0; i < p.ChunkWidth && first + i < p.Columns; i++)
            {
                if (!FloatBits.IsFiniteBits(FloatBits.AbsBits(local[i])))
                {
                    Atomic.Min(ref result[0], row * p.Columns + first + i);
                    break;
                }
            }
        }
    }

    /// <summary>g = amax / divisor (1 when not normal), one per amax entry.</summary>
    private static void DecodeScalesKernel(Index1D i, ArrayView<int> amaxBits, ArrayView<float> scales, QuantizeParams p)
    {
        scales[i] = ScaleRules.TensorDecodeScale(FloatBits.FromBits((uint)amaxBits[i]), p.DecodeScaleDivisor);
    }

    /// <summary>MXFP4 / MXFP8 / NVFP4; items are (row, chunk); each chunk holds whole quantization blocks. decodeScale[0] is NVFP4's g.</summary>
    private static void BlockQuantizeKernel(Index1D thread, ArrayView<float> x, ArrayView<float> signs, ArrayView<byte> data,
                                            ArrayView<byte> scales, ArrayView<float> decodeScale, QuantizeParams p)
    {
        var local = LocalMemory.Allocate<float>(QuantizeParams.MaxChunk);
        bool nv = p.Family == ScaleRules.FamilyNv;
        float g = nv ? decodeScale[0] : 1.0f;
        for (int item = Begin(thread, p); item < End(thread, p); item++)
        {
            int row = LoadItem(item, x, signs, local, p, out int chunkFirst);
            for (int offset = 0; offset < p.ChunkWidth; offset += p.BlockSize)
            {
                uint amaxBits = 0;
                bool nonFinite = false;
                for (int i = 0; i < p.BlockSize; i++)
                {
                    uint bits = FloatBits.AbsBits(local[offset + i]);
                    if (!FloatBits.IsFiniteBits(bits))
                        nonFinite = true;
                    else if (bits > amaxBits)
                        amaxBits = bits;
                }

                uint scaleCode;
                float factor = 0.0f; // MX: multiply by 2^−e; NVFP4: divide by d; 0 writes +0 codes
                if (nv && p.TwoDimensional != 0)
                    TileAmax(x, row, chunkFirst + offset, p, ref amaxBits, ref nonFinite);
                if (nv)
                {
                    scaleCode = nonFinite ? ScaleRules.UE4M3Nan : ScaleRules.NvBlockScale(FloatBits.FromBits(amaxBits), g, p.ElementKind);
                    if (!nonFinite && scaleCode != 0)
                        factor = FloatBits.FromE4M3(scaleCode) * g;
                }
                else if (nonFinite)
                {
                    scaleCode = ScaleRules.E8M0Nan;
                }
                else if (amaxBits == 0)
                {
                    scaleCode = 0;
                }
                else
                {
                    int e = ScaleRules.MxExponent(FloatBits.FromBits(amaxBits), p.Rule, p.ElementKind);
                    scaleCode = (uint)(e + 127);
                    factor = FloatBits.Pow2(-e);
                }
                int block = (chunkFirst + offset) / p.BlockSize;
                scales[ScaleRules.ScaleOffset(row, block, p.ScaleColumns, p.Layout == ScaleRules.LayoutSwizzled)] = (byte)scaleCode;
                WriteBlock(local, offset, data, (long)row * p.PaddedColumns + chunkFirst + offset, factor, nv, p);
            }
        }
    }

    /// <summary>Folds the other rows of the 16 x 16 tile holding (row, first..first+BlockSize) into the block's amax (raw input; rows past the end count 0).</summary>
    private static void TileAmax(ArrayView<float> x, int row, int first, QuantizeParams p, ref uint amaxBits, ref bool nonFinite)
    {
        int tileRow = row & ~15;
        int end = Math.Min(p.Rows, tileRow + 16);
        for (int r = tileRow; r < end; r++)
            for (int i = 0; i < p.BlockSize; i++)
            {
                uint bits = first + i < p.Columns ? FloatBits.AbsBits(x[(long)r * p.Columns + first + i]) : 0u;
                if (!FloatBits.IsFiniteBits(bits))
                    nonFinite = true;
                else if (bits > amaxBits)
                    amaxBits = bits;
            }
    }

    /// <summary>Encodes BlockSize values of <paramref name="local"/> at element index <paramref name="index"/> of the packed data.</summary>
    private static void WriteBlock(ArrayView<float> local, int offset, ArrayView<byte> data, long index, float factor, bool divide, QuantizeParams p)
    {
        if (p.ElementBits == 8)
        {
            for (int i = 0; i < p.BlockSize; i++)
            {
                float v = local[offset + i];
                data[index + i] = (byte)(factor == 0.0f ? 0 : StochasticRounding.EncodeElement(divide ? v / factor : v * factor, p.ElementKind, p.Stochastic, p.Seed, index + i));
            }
            return;
        }
        for (int i = 0; i < p.BlockSize; i += 2)
        {
            float lo = local[offset + i], hi = local[offset + i + 1];
            uint codeLo = 0, codeHi = 0;
            if (factor != 0.0f)
            {
                codeLo = StochasticRounding.EncodeElement(divide ? lo / factor : lo * factor, p.ElementKind, p.Stochastic, p.Seed, index + i);
                codeHi = StochasticRounding.EncodeElement(divide ? hi / factor : hi * factor, p.ElementKind, p.Stochastic, p.Seed, index + i + 1);
            }
            data[(index + i) >> 1] = (byte)(codeLo | (codeHi << 4));
        }
    }

    /// <summary>FP8 per-tensor / per-row; items are (row, chunk); scales hold g (one, or one per row).</summary>
    private static void Fp8QuantizeKernel(Index1D thread, ArrayView<float> x, ArrayView<float> signs, ArrayView<byte> data,
                                          ArrayView<float> scales, QuantizeParams p)
    {
        var local = LocalMemory.Allocate<float>(QuantizeParams.MaxChunk);
        for (int item = Begin(thread, p); item < End(thread, p); item++)
        {
            int row = LoadItem(item, x, signs, local, p, out int first);
            float g = scales[p.PerRow != 0 ? row : 0];
            for (int i = 0; i < p.ChunkWidth && first + i < p.Columns; i++)
                data[(long)row * p.Columns + first + i] = (byte)StochasticRounding.EncodeElement(local[i] / g, p.ElementKind, p.Stochastic, p.Seed, (long)row * p.Columns + first + i);
        }
    }

    /// <summary>Hadamard rotation to binary32; items are (row, g-block).</summary>
    private static void RotateKernel(Index1D thread, ArrayView<float> x, ArrayView<float> signs, ArrayView<float> y, QuantizeParams p)
    {
        var local = LocalMemory.Allocate<float>(QuantizeParams.MaxChunk);
        for (int item = Begin(thread, p); item < End(thread, p); item++)
        {
            int row = LoadItem(item, x, signs, local, p, out int first);
            for (int i = 0; i < p.ChunkWidth; i++)
                y[(long)row * p.Columns + first + i] = local[i];
        }
    }

    /// <summary>Every format back to binary32 [rows, columns] (padding dropped); items are logical elements.</summary>
    private static void DequantizeKernel(Index1D thread, ArrayView<byte> data, ArrayView<byte> blockScales, ArrayView<float> decodeScales,
                                         ArrayView<float> output, QuantizeParams p)
    {
        for (int i = Begin(thread, p); i < End(thread, p); i++)
        {
            int row = i / p.Columns;
            int column = i - row * p.Columns;
            output[i] = QuantizedOperand.Decode(data, blockScales, decodeScales, row, column, p.Family, p.PerRow, p.ElementKind, p.ElementBits,
                                                p.BlockSize, p.PaddedColumns, p.ScaleColumns, p.Columns, p.Layout);
        }
    }

    /// <summary>destination[c, r] = source[r, c] for a [rows, columns] source; chunks of <paramref name="perThread"/> source elements.</summary>
    private static void TransposeKernel(Index1D thread, ArrayView<float> source, ArrayView<float> destination, int rows, int columns, int perThread, int total)
    {
        int end = ChunkEnd(thread, perThread, total);
        for (int i = thread * perThread; i < end; i++)
        {
            int r = i / columns, c = i - r * columns;
            destination[(long)c * rows + r] = source[i];
        }
    }

    /// <summary>destination = SiLU(gate) · up elementwise (the gated MLP's activation), SiLU(g) = g / (1 + e^−g).</summary>
    public static float SiluTimes(float gate, float up) => gate / (1f + MathF.Exp(-gate)) * up;

    private static void SiluMultiplyKernel(Index1D thread, ArrayView<float> gate, ArrayView<float> up, ArrayView<float> destination, int perThread, int total)
    {
        int end = ChunkEnd(thread, perThread, total);
        for (int i = thread * perThread; i < end; i++)
            destination[i] = SiluTimes(gate[i], up[i]);
    }

    /// <summary>As <see cref="SiluMultiplyKernel"/>, rounded to BF16 (nearest even): the next layer's 16-bit activations.</summary>
    private static void SiluMultiplyToBf16Kernel(Index1D thread, ArrayView<float> gate, ArrayView<float> up, ArrayView<ushort> destination, int perThread, int total)
    {
        int end = ChunkEnd(thread, perThread, total);
        for (int i = thread * perThread; i < end; i++)
            destination[i] = FloatBits.ToBFloat16(SiluTimes(gate[i], up[i]));
    }

    /// <summary>Codes and block scales into another layout (<see cref="RelayoutParams"/>); chunks of items per thread.</summary>
    private static void RelayoutKernel(Index1D thread, ArrayView<byte> sourceData, ArrayView<byte> sourceScales, ArrayView<byte> data,
                                       ArrayView<byte> scales, RelayoutParams p)
    {
        int end = ChunkEnd(thread, p.ItemsPerThread, p.TotalItems);
        for (int i = thread * p.ItemsPerThread; i < end; i++)
        {
            p.Map(i, out bool isCode, out long from, out long to);
            if (isCode)
                data[to] = sourceData[from];
            else
                scales[to] = sourceScales[from];
        }
    }

    /// <summary>BF16 (isHalf = 0) or FP16 (isHalf = 1) bits → binary32, exact; chunks of <paramref name="perThread"/> elements.</summary>
    private static void Widen16Kernel(Index1D thread, ArrayView<ushort> source, ArrayView<float> destination, int isHalf, int perThread, int total)
    {
        int end = ChunkEnd(thread, perThread, total);
        for (int i = thread * perThread; i < end; i++)
            destination[i] = isHalf != 0 ? FloatBits.FromHalfBits(source[i]) : FloatBits.FromBFloat16(source[i]);
    }
}

/// <summary>Decoding one element of a quantized operand: shared by the dequantize and GEMM kernels.</summary>
internal static class QuantizedOperand
{
    public static float Decode(ArrayView<byte> data, ArrayView<byte> blockScales, ArrayView<float> decodeScales, int row, int column,
                               int family, int perRow, int elementKind, int elementBits, int blockSize, int paddedColumns, int scaleColumns,
                               int columns, int layout)
    {
        uint code = ScaleRules.Code(data, row, column, paddedColumns, columns, elementBits, layout);
        float element = ElementKind.Decode(code, elementKind);
        if (family == ScaleRules.FamilyMx)
            return element * FloatBits.FromE8M0(blockScales[ScaleRules.ScaleOffset(row, column / blockSize, scaleColumns, blockSize, columns, layout)]);
        if (family == ScaleRules.FamilyNv)
            return element * FloatBits.FromE4M3(blockScales[ScaleRules.ScaleOffset(row, column / blockSize, scaleColumns, blockSize, columns, layout)]) * decodeScales[0];
        return element * decodeScales[perRow != 0 ? row : 0];
    }
}
