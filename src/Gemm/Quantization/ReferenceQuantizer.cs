using Microscale.Formats;

namespace Microscale;

/// <summary>
/// The plain managed scalar reference of every quantizer and dequantizer (NUMERICS.md §3, §6): one obvious loop per rule,
/// written for reading, not speed. The ILGPU kernels must agree with it bit for bit.
/// </summary>
internal static class ReferenceQuantizer
{
    /// <summary>Quantizes a row-major [rows, columns] tensor into the three buffers of <paramref name="destination"/>.</summary>
    public static void Quantize(ReadOnlySpan<float> x, int rows, int columns, QuantizationOptions options, QuantizedTensor.Parts destination)
    {
        var spec = FormatSpec.Of(options);
        if (spec.IsMx)
            QuantizeMx(x, rows, columns, spec, options, destination);
        else if (spec.IsNv)
            QuantizeNv(x, rows, columns, spec, options, destination);
        else
            QuantizeFp8(x, rows, columns, spec, options, destination);
    }

    /// <summary>Returns (row, column) of the first NaN/±Inf in row-major order, or null.</summary>
    public static (int Row, int Column)? FindFirstNonFinite(ReadOnlySpan<float> x, int columns)
    {
        for (int i = 0; i < x.Length; i++)
            if (!float.IsFinite(x[i]))
                return (i / columns, i % columns);
        return null;
    }

    private static float Element(ReadOnlySpan<float> x, int row, int column, int columns) =>
        column < columns ? x[row * columns + column] : 0.0f; // K is zero-padded to the block

    private static void QuantizeMx(ReadOnlySpan<float> x, int rows, int columns, FormatSpec spec, QuantizationOptions o, QuantizedTensor.Parts d)
    {
        int scaleColumns = spec.ScaleColumns(columns);
        int paddedColumns = spec.PaddedColumns(columns);
        int rule = o.Rule == MxScaleRule.Ceil ? ScaleRules.RuleCeil : ScaleRules.RuleFloor;
        for (int r = 0; r < rows; r++)
        for (int b = 0; b < scaleColumns; b++)
        {
            float amax = BlockAmax(x, r, b * spec.BlockSize, spec.BlockSize, columns, out bool nonFinite);

            uint scaleCode;
            float multiplier = 0.0f; // 2^−e; 0 writes +0 codes for all-zero and non-finite blocks
            if (nonFinite)
                scaleCode = ScaleRules.E8M0Nan;
            else if (amax == 0.0f)
                scaleCode = 0;
            else
            {
                int e = ScaleRules.MxExponent(amax, rule, spec.ElementKind);
                scaleCode = (uint)(e + 127);
                multiplier = FloatBits.Pow2(-e);
            }
            d.BlockScales.HostSpan[ScaleRules.ScaleOffset(r, b, scaleColumns, o.Layout == ScaleLayout.Swizzled128x4)] = (byte)scaleCode;

            for (int i = 0; i < spec.BlockSize; i++)
            {
                int c = b * spec.BlockSize + i;
                uint code = multiplier == 0.0f ? 0 : Round(Element(x, r, c, columns) * multiplier, spec.ElementKind, o, (long)r * paddedColumns + c);
                WriteCode(d.Data.HostSpan, spec, (long)r * paddedColumns + c, code);
            }
        }
    }

    private static void QuantizeNv(ReadOnlySpan<float> x, int rows, int columns, FormatSpec spec, QuantizationOptions o, QuantizedTensor.Parts d)
    {
        float tensorAmax = 0.0f;
        foreach (float v in x)
            if (float.IsFinite(v))
                tensorAmax = MathF.Max(tensorAmax, MathF.Abs(v));
        float g = ScaleRules.TensorDecodeScale(tensorAmax, spec.DecodeScaleDivisor);
        d.DecodeScales.HostSpan[0] = g;

        int scaleColumns = spec.ScaleColumns(columns);
        int paddedColumns = spec.PaddedColumns(columns);
        for (int r = 0; r < rows; r++)
        for (int b = 0; b < scaleColumns; b++)
        {
            float amax = BlockAmax(x, r, b * spec.BlockSize, spec.BlockSize, columns, out bool nonFinite);
            if (o.TwoDimensionalBlocks)
            {
                // NUMERICS.md §9: the amax of the 16 x 16 tile holding this block (rows past the end count as 0).
                int tileRow = r & ~15;
                for (int rr = tileRow; rr < Math.Min(rows, tileRow + 16); rr++)
                {
                    amax = MathF.Max(amax, BlockAmax(x, rr, b * spec.BlockSize, spec.BlockSize, columns, out bool bad));
                    nonFinite |= bad;
                }
            }
            uint scaleCode = nonFinite ? ScaleRules.UE4M3Nan : ScaleRules.NvBlockScale(amax, g, spec.ElementKind);
            d.BlockScales.HostSpan[ScaleRules.ScaleOffset(r, b, scaleColumns, o.Layout == ScaleLayout.Swizzled128x4)] = (byte)scaleCode;

            bool zeroBlock = nonFinite || scaleCode == 0;
            float blockDecode = FloatBits.FromE4M3(scaleCode) * g;
            for (int i = 0; i < spec.BlockSize; i++)
            {
                int c = b * spec.BlockSize + i;
                uint code = zeroBlock ? 0 : Round(Element(x, r, c, columns) / blockDecode, spec.ElementKind, o, (long)r * paddedColumns + c);
                WriteCode(d.Data.HostSpan, spec, (long)r * paddedColumns + c, code);
            }
        }
    }

