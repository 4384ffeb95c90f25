using MathNet.Numerics.LinearAlgebra;
using Microscale.Formats;

namespace Microscale.Offline;

/// <summary>How <see cref="Gptq.Quantize"/> rounds a weight.</summary>
public enum GptqMethod
{
    /// <summary>Round to nearest with the quantizer's scales (no calibration data used).</summary>
    Rtn,

    /// <summary>GPTQ: columns quantized in order, each one's error spread over the columns not yet quantized through the
    /// inverse Hessian of the calibration activations (Frantar et al., OPTQ).</summary>
    Gptq,

    /// <summary>MR-GPTQ ("Bridging the Gap", FP-Quant): the weight and the activations rotated by a block Hadamard transform
    /// along K first, then GPTQ with static scales.</summary>
    MrGptq,
}

/// <summary>Settings of <see cref="Gptq.Quantize"/>; the defaults are the reference code's (FP-Quant gptq.py).</summary>
public sealed record GptqOptions
{
    /// <summary>Rounding method. Default <see cref="GptqMethod.Gptq"/>.</summary>
    public GptqMethod Method { get; init; } = GptqMethod.Gptq;

    /// <summary>Columns per lazy-update block. Default 128.</summary>
    public int BlockSize { get; init; } = 128;

    /// <summary>Damping added to the Hessian's diagonal, relative to its mean. Default 0.01.</summary>
    public double RelativeDamping { get; init; } = 0.01;

    /// <summary>Quantize columns in order of decreasing Hessian diagonal (each keeps its own block's scale). Default false.</summary>
    public bool ActOrder { get; init; }

    /// <summary>Search each block scale among 100 shrunk candidates s·(1 − 0.8i/100) for the least Σ|w − Q(w)|^2.4 before the
    /// GPTQ loop (the reference code's MSE observer). Default false.</summary>
    public bool MseScaleSearch { get; init; }

    /// <summary>
    /// NVFP4 only (MXFP4 scales are powers of two already): ZeroQuant-FP's constraint for W4A8, every block scale becomes the
    /// row's largest block scale divided by a power of two, s_max / 2^⌊log2(s_max / s)⌋ (never below s, so no value saturates),
    /// and FP4 → FP8 conversion is an exponent shift under one scale per row. Default false.
    /// </summary>
    public bool PowerOfTwoRowScales { get; init; }

    /// <summary>Block size of the MR-GPTQ rotation (16…256). Default 128.</summary>
    public int RotationBlockSize { get; init; } = 128;

    /// <summary>Seed of the rotation's random signs. Default 0.</summary>
    public int RotationSeed { get; init; }
}

/// <summary>The result of <see cref="Gptq.Quantize"/>: the quantized weight and, for MR-GPTQ, the rotation its activations need.</summary>
/// <param name="Weight">The quantized weight [N, K] (host).</param>
/// <param name="Rotation">MR-GPTQ: quantize the layer's activations with <c>QuantizeRotated</c> and this transform (the GEMM then
/// equals X·Wᵀ); null otherwise.</param>
public sealed record GptqResult(QuantizedTensor Weight, HadamardTransform? Rotation);

/// <summary>
/// Offline weight quantization with calibration data: RTN, GPTQ and MR-GPTQ for MXFP4 and NVFP4 weights (scales fixed before the
/// loop, as in FP-Quant; NUMERICS.md element rounding). Dense linear algebra (Cholesky, products) is MathNet.Numerics', in
/// float64: a well-kept library; a 4096 × 4096 layer takes minutes on a few CPU cores (`gpu-sweep --only gptq` times it).
/// </summary>
public static class Gptq
{
    /// <summary>Quantizes weight W [N, K] given calibration activations X [T, K] (rows are tokens feeding this layer).</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">Lengths do not match the shapes, or K is not a multiple of the rotation block (MR-GPTQ).</exception>
    /// <exception cref="NotSupportedException">The format is not MXFP4 or NVFP4, or uses stochastic rounding.</exception>
    public static GptqResult Quantize(ReadOnlySpan<float> weight, int rows, int columns, ReadOnlySpan<float> calibration, int tokens,
                                      QuantizationOptions format, GptqOptions? options = null, IProgress<double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(format);
        options ??= new GptqOptions();
        QuantizerChecks.ValidateShape(weight.Length, rows, columns, format, nameof(weight));
        if (format.Format is not (QuantFormat.Mxfp4 or QuantFormat.Nvfp4) || format.Rounding != RoundingMode.Nearest)
            throw new NotSupportedException($"GPTQ takes MXFP4 or NVFP4 weights with round-to-nearest, not {format}.");
        if (options.Method != GptqMethod.Rtn)
        {
            ThrowHelper.ThrowIfNotPositive(tokens, nameof(tokens));
            ThrowHelper.ThrowIfLengthIsNot((long)tokens * columns, calibration.Length, nameof(calibration));
        }
        ThrowHelper.ThrowIfNotPositive(options.BlockSize, "options.BlockSize");

        float[] w = weight.ToArray();
        float[] x = options.Method == GptqMethod.Rtn ? [] : calibration.ToArray();
        HadamardTransform? rotation = null;
        if (options.Method == GptqMethod.MrGptq)
        {
            rotation = HadamardTransform.CreateRandom(options.RotationBlockSize, options.RotationSeed);
            if (columns % rotation.BlockSize != 0)
                throw new ArgumentException($"K = {columns} is not a multiple of the rotation block {rotation.BlockSize}.", nameof(weight));
            w = Rotated(w, rows, columns, rotation);
            x = Rotated(x, tokens, columns, rotation);
        }

        // Static scales: the quantizer's (RTN) scales of the (rotated) weight, optionally searched; kept through the loop.
        using var rtn = Quantizer.Quantize(w, rows, columns, format with { Layout = ScaleLayout.Linear }, Backend.Reference);
        var grid = new ScaleGrid(format, rows, columns, rtn.BlockScales.ToArray(), format.Format == QuantFormat.Nvfp4 ? rtn.DecodeScales[0] : 1f);
        if (options.MseScaleSearch)
            grid.SearchScales(w);
        if (options.PowerOfTwoRowScales)
            grid.ConstrainToRowPowersOfTwo();
        if (options.Method != GptqMethod.Rtn)
            RunGptq(w, rows, columns, x, tokens, grid, options, progress);
        progress?.Report(1.0);
        return new GptqResult(grid.Encode(w, format.Layout), rotation);
    }

