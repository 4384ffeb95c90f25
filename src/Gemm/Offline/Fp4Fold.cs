using Microscale.Formats;

namespace Microscale.Offline;

/// <summary>
/// Exact FP4 → FP8 folding of MXFP4 weights (ZeroQuant-FP): an MXFP4 value v·2^(e−127), v an E2M1 value and e its block's
/// E8M0 code, equals E4M3(v·2^d)·2^(base−127) with d = e − base, and v·2^d is exact in E4M3 for every E2M1 v when
/// d ∈ [−8, 6]. A row whose blocks with a nonzero code span at most 14 binades therefore becomes one FP8 per-row row (E4M3
/// codes, decode scale 2^(base−127)) with the very same values, which the FP8 GEMMs (the Hopper FP8 kernel, the decode
/// kernel's FP8 weights) run as W4A8 at FP8 speed, at 8 bits per weight in memory instead of 4.25. Rows that span more are
/// reported, never folded inexactly. The same fold as native/kernels/common/fp4_fold.h, which folds in shared memory.
/// </summary>
public static class Fp4Fold
{
    /// <summary>The shifts d = e − base for which every E2M1 value times 2^d is exact in E4M3.</summary>
    public const int MinShift = -8, MaxShift = 6;

    /// <summary>The first row that cannot be folded exactly, or −1 when all can: its blocks with a nonzero code span more
    /// than 14 binades of scale, or one of its blocks has a NaN scale (E8M0 0xFF).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="mxfp4"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="mxfp4"/> is not MXFP4.</exception>
    /// <exception cref="ObjectDisposedException">The tensor was disposed.</exception>
    public static int FirstUnfoldableRow(QuantizedTensor mxfp4)
    {
        using var host = HostCopy(mxfp4, nameof(mxfp4));
        var t = host ?? mxfp4;
        for (int r = 0; r < t.Rows; r++)
            if (RowBase(t, r) is null)
                return r;
        return -1;
    }

    /// <summary>
    /// The FP8 per-row E4M3 host tensor with exactly the values of an MXFP4 one (either scale layout, host or device): row r's
    /// codes are its E2M1 values times 2^(e − base_r), its decode scale 2^(base_r − 127), base_r the largest scale code of
    /// a block holding a nonzero code minus 6 (0 for a row of zeros). Upload it to run it (<see cref="MicroscaleContext.Upload"/>).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="mxfp4"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="mxfp4"/> is not MXFP4, or a row cannot be folded exactly (the message
    /// names the first; <see cref="FirstUnfoldableRow"/> finds it beforehand).</exception>
    /// <exception cref="ObjectDisposedException">The tensor was disposed.</exception>
    public static QuantizedTensor ToFp8PerRow(QuantizedTensor mxfp4)
    {
        using var host = HostCopy(mxfp4, nameof(mxfp4));
        var t = host ?? mxfp4;
        int rows = t.Rows, columns = t.Columns, scaleColumns = (columns + 31) / 32;
        bool swizzled = t.Layout == ScaleLayout.Swizzled128x4;
        var data = t.Data;
        var scales = t.BlockScales;
        var codes = new byte[(long)rows * columns];
        var decode = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            int rowBase = RowBase(t, r) ??
                          throw new ArgumentException($"Row {r} of the MXFP4 tensor cannot be folded exactly into E4M3: its blocks span more than " +
                                                      $"{MaxShift - MinShift} binades of scale, or one has a NaN scale.", nameof(mxfp4));
            decode[r] = MathF.ScaleB(1f, rowBase - 127); // exact (base may be below 0: a binary32 subnormal)
            for (int c = 0; c < columns; c++)
            {
                int scale = scales[ScaleRules.ScaleOffset(r, c / 32, scaleColumns, swizzled)];
                int shift = Math.Clamp(scale - rowBase, MinShift, MaxShift); // blocks of zeros may lie outside the range
                uint code = (uint)(data[(int)(((long)r * scaleColumns * 32 + c) >> 1)] >> (4 * (c & 1))) & 0xF;
                codes[(long)r * columns + c] = (byte)FloatBits.ToE4M3Ieee(MathF.ScaleB(FloatBits.FromE2M1(code), shift));
            }
        }
        var options = new QuantizationOptions(QuantFormat.Fp8PerRow) { Element = Fp8Element.E4M3 };
        return QuantizedTensor.FromParts(options, rows, columns, codes, ReadOnlySpan<byte>.Empty, decode);
    }

    // Row r's base, or null when it cannot fold.
    private static int? RowBase(QuantizedTensor t, int r)
    {
        int scaleColumns = (t.Columns + 31) / 32, lowest = int.MaxValue, highest = -1;
        bool swizzled = t.Layout == ScaleLayout.Swizzled128x4;
        var data = t.Data;
        for (int b = 0; b < scaleColumns; b++)
        {
            int scale = t.BlockScales[ScaleRules.ScaleOffset(r, b, scaleColumns, swizzled)];
            if (scale == 0xFF)
                return null;
            var block = data.Slice((r * scaleColumns + b) * 16, 16);
            bool nonzero = false;
            foreach (byte pair in block)
                nonzero |= (pair & 0x77) != 0;
            if (!nonzero)
                continue;
            lowest = Math.Min(lowest, scale);
            highest = Math.Max(highest, scale);
        }
        if (highest < 0)
            return 0;
        int rowBase = highest - MaxShift;
        return lowest - rowBase >= MinShift ? rowBase : null;
    }

    private static QuantizedTensor? HostCopy(QuantizedTensor tensor, string name)
    {
        ArgumentNullException.ThrowIfNull(tensor, name);
        if (tensor.Format != QuantFormat.Mxfp4)
            throw new ArgumentException($"Folding takes MXFP4, not {tensor.Format}.", name);
        return tensor.IsOnDevice ? tensor.ToHost() : null;
    }
}
