using System.Text;

namespace Microscale.IO;

/// <summary>
/// Builds a GGUF version 3 file: metadata in the order added, then tensor infos, then each tensor's bytes padded to the
/// alignment, in the order added (the packed layout ggml's own reader requires).
/// </summary>
public sealed class GgufWriter
{
    private readonly List<(string Key, GgufValue Value)> _metadata = [];
    private readonly List<(GgufTensorInfo Info, byte[] Bytes)> _tensors = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>Creates a writer.</summary>
    /// <param name="alignment">Data alignment, a power of 2 (written as <c>general.alignment</c> unless it is the default 32).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="alignment"/> is not a power of 2.</exception>
    public GgufWriter(int alignment = GgufFile.DefaultAlignment)
    {
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "The alignment must be a power of 2.");
        Alignment = alignment;
        if (alignment != GgufFile.DefaultAlignment)
            AddMetadata(GgufFile.AlignmentKey, new GgufValue(GgufValueType.UInt32, (uint)alignment));
    }

    /// <summary>The data alignment.</summary>
    public int Alignment { get; }

    /// <summary>Adds a metadata entry.</summary>
    /// <exception cref="ArgumentException">The key is empty or already added, or the value does not match its type.</exception>
    public void AddMetadata(string key, GgufValue value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        bool matches = value.Type == GgufValueType.Array
            ? value.Value is Array a && a.GetType().GetElementType() == ClrType(value.ElementType) && value.ElementType != GgufValueType.Array
            : value.Value.GetType() == ClrType(value.Type) && value.ElementType == value.Type;
        if (!matches)
            throw new ArgumentException($"Metadata '{key}': a {value.Value.GetType().Name} is not a GGUF {value.Type}" +
                                        (value.Type == GgufValueType.Array ? $" of {value.ElementType}." : "."), nameof(value));
        if (!_keys.Add(key))
            throw new ArgumentException($"Metadata '{key}' was already added.", nameof(key));
        _metadata.Add((key, value));
    }

    /// <summary>Adds a string metadata entry.</summary>
    public void AddMetadata(string key, string value) => AddMetadata(key, new GgufValue(GgufValueType.String, value));

    /// <summary>Adds a tensor (its bytes are copied).</summary>
    /// <param name="name">Unique, at most <see cref="GgufFile.MaxNameBytes"/> UTF-8 bytes.</param>
    /// <param name="type">Its ggml type.</param>
    /// <param name="dimensions">ggml order (the row length first), 0 to 4 of them.</param>
    /// <param name="bytes">Exactly the size the type and dimensions imply.</param>
    /// <exception cref="ArgumentException">A duplicate or overlong name, a bad shape, or the wrong number of bytes.</exception>
    public void AddTensor(string name, GgufTensorType type, IReadOnlyList<long> dimensions, ReadOnlySpan<byte> bytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(dimensions);
        if (Encoding.UTF8.GetByteCount(name) > GgufFile.MaxNameBytes)
            throw new ArgumentException($"Tensor name '{name}' is longer than {GgufFile.MaxNameBytes} bytes.", nameof(name));
        var (blockSize, typeSize) = GgufTensorInfo.Traits(type);
        if (blockSize == 0)
            throw new ArgumentOutOfRangeException(nameof(type), type, "Not a ggml type.");
        if (dimensions.Count > 4 || dimensions.Any(d => d < 0))
            throw new ArgumentException($"Tensor '{name}': 0 to 4 non-negative dimensions, got [{string.Join(", ", dimensions)}].", nameof(dimensions));
        var info = new GgufTensorInfo(name, [.. dimensions], type, 0, 0);
        if (info.RowLength % blockSize != 0)
            throw new ArgumentException($"Tensor '{name}': rows of {info.RowLength} values are not a multiple of {type}'s block of {blockSize}.", nameof(dimensions));
        long length = info.RowLength / blockSize * typeSize * info.Rows;
        if (bytes.Length != length)
            throw new ArgumentException($"Tensor '{name}' of {type} [{string.Join(", ", dimensions)}] needs {length} bytes, got {bytes.Length}.", nameof(bytes));
        if (!_names.Add(name))
            throw new ArgumentException($"Tensor '{name}' was already added.", nameof(name));
        _tensors.Add((info with { ByteLength = length }, bytes.ToArray()));
    }

    /// <summary>The whole file.</summary>
    public byte[] ToArray()
    {
        using var stream = new MemoryStream();
        WriteTo(stream);
        return stream.ToArray();
    }

    /// <summary>Writes the file to <paramref name="path"/>, replacing it.</summary>
    public void Save(string path)
    {
        using var stream = File.Create(path);
        WriteTo(stream);
    }

    /// <summary>Writes the file.</summary>
    public void WriteTo(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true); // BinaryWriter is little-endian
        w.Write(Encoding.ASCII.GetBytes("GGUF"));
        w.Write(3u);
        w.Write((long)_tensors.Count);
        w.Write((long)_metadata.Count);
        foreach (var (key, value) in _metadata)
        {
            WriteString(w, key);
            w.Write((int)value.Type);
            if (value.Type == GgufValueType.Array)
            {
                var array = (Array)value.Value;
                w.Write((int)value.ElementType);
                w.Write((ulong)array.Length);
                foreach (object element in array)
                    WriteScalar(w, value.ElementType, element);
            }
            else
            {
                WriteScalar(w, value.Type, value.Value);
            }
        }
        long offset = 0;
        foreach (var (info, bytes) in _tensors)
        {
            WriteString(w, info.Name);
            w.Write((uint)info.Dimensions.Count);
            foreach (long d in info.Dimensions)
                w.Write(d);
            w.Write((int)info.Type);
            w.Write((ulong)offset);
            offset += Padded(bytes.Length);
        }
        w.Flush();
        if (_tensors.Count > 0)
            Pad(stream, stream.Position);
        foreach (var (_, bytes) in _tensors)
        {
            stream.Write(bytes);
            Pad(stream, bytes.Length);
        }
    }

    private long Padded(long length) => (length + Alignment - 1) / Alignment * Alignment;

    private void Pad(Stream stream, long length) => stream.Write(new byte[Padded(length) - length]);

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteScalar(BinaryWriter w, GgufValueType type, object value)
    {
        switch (type)
        {
            case GgufValueType.UInt8: w.Write((byte)value); break;
            case GgufValueType.Int8: w.Write((sbyte)value); break;
            case GgufValueType.UInt16: w.Write((ushort)value); break;
            case GgufValueType.Int16: w.Write((short)value); break;
            case GgufValueType.UInt32: w.Write((uint)value); break;
            case GgufValueType.Int32: w.Write((int)value); break;
            case GgufValueType.Float32: w.Write((float)value); break;
            case GgufValueType.Bool: w.Write((bool)value ? (byte)1 : (byte)0); break;
            case GgufValueType.String: WriteString(w, (string)value); break;
            case GgufValueType.UInt64: w.Write((ulong)value); break;
            case GgufValueType.Int64: w.Write((long)value); break;
            default: w.Write((double)value); break;
        }
    }

    private static Type ClrType(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => typeof(byte),
        GgufValueType.Int8 => typeof(sbyte),
        GgufValueType.UInt16 => typeof(ushort),
        GgufValueType.Int16 => typeof(short),
        GgufValueType.UInt32 => typeof(uint),
        GgufValueType.Int32 => typeof(int),
        GgufValueType.Float32 => typeof(float),
        GgufValueType.Bool => typeof(bool),
        GgufValueType.String => typeof(string),
        GgufValueType.UInt64 => typeof(ulong),
        GgufValueType.Int64 => typeof(long),
        GgufValueType.Float64 => typeof(double),
        _ => typeof(Array),
    };
}
