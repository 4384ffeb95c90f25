using System.Buffers.Binary;
using System.Text;
using Microscale.IO;

namespace Microscale.Tests.Unit;

/// <summary>
/// GGUF: files built in code (writer → reader round trips, every malformation the reader must name), and the MXFP4 / NVFP4
/// block conversion checked bit for bit against a port of ggml's <c>dequantize_row_mxfp4</c> / <c>dequantize_row_nvfp4</c>
/// (ggml-org/ggml d99724f2, src/ggml-quants.c and src/ggml-impl.h).
/// </summary>
[TestFixture]
public sealed class GgufTests
{
    // ------------------------------------------------------------------ ggml's reference dequantization, ported

    private static readonly sbyte[] s_kvaluesFp4 = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

    private static float GgmlE8M0Half(byte x) =>
        BitConverter.UInt32BitsToSingle(x < 2 ? 0x00200000u << x : (uint)(x - 1) << 23);

    private static float GgmlUe4m3(byte x)
    {
        if (x == 0 || x == 0x7F)
            return 0f;
        int exp = (x >> 3) & 0xF, man = x & 0x7;
        float raw = exp == 0 ? MathF.ScaleB(man, -9) : MathF.ScaleB(1.0f + man / 8.0f, exp - 7);
        return raw * 0.5f;
    }

    private static float[] GgmlDequantizeMxfp4(ReadOnlySpan<byte> blocks, int values)
    {
        var y = new float[values];
        for (int i = 0; i < values / 32; i++)
        {
            var x = blocks.Slice(i * 17, 17);
            float d = GgmlE8M0Half(x[0]);
            for (int j = 0; j < 16; j++)
            {
                y[i * 32 + j] = s_kvaluesFp4[x[1 + j] & 0x0F] * d;
                y[i * 32 + j + 16] = s_kvaluesFp4[x[1 + j] >> 4] * d;
            }
        }
        return y;
    }

    private static float[] GgmlDequantizeNvfp4(ReadOnlySpan<byte> blocks, int values)
    {
        var y = new float[values];
        for (int i = 0; i < values / 64; i++)
        {
            var x = blocks.Slice(i * 36, 36);
            for (int s = 0; s < 4; s++)
            {
                float d = GgmlUe4m3(x[s]);
                for (int j = 0; j < 8; j++)
                {
                    y[i * 64 + s * 16 + j] = s_kvaluesFp4[x[4 + s * 8 + j] & 0x0F] * d;
                    y[i * 64 + s * 16 + j + 8] = s_kvaluesFp4[x[4 + s * 8 + j] >> 4] * d;
                }
            }
        }
        return y;
    }

    // Random ggml blocks; scale bytes drawn from everything the converter accepts (E8M0 0..254; UE4M3 any byte but 0xFF,
    // so with bit 7 set and 0x7F too), plus the extremes.
    internal static byte[] RandomBlocks(GgufTensorType type, int rows, int columns, int seed)
    {
        var random = new Random(seed);
        bool mx = type == GgufTensorType.MXFP4;
        int blockBytes = mx ? 17 : 36, block = mx ? 32 : 64, scalesPerBlock = mx ? 1 : 4;
        var bytes = new byte[rows * columns / block * blockBytes];
        random.NextBytes(bytes);
        for (int b = 0; b < bytes.Length / blockBytes; b++)
        {
            for (int s = 0; s < scalesPerBlock; s++)
            {
                ref byte scale = ref bytes[b * blockBytes + s];
                if (mx)
                    scale = (b % 7) switch { 0 => 0, 1 => 1, 2 => 254, _ => (byte)(scale % 255) };
                else if (scale == 0xFF)
                    scale = (byte)(b % 2 == 0 ? 0x7F : 0xFE);
            }
        }
        return bytes;
    }

    [TestCase(GgufTensorType.MXFP4, 3, 96)]
    [TestCase(GgufTensorType.MXFP4, 1, 32)]
    [TestCase(GgufTensorType.NVFP4, 5, 128)]
    [TestCase(GgufTensorType.NVFP4, 1, 64)]
    public void BlocksDecodeBitIdenticalToGgml(GgufTensorType type, int rows, int columns)
    {
        var blocks = RandomBlocks(type, rows, columns, seed: rows * 1000 + columns);
        using var tensor = GgufQuantized.FromBlocks(type, blocks, rows, columns);
        var expected = type == GgufTensorType.MXFP4 ? GgmlDequantizeMxfp4(blocks, rows * columns) : GgmlDequantizeNvfp4(blocks, rows * columns);
        foreach (var backend in TestBackends.Cpu)
            Exact.AssertFloats(expected, tensor.Dequantize(backend), $"{type} {rows}x{columns} on {backend}", columns);
    }

