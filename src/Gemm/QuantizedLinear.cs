using Microscale.Tensors;

namespace Microscale;

/// <summary>
/// A linear layer y = x · Wᵀ (+ bias) with quantized weights W [OutFeatures, InFeatures] on a <see cref="MicroscaleContext"/>'s
/// device: the layer an inference engine calls. Each <see cref="Forward{TIn, TOut}"/> quantizes the activations x
/// [tokens, InFeatures] (after the same block Hadamard rotation as the weights, fused into the quantization, when the layer
/// has one) and runs the GEMM; W4A16 layers multiply the 16-bit activations directly.
/// </summary>
/// <remarks>
/// <para>Pairs: any of NUMERICS.md §5 (W4A4 MXFP4 / NVFP4, W4A8, W8A8, W4A16, ...); an unsupported pair fails at construction.
/// A rotation H (orthonormal, with signs) is applied to both sides: (xH)(WH)ᵀ = xWᵀ, so it changes only the quantization
/// error (QuaRot / Quartet).</para>
/// <para>Steady state allocates nothing on the device: the quantized activations of the last few token counts are kept and
/// reused. Calls are serialized per layer (they share that buffer); layers on one context share its stream.</para>
/// </remarks>
public sealed class QuantizedLinear : IDisposable
{
    private const int CachedTokenCounts = 4;

    private readonly MicroscaleContext _context;
    private readonly QuantizedTensor _weight;
    private readonly DeviceTensor<float>? _bias;
    private readonly HadamardTransform? _rotation;
    private readonly QuantizationOptions? _activations;
    private readonly GemmOptions _gemm;
    private readonly Lock _lock = new();
    private readonly List<QuantizedTensor> _scratch = [];
    private bool _disposed;

    private QuantizedLinear(MicroscaleContext context, QuantizedTensor weight, QuantizationOptions? activations, HadamardTransform? rotation,
                            DeviceTensor<float>? bias)
    {
        _context = context;
        _weight = weight;
        _activations = activations;
        _rotation = rotation;
        _bias = bias;
        _gemm = new GemmOptions { Bias = bias };
        Pair = GemmPairs.Check(activations, weight.Options);
    }

    /// <summary>Input features (K).</summary>
    public int InFeatures => _weight.Columns;

    /// <summary>Output features (N).</summary>
    public int OutFeatures => _weight.Rows;

    /// <summary>The operand pair, for example "W4A8 (Mxfp4 weights × Fp8PerRow E4M3 activations)".</summary>
    public string Pair { get; }

    /// <summary>The weight (on the context's device; owned by the layer).</summary>
    public QuantizedTensor Weight => _weight;

    /// <summary>Quantizes float weights [outFeatures, inFeatures] on the context (rotated first when <paramref name="rotation"/> is set).</summary>
    /// <param name="context">Where the layer runs.</param>
    /// <param name="weight">Row-major [outFeatures, inFeatures].</param>
    /// <param name="outFeatures">N.</param>
    /// <param name="inFeatures">K (a multiple of the rotation's block when there is one).</param>
    /// <param name="weightOptions">The weights' format.</param>
    /// <param name="activations">The activations' format; null for W4A16 (16-bit activations).</param>
    /// <param name="rotation">Optional block Hadamard rotation applied to weights and activations; not with W4A16.</param>
    /// <param name="bias">Empty, or outFeatures values.</param>
    /// <exception cref="ArgumentException">Shapes, lengths, or a rotation that does not divide K or is combined with W4A16.</exception>
    /// <exception cref="NotSupportedException">No GEMM for the pair.</exception>
    public static QuantizedLinear Quantize(MicroscaleContext context, ReadOnlySpan<float> weight, int outFeatures, int inFeatures,
                                           QuantizationOptions weightOptions, QuantizationOptions? activations, HadamardTransform? rotation = null,
                                           ReadOnlySpan<float> bias = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(weightOptions);
        GemmPairs.Check(activations, weightOptions); // fail before any work
        CheckRotation(activations, rotation, inFeatures);
        using var dense = context.CreateTensor(weight, outFeatures, inFeatures);
        var quantized = rotation is null ? context.Quantize(dense, weightOptions) : context.QuantizeRotated(dense, rotation, weightOptions);
        return Create(context, quantized, activations, rotation, bias);
    }

