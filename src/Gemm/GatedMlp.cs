namespace Microscale;

/// <summary>
/// A LLaMA-style gated MLP block: y = down(SiLU(gate(x)) · up(x)), with gate and up [Intermediate, Hidden] and down
/// [Hidden, Intermediate] as <see cref="QuantizedLinear"/> layers, on float or BF16 activations [tokens, Hidden]. With BF16
/// the SiLU product is rounded to BF16 for the down projection, which lets W4A16 layers read 16-bit activations throughout.
/// </summary>
/// <remarks>Intermediate buffers are kept for the last token count and reused. Calls are serialized per block.</remarks>
public sealed class GatedMlp : IDisposable
{
    private readonly MicroscaleContext _context;
    private readonly QuantizedLinear _gate, _up, _down;
    private readonly Lock _lock = new();
    private DeviceTensor<float>? _g, _u, _h;
    private DeviceTensor<BFloat16>? _h16;
    private bool _disposed;

    /// <summary>Builds the block from three layers, which it then owns.</summary>
    /// <exception cref="ArgumentException">The layers' shapes do not chain (gate and up Hidden → Intermediate, down back).</exception>
    public GatedMlp(MicroscaleContext context, QuantizedLinear gate, QuantizedLinear up, QuantizedLinear down)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(gate);
        ArgumentNullException.ThrowIfNull(up);
        ArgumentNullException.ThrowIfNull(down);
        if (up.InFeatures != gate.InFeatures || up.OutFeatures != gate.OutFeatures || down.InFeatures != gate.OutFeatures || down.OutFeatures != gate.InFeatures)
            throw new ArgumentException($"gate [{gate.OutFeatures}, {gate.InFeatures}], up [{up.OutFeatures}, {up.InFeatures}] and down " +
                                        $"[{down.OutFeatures}, {down.InFeatures}] do not chain as [I, H], [I, H], [H, I].", nameof(down));
        (_context, _gate, _up, _down) = (context, gate, up, down);
    }

    /// <summary>Quantizes float weights (row-major: gate and up [intermediate, hidden], down [hidden, intermediate]) into a block.</summary>
    /// <param name="context">Where it runs.</param>
    /// <param name="gate">Gate projection weights.</param>
    /// <param name="up">Up projection weights.</param>
    /// <param name="down">Down projection weights.</param>
    /// <param name="hidden">H.</param>
    /// <param name="intermediate">I.</param>
    /// <param name="weights">The weights' format.</param>
    /// <param name="activations">The activations' format; null for W4A16 (use the BF16 <see cref="Forward(DeviceTensor{BFloat16}, DeviceTensor{BFloat16})"/>,
    /// whose 16-bit activations the decode kernel reads; float activations take the generic kernel).</param>
    /// <param name="rotation">Optional block Hadamard rotation of every layer's input (its block must divide H and I).</param>
    /// <exception cref="ArgumentException">Lengths or a rotation that does not fit.</exception>
    /// <exception cref="NotSupportedException">No GEMM for the pair.</exception>
    public static GatedMlp Quantize(MicroscaleContext context, ReadOnlySpan<float> gate, ReadOnlySpan<float> up, ReadOnlySpan<float> down, int hidden,
                                    int intermediate, QuantizationOptions weights, QuantizationOptions? activations, HadamardTransform? rotation = null)
    {
        QuantizedLinear? g = null, u = null;
        try
        {
            g = QuantizedLinear.Quantize(context, gate, intermediate, hidden, weights, activations, rotation);
            u = QuantizedLinear.Quantize(context, up, intermediate, hidden, weights, activations, rotation);
            var d = QuantizedLinear.Quantize(context, down, hidden, intermediate, weights, activations, rotation);
            return new GatedMlp(context, g, u, d);
        }
        catch
        {
            g?.Dispose();
            u?.Dispose();
            throw;
        }
    }

    /// <summary>H.</summary>
    public int Hidden => _gate.InFeatures;

    /// <summary>I.</summary>
    public int Intermediate => _gate.OutFeatures;

    /// <summary>The operand pair of the layers.</summary>
    public string Pair => _gate.Pair;

    /// <summary>y [tokens, Hidden] = down(SiLU(gate(x)) · up(x)) for x [tokens, Hidden].</summary>
    /// <exception cref="ArgumentException">Shapes do not match.</exception>
    /// <exception cref="ObjectDisposedException">The block, a tensor or the context was disposed.</exception>
    public void Forward(DeviceTensor<float> input, DeviceTensor<float> output)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            GateAndUp(input);
            _h ??= _context.AllocateTensor<float>(input.Rows, Intermediate);
            _context.SiluMultiply(_g!, _u!, _h);
            _down.Forward(_h, output);
        }
    }

    /// <summary>y [tokens, Hidden] = down(BF16(SiLU(gate(x)) · up(x))) for BF16 x [tokens, Hidden].</summary>
    /// <exception cref="ArgumentException">Shapes do not match.</exception>
    /// <exception cref="ObjectDisposedException">The block, a tensor or the context was disposed.</exception>
    public void Forward(DeviceTensor<BFloat16> input, DeviceTensor<BFloat16> output)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            GateAndUp(input);
            _h16 ??= _context.AllocateTensor<BFloat16>(input.Rows, Intermediate);
            _context.SiluMultiply(_g!, _u!, _h16);
            _down.Forward(_h16, output);
        }
    }

    // gate(x) and up(x) into the float buffers, which follow the token count (all buffers are replaced when it changes).
    private void GateAndUp<T>(DeviceTensor<T> input) where T : unmanaged
    {
        if (_g is null || _g.Rows != input.Rows)
        {
            FreeBuffers();
            _g = _context.AllocateTensor<float>(input.Rows, Intermediate);
            _u = _context.AllocateTensor<float>(input.Rows, Intermediate);
        }
        _gate.Forward(input, _g);
        _up.Forward(input, _u!);
    }

    /// <summary>y = down(SiLU(gate(x)) · up(x)) into a new tensor.</summary>
    public DeviceTensor<float> Forward(DeviceTensor<float> input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return _context.AllocateAndWrite<float>(input.Rows, Hidden, output => Forward(input, output));
    }

    /// <summary>y = down(BF16(SiLU(gate(x)) · up(x))) into a new BF16 tensor.</summary>
    public DeviceTensor<BFloat16> Forward(DeviceTensor<BFloat16> input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return _context.AllocateAndWrite<BFloat16>(input.Rows, Hidden, output => Forward(input, output));
    }

    private void FreeBuffers()
    {
        if (_g is null)
            return;
        if (!_context.IsDisposed)
            _context.Synchronize(); // queued work may still use them
        _g.Dispose();
        _u!.Dispose();
        _h?.Dispose();
        _h16?.Dispose();
        (_g, _u, _h, _h16) = (null, null, null, null);
    }

    /// <summary>Frees the layers and buffers. Idempotent.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
            FreeBuffers();
            _gate.Dispose();
            _up.Dispose();
            _down.Dispose();
        }
    }
}