    private static float[] Rotated(float[] values, int rows, int columns, HadamardTransform rotation)
    {
        var result = new float[values.Length];
        if (values.Length > 0)
            ReferenceHadamard.Rotate(values, rows, columns, rotation, result);
        return result;
    }

    /// <summary>The GPTQ loop over W in place: each column is replaced by its quantized value on the fixed grid and the error is
    /// spread over the later columns through the upper Cholesky factor of H⁻¹, H = XᵀX + damping.</summary>
    private static void RunGptq(float[] w, int rows, int columns, float[] x, int tokens, ScaleGrid grid, GptqOptions options, IProgress<double>? progress)
    {
        var X = Matrix<double>.Build.Dense(tokens, columns, (t, k) => x[t * columns + k]);
        var H = X.TransposeThisAndMultiply(X);
        var dead = new bool[columns];  // inputs that are always zero: their weights never matter
        for (int k = 0; k < columns; k++)
            if (H[k, k] == 0)
                (H[k, k], dead[k]) = (1, true);
        int[] order = Enumerable.Range(0, columns).ToArray();
        if (options.ActOrder)
            order = order.OrderByDescending(k => H[k, k]).ThenBy(k => k).ToArray();
        var Hp = Matrix<double>.Build.Dense(columns, columns, (i, j) => H[order[i], order[j]]);
        var Wp = Matrix<double>.Build.Dense(rows, columns, (n, j) => dead[order[j]] ? 0 : w[n * columns + order[j]]);
        double damp = options.RelativeDamping * Hp.Diagonal().Average();
        for (int k = 0; k < columns; k++)
            Hp[k, k] += damp;
        var hinv = Hp.Cholesky().Solve(Matrix<double>.Build.DenseIdentity(columns));
        var U = hinv.Cholesky().Factor.Transpose();  // upper: H⁻¹ = UᵀU

        // Column-major storage (MathNet's dense layout): column j of Wp is wp[j*rows .. j*rows+rows).
        double[] wp = Wp.AsColumnMajorArray(), u = U.AsColumnMajorArray();
        for (int i1 = 0; i1 < columns; i1 += options.BlockSize)
        {
            int count = Math.Min(options.BlockSize, columns - i1);
            var errors = Matrix<double>.Build.Dense(rows, count);
            double[] err = errors.AsColumnMajorArray();
            for (int i = 0; i < count; i++)
            {
                int j = i1 + i, column = order[j];
                double d = u[j * columns + j];
                var wj = wp.AsSpan(j * rows, rows);
                var ej = err.AsSpan(i * rows, rows);
                for (int n = 0; n < rows; n++)
                {
                    double q = grid.Round(n, column, (float)wj[n]);
                    ej[n] = (wj[n] - q) / d;
                    wj[n] = q;
                }
                for (int l = j + 1; l < i1 + count; l++)  // the rest of the block: W[:, l] -= e · U[j, l]
                {
                    double ujl = u[l * columns + j];
                    var wl = wp.AsSpan(l * rows, rows);
                    for (int n = 0; n < rows; n++)
                        wl[n] -= ej[n] * ujl;
                }
            }
            if (i1 + count < columns)
            {
                var tail = errors * U.SubMatrix(i1, count, i1 + count, columns - i1 - count);
                Wp.SetSubMatrix(0, i1 + count, Wp.SubMatrix(0, rows, i1 + count, columns - i1 - count) - tail);
            }
            progress?.Report((double)(i1 + count) / columns * 0.99);
        }
        for (int n = 0; n < rows; n++)
            for (int j = 0; j < columns; j++)
                w[n * columns + order[j]] = (float)Wp[n, j];
    }

