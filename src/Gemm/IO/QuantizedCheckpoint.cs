namespace Microscale.IO;

/// <summary>The quantized-weight conventions <see cref="QuantizedCheckpoint"/> reads and writes.</summary>
public enum CheckpointConvention
{
    /// <summary>NVIDIA ModelOpt NVFP4: <c>weight</c> U8 [N, K/2], <c>weight_scale</c> F8_E4M3 [N, K/16], <c>weight_scale_2</c> F32
    /// scalar (the decode scale g), optional <c>input_scale</c> F32 scalar.</summary>
    ModelOptNvfp4,

    /// <summary>compressed-tensors <c>nvfp4-pack-quantized</c>: <c>weight_packed</c> U8 [N, K/2], <c>weight_scale</c> F8_E4M3
    /// [N, K/16], <c>weight_global_scale</c> F32 [1] = 1/g, optional <c>input_global_scale</c> F32 [1].</summary>
    CompressedTensorsNvfp4,

    /// <summary>gpt-oss MXFP4 experts: <c>PREFIX_blocks</c> U8 [E, N, K/32, 16], <c>PREFIX_scales</c> U8 [E, N, K/32] (E8M0).</summary>
    GptOssMxfp4,

    /// <summary>FP8 E4M3 weights (ModelOpt, compressed-tensors <c>float-quantized</c>): <c>weight</c> F8_E4M3 [N, K] and
    /// <c>weight_scale</c> (F32, BF16 or F16) of shape [] / [1] (per tensor) or [N] / [N, 1] (per channel), optional
    /// <c>input_scale</c>.</summary>
    Fp8,
}

/// <summary>A weight read from a checkpoint, with the activation scale the checkpoint recorded for it (static activation
/// quantization), if any.</summary>
/// <param name="Weight">The weight as a host tensor [N, K] (the caller disposes it).</param>
/// <param name="InputScale">The activation decode scale (ModelOpt <c>input_scale</c>, 1 / compressed-tensors
/// <c>input_global_scale</c>); null when absent.</param>
public sealed record CheckpointWeight(QuantizedTensor Weight, float? InputScale);

