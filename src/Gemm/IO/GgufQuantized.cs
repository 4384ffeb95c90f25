namespace Microscale.IO;

/// <summary>
/// GGUF's MXFP4 and NVFP4 tensors (ggml block layouts, see <see cref="GgufTensorType"/>) as <see cref="QuantizedTensor"/>s and
/// back. The element codes and scale bytes carry over unchanged, only their arrangement differs, so values decode exactly
/// as ggml's <c>dequantize_row_mxfp4</c> / <c>dequantize_row_nvfp4</c> decode them, bit for bit (checked against a port of
/// those functions in the tests). Two codes ggml reads differently from the OCP/NVIDIA encodings are normalized on the way
/// in: E2M1 −0 (code 8) becomes +0, as ggml decodes it; a UE4M3 scale byte is read as ggml reads it (bit 7 ignored, 0x7F =
/// 0). Scale bytes ggml decodes to values our formats cannot hold (E8M0 0xFF, which ggml's validator rejects; UE4M3 0xFF,
/// 480) are refused with <see cref="GgufFormatException"/>.
/// </summary>
/// <remarks>
/// A GGUF tensor with dimensions [K, N, E, ...] (ggml order, K varying fastest) becomes a [N·E·..., K] tensor, or one
/// [N, K] slice of it (for example one expert of gpt-oss's <c>blk.*.ffn_*_exps.weight</c>). GGUF NVFP4 has no tensor scale:
/// llama.cpp's converter stores ModelOpt's <c>weight_scale_2</c> as a separate F32 tensor; pass it as the global scale.
/// </remarks>
public static class GgufQuantized
{
    private const int MxBlockBytes = 17, NvBlockBytes = 36, MxBlock = 32, NvBlock = 64, NvSubBlock = 16;

    /// <summary>Whether a GGUF tensor type converts to a <see cref="QuantizedTensor"/>.</summary>
    public static bool IsSupported(GgufTensorType type) => type is GgufTensorType.MXFP4 or GgufTensorType.NVFP4;

    /// <summary>Reads a whole MXFP4 or NVFP4 tensor as a host [rows, K] tensor with linear scales.</summary>
    /// <param name="file">The GGUF file.</param>
    /// <param name="name">The tensor's name.</param>
    /// <param name="globalScale">NVFP4 only: the decode scale g (1 reproduces the GGUF values).</param>
    /// <exception cref="KeyNotFoundException">No such tensor.</exception>
    /// <exception cref="GgufFormatException">Not MXFP4/NVFP4, too large for one tensor, or a scale byte that cannot convert.</exception>
    public static QuantizedTensor Read(GgufFile file, string name, float globalScale = 1f)
    {
        ArgumentNullException.ThrowIfNull(file);
        var info = CheckedInfo(file, name);
        if (info.Rows > int.MaxValue || info.ByteLength > int.MaxValue)
            throw new GgufFormatException($"{info.Rows} rows of {info.RowLength} ({info.ByteLength} bytes) are more than one tensor holds; read slices.",
                                          null, name);
        return FromBlocks(info.Type, file.GetBytes(name), (int)info.Rows, (int)info.RowLength, globalScale, name);
    }

    /// <summary>Reads slice <paramref name="slice"/> along the last dimension of a tensor with 3 or more dimensions: for
    /// [K, N, E] the [N, K] tensor of expert <paramref name="slice"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="slice"/> is outside the last dimension.</exception>
    /// <exception cref="GgufFormatException">Fewer than 3 dimensions, not MXFP4/NVFP4, or a scale byte that cannot convert.</exception>
    public static QuantizedTensor Read(GgufFile file, string name, int slice, float globalScale = 1f)
    {
        ArgumentNullException.ThrowIfNull(file);
        var info = CheckedInfo(file, name);
        if (info.Dimensions.Count < 3)
            throw new GgufFormatException($"it has {info.Dimensions.Count} dimensions; slices need 3 or more.", null, name);
        long slices = info.Dimensions[^1];
        ArgumentOutOfRangeException.ThrowIfNegative(slice);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(slice, slices);
        long sliceRows = info.Rows / slices, sliceBytes = info.ByteLength / slices;
        if (sliceRows > int.MaxValue || sliceBytes > int.MaxValue)
            throw new GgufFormatException($"a slice of {sliceRows} rows ({sliceBytes} bytes) is more than one tensor holds.", null, name);
        return FromBlocks(info.Type, file.GetBytes(name, slice * sliceBytes, (int)sliceBytes), (int)sliceRows, (int)info.RowLength, globalScale, name);
    }