    /// <summary>The block scales of one weight and rounding onto them (E2M1 elements, E8M0 or UE4M3·g scales).</summary>
    private sealed class ScaleGrid(QuantizationOptions format, int rows, int columns, byte[] scales, float globalScale)
    {
        private readonly bool _nv = format.Format == QuantFormat.Nvfp4;
        private readonly int _block = format.Format == QuantFormat.Nvfp4 ? 16 : 32;
        private readonly int _scaleColumns = FormatSpec.Of(format).ScaleColumns(columns);

        private float Scale(int row, int column)
        {
            uint code = scales[row * _scaleColumns + column / _block];
            return _nv ? FloatBits.FromE4M3(code) * globalScale : FloatBits.FromE8M0(code);
        }

        /// <summary>The value of w[row, column] rounded onto the grid (RNE, saturating), as the quantizer would with this scale.</summary>
        public float Round(int row, int column, float value) => FloatBits.FromE2M1(Code(row, column, value)) * Scale(row, column);

        private uint Code(int row, int column, float value)
        {
            float scale = Scale(row, column);
            if (!(scale > 0) || !float.IsFinite(scale))
                return 0;
            return FloatBits.ToE2M1(_nv ? value / scale : value * (1f / scale));  // MX: 1/scale is a power of two, so exact
        }

        /// <summary>The reference observer: per block, scale candidates s·(1 − 0.8i/100) mapped onto the scale format; keeps the one
        /// with the least Σ|w − Q(w)|^2.4.</summary>
        public void SearchScales(float[] w)
        {
            for (int r = 0; r < rows; r++)
                for (int b = 0; b < _scaleColumns; b++)
                {
                    int index = r * _scaleColumns + b;
                    byte original = scales[index], best = original;
                    double bestError = double.PositiveInfinity;
                    float s = _nv ? FloatBits.FromE4M3(original) : FloatBits.FromE8M0(original);
                    if (!(s > 0) || !float.IsFinite(s))
                        continue;
                    for (int i = 0; i < 100; i++)
                    {
                        float candidate = s * (1f - 0.8f * i / 100f);
                        byte code = _nv ? (byte)FloatBits.ToUE4M3(candidate) : E8M0Nearest(candidate);
                        if (code == 0 && _nv)
                            continue;
                        scales[index] = code;
                        double error = 0;
                        for (int c = b * _block; c < Math.Min(columns, (b + 1) * _block); c++)
                            error += Math.Pow(Math.Abs(w[r * columns + c] - Round(r, c, w[r * columns + c])), 2.4);
                        if (error < bestError)
                            (bestError, best) = (error, code);
                    }
                    scales[index] = best;
                }
        }

        /// <summary>NVFP4: each block scale s becomes s_max / 2^⌊log2(s_max / s)⌋ for its row's largest s_max (exact in UE4M3 while
        /// the quotient stays normal, 2^-6 and up; smaller ones round).</summary>
        public void ConstrainToRowPowersOfTwo()
        {
            if (!_nv)
                return;
            for (int r = 0; r < rows; r++)
            {
                var row = scales.AsSpan(r * _scaleColumns, _scaleColumns);
                float max = 0;
                foreach (byte code in row)
                    max = Math.Max(max, FloatBits.FromE4M3(code) is var v && float.IsFinite(v) ? v : 0);
                if (max == 0)
                    continue;
                for (int b = 0; b < row.Length; b++)
                {
                    float s = FloatBits.FromE4M3(row[b]);
                    if (s > 0 && float.IsFinite(s))
                        row[b] = (byte)FloatBits.ToUE4M3(max * FloatBits.Pow2(-FloatBits.FloorLog2(max / s)));
                }
            }
        }

        private static byte E8M0Nearest(float scale)
        {
            int e = FloatBits.FloorLog2(scale);
            if (scale / FloatBits.Pow2(e) > 1.5f) // nearer the next power of two (log-linear midpoint is close enough for a search)
                e++;
            return (byte)Math.Clamp(e + 127, 0, 254);
        }

        /// <summary>Codes of the final (already on-grid) values with these scales, as a host tensor in <paramref name="layout"/>.</summary>
        public QuantizedTensor Encode(float[] w, ScaleLayout layout)
        {
            var spec = FormatSpec.Of(format);
            int padded = spec.PaddedColumns(columns);
            var data = new byte[spec.DataBytes(rows, columns, ScaleLayout.Linear)];
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < columns; c++)
                {
                    long i = (long)r * padded + c;
                    data[i >> 1] |= (byte)(Code(r, c, w[r * columns + c]) << (int)(4 * (i & 1)));
                }
            var laidOut = new byte[spec.BlockScaleBytes(rows, columns, layout)];
            for (int r = 0; r < rows; r++)
                for (int b = 0; b < _scaleColumns; b++)
                    laidOut[ScaleRules.ScaleOffset(r, b, _scaleColumns, layout == ScaleLayout.Swizzled128x4)] = scales[r * _scaleColumns + b];
            var decode = _nv ? new[] { globalScale } : Array.Empty<float>();
            return QuantizedTensor.FromParts(format with { Layout = layout }, rows, columns, data, laidOut, decode);
        }
    }
}