    [TestCase(GgufTensorType.MXFP4)]
    [TestCase(GgufTensorType.NVFP4)]
    public void QuantizedTensorRoundTripsThroughBlocks(GgufTensorType type)
    {
        var format = type == GgufTensorType.MXFP4 ? QuantFormat.Mxfp4 : QuantFormat.Nvfp4;
        const int rows = 7, columns = 192;
        var values = SeededGaussian.Create(rows * columns, seed: 11);
        using var original = Quantizer.Quantize(values, rows, columns, new QuantizationOptions(format));
        var (blocks, globalScale) = GgufQuantized.ToBlocks(original);
        Assert.That(globalScale, Is.EqualTo(format == QuantFormat.Nvfp4 ? original.GlobalScale : 1f));
        using var back = GgufQuantized.FromBlocks(type, blocks, rows, columns, globalScale);
        Assert.That(back.BlockScales.ToArray(), Is.EqualTo(original.BlockScales.ToArray()));
        // Codes match except E2M1 −0 (8), which comes back as +0 (ggml decodes both as +0).
        var expected = original.Data.ToArray().Select(b => (byte)((b & 0xF) == 8 ? b & 0xF0 : b)).Select(b => (byte)((b >> 4) == 8 ? b & 0x0F : b));
        Assert.That(back.Data.ToArray(), Is.EqualTo(expected.ToArray()));
        Assert.That(original.Data.ToArray().Any(b => (b & 0xF) == 8 || b >> 4 == 8), "the sample has −0 codes to normalize");
        Assert.That(back.Dequantize(Backend.Reference), Is.EqualTo(original.Dequantize(Backend.Reference)));
        Assert.That(GgufQuantized.ToBlocks(back).Blocks, Is.EqualTo(WithoutNegativeZero(blocks, type)));
    }

    // The blocks with E2M1 −0 codes (8) written as +0 (0), scale bytes untouched.
    private static byte[] WithoutNegativeZero(byte[] blocks, GgufTensorType type)
    {
        int blockBytes = type == GgufTensorType.MXFP4 ? 17 : 36, scaleBytes = type == GgufTensorType.MXFP4 ? 1 : 4;
        var result = (byte[])blocks.Clone();
        for (int i = 0; i < result.Length; i++)
        {
            if (i % blockBytes < scaleBytes)
                continue;
            if ((result[i] & 0x0F) == 8)
                result[i] &= 0xF0;
            if ((result[i] >> 4) == 8)
                result[i] &= 0x0F;
        }
        return result;
    }

    /// <summary>MicroscaleContext.UploadGguf on every backend present: the Native one repacks on the device (libmicroscale's
    /// kernel), the others convert on the host; all must decode bit for bit as ggml.</summary>
    [TestCaseSource(typeof(TestBackends), nameof(TestBackends.Each))]
    public void UploadGgufDecodesAsGgml(Backend backend)
    {
        TestBackends.Require(backend);
        using var context = MicroscaleContext.Create(backend);
        foreach (var (type, rows, columns) in new[] { (GgufTensorType.MXFP4, 130, 96), (GgufTensorType.NVFP4, 33, 192), (GgufTensorType.MXFP4, 1, 32) })
        {
            var blocks = RandomBlocks(type, rows, columns, seed: rows + columns);
            using var tensor = context.UploadGguf(type, blocks, rows, columns, type == GgufTensorType.NVFP4 ? 0.25f : 1f);
            var expected = type == GgufTensorType.MXFP4 ? GgmlDequantizeMxfp4(blocks, rows * columns)
                                                        : GgmlDequantizeNvfp4(blocks, rows * columns).Select(v => v * 0.25f).ToArray();
            Exact.AssertFloats(expected, context.Dequantize(tensor).ToArray(), $"{type} {rows}x{columns} on {backend}", columns);
            using var host = tensor.ToHost();
            using var reference = GgufQuantized.FromBlocks(type, blocks, rows, columns, type == GgufTensorType.NVFP4 ? 0.25f : 1f);
            Assert.That(host.Data.ToArray(), Is.EqualTo(reference.Data.ToArray()), $"{type} codes on {backend}");
            Assert.That(host.BlockScales.ToArray(), Is.EqualTo(reference.BlockScales.ToArray()), $"{type} scales on {backend}");
        }
        Assert.Throws<ArgumentException>(() => context.UploadGguf(GgufTensorType.MXFP4, new byte[16], 1, 32));
    }