    /// <summary>Converts ggml MXFP4 or NVFP4 blocks of a [rows, columns] row-major tensor to a host tensor with linear scales.</summary>
    /// <param name="type"><see cref="GgufTensorType.MXFP4"/> or <see cref="GgufTensorType.NVFP4"/>.</param>
    /// <param name="blocks">rows × columns / block size blocks.</param>
    /// <param name="rows">Rows, at least 1.</param>
    /// <param name="columns">K, a positive multiple of the block size (32 MXFP4, 64 NVFP4).</param>
    /// <param name="globalScale">NVFP4 only: the decode scale g, positive and finite.</param>
    /// <exception cref="ArgumentException">Wrong type, shape, length or global scale.</exception>
    /// <exception cref="GgufFormatException">A scale byte that cannot convert.</exception>
    public static QuantizedTensor FromBlocks(GgufTensorType type, ReadOnlySpan<byte> blocks, int rows, int columns, float globalScale = 1f) =>
        FromBlocks(type, blocks, rows, columns, globalScale, tensorName: null);

    /// <summary>Converts a MXFP4 or NVFP4 tensor to ggml blocks (rows × K / block size of them) and its global scale (1 for
    /// MXFP4; for NVFP4 the g that GGUF keeps outside the blocks).</summary>
    /// <exception cref="ArgumentException">Another format, or K not a multiple of the ggml block (32 MXFP4, 64 NVFP4).</exception>
    /// <exception cref="InvalidOperationException">A NaN scale, which ggml cannot represent.</exception>
    public static (byte[] Blocks, float GlobalScale) ToBlocks(QuantizedTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        using var host = tensor.IsOnDevice ? tensor.ToHost() : null;
        var t = host ?? tensor;
        bool mx = t.Format == QuantFormat.Mxfp4;
        QuantizerChecks.ThrowIfTiledInput(t, nameof(tensor));
        if (!mx && t.Format != QuantFormat.Nvfp4)
            throw new ArgumentException($"GGUF holds MXFP4 and NVFP4 blocks, not {t.Format}.", nameof(tensor));
        int block = mx ? MxBlock : NvBlock, blockBytes = mx ? MxBlockBytes : NvBlockBytes;
        if (t.Columns % block != 0)
            throw new ArgumentException($"K = {t.Columns} is not a multiple of ggml's {t.Format} block of {block}.", nameof(tensor));
        int scaleColumns = t.Columns / (mx ? MxBlock : NvSubBlock), blocksPerRow = t.Columns / block;
        bool swizzled = t.Layout == ScaleLayout.Swizzled128x4;
        var data = t.Data;
        var scales = t.BlockScales;
        var result = new byte[(long)t.Rows * blocksPerRow * blockBytes];
        for (int r = 0; r < t.Rows; r++)
        {
            for (int b = 0; b < blocksPerRow; b++)
            {
                var dst = result.AsSpan(checked((int)(((long)r * blocksPerRow + b) * blockBytes)), blockBytes);
                var codes = data.Slice((r * (t.Columns / 2)) + b * block / 2, block / 2);
                int subBlocks = mx ? 1 : NvBlock / NvSubBlock, sub = mx ? MxBlock : NvSubBlock;
                for (int s = 0; s < subBlocks; s++)
                {
                    byte scale = scales[ScaleRules.ScaleOffset(r, b * subBlocks + s, scaleColumns, swizzled)];
                    if (scale == (mx ? 0xFF : 0x7F))
                        throw new InvalidOperationException($"Row {r}, block {b * subBlocks + s} has a NaN scale, which GGUF cannot hold.");
                    dst[s] = scale;
                    // ggml: low nibble of qs[j] = element j of the (sub-)block, high nibble = element j + sub/2.
                    var qs = dst.Slice(subBlocks + s * sub / 2, sub / 2);
                    for (int j = 0; j < sub / 2; j++)
                        qs[j] = (byte)(Code(codes, s * sub + j) | Code(codes, s * sub + j + sub / 2) << 4);
                }
            }
        }
        return (result, mx ? 1f : t.DecodeScales[0]);
    }

    private static int Code(ReadOnlySpan<byte> packed, int i) => (packed[i >> 1] >> (4 * (i & 1))) & 0xF;