/// <summary>
/// Quantized weights in the checkpoint conventions inference engines ship (<see cref="CheckpointConvention"/>), read into
/// <see cref="QuantizedTensor"/>s and written back. The codes and scale bytes carry over unchanged (every convention packs
/// element 2k in the low nibble, as Microscale does), so <c>Read(Write(w))</c> returns <c>w</c>'s exact bytes. Names are
/// a module prefix plus the convention's suffixes, for example <c>model.layers.0.mlp.down_proj</c> +
/// <c>.weight_scale</c>; gpt-oss experts use <c>model.layers.0.mlp.experts.down_proj</c> + <c>_blocks</c>.
/// </summary>
/// <remarks>
/// Values decode as element × block scale × g with one rounding; ModelOpt's and compressed-tensors' own dequantization
/// multiply (or divide) the scales first, which can round once more (by at most an ulp) for codes ±1.5 and ±3. For
/// compressed-tensors g = 1 / <c>weight_global_scale</c> in binary32. About one binary32 in five has no binary32 whose
/// reciprocal rounds back to it; for those the writer stores the nearest reciprocal and records the exact g in the file's
/// metadata (<c>microscale:NAME</c> = its bits in hex), which the reader uses while it still matches the stored reciprocal.
/// gpt-oss stores the MLP's gate and up projections interleaved in <c>gate_up_proj</c> (even rows gate, odd
/// rows up); the tensor is returned as stored.
/// </remarks>
public static class QuantizedCheckpoint
{
    /// <summary>Which convention the tensors under <paramref name="prefix"/> follow; null when none matches.</summary>
    public static CheckpointConvention? Detect(SafeTensorsCheckpoint checkpoint, string prefix)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(prefix);
        if (checkpoint.Contains(prefix + "_blocks") && checkpoint.Contains(prefix + "_scales"))
            return CheckpointConvention.GptOssMxfp4;
        if (checkpoint.Contains(prefix + ".weight_packed"))
            return CheckpointConvention.CompressedTensorsNvfp4;
        if (checkpoint.Contains(prefix + ".weight_scale_2"))
            return CheckpointConvention.ModelOptNvfp4;
        if (checkpoint.Contains(prefix + ".weight") && checkpoint.Contains(prefix + ".weight_scale")
            && checkpoint.GetInfo(prefix + ".weight").DType == SafeTensorsDType.F8_E4M3)
            return CheckpointConvention.Fp8;
        return null;
    }

    /// <summary>Reads the weight under <paramref name="prefix"/> in whichever convention it follows (see <see cref="Detect"/>).
    /// For gpt-oss experts, <paramref name="expert"/> picks one (else all experts stacked as [E·N, K]).</summary>
    /// <exception cref="SafeTensorsFormatException">No convention matches, or a tensor has the wrong dtype, shape or values.</exception>
    public static CheckpointWeight Read(SafeTensorsCheckpoint checkpoint, string prefix, int? expert = null)
    {
        var convention = Detect(checkpoint, prefix) ?? throw new SafeTensorsFormatException(
            $"No quantized weight under '{prefix}': expected ModelOpt NVFP4 (.weight_scale_2), compressed-tensors NVFP4 (.weight_packed), " +
            "gpt-oss MXFP4 (_blocks/_scales) or FP8 (.weight F8_E4M3 + .weight_scale).");
        if (expert is not null && convention != CheckpointConvention.GptOssMxfp4)
            throw new ArgumentException($"'{prefix}' is {convention}; only gpt-oss experts are picked by index.", nameof(expert));
        return convention switch
        {
            CheckpointConvention.ModelOptNvfp4 => ReadNvfp4(checkpoint, prefix, ".weight", ".weight_scale_2", ".input_scale", reciprocal: false),
            CheckpointConvention.CompressedTensorsNvfp4 =>
                ReadNvfp4(checkpoint, prefix, ".weight_packed", ".weight_global_scale", ".input_global_scale", reciprocal: true),
            CheckpointConvention.GptOssMxfp4 => new CheckpointWeight(ReadGptOss(checkpoint, prefix, expert), null),
            _ => ReadFp8(checkpoint, prefix),
        };
    }

    /// <summary>Adds <paramref name="weight"/> under <paramref name="prefix"/> in <paramref name="convention"/> (an NVFP4 weight
    /// for the NVFP4 conventions, MXFP4 for gpt-oss — as one expert, see <see cref="AddGptOssExperts"/> for several —
    /// FP8 per-tensor or per-row for <see cref="CheckpointConvention.Fp8"/>).</summary>
    /// <exception cref="ArgumentException">The weight's format, layout or K does not fit the convention.</exception>
    public static void Add(SafeTensorsWriter writer, string prefix, CheckpointConvention convention, QuantizedTensor weight, float? inputScale = null)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(prefix);
        ArgumentNullException.ThrowIfNull(weight);
        using var host = weight.IsOnDevice ? weight.ToHost() : null;
        var w = host ?? weight;
        switch (convention)
        {
            case CheckpointConvention.GptOssMxfp4:
                if (inputScale is not null)
                    throw new ArgumentException("gpt-oss MXFP4 records no activation scale.", nameof(inputScale));
                AddGptOssExperts(writer, prefix, [w]);
                return;
            case CheckpointConvention.Fp8:
                AddFp8(writer, prefix, w, inputScale);
                return;
            case CheckpointConvention.ModelOptNvfp4:
            case CheckpointConvention.CompressedTensorsNvfp4:
                AddNvfp4(writer, prefix, w, inputScale, convention == CheckpointConvention.CompressedTensorsNvfp4);
                return;
            default:
                throw new ArgumentOutOfRangeException(nameof(convention), convention, "Unknown convention.");
        }
    }

    /// <summary>Adds gpt-oss MXFP4 experts (all [N, K], linear scales, K a multiple of 32; host or device tensors) as
    /// <c>PREFIX_blocks</c> / <c>PREFIX_scales</c>.</summary>
    /// <exception cref="ArgumentException">No experts, differing shapes, or a weight that is not linear-scaled MXFP4 with K % 32 == 0.</exception>
    public static void AddGptOssExperts(SafeTensorsWriter writer, string prefix, IReadOnlyList<QuantizedTensor> experts)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(experts);
        if (experts.Count == 0)
            throw new ArgumentException("At least one expert is needed.", nameof(experts));
        int n = experts[0].Rows, k = experts[0].Columns;
        foreach (var e in experts)
        {
            RequireLinear(e, QuantFormat.Mxfp4, nameof(experts));
            if (e.Rows != n || e.Columns != k || k % 32 != 0)
                throw new ArgumentException($"gpt-oss experts share one [N, K] with K a multiple of 32; got [{e.Rows}, {e.Columns}] and [{n}, {k}].", nameof(experts));
        }
        var hosts = experts.Select(e => e.IsOnDevice ? e.ToHost() : null).ToList();
        try
        {
            var parts = experts.Select((e, i) => hosts[i] ?? e).ToList();
            writer.Add(prefix + "_blocks", SafeTensorsDType.U8, [experts.Count, n, k / 32, 16], Concatenate(parts, e => e.Data));
            writer.Add(prefix + "_scales", SafeTensorsDType.U8, [experts.Count, n, k / 32], Concatenate(parts, e => e.BlockScales));
        }
        finally
        {
            hosts.ForEach(h => h?.Dispose());
        }
    }

    // ------------------------------------------------------------------ readers

    private static CheckpointWeight ReadNvfp4(SafeTensorsCheckpoint c, string prefix, string weightSuffix, string globalSuffix, string inputSuffix,
                                              bool reciprocal)
    {
        var weight = Tensor(c, prefix + weightSuffix, SafeTensorsDType.U8, dimensions: 2);
        var scale = Tensor(c, prefix + ".weight_scale", SafeTensorsDType.F8_E4M3, dimensions: 2);
        int n = ToInt(weight.Shape[0], weight.Name), k = ToInt(2 * weight.Shape[1], weight.Name);
        if (k % 16 != 0 || scale.Shape[0] != n || scale.Shape[1] != k / 16)
            throw new SafeTensorsFormatException($"'{scale.Name}' is [{string.Join(", ", scale.Shape)}]; NVFP4 weight [{n}, {k}] needs [{n}, {k / 16}] (K a multiple of 16).");
        var scaleBytes = c.GetBytes(scale.Name);
        foreach (byte s in scaleBytes)
            if (s >= 0x7F)
                throw new SafeTensorsFormatException($"'{scale.Name}' holds the E4M3 byte 0x{s:X2} (negative or NaN), not a UE4M3 block scale.");
        float stored = Scalar(c, prefix + globalSuffix);
        float g = reciprocal ? FromReciprocal(c, prefix + globalSuffix, stored) : stored;
        if (!(float.IsFinite(g) && g > 0))
            throw new SafeTensorsFormatException($"'{prefix + globalSuffix}' = {stored} does not give a positive finite decode scale.");
        float? input = c.Contains(prefix + inputSuffix) ? Scalar(c, prefix + inputSuffix) : null;
        if (input is not null && reciprocal)
            input = FromReciprocal(c, prefix + inputSuffix, input.Value);
        var tensor = QuantizedTensor.FromParts(new QuantizationOptions(QuantFormat.Nvfp4), n, k, c.GetBytes(weight.Name), scaleBytes, [g]);
        return new CheckpointWeight(tensor, input);
    }

    private static QuantizedTensor ReadGptOss(SafeTensorsCheckpoint c, string prefix, int? expert)
    {
        var blocks = Tensor(c, prefix + "_blocks", SafeTensorsDType.U8, dimensions: 4);
        var scales = Tensor(c, prefix + "_scales", SafeTensorsDType.U8, dimensions: 3);
        if (blocks.Shape[3] != 16 || scales.Shape[0] != blocks.Shape[0] || scales.Shape[1] != blocks.Shape[1] || scales.Shape[2] != blocks.Shape[2])
            throw new SafeTensorsFormatException($"'{blocks.Name}' [{string.Join(", ", blocks.Shape)}] and '{scales.Name}' [{string.Join(", ", scales.Shape)}] " +
                                                 "do not form gpt-oss MXFP4 ([E, N, G, 16] and [E, N, G]).");
        long experts = blocks.Shape[0];
        int n = ToInt(blocks.Shape[1], blocks.Name), groups = ToInt(blocks.Shape[2], blocks.Name), k = ToInt(32L * groups, blocks.Name);
        var options = new QuantizationOptions(QuantFormat.Mxfp4);
        if (expert is null)
            return QuantizedTensor.FromParts(options, ToInt(experts * n, blocks.Name), k, c.GetBytes(blocks.Name), c.GetBytes(scales.Name), []);
        ArgumentOutOfRangeException.ThrowIfNegative(expert.Value, nameof(expert));
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(expert.Value, experts, nameof(expert));
        int dataBytes = n * groups * 16, scaleBytes = n * groups;
        return QuantizedTensor.FromParts(options, n, k, c.GetBytes(blocks.Name).Slice(expert.Value * dataBytes, dataBytes),
                                         c.GetBytes(scales.Name).Slice(expert.Value * scaleBytes, scaleBytes), []);
    }

    private static CheckpointWeight ReadFp8(SafeTensorsCheckpoint c, string prefix)
    {
        var weight = Tensor(c, prefix + ".weight", SafeTensorsDType.F8_E4M3, dimensions: 2);
        int n = ToInt(weight.Shape[0], weight.Name), k = ToInt(weight.Shape[1], weight.Name);
        var scaleInfo = c.GetInfo(prefix + ".weight_scale");
        var scales = c.FileOf(scaleInfo.Name).ReadAsSingle(scaleInfo.Name);
        bool perTensor = scales.Length == 1 && scaleInfo.Shape.Count <= 1;
        bool perChannel = scales.Length == n && (scaleInfo.Shape.Count == 1 || (scaleInfo.Shape.Count == 2 && scaleInfo.Shape[1] == 1));
        if (!perTensor && !perChannel)
            throw new SafeTensorsFormatException($"'{scaleInfo.Name}' is [{string.Join(", ", scaleInfo.Shape)}]; FP8 scales are [] / [1] per tensor or " +
                                                 $"[{n}] / [{n}, 1] per channel (block scales are not supported).");
        foreach (float s in scales)
            if (!(float.IsFinite(s) && s > 0))
                throw new SafeTensorsFormatException($"'{scaleInfo.Name}' holds {s}, not a positive finite scale.");
        float? input = c.Contains(prefix + ".input_scale") ? Scalar(c, prefix + ".input_scale") : null;
        var options = new QuantizationOptions(perTensor ? QuantFormat.Fp8PerTensor : QuantFormat.Fp8PerRow);
        return new CheckpointWeight(QuantizedTensor.FromParts(options, n, k, c.GetBytes(weight.Name), [], scales), input);
    }

    // ------------------------------------------------------------------ writers

    private static void AddNvfp4(SafeTensorsWriter writer, string prefix, QuantizedTensor w, float? inputScale, bool compressedTensors)
    {
        RequireLinear(w, QuantFormat.Nvfp4, "weight");
        if (w.Columns % 16 != 0)
            throw new ArgumentException($"NVFP4 checkpoints store K = {w.Columns} padded to 16; write a weight with K a multiple of 16.", "weight");
        float g = w.GlobalScale;
        writer.Add(prefix + (compressedTensors ? ".weight_packed" : ".weight"), SafeTensorsDType.U8, [w.Rows, w.Columns / 2], w.Data);
        writer.Add(prefix + ".weight_scale", SafeTensorsDType.F8_E4M3, [w.Rows, w.Columns / 16], w.BlockScales);
        if (compressedTensors)
        {
            AddReciprocal(writer, prefix + ".weight_global_scale", g);
            if (inputScale is not null)
                AddReciprocal(writer, prefix + ".input_global_scale", inputScale.Value);
        }
        else
        {
            writer.Add<float>(prefix + ".weight_scale_2", [g]);
            if (inputScale is not null)
                writer.Add<float>(prefix + ".input_scale", [inputScale.Value]);
        }
    }

    private static void AddFp8(SafeTensorsWriter writer, string prefix, QuantizedTensor w, float? inputScale)
    {
        if (w.Format is not (QuantFormat.Fp8PerTensor or QuantFormat.Fp8PerRow) || w.Options.Element != Fp8Element.E4M3)
            throw new ArgumentException($"FP8 checkpoints hold E4M3 per-tensor or per-row weights, not {w.Options}.", "weight");
        writer.Add(prefix + ".weight", SafeTensorsDType.F8_E4M3, [w.Rows, w.Columns], w.Data);
        if (w.Format == QuantFormat.Fp8PerTensor)
            writer.Add<float>(prefix + ".weight_scale", w.DecodeScales);
        else
            writer.Add<float>(prefix + ".weight_scale", w.DecodeScales, w.Rows, 1);
        if (inputScale is not null)
            writer.Add<float>(prefix + ".input_scale", [inputScale.Value]);
    }

    // Stores 1/value as compressed-tensors does: the binary32 s with fl(1 / s) == value when one exists (the nearest such),
    // else the nearest reciprocal plus the exact value in the metadata.
    private static void AddReciprocal(SafeTensorsWriter writer, string name, float value)
    {
        float nearest = NearestReciprocal(value);
        writer.Add<float>(name, [nearest], 1);
        if (1f / nearest != value)
            writer.Metadata[MetadataKey(name)] = $"0x{BitConverter.SingleToUInt32Bits(value):X8}";
    }

    private static float NearestReciprocal(float value)
    {
        float first = 1f / value;
        for (int step = 0; step <= 4; step++)
        {
            foreach (float s in new[] { BitStep(first, step), BitStep(first, -step) })
                if (1f / s == value)
                    return s;
        }
        return first;
    }

    private static float FromReciprocal(SafeTensorsCheckpoint c, string name, float stored)
    {
        var metadata = c.FileOf(name).Metadata;
        if (metadata.TryGetValue(MetadataKey(name), out var hex) && hex.StartsWith("0x", StringComparison.Ordinal)
            && uint.TryParse(hex.AsSpan(2), System.Globalization.NumberStyles.HexNumber, null, out uint bits))
        {
            float exact = BitConverter.UInt32BitsToSingle(bits);
            if (NearestReciprocal(exact) == stored)
                return exact;
        }
        return 1f / stored;
    }

    private static string MetadataKey(string name) => "microscale:" + name;

    private static float BitStep(float x, int steps) => BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(x) + steps);

    // ------------------------------------------------------------------ helpers

    private static void RequireLinear(QuantizedTensor w, QuantFormat format, string paramName)
    {
        if (w.Format != format || w.Layout != ScaleLayout.Linear)
            throw new ArgumentException($"Expected a {format} weight with linear scales, got {w.Options}.", paramName);
    }

    private static byte[] Concatenate(IReadOnlyList<QuantizedTensor> parts, Func<QuantizedTensor, ReadOnlySpan<byte>> bytes)
    {
        var result = new byte[parts.Sum(p => (long)bytes(p).Length)];
        long at = 0;
        foreach (var p in parts)
        {
            var b = bytes(p);
            b.CopyTo(result.AsSpan(checked((int)at)));
            at += b.Length;
        }
        return result;
    }

    private static SafeTensorInfo Tensor(SafeTensorsCheckpoint c, string name, SafeTensorsDType dtype, int dimensions)
    {
        var info = c.GetInfo(name);
        if (info.DType != dtype || info.Shape.Count != dimensions)
            throw new SafeTensorsFormatException($"'{name}' is {info.DType} [{string.Join(", ", info.Shape)}]; expected {dtype} with {dimensions} dimensions.");
        return info;
    }

    private static float Scalar(SafeTensorsCheckpoint c, string name)
    {
        var info = c.GetInfo(name);
        var values = c.FileOf(name).ReadAsSingle(name);
        return values.Length == 1 && info.Shape.Count <= 1
            ? values[0]
            : throw new SafeTensorsFormatException($"'{name}' is [{string.Join(", ", info.Shape)}]; expected a scalar ([] or [1]).");
    }

    private static int ToInt(long value, string name) => value is > 0 and <= int.MaxValue
        ? (int)value
        : throw new SafeTensorsFormatException($"'{name}': a dimension of {value} is out of range.");
}
