namespace Microscale;

/// <summary>
/// How the three GEMMs of a linear layer's training step quantize their operands (see <see cref="LinearTraining"/>): the
/// seed papers' recipes <see cref="Quartet"/> and <see cref="Nvfp4"/>, and <see cref="Float"/> (no quantization) to compare
/// against.
/// </summary>
/// <param name="Name">For reports.</param>
/// <param name="Forward">Format of X and W in the forward GEMM (null: float).</param>
/// <param name="Weights">Format of W in the forward GEMM when it differs from <paramref name="Forward"/> (NVFP4's 2D blocks).</param>
/// <param name="Gradients">Format of dY in the dgrad and wgrad GEMMs (null: float); stochastic rounding is set here.</param>
/// <param name="BackwardOperands">Format of Wᵀ (dgrad) and Xᵀ (wgrad); null: <paramref name="Forward"/>.</param>
/// <param name="ForwardRotation">Hadamard rotation along K of the forward inputs (Quartet), or null.</param>
/// <param name="DgradRotation">Hadamard rotation along K of the dgrad inputs, or null.</param>
/// <param name="WgradRotation">Hadamard rotation along K (the tokens) of the wgrad inputs, or null.</param>
public sealed record TrainingRecipe(string Name, QuantizationOptions? Forward, QuantizationOptions? Weights, QuantizationOptions? Gradients,
                                    QuantizationOptions? BackwardOperands, HadamardTransform? ForwardRotation, HadamardTransform? DgradRotation,
                                    HadamardTransform? WgradRotation)
{
    /// <summary>The recipe for training step <paramref name="step"/>: the gradients' stochastic-rounding seed advanced, so that
    /// the rounding noise is independent from step to step (a fixed seed would round every step alike).</summary>
    public TrainingRecipe ForStep(long step) => Gradients is { Rounding: RoundingMode.Stochastic } g
        ? this with { Gradients = g with { Seed = unchecked(g.Seed + (ulong)step * 0x9E3779B97F4A7C15UL) } }
        : this;

    /// <summary>No quantization: the three GEMMs in binary32 (the reference the others are judged against).</summary>
    public static TrainingRecipe Float { get; } = new("float", null, null, null, null, null, null, null);

    /// <summary>Quartet (Castro et al.): MXFP4 everywhere, a Hadamard rotation (g = 32) on every GEMM input, stochastic
    /// rounding on the gradients.</summary>
    public static TrainingRecipe Quartet(int seed = 0)
    {
        var mx = new QuantizationOptions(QuantFormat.Mxfp4);
        var h = HadamardTransform.CreateRandom(32, seed);
        return new("Quartet (MXFP4, Hadamard 32, SR gradients)", mx, null, mx with { Rounding = RoundingMode.Stochastic, Seed = (ulong)seed }, mx, h, h, h);
    }

    /// <summary>NVIDIA's NVFP4 pretraining recipe: NVFP4, weights with 2D 16×16 blocks (so W and Wᵀ share scales), a 16-point
    /// random Hadamard on the wgrad inputs only, stochastic rounding on the gradients.</summary>
    public static TrainingRecipe Nvfp4(int seed = 0)
    {
        var nv = new QuantizationOptions(QuantFormat.Nvfp4);
        return new("NVFP4 recipe (2D weights, RHT 16 on wgrad, SR gradients)", nv, nv with { TwoDimensionalBlocks = true },
                   nv with { Rounding = RoundingMode.Stochastic, Seed = (ulong)seed }, nv, null, null, HadamardTransform.CreateRandom(16, seed));
    }
}

/// <summary>
/// The three GEMMs of a linear layer y = x · Wᵀ in training, with our TN GEMM (C = A · Bᵀ) and the transposed quantizer:
/// forward Y = Q(X)·Q(W)ᵀ, dgrad dX = Q(dY)·Q(Wᵀ)ᵀ, wgrad dW = Q(dYᵀ)·Q(Xᵀ)ᵀ, each operand quantized (and rotated) as the
/// <see cref="TrainingRecipe"/> says. A framework wires <see cref="ForwardForBackward"/> and
/// <see cref="Backward(MicroscaleContext, TrainingRecipe, LinearSaved, DeviceTensor{float})"/> into its autograd (each of X, W
/// and dY quantized once, in both orientations), or the stateless <see cref="Forward"/> and
/// <see cref="Backward(MicroscaleContext, TrainingRecipe, DeviceTensor{float}, DeviceTensor{float}, DeviceTensor{float})"/>.
/// </summary>
/// <remarks>A rotation on both inputs of one GEMM cancels in the product (orthonormal H), so it changes only the quantization
/// error. Every dimension a GEMM reduces over must suit the formats and rotations (for example a multiple of 32 for Quartet).</remarks>
public static class LinearTraining
{
    /// <summary>Y [tokens, out] = X [tokens, in] · W [out, in]ᵀ.</summary>
    public static DeviceTensor<float> Forward(MicroscaleContext context, TrainingRecipe recipe, DeviceTensor<float> x, DeviceTensor<float> w)
    {
        Check(context, recipe, x, w);
        return Product(context, x, recipe.Forward, w, recipe.Weights ?? recipe.Forward, recipe.ForwardRotation, transposeA: false, transposeB: false);
    }