    [Test]
    public void SwizzledScalesWriteTheSameBlocksAsLinear()
    {
        var values = SeededGaussian.Create(130 * 64, seed: 3);
        using var linear = Quantizer.Quantize(values, 130, 64, new QuantizationOptions(QuantFormat.Mxfp4));
        using var swizzled = Quantizer.Quantize(values, 130, 64, new QuantizationOptions(QuantFormat.Mxfp4) { Layout = ScaleLayout.Swizzled128x4 });
        Assert.That(GgufQuantized.ToBlocks(swizzled).Blocks, Is.EqualTo(GgufQuantized.ToBlocks(linear).Blocks));
    }

    [Test]
    public void ScaleBytesGgmlReadsSpecially()
    {
        // NVFP4: 0x7F reads as 0, bit 7 is ignored, 0xFF (480) is refused.
        var block = new byte[36];
        block[0] = 0x7F;
        block[1] = 0x80 | 0x38; // 1.0 with bit 7 set
        block[4] = 0x22;        // two E2M1 1.0 codes in sub-block 0
        block[12] = 0x22;       // and in sub-block 1
        using var nv = GgufQuantized.FromBlocks(GgufTensorType.NVFP4, block, 1, 64);
        var values = nv.Dequantize(Backend.Reference);
        Assert.That(values[0], Is.EqualTo(0f));
        Assert.That(values[16], Is.EqualTo(1f));
        Assert.That(values, Is.EqualTo(GgmlDequantizeNvfp4(block, 64)));
        block[2] = 0xFF;
        Assert.That(Assert.Throws<GgufFormatException>(() => GgufQuantized.FromBlocks(GgufTensorType.NVFP4, block, 1, 64))!.Message, Does.Contain("480"));

        // MXFP4: E8M0 0xFF is refused (ggml's validator rejects it).
        var mx = new byte[17];
        mx[0] = 0xFF;
        Assert.That(Assert.Throws<GgufFormatException>(() => GgufQuantized.FromBlocks(GgufTensorType.MXFP4, mx, 1, 32))!.Message, Does.Contain("0xFF"));
    }

    [Test]
    public void FromBlocksRejectsBadArguments()
    {
        Assert.That(Assert.Throws<ArgumentException>(() => GgufQuantized.FromBlocks(GgufTensorType.Q8_0, new byte[34], 1, 32))!.ParamName, Is.EqualTo("type"));
        Assert.That(Assert.Throws<ArgumentException>(() => GgufQuantized.FromBlocks(GgufTensorType.MXFP4, new byte[17], 1, 48))!.ParamName, Is.EqualTo("columns"));
        Assert.That(Assert.Throws<ArgumentException>(() => GgufQuantized.FromBlocks(GgufTensorType.MXFP4, new byte[16], 1, 32))!.ParamName, Is.EqualTo("blocks"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => GgufQuantized.FromBlocks(GgufTensorType.NVFP4, new byte[36], 1, 64, float.NaN))!.ParamName,
                    Is.EqualTo("globalScale"));
        Assert.That(Assert.Throws<ArgumentException>(() => GgufQuantized.FromBlocks(GgufTensorType.MXFP4, new byte[17], 1, 32, 2f))!.ParamName, Is.EqualTo("globalScale"));
        using var fp8 = Quantizer.Quantize(new float[64], 1, 64, new QuantizationOptions(QuantFormat.Fp8PerRow));
        Assert.Throws<ArgumentException>(() => GgufQuantized.ToBlocks(fp8));
    }

    // ------------------------------------------------------------------ files

