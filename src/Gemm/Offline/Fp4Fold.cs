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
        var rows = Rows.Of(mxfp4, nameof(mxfp4));
        int?[] bases = rows.Bases();
        return Array.FindIndex(bases, b => b is null);
    }

    /// <summary>
    /// The FP8 per-row E4M3 host tensor with exactly the values of an MXFP4 one (either scale layout, host or device): row r's
    /// codes are its E2M1 values times 2^(e − base_r), its decode scale 2^(base_r − 127), base_r the largest scale code of
    /// a block holding a nonzero code minus 6 (0 for a row of zeros). Upload it to run it (<see cref="MicroscaleContext.Upload"/>).
    /// Rows fold in parallel, a table lookup per value.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="mxfp4"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="mxfp4"/> is not MXFP4, or a row cannot be folded exactly (the message
    /// names the first; <see cref="FirstUnfoldableRow"/> finds it beforehand).</exception>
    /// <exception cref="ObjectDisposedException">The tensor was disposed.</exception>
    public static QuantizedTensor ToFp8PerRow(QuantizedTensor mxfp4)
    {
        var t = Rows.Of(mxfp4, nameof(mxfp4));
        int?[] bases = t.Bases();
        int first = Array.FindIndex(bases, b => b is null);
        if (first >= 0)
            throw new ArgumentException($"Row {first} of the MXFP4 tensor cannot be folded exactly into E4M3: its blocks span more than " +
                                        $"{MaxShift - MinShift} binades of scale, or one has a NaN scale.", nameof(mxfp4));
        var codes = new byte[(long)t.Count * t.Columns];
        var decode = new float[t.Count];
        Parallel.For(0, t.Count, r =>
        {
            int rowBase = bases[r]!.Value;
            decode[r] = MathF.ScaleB(1f, rowBase - 127); // exact (base may be below 0: a binary32 subnormal)
            for (int block = 0; block * 32 < t.Columns; block++)
            {
                int shift = Math.Clamp(t.Scale(r, block) - rowBase, MinShift, MaxShift); // blocks of zeros may lie outside the range
                for (int c = block * 32; c < Math.Min(t.Columns, block * 32 + 32); c++)
                    codes[(long)r * t.Columns + c] = s_table[shift - MinShift, t.Code(r, c)];
            }
        });
        var options = new QuantizationOptions(QuantFormat.Fp8PerRow) { Element = Fp8Element.E4M3 };
        return QuantizedTensor.FromParts(options, t.Count, t.Columns, codes, ReadOnlySpan<byte>.Empty, decode);
    }

    // E4M3 code of E2M1 code c times 2^d, [d − MinShift, c]: exact, from the library's encoder.
    private static readonly byte[,] s_table = BuildTable();

    private static byte[,] BuildTable()
    {
        var table = new byte[MaxShift - MinShift + 1, 16];
        for (int d = MinShift; d <= MaxShift; d++)
            for (uint c = 0; c < 16; c++)
                table[d - MinShift, c] = (byte)FloatBits.ToE4M3Ieee(MathF.ScaleB(FloatBits.FromE2M1(c), d));
        return table;
    }

    // A host copy of an MXFP4 tensor's codes and scales, read by row and block.
    private sealed record Rows(int Count, int Columns, byte[] Data, byte[] Scales, bool Swizzled)
    {
        private int ScaleColumns { get; } = (Columns + 31) / 32;

        public static Rows Of(QuantizedTensor tensor, string name)
        {
            ArgumentNullException.ThrowIfNull(tensor, name);
            if (tensor.Format != QuantFormat.Mxfp4)
                throw new ArgumentException($"Folding takes MXFP4, not {tensor.Format}.", name);
            QuantizerChecks.ThrowIfTiledInput(tensor, name);
            using var host = tensor.IsOnDevice ? tensor.ToHost() : null;
            var t = host ?? tensor;
            return new Rows(t.Rows, t.Columns, t.Data.ToArray(), t.BlockScales.ToArray(), t.Layout == ScaleLayout.Swizzled128x4);
        }

        public int Scale(int row, int block) => Scales[ScaleRules.ScaleOffset(row, block, ScaleColumns, Swizzled)];

        public int Code(int row, int column) => (Data[((long)row * ScaleColumns * 32 + column) >> 1] >> (4 * (column & 1))) & 0xF;

        // Each row's base, or null when it cannot fold.
        public int?[] Bases()
        {
            var bases = new int?[Count];
            Parallel.For(0, Count, r => bases[r] = Base(r));
            return bases;
        }

        private int? Base(int r)
        {
            int lowest = int.MaxValue, highest = -1;
            for (int b = 0; b < ScaleColumns; b++)
            {
                int scale = Scale(r, b);
                if (scale == 0xFF)
                    return null;
                bool nonzero = false;
                for (int i = 0; i < 16; i++)
                    nonzero |= (Data[((long)r * ScaleColumns + b) * 16 + i] & 0x77) != 0;
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
    }
}