    private static void QuantizeFp8(ReadOnlySpan<float> x, int rows, int columns, FormatSpec spec, QuantizationOptions o, QuantizedTensor.Parts d)
    {
        bool perRow = spec.Format == QuantFormat.Fp8PerRow;
        float tensorAmax = 0.0f;
        for (int r = 0; r < rows; r++)
        {
            float rowAmax = 0.0f;
            foreach (float v in x.Slice(r * columns, columns))
                if (float.IsFinite(v))
                    rowAmax = MathF.Max(rowAmax, MathF.Abs(v));
            tensorAmax = MathF.Max(tensorAmax, rowAmax);
            if (perRow)
                d.DecodeScales.HostSpan[r] = ScaleRules.TensorDecodeScale(rowAmax, spec.DecodeScaleDivisor);
        }
        if (!perRow)
            d.DecodeScales.HostSpan[0] = ScaleRules.TensorDecodeScale(tensorAmax, spec.DecodeScaleDivisor);

        for (int r = 0; r < rows; r++)
        {
            float g = d.DecodeScales.HostSpan[perRow ? r : 0];
            for (int c = 0; c < columns; c++)
                d.Data.HostSpan[r * columns + c] = (byte)Round(x[r * columns + c] / g, spec.ElementKind, o, (long)r * columns + c);
        }
    }

    /// <summary>The element code of a scaled value: round-to-nearest, or stochastic with the byte of element <paramref name="index"/>.</summary>
    private static uint Round(float value, int kind, QuantizationOptions o, long index) =>
        StochasticRounding.EncodeElement(value, kind, o.Rounding == RoundingMode.Stochastic ? 1 : 0, o.Seed, index);

    /// <summary>max |x| over the finite values of one block, and whether the block holds NaN/±Inf.</summary>
    private static float BlockAmax(ReadOnlySpan<float> x, int row, int first, int blockSize, int columns, out bool nonFinite)
    {
        float amax = 0.0f;
        nonFinite = false;
        for (int i = 0; i < blockSize; i++)
        {
            float v = Element(x, row, first + i, columns);
            nonFinite |= !float.IsFinite(v);
            if (float.IsFinite(v))
                amax = MathF.Max(amax, MathF.Abs(v));
        }
        return amax;
    }

    private static void WriteCode(Span<byte> data, FormatSpec spec, long index, uint code)
    {
        if (spec.ElementBits == 8)
            data[(int)index] = (byte)code;
        else
        {
            ref byte packed = ref data[(int)(index >> 1)];
            packed = (index & 1) == 0 ? (byte)((packed & 0xF0u) | code) : (byte)((packed & 0x0Fu) | (code << 4));
        }
    }

    /// <summary>Codes and block scales of <paramref name="source"/> into <paramref name="destination"/> (zeroed) in another layout.</summary>
    public static void Relayout(QuantizedTensor.Parts source, QuantizedTensor.Parts destination, RelayoutParams p)
    {
        for (int i = 0; i < p.TotalItems; i++)
        {
            p.Map(i, out bool isCode, out long from, out long to);
            if (isCode)
                destination.Data.HostSpan[(int)to] = source.Data.HostSpan[(int)from];
            else
                destination.BlockScales.HostSpan[(int)to] = source.BlockScales.HostSpan[(int)from];
        }
    }

    /// <summary>Dequantizes to a row-major [rows, columns] float tensor (padding dropped; NUMERICS.md §3).</summary>
    public static void Dequantize(QuantizedTensor.Parts q, int rows, int columns, QuantizationOptions o, Span<float> destination)
    {
        var spec = FormatSpec.Of(o);
        int paddedColumns = spec.PaddedColumns(columns);
        int scaleColumns = spec.ScaleColumns(columns);
        int layout = (int)o.Layout;
        var data = q.Data.HostSpan;
        var scales = q.BlockScales.HostSpan;
        for (int r = 0; r < rows; r++)
        for (int c = 0; c < columns; c++)
        {
            uint b = data[(int)ScaleRules.CodeByte(r, c, paddedColumns, columns, spec.ElementBits, layout)];
            uint code = spec.ElementBits == 8 ? b : (b >> (4 * (c & 1))) & 0xF;
            float element = ElementKind.Decode(code, spec.ElementKind);
            int scale = spec.IsBlockScaled ? (int)ScaleRules.ScaleOffset(r, c / spec.BlockSize, scaleColumns, spec.BlockSize, columns, layout) : 0;
            float value = spec.IsMx
                ? element * FloatBits.FromE8M0(scales[scale])
                : spec.IsNv
                    ? element * FloatBits.FromE4M3(scales[scale]) * q.DecodeScales.HostSpan[0]
                    : element * q.DecodeScales.HostSpan[spec.Format == QuantFormat.Fp8PerRow ? r : 0];
            destination[r * columns + c] = value;
        }
    }
}
