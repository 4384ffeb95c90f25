using ILGPU;
using ILGPU.Runtime;
using Microscale.Formats;

namespace Microscale.Backends;

/// <summary>Launch parameters shared by the quantize and dequantize kernels (plain integers, so kernels can branch on them).</summary>
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
    public int Swizzled;
    public int Format;
    public int ItemsPerThread;
    public int TotalItems;
    public float DecodeScaleDivisor;

    public static QuantizeParams For(FormatSpec spec, QuantizationOptions o, int rows, int columns) => new()
    {
        Rows = rows,
        Columns = columns,
        PaddedColumns = spec.PaddedColumns(columns),
        ScaleColumns = spec.ScaleColumns(columns),
        BlockSize = spec.BlockSize,
        ElementKind = spec.ElementKind,
        ElementBits = spec.ElementBits,
        Rule = o.Rule == MxScaleRule.Ceil ? ScaleRules.RuleCeil : ScaleRules.RuleFloor,
        Swizzled = o.Layout == ScaleLayout.Swizzled128x4 ? 1 : 0,
        Format = (int)spec.Format,
        DecodeScaleDivisor = spec.DecodeScaleDivisor,
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
/// ILGPU kernels for quantization (NUMERICS.md §3, §6). Each logical thread takes <see cref="QuantizeParams.ItemsPerThread"/>
/// consecutive items (blocks, rows or elements). They call the same format functions as <see cref="ReferenceQuantizer"/>
/// and must match it bit for bit.
/// </summary>
internal sealed class QuantizeKernels
{
    public readonly Action<Index1D, ArrayView<float>, ArrayView<int>, QuantizeParams> AbsMax;
    public readonly Action<Index1D, ArrayView<float>, ArrayView<int>, QuantizeParams> RowAbsMax;
    public readonly Action<Index1D, ArrayView<float>, ArrayView<int>, QuantizeParams> FirstNonFinite;
    public readonly Action<Index1D, ArrayView<int>, ArrayView<float>, QuantizeParams> DecodeScales;
    public readonly Action<Index1D, ArrayView<float>, ArrayView<byte>, ArrayView<byte>, QuantizeParams> MxQuantize;
    public readonly Action<Index1D, ArrayView<float>, ArrayView<byte>, ArrayView<byte>, ArrayView<float>, QuantizeParams> NvQuantize;
    public readonly Action<Index1D, ArrayView<float>, ArrayView<byte>, ArrayView<float>, QuantizeParams> Fp8Quantize;
    public readonly Action<Index1D, ArrayView<byte>, ArrayView<byte>, ArrayView<float>, ArrayView<float>, QuantizeParams> Dequantize;

    public QuantizeKernels(Accelerator a)
    {
        AbsMax = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, QuantizeParams>(AbsMaxKernel);
        RowAbsMax = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, QuantizeParams>(RowAbsMaxKernel);
        FirstNonFinite = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, QuantizeParams>(FirstNonFiniteKernel);
        DecodeScales = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<float>, QuantizeParams>(DecodeScalesKernel);
        MxQuantize = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<byte>, ArrayView<byte>, QuantizeParams>(MxQuantizeKernel);
        NvQuantize = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<byte>, ArrayView<byte>, ArrayView<float>, QuantizeParams>(NvQuantizeKernel);
        Fp8Quantize = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<byte>, ArrayView<float>, QuantizeParams>(Fp8QuantizeKernel);
        Dequantize = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<byte>, ArrayView<float>, ArrayView<float>, QuantizeParams>(DequantizeKernel);
    }

    private static int Begin(Index1D thread, QuantizeParams p) => thread * p.ItemsPerThread;

    private static int End(Index1D thread, QuantizeParams p) => Math.Min(p.TotalItems, (thread + 1) * p.ItemsPerThread);

    private static float Load(ArrayView<float> x, int row, int column, QuantizeParams p) =>
        column < p.Columns ? x[(long)row * p.Columns + column] : 0.0f;

    /// <summary>Atomic max of the finite |x| bits over element chunks (non-negative binary32 bits order like their values).</summary>
    private static void AbsMaxKernel(Index1D thread, ArrayView<float> x, ArrayView<int> result, QuantizeParams p)
    {
        uint local = 0;
        for (int i = Begin(thread, p); i < End(thread, p); i++)
        {
            uint bits = FloatBits.AbsBits(x[i]);
            if (FloatBits.IsFiniteBits(bits) && bits > local)
                local = bits;
        }
        if (local != 0)
            Atomic.Max(ref result[0], (int)local);
    }

    /// <summary>Finite |x| max bits per row; items are rows.</summary>
    private static void RowAbsMaxKernel(Index1D thread, ArrayView<float> x, ArrayView<int> result, QuantizeParams p)
    {
        for (int r = Begin(thread, p); r < End(thread, p); r++)
        {
            uint local = 0;
            for (int c = 0; c < p.Columns; c++)
            {
                uint bits = FloatBits.AbsBits(x[(long)r * p.Columns + c]);
                if (FloatBits.IsFiniteBits(bits) && bits > local)
                    local = bits;
            }
            result[r] = (int)local;
        }
    }

    /// <summary>Atomic min of the row-major index of NaN/±Inf elements (result pre-set to int.MaxValue).</summary>
    private static void FirstNonFiniteKernel(Index1D thread, ArrayView<float> x, ArrayView<int> result, QuantizeParams p)
    {
        for (int i = Begin(thread, p); i < End(thread, p); i++)
        {
            if (!FloatBits.IsFiniteBits(FloatBits.AbsBits(x[i])))
            {
                Atomic.Min(ref result[0], i);
                return;
            }
        }
    }

    /// <summary>g = amax / divisor (1 when not normal), one per amax entry.</summary>
    private static void DecodeScalesKernel(Index1D i, ArrayView<int> amaxBits, ArrayView<float> scales, QuantizeParams p)
    {
        scales[i] = ScaleRules.TensorDecodeScale(FloatBits.FromBits((uint)amaxBits[i]), p.DecodeScaleDivisor);
    }

    /// <summary>MXFP4 / MXFP8; items are (row, block) pairs in row-major order.</summary>
    private static void MxQuantizeKernel(Index1D thread, ArrayView<float> x, ArrayView<byte> data, ArrayView<byte> scales, QuantizeParams p)
    {
        for (int item = Begin(thread, p); item < End(thread, p); item++)
        {
            int row = item / p.ScaleColumns;
            int block = item - row * p.ScaleColumns;
            int first = block * p.BlockSize;
            uint amaxBits = 0;
            bool nonFinite = false;
            for (int i = 0; i < p.BlockSize; i++)
            {
                uint bits = FloatBits.AbsBits(Load(x, row, first + i, p));
                if (!FloatBits.IsFiniteBits(bits))
                    nonFinite = true;
                else if (bits > amaxBits)
                    amaxBits = bits;
            }

            uint scaleCode = 0;
            float multiplier = 0.0f;
            if (nonFinite)
            {
                scaleCode = ScaleRules.E8M0Nan;
            }
            else if (amaxBits != 0)
            {
                int e = ScaleRules.MxExponent(FloatBits.FromBits(amaxBits), p.Rule, p.ElementKind);
                scaleCode = (uint)(e + 127);
                multiplier = FloatBits.Pow2(-e);
            }
            scales[ScaleRules.ScaleOffset(row, block, p.ScaleColumns, p.Swizzled != 0)] = (byte)scaleCode;
            WriteBlock(x, data, row, first, multiplier, 1, p);
        }
    }

    /// <summary>NVFP4; items are (row, block) pairs; decodeScale[0] holds g.</summary>
    private static void NvQuantizeKernel(Index1D thread, ArrayView<float> x, ArrayView<byte> data, ArrayView<byte> scales,
                                         ArrayView<float> decodeScale, QuantizeParams p)
    {
        float g = decodeScale[0];
        for (int item = Begin(thread, p); item < End(thread, p); item++)
        {
            int row = item / p.ScaleColumns;
            int block = item - row * p.ScaleColumns;
            int first = block * p.BlockSize;
            uint amaxBits = 0;
            bool nonFinite = false;
            for (int i = 0; i < p.BlockSize; i++)
            {
                uint bits = FloatBits.AbsBits(Load(x, row, first + i, p));
                if (!FloatBits.IsFiniteBits(bits))
                    nonFinite = true;
                else if (bits > amaxBits)
                    amaxBits = bits;
            }
            uint scaleCode = nonFinite ? ScaleRules.UE4M3Nan : ScaleRules.NvBlockScale(FloatBits.FromBits(amaxBits), g);
            scales[ScaleRules.ScaleOffset(row, block, p.ScaleColumns, p.Swizzled != 0)] = (byte)scaleCode;
            bool zeroBlock = nonFinite || scaleCode == 0;
            WriteBlock(x, data, row, first, zeroBlock ? 0.0f : FloatBits.FromE4M3(scaleCode) * g, 0, p);
        }
    }

    /// <summary>
    /// Encodes one block: <paramref name="multiply"/> = 1 scales by multiplication (MX, exact), 0 by division (NVFP4).
    /// A zero <paramref name="factor"/> writes +0 codes.
    /// </summary>
    private static void WriteBlock(ArrayView<float> x, ArrayView<byte> data, int row, int first, float factor, int multiply, QuantizeParams p)
    {
        long rowStart = (long)row * p.PaddedColumns;
        if (p.ElementBits == 8)
        {
            for (int i = 0; i < p.BlockSize; i++)
            {
                float v = Load(x, row, first + i, p);
                uint code = factor == 0.0f ? 0 : ElementKind.Encode(multiply != 0 ? v * factor : v / factor, p.ElementKind);
                data[rowStart + first + i] = (byte)code;
            }
            return;
        }
        for (int i = 0; i < p.BlockSize; i += 2)
        {
            float lo = Load(x, row, first + i, p), hi = Load(x, row, first + i + 1, p);
            uint codeLo = 0, codeHi = 0;
            if (factor != 0.0f)
            {
                codeLo = FloatBits.ToE2M1(multiply != 0 ? lo * factor : lo / factor);
                codeHi = FloatBits.ToE2M1(multiply != 0 ? hi * factor : hi / factor);
            }
            data[(rowStart + first + i) >> 1] = (byte)(codeLo | (codeHi << 4));
        }
    }

    /// <summary>FP8 per-tensor / per-row; items are elements; scales hold g (one, or one per row).</summary>
    private static void Fp8QuantizeKernel(Index1D thread, ArrayView<float> x, ArrayView<byte> data, ArrayView<float> scales, QuantizeParams p)
    {
        bool perRow = p.Format == (int)QuantFormat.Fp8PerRow;
        for (int i = Begin(thread, p); i < End(thread, p); i++)
        {
            float g = scales[perRow ? i / p.Columns : 0];
            data[i] = (byte)ElementKind.Encode(x[i] / g, p.ElementKind);
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
            long index = (long)row * p.PaddedColumns + column;
            uint code = p.ElementBits == 8 ? data[index] : (uint)(data[index >> 1] >> (int)(4 * (index & 1))) & 0xFu;
            float element = ElementKind.Decode(code, p.ElementKind);
            float value;
            if (p.Format == (int)QuantFormat.Mxfp4 || p.Format == (int)QuantFormat.Mxfp8)
                value = element * FloatBits.FromE8M0(blockScales[ScaleRules.ScaleOffset(row, column / p.BlockSize, p.ScaleColumns, p.Swizzled != 0)]);
            else if (p.Format == (int)QuantFormat.Nvfp4)
                value = element * FloatBits.FromE4M3(blockScales[ScaleRules.ScaleOffset(row, column / p.BlockSize, p.ScaleColumns, p.Swizzled != 0)]) * decodeScales[0];
            else
                value = element * decodeScales[p.Format == (int)QuantFormat.Fp8PerRow ? row : 0];
            output[i] = value;
        }
    }
}