    private static GgufWriter SampleWriter(int alignment, out byte[] mxBlocks, out byte[] nvBlocks)
    {
        var writer = new GgufWriter(alignment);
        writer.AddMetadata("general.architecture", "gpt-oss");
        writer.AddMetadata("test.u8", new GgufValue(GgufValueType.UInt8, (byte)200));
        writer.AddMetadata("test.i16", new GgufValue(GgufValueType.Int16, (short)-3));
        writer.AddMetadata("test.f32", new GgufValue(GgufValueType.Float32, 0.25f));
        writer.AddMetadata("test.bool", new GgufValue(GgufValueType.Bool, true));
        writer.AddMetadata("test.u64", new GgufValue(GgufValueType.UInt64, ulong.MaxValue));
        writer.AddMetadata("test.f64", new GgufValue(GgufValueType.Float64, -1.5));
        writer.AddMetadata("tokenizer.tokens", new GgufValue(GgufValueType.Array, new[] { "a", "bé", "" }, GgufValueType.String));
        writer.AddMetadata("test.scores", new GgufValue(GgufValueType.Array, new[] { 1f, -2f }, GgufValueType.Float32));
        writer.AddTensor("token_embd.weight", GgufTensorType.F32, [4, 2], MemoryMarshalBytes([1f, 2f, 3f, 4f, 5f, 6f, 7f, 8f]));
        mxBlocks = RandomBlocks(GgufTensorType.MXFP4, 3 * 2, 64, seed: 1);
        writer.AddTensor("blk.0.ffn_down_exps.weight", GgufTensorType.MXFP4, [64, 3, 2], mxBlocks); // K 64, N 3, 2 experts
        nvBlocks = RandomBlocks(GgufTensorType.NVFP4, 5, 128, seed: 2);
        writer.AddTensor("blk.0.attn_q.weight", GgufTensorType.NVFP4, [128, 5], nvBlocks);
        writer.AddTensor("blk.0.attn_q.scale", GgufTensorType.F32, [1], MemoryMarshalBytes([0.5f]));
        return writer;
    }

    private static byte[] MemoryMarshalBytes(float[] values) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    [TestCase(32)]
    [TestCase(64)]
    public void WriterAndReaderRoundTrip(int alignment)
    {
        var bytes = SampleWriter(alignment, out var mxBlocks, out var nvBlocks).ToArray();
        using var file = GgufFile.FromBytes(bytes);
        Assert.That(file.Version, Is.EqualTo(3));
        Assert.That(file.Alignment, Is.EqualTo(alignment));
        Assert.That(file.Metadata["general.architecture"].Value, Is.EqualTo("gpt-oss"));
        Assert.That(file.Metadata["test.u8"].Value, Is.EqualTo((byte)200));
        Assert.That(file.Metadata["test.i16"].Value, Is.EqualTo((short)-3));
        Assert.That(file.Metadata["test.bool"].Value, Is.EqualTo(true));
        Assert.That(file.Metadata["test.u64"].Value, Is.EqualTo(ulong.MaxValue));
        Assert.That(file.Metadata["test.f64"].Value, Is.EqualTo(-1.5));
        Assert.That(file.Metadata["tokenizer.tokens"].Value, Is.EqualTo(new[] { "a", "bé", "" }));
        Assert.That(file.Metadata["test.scores"].ElementType, Is.EqualTo(GgufValueType.Float32));
        Assert.That(file.Tensors.Select(t => t.Name),
                    Is.EqualTo(new[] { "token_embd.weight", "blk.0.ffn_down_exps.weight", "blk.0.attn_q.weight", "blk.0.attn_q.scale" }));
        Assert.That(file.Tensors.All(t => t.DataOffset % alignment == 0));
        var experts = file.GetInfo("blk.0.ffn_down_exps.weight");
        Assert.That((experts.RowLength, experts.Rows, experts.ByteLength), Is.EqualTo((64L, 6L, 6L * 2 * 17)));
        Assert.That(file.GetBytes("blk.0.ffn_down_exps.weight").ToArray(), Is.EqualTo(mxBlocks));
        Assert.That(file.GetBytes("token_embd.weight").ToArray(), Is.EqualTo(MemoryMarshalBytes([1f, 2f, 3f, 4f, 5f, 6f, 7f, 8f])));

        // Whole tensors and expert slices convert; the NVFP4 scale stored beside the weight (llama.cpp) is the global scale.
        using var all = GgufQuantized.Read(file, "blk.0.ffn_down_exps.weight");
        using var expert1 = GgufQuantized.Read(file, "blk.0.ffn_down_exps.weight", slice: 1);
        Assert.That((all.Rows, all.Columns, expert1.Rows), Is.EqualTo((6, 64, 3)));
        Assert.That(expert1.Dequantize(Backend.Reference), Is.EqualTo(all.Dequantize(Backend.Reference).Skip(3 * 64).ToArray()));
        float scale = BitConverter.ToSingle(file.GetBytes("blk.0.attn_q.scale"));
        using var q = GgufQuantized.Read(file, "blk.0.attn_q.weight", scale);
        Assert.That(q.Dequantize(Backend.Reference), Is.EqualTo(GgmlDequantizeNvfp4(nvBlocks, 5 * 128).Select(v => v * 0.5f).ToArray()));
        Assert.Throws<ArgumentOutOfRangeException>(() => GgufQuantized.Read(file, "blk.0.ffn_down_exps.weight", slice: 2));
        Assert.That(Assert.Throws<GgufFormatException>(() => GgufQuantized.Read(file, "blk.0.attn_q.weight", slice: 0))!.TensorName,
                    Is.EqualTo("blk.0.attn_q.weight"));
        Assert.That(Assert.Throws<GgufFormatException>(() => GgufQuantized.Read(file, "token_embd.weight"))!.Message, Does.Contain("F32"));
        Assert.That(Assert.Throws<KeyNotFoundException>(() => file.GetInfo("missing"))!.Message, Does.Contain("token_embd.weight"));
    }