    /// <summary>Wraps weights already quantized (and rotated, if <paramref name="rotation"/> is set) — from a checkpoint, say.
    /// A host tensor is uploaded (the caller keeps its own); a device tensor of this context is copied.</summary>
    /// <exception cref="ArgumentException">The weight lives on another context, a bias of the wrong length, or a rotation that does not fit.</exception>
    /// <exception cref="NotSupportedException">No GEMM for the pair.</exception>
    public static QuantizedLinear FromQuantized(MicroscaleContext context, QuantizedTensor weight, QuantizationOptions? activations,
                                                HadamardTransform? rotation = null, ReadOnlySpan<float> bias = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(weight);
        GemmPairs.Check(activations, weight.Options);
        CheckRotation(activations, rotation, weight.Columns);
        if (weight.IsOnDevice && !ReferenceEquals(weight.Context, context))
            throw new ArgumentException("The weight lives on another context.", nameof(weight));
        QuantizedTensor own;
        if (weight.IsOnDevice)
        {
            using var host = weight.ToHost();
            own = context.Upload(host);
        }
        else
        {
            own = context.Upload(weight);
        }
        return Create(context, own, activations, rotation, bias);
    }

    private static QuantizedLinear Create(MicroscaleContext context, QuantizedTensor weight, QuantizationOptions? activations, HadamardTransform? rotation,
                                          ReadOnlySpan<float> bias)
    {
        try
        {
            if (!bias.IsEmpty && bias.Length != weight.Rows)
                throw new ArgumentException($"The bias has {bias.Length} values; the layer has {weight.Rows} outputs.", nameof(bias));
            var biasTensor = bias.IsEmpty ? null : context.CreateTensor(bias, 1, weight.Rows);
            return new QuantizedLinear(context, weight, activations, rotation, biasTensor);
        }
        catch
        {
            weight.Dispose();
            throw;
        }
    }

    private static void CheckRotation(QuantizationOptions? activations, HadamardTransform? rotation, int inFeatures)
    {
        if (rotation is null)
            return;
        if (activations is null)
            throw new ArgumentException("W4A16 layers take no rotation: their 16-bit activations are not quantized.", nameof(rotation));
        if (inFeatures % rotation.BlockSize != 0)
            throw new ArgumentException($"The rotation's block of {rotation.BlockSize} does not divide the {inFeatures} input features.", nameof(rotation));
    }

    /// <summary>y = x · Wᵀ (+ bias) for x [tokens, InFeatures] into y [tokens, OutFeatures] (float, Half or BFloat16).</summary>
    /// <exception cref="ArgumentException">Shapes do not match, or a tensor belongs to another context.</exception>
    /// <exception cref="ObjectDisposedException">The layer, a tensor or the context was disposed.</exception>
    public void Forward<TIn, TOut>(DeviceTensor<TIn> input, DeviceTensor<TOut> output) where TIn : unmanaged where TOut : unmanaged
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        if (input.Columns != InFeatures)
            throw new ArgumentException($"The input has {input.Columns} features; the layer takes {InFeatures}.", nameof(input));
        if (output.Rows != input.Rows || output.Columns != OutFeatures)
            throw new ArgumentException($"The output is [{output.Rows}, {output.Columns}]; the layer writes [{input.Rows}, {OutFeatures}].", nameof(output));
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_activations is null)
            {
                _context.Gemm(input, _weight, output, _gemm);
                return;
            }
            var quantized = ActivationBuffer(input.Rows);
            if (_rotation is null)
                _context.Quantize(input, quantized);
            else
                _context.QuantizeRotated(input, _rotation, quantized);
            _context.Gemm(quantized, _weight, output, _gemm);
        }
    }

    /// <summary>y = x · Wᵀ (+ bias) into a new tensor of x's element type.</summary>
    public DeviceTensor<T> Forward<T>(DeviceTensor<T> input) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(input);
        return _context.AllocateAndWrite<T>(input.Rows, OutFeatures, output => Forward(input, output));
    }

    // The quantized-activation buffer for this token count: reused, the least recently used of CachedTokenCounts evicted.
    private QuantizedTensor ActivationBuffer(int tokens)
    {
        int at = _scratch.FindIndex(q => q.Rows == tokens);
        QuantizedTensor buffer;
        if (at >= 0)
        {
            buffer = _scratch[at];
            _scratch.RemoveAt(at);
        }
        else
        {
            buffer = _context.AllocateQuantized(tokens, InFeatures, _activations!);
            if (_scratch.Count == CachedTokenCounts)
            {
                _context.Synchronize(); // queued work may still read the evicted buffer
                _scratch[0].Dispose();
                _scratch.RemoveAt(0);
            }
        }
        _scratch.Add(buffer);
        return buffer;
    }

    /// <summary>Frees the weight, bias and activation buffers (after queued work on them has run). Idempotent.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
            if (!_context.IsDisposed)
                _context.Synchronize();
            _scratch.ForEach(q => q.Dispose());
            _scratch.Clear();
            _bias?.Dispose();
            _weight.Dispose();
        }
    }
}