    private static GgufTensorInfo CheckedInfo(GgufFile file, string name)
    {
        var info = file.GetInfo(name);
        if (!IsSupported(info.Type))
            throw new GgufFormatException($"its type is {info.Type}; only MXFP4 and NVFP4 convert to a quantized tensor.", null, name);
        if (info.RowLength == 0 || info.Rows == 0)
            throw new GgufFormatException($"it is empty ([{string.Join(", ", info.Dimensions)}]).", null, name);
        return info;
    }

    /// <summary>Checks a block conversion's arguments (type, shape, byte length, global scale) as <see cref="FromBlocks(GgufTensorType, ReadOnlySpan{byte}, int, int, float)"/> does.</summary>
    internal static void CheckBlocks(GgufTensorType type, long byteLength, int rows, int columns, float globalScale)
    {
        if (!IsSupported(type))
            throw new ArgumentException($"Only MXFP4 and NVFP4 convert, not {type}.", nameof(type));
        bool mx = type == GgufTensorType.MXFP4;
        int block = mx ? MxBlock : NvBlock;
        ThrowHelper.ThrowIfNotPositive(rows, nameof(rows));
        ThrowHelper.ThrowIfNotPositive(columns, nameof(columns));
        if (columns % block != 0)
            throw new ArgumentException($"{type} rows must be a multiple of {block} values, got {columns}.", nameof(columns));
        ThrowHelper.ThrowIfLengthIsNot((long)rows * (columns / block) * (mx ? MxBlockBytes : NvBlockBytes), byteLength, "blocks", "bytes");
        if (!mx && !(float.IsFinite(globalScale) && globalScale > 0))
            throw new ArgumentOutOfRangeException(nameof(globalScale), globalScale, "The NVFP4 global scale must be positive and finite.");
        if (mx && globalScale != 1f)
            throw new ArgumentException("MXFP4 has no global scale.", nameof(globalScale));
    }

    private static QuantizedTensor FromBlocks(GgufTensorType type, ReadOnlySpan<byte> blocks, int rows, int columns, float globalScale, string? tensorName)
    {
        CheckBlocks(type, blocks.Length, rows, columns, globalScale);
        bool mx = type == GgufTensorType.MXFP4;
        int block = mx ? MxBlock : NvBlock, blockBytes = mx ? MxBlockBytes : NvBlockBytes;
        int blocksPerRow = columns / block;

        int sub = mx ? MxBlock : NvSubBlock, subBlocks = block / sub;
        var data = new byte[(long)rows * columns / 2];
        var scales = new byte[(long)rows * (columns / sub)];
        for (long b = 0; b < (long)rows * blocksPerRow; b++)
        {
            var src = blocks.Slice((int)(b * blockBytes), blockBytes);
            var codes = data.AsSpan((int)(b * block / 2), block / 2);
            for (int s = 0; s < subBlocks; s++)
            {
                scales[b * subBlocks + s] = mx ? MxScale(src[0], b, tensorName) : NvScale(src[s], b * subBlocks + s, tensorName);
                var qs = src.Slice(subBlocks + s * sub / 2, sub / 2);
                for (int j = 0; j < sub / 2; j++)
                {
                    SetCode(codes, s * sub + j, qs[j] & 0xF);
                    SetCode(codes, s * sub + j + sub / 2, qs[j] >> 4);
                }
            }
        }
        var options = new QuantizationOptions(mx ? QuantFormat.Mxfp4 : QuantFormat.Nvfp4);
        return QuantizedTensor.FromParts(options, rows, columns, data, scales, mx ? [] : [globalScale]);
    }

    // E2M1 −0 (code 8) is stored as +0: ggml's table decodes both to +0.
    private static void SetCode(Span<byte> packed, int i, int code) =>
        packed[i >> 1] |= (byte)((code == 8 ? 0 : code) << (4 * (i & 1)));

    private static byte MxScale(byte e, long block, string? tensorName) => e != 0xFF ? e
        : throw new GgufFormatException($"block {block} has the E8M0 scale 0xFF, which ggml rejects as invalid.", null, tensorName);

    // ggml's UE4M3: bit 7 ignored, 0x7F (the E4M3 NaN, what llama.cpp's converter leaves of a NaN) reads as 0.
    private static byte NvScale(byte d, long scale, string? tensorName) => d switch
    {
        0x7F => 0,
        0xFF => throw new GgufFormatException($"scale {scale} is 0xFF, which ggml reads as 480, beyond UE4M3's 448.", null, tensorName),
        _ => (byte)(d & 0x7F),
    };
}