    [Test]
    public void OpenMapsAFileAndDisposeEndsAccess()
    {
        string path = Path.Combine(Path.GetTempPath(), $"microscale-{Guid.NewGuid():N}.gguf");
        try
        {
            SampleWriter(32, out var mxBlocks, out _).Save(path);
            var file = GgufFile.Open(path);
            Assert.That(file.GetBytes("blk.0.ffn_down_exps.weight").ToArray(), Is.EqualTo(mxBlocks));
            file.Dispose();
            file.Dispose();
            Assert.Throws<ObjectDisposedException>(() => file.GetInfo("token_embd.weight"));
            File.WriteAllBytes(path, []);
            Assert.That(Assert.Throws<GgufFormatException>(() => GgufFile.Open(path))!.FilePath, Is.EqualTo(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void EveryTruncationIsAFormatError()
    {
        var bytes = SampleWriter(32, out _, out _).ToArray();
        // Every prefix that cuts the header or a tensor's bytes; the last tensor (4 bytes) is followed by 28 bytes of padding.
        for (int length = 0; length < bytes.Length - 28; length++)
        {
            var prefix = bytes.AsSpan(0, length).ToArray();
            try
            {
                GgufFile.FromBytes(prefix).Dispose();
                Assert.Fail($"a {length}-byte prefix of a {bytes.Length}-byte file parsed");
            }
            catch (GgufFormatException)
            {
            }
        }
    }

    // A header built field by field, to write what the writer refuses to.
    private sealed class RawHeader
    {
        private readonly MemoryStream _stream = new();
        private readonly BinaryWriter _w;

        public RawHeader(uint version = 3, long tensors = 0, long kvs = 0)
        {
            _w = new BinaryWriter(_stream);
            _w.Write(Encoding.ASCII.GetBytes("GGUF"));
            _w.Write(version);
            _w.Write(tensors);
            _w.Write(kvs);
        }

        public RawHeader Str(string s)
        {
            var b = Encoding.UTF8.GetBytes(s);
            _w.Write((ulong)b.Length);
            _w.Write(b);
            return this;
        }

        public RawHeader U32(uint v) { _w.Write(v); return this; }

        public RawHeader I32(int v) { _w.Write(v); return this; }

        public RawHeader I64(long v) { _w.Write(v); return this; }

        public RawHeader Tensor(string name, long[] dims, int type, ulong offset)
        {
            Str(name).U32((uint)dims.Length);
            foreach (long d in dims)
                I64(d);
            return I32(type).I64((long)offset);
        }

        public byte[] Bytes(int dataBytes = 0)
        {
            _w.Flush();
            long padded = (_stream.Length + 31) / 32 * 32;
            return [.. _stream.ToArray(), .. new byte[padded - _stream.Length + dataBytes]];
        }
    }

    private static string Malformed(byte[] bytes) => Assert.Throws<GgufFormatException>(() => GgufFile.FromBytes(bytes).Dispose())!.Message;

    [Test]
    public void MalformedHeadersAreNamed()
    {
        var good = new RawHeader().Bytes();
        Assert.DoesNotThrow(() => GgufFile.FromBytes(good).Dispose());
        var badMagic = (byte[])good.Clone();
        badMagic[0] = (byte)'X';
        Assert.That(Malformed(badMagic), Does.Contain("magic"));
        Assert.That(Malformed(new RawHeader(version: 1).Bytes()), Does.Contain("version 1"));
        Assert.That(Malformed(new RawHeader(version: 4).Bytes()), Does.Contain("version 4"));
        Assert.That(Malformed(new RawHeader(version: BinaryPrimitives.ReverseEndianness(3u)).Bytes()), Does.Contain("byte-swapped"));
        Assert.That(Malformed(new RawHeader(kvs: 1_000_000).Bytes()), Does.Contain("metadata count"));
        Assert.That(Malformed(new RawHeader(kvs: 1).Str("").I32(4).U32(1).Bytes()), Does.Contain("empty key"));
        Assert.That(Malformed(new RawHeader(kvs: 2).Str("k").I32(4).U32(1).Str("k").I32(4).U32(2).Bytes()), Does.Contain("twice"));
        Assert.That(Malformed(new RawHeader(kvs: 1).Str("k").I32(13).Bytes()), Does.Contain("unknown value type 13"));
        Assert.That(Malformed(new RawHeader(kvs: 1).Str("k").I32(9).I32(9).I64(0).Bytes()), Does.Contain("arrays of arrays"));
        Assert.That(Malformed(new RawHeader(kvs: 1).Str("k").I32(9).I32(4).I64(1L << 40).Bytes()), Does.Contain("elements"));
        Assert.That(Malformed(new RawHeader(kvs: 1).Str("k").I32(8).I64(1L << 40).Bytes()), Does.Contain("claims"));
        Assert.That(Malformed(new RawHeader(kvs: 1).Str(GgufFile.AlignmentKey).I32(4).U32(48).Bytes()), Does.Contain("power of 2"));
        Assert.That(Malformed(new RawHeader(kvs: 1).Str(GgufFile.AlignmentKey).I32(5).I32(64).Bytes()), Does.Contain("not UInt32"));
    }

    [Test]
    public void MalformedTensorInfosAreNamed()
    {
        byte[] One(string name, long[] dims, int type, ulong offset, int data) => new RawHeader(tensors: 1).Tensor(name, dims, type, offset).Bytes(data);
        Assert.DoesNotThrow(() => GgufFile.FromBytes(One("w", [32, 2], (int)GgufTensorType.MXFP4, 0, 34)).Dispose());
        Assert.That(Malformed(One(new string('n', 64), [4], 0, 0, 16)), Does.Contain("longer than 63"));
        Assert.That(Malformed(One("w", [1, 1, 1, 1, 1], 0, 0, 4)), Does.Contain("5 dimensions"));
        Assert.That(Malformed(One("w", [-1], 0, 0, 4)), Does.Contain("negative"));
        Assert.That(Malformed(One("w", [4], 4, 0, 16)), Does.Contain("type 4"));
        Assert.That(Malformed(One("w", [48], (int)GgufTensorType.MXFP4, 0, 64)), Does.Contain("multiple of MXFP4's block of 32"));
        Assert.That(Malformed(One("w", [4], 0, 8, 64)), Does.Contain("not a multiple of the alignment"));
        Assert.That(Malformed(One("w", [32, 2], (int)GgufTensorType.MXFP4, 0, 33)), Does.Contain("past the end"));
        var twice = new RawHeader(tensors: 2).Tensor("w", [4], 0, 0).Tensor("w", [4], 0, 32).Bytes(64);
        Assert.That(Malformed(twice), Does.Contain("appears twice"));
        var overlap = new RawHeader(tensors: 2).Tensor("a", [16], 0, 0).Tensor("b", [4], 0, 32).Bytes(64);
        Assert.That(Assert.Throws<GgufFormatException>(() => GgufFile.FromBytes(overlap))!.TensorName, Is.EqualTo("b"));
    }

    [Test]
    public void WriterRefusesWhatReadersWouldReject()
    {
        var w = new GgufWriter();
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new GgufWriter(48));
        Assert.Throws<ArgumentException>(() => w.AddMetadata("k", new GgufValue(GgufValueType.UInt32, 1)));        // an int is not a UInt32
        Assert.Throws<ArgumentException>(() => w.AddMetadata("k", new GgufValue(GgufValueType.Array, new[] { 1 }, GgufValueType.Float32)));
        w.AddMetadata("k", "v");
        Assert.Throws<ArgumentException>(() => w.AddMetadata("k", "again"));
        Assert.Throws<ArgumentException>(() => w.AddTensor("t", GgufTensorType.MXFP4, [48], new byte[0]));
        Assert.Throws<ArgumentException>(() => w.AddTensor("t", GgufTensorType.F32, [4], new byte[15]));
        Assert.Throws<ArgumentException>(() => w.AddTensor(new string('n', 64), GgufTensorType.F32, [1], new byte[4]));
        w.AddTensor("t", GgufTensorType.F32, [1], new byte[4]);
        Assert.Throws<ArgumentException>(() => w.AddTensor("t", GgufTensorType.F32, [1], new byte[4]));
    }
}