    /// <summary>dX [tokens, in] = dY · W and dW [out, in] = dYᵀ · X for the layer's upstream gradient dY [tokens, out].</summary>
    public static (DeviceTensor<float> InputGradient, DeviceTensor<float> WeightGradient) Backward(MicroscaleContext context, TrainingRecipe recipe,
                                                                                                 DeviceTensor<float> x, DeviceTensor<float> w,
                                                                                                 DeviceTensor<float> outputGradient)
    {
        Check(context, recipe, x, w);
        ArgumentNullException.ThrowIfNull(outputGradient);
        if (outputGradient.Rows != x.Rows || outputGradient.Columns != w.Rows)
            throw new ArgumentException($"dY is [{outputGradient.Rows}, {outputGradient.Columns}]; the layer's output is [{x.Rows}, {w.Rows}].",
                                        nameof(outputGradient));
        var operands = recipe.BackwardOperands ?? recipe.Forward;
        var dx = Product(context, outputGradient, recipe.Gradients, w, operands, recipe.DgradRotation, transposeA: false, transposeB: true);
        try
        {
            var dw = Product(context, outputGradient, recipe.Gradients, x, operands, recipe.WgradRotation, transposeA: true, transposeB: true);
            return (dx, dw);
        }
        catch
        {
            dx.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Y = X · Wᵀ as <see cref="Forward"/>, keeping what <see cref="Backward(MicroscaleContext, TrainingRecipe, LinearSaved, DeviceTensor{float})"/>
    /// reads: X and W are each quantized once in both orientations (<see cref="MicroscaleContext.QuantizeBothOrientations{T}(DeviceTensor{T}, QuantizationOptions, HadamardTransform?, QuantizationOptions, HadamardTransform?)"/>),
    /// the forward GEMM reads the rows, the backward GEMMs the transposes. Results equal <see cref="Forward"/> and
    /// <see cref="Backward(MicroscaleContext, TrainingRecipe, DeviceTensor{float}, DeviceTensor{float}, DeviceTensor{float})"/> bit for bit.
    /// </summary>
    /// <returns>Y, and the saved operands the caller disposes after the backward pass (they borrow <paramref name="x"/> and
    /// <paramref name="w"/> for recipes that leave a GEMM unquantized).</returns>
    public static (DeviceTensor<float> Output, LinearSaved Saved) ForwardForBackward(MicroscaleContext context, TrainingRecipe recipe, DeviceTensor<float> x,
                                                                                   DeviceTensor<float> w)
    {
        Check(context, recipe, x, w);
        if (recipe.Forward is null || recipe.Gradients is null)
            return (Forward(context, recipe, x, w), new LinearSaved(recipe, x, w, null, null));
        var operands = recipe.BackwardOperands ?? recipe.Forward;
        var qx = context.QuantizeBothOrientations(x, recipe.Forward, recipe.ForwardRotation, operands, recipe.WgradRotation);
        QuantizedOrientations? qw = null;
        try
        {
            qw = context.QuantizeBothOrientations(w, recipe.Weights ?? recipe.Forward, recipe.ForwardRotation, operands, recipe.DgradRotation);
            var y = context.Gemm(qx.Rows, qw.Rows);
            qx.Rows.Dispose();
            qw.Rows.Dispose();
            return (y, new LinearSaved(recipe, x, w, qx.Columns, qw.Columns));
        }
        catch
        {
            qx.Dispose();
            qw?.Dispose();
            throw;
        }
    }

    /// <summary>dX = dY · W and dW = dYᵀ · X from the operands <see cref="ForwardForBackward"/> saved: dY is quantized once in
    /// both orientations (dgrad reads the rows, wgrad the transpose).</summary>
    public static (DeviceTensor<float> InputGradient, DeviceTensor<float> WeightGradient) Backward(MicroscaleContext context, TrainingRecipe recipe,
                                                                                                 LinearSaved saved, DeviceTensor<float> outputGradient)
    {
        ArgumentNullException.ThrowIfNull(saved);
        ArgumentNullException.ThrowIfNull(recipe);
        if (!ReferenceEquals(saved.Recipe, recipe))
            throw new ArgumentException("The saved operands were made with another recipe.", nameof(saved));
        if (saved.TransposedInput is null || saved.TransposedWeight is null)
            return Backward(context, recipe, saved.Input, saved.Weight, outputGradient);
        Check(context, recipe, saved.Input, saved.Weight);
        ArgumentNullException.ThrowIfNull(outputGradient);
        if (outputGradient.Rows != saved.Input.Rows || outputGradient.Columns != saved.Weight.Rows)
            throw new ArgumentException($"dY is [{outputGradient.Rows}, {outputGradient.Columns}]; the layer's output is [{saved.Input.Rows}, {saved.Weight.Rows}].",
                                        nameof(outputGradient));
        using var qdy = context.QuantizeBothOrientations(outputGradient, recipe.Gradients!, recipe.DgradRotation, recipe.Gradients!, recipe.WgradRotation);
        var dx = context.Gemm(qdy.Rows, saved.TransposedWeight);
        try
        {
            return (dx, context.Gemm(qdy.Columns, saved.TransposedInput));
        }
        catch
        {
            dx.Dispose();
            throw;
        }
    }

    // A · Bᵀ where A = a or aᵀ and B = b or bᵀ (transposes taken by the quantizer), each quantized in its format (or float).
    private static DeviceTensor<float> Product(MicroscaleContext context, DeviceTensor<float> a, QuantizationOptions? aFormat, DeviceTensor<float> b,
                                               QuantizationOptions? bFormat, HadamardTransform? rotation, bool transposeA, bool transposeB)
    {
        if (aFormat is null || bFormat is null)
            return FloatProduct(context, a, b, transposeA, transposeB);
        using var qa = Quantized(context, a, aFormat, rotation, transposeA);
        using var qb = Quantized(context, b, bFormat, rotation, transposeB);
        return context.Gemm(qa, qb);
    }

    private static QuantizedTensor Quantized(MicroscaleContext context, DeviceTensor<float> x, QuantizationOptions options, HadamardTransform? rotation,
                                             bool transpose) =>
        transpose ? context.QuantizeTransposed(x, options, rotation)
        : rotation is null ? context.Quantize(x, options) : context.QuantizeRotated(x, rotation, options);

    // The float reference: binary32 products on the host (small training problems; the recipes are what runs on devices).
    private static DeviceTensor<float> FloatProduct(MicroscaleContext context, DeviceTensor<float> a, DeviceTensor<float> b, bool transposeA, bool transposeB)
    {
        float[] av = a.ToArray(), bv = b.ToArray();
        int m = transposeA ? a.Columns : a.Rows, k = transposeA ? a.Rows : a.Columns, n = transposeB ? b.Columns : b.Rows;
        float A(int i, int l) => transposeA ? av[l * a.Columns + i] : av[i * a.Columns + l];
        float B(int j, int l) => transposeB ? bv[l * b.Columns + j] : bv[j * b.Columns + l];
        var c = new float[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float sum = 0;
                for (int l = 0; l < k; l++)
                    sum += A(i, l) * B(j, l);
                c[i * n + j] = sum;
            }
        return context.CreateTensor<float>(c, m, n);
    }

    private static void Check(MicroscaleContext context, TrainingRecipe recipe, DeviceTensor<float> x, DeviceTensor<float> w)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(w);
        if (x.Columns != w.Columns)
            throw new ArgumentException($"X is [{x.Rows}, {x.Columns}] and W [{w.Rows}, {w.Columns}]: the input features differ.", nameof(w));
    }
}

/// <summary>What <see cref="LinearTraining.Backward(MicroscaleContext, TrainingRecipe, LinearSaved, DeviceTensor{float})"/> reads,
/// made by <see cref="LinearTraining.ForwardForBackward"/>: Q(Xᵀ) and Q(Wᵀ) (owned), and X and W (borrowed).</summary>
public sealed class LinearSaved : IDisposable
{
    internal LinearSaved(TrainingRecipe recipe, DeviceTensor<float> input, DeviceTensor<float> weight, QuantizedTensor? transposedInput,
                         QuantizedTensor? transposedWeight) =>
        (Recipe, Input, Weight, TransposedInput, TransposedWeight) = (recipe, input, weight, transposedInput, transposedWeight);

    internal TrainingRecipe Recipe { get; }
    internal DeviceTensor<float> Input { get; }
    internal DeviceTensor<float> Weight { get; }
    internal QuantizedTensor? TransposedInput { get; }
    internal QuantizedTensor? TransposedWeight { get; }

    /// <summary>Disposes the quantized transposes (X and W stay the caller's).</summary>
    public void Dispose()
    {
        TransposedInput?.Dispose();
        TransposedWeight?.Dispose();
    }
}
