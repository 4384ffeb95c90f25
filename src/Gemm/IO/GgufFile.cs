using System.Buffers.Binary;
using System.Collections.ObjectModel;
using System.Text;

namespace Microscale.IO;

/// <summary>
/// A read-only GGUF file (ggml's checkpoint format, versions 2 and 3): the magic <c>GGUF</c>, a version, tensor and metadata
/// counts, metadata key/value pairs, tensor infos (name, ggml dimensions, ggml type, offset), then the data section, aligned to
/// <c>general.alignment</c> (default 32). All little-endian.
/// </summary>
/// <remarks>
/// <para>Validated when opened, following ggml's reader (gguf.cpp): magic, version 2 or 3, non-empty unique keys, known value
/// types and no nested arrays, a power-of-two UInt32 alignment, unique tensor names under 64 bytes, at most 4 dimensions, a
/// ggml type with known block traits, a row length that is a multiple of its block size. Tensor offsets must be aligned and
/// every tensor must lie inside the file without overlapping another (the GGUF specification's rule: ggml additionally
/// requires them to be packed in info order).</para>
/// <para><see cref="Open"/> memory-maps the file; <see cref="GetBytes(string)"/> returns spans into the mapping that must not be used
/// after <see cref="Dispose"/>. Reads may run concurrently; <see cref="Dispose"/> must not run concurrently with them.</para>
/// <para><see cref="GgufQuantized"/> turns MXFP4 and NVFP4 tensors into <see cref="QuantizedTensor"/>s.</para>
/// </remarks>
public sealed class GgufFile : IDisposable
{
    /// <summary>The metadata key that sets the data alignment.</summary>
    public const string AlignmentKey = "general.alignment";

    /// <summary>The alignment when the file does not set one.</summary>
    public const int DefaultAlignment = 32;

    /// <summary>The longest tensor name ggml accepts, in UTF-8 bytes (GGML_MAX_NAME − 1).</summary>
    public const int MaxNameBytes = 63;

    private const uint Magic = 0x46554747; // "GGUF" read as a little-endian uint32
    private const int MaxDimensions = 4;

    private readonly FileBytes _file;
    private readonly long _dataStart;
    private readonly Dictionary<string, GgufTensorInfo> _byName;

    private GgufFile(FileBytes file, int version, int alignment, long dataStart, OrderedDictionary<string, GgufValue> metadata, List<GgufTensorInfo> tensors)
    {
        _file = file;
        Version = version;
        Alignment = alignment;
        _dataStart = dataStart;
        Metadata = new ReadOnlyDictionary<string, GgufValue>(metadata);
        Tensors = tensors.AsReadOnly();
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The format version (2 or 3).</summary>
    public int Version { get; }

    /// <summary>The data alignment in bytes.</summary>
    public int Alignment { get; }

    /// <summary>The metadata, in file order.</summary>
    public IReadOnlyDictionary<string, GgufValue> Metadata { get; }

    /// <summary>The tensors, in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>Opens and validates a file, memory-mapping it read-only.</summary>
    /// <param name="path">The file's path.</param>
    /// <returns>The open file; dispose it to unmap.</returns>
    /// <exception cref="GgufFormatException">The file is malformed; the message names the file, the tensor and the problem.</exception>
    /// <exception cref="IOException">The file cannot be opened or mapped.</exception>
    public static GgufFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return FileBytes.Open(path, Parse);
    }

    /// <summary>Parses and validates a file held in memory. The array is used in place, not copied.</summary>
    /// <param name="bytes">The whole file.</param>
    /// <returns>The parsed file.</returns>
    /// <exception cref="GgufFormatException">The data is malformed.</exception>
    public static GgufFile FromBytes(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return Parse(FileBytes.Of(bytes));
    }

    /// <summary>Whether the file has a tensor of this name (ordinal comparison).</summary>
    /// <exception cref="ObjectDisposedException">The file has been disposed.</exception>
    public bool Contains(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        ThrowIfDisposed();
        return _byName.ContainsKey(name);
    }

    /// <summary>A tensor's info.</summary>
    /// <exception cref="KeyNotFoundException">There is no such tensor.</exception>
    /// <exception cref="ObjectDisposedException">The file has been disposed.</exception>
    public GgufTensorInfo GetInfo(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        ThrowIfDisposed();
        return _byName.TryGetValue(name, out var info)
            ? info
            : throw new KeyNotFoundException($"No tensor named '{name}' in {Where}; it has {Tensors.Count} tensors" +
                                             (Tensors.Count > 0 ? $", for example '{Tensors[0].Name}'." : "."));
    }

    /// <summary>A tensor's bytes, without copying (for a mapped file: a span into the mapping).</summary>
    /// <exception cref="KeyNotFoundException">There is no such tensor.</exception>
    /// <exception cref="InvalidOperationException">The tensor is 2 GiB or larger; read it in parts with <see cref="GetBytes(string, long, int)"/>.</exception>
    /// <exception cref="ObjectDisposedException">The file has been disposed.</exception>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var info = GetInfo(name);
        if (info.ByteLength > int.MaxValue)
            throw new InvalidOperationException($"Tensor '{name}' is {info.ByteLength} bytes, more than a span can hold; read it in parts.");
        return _file.Slice(_dataStart + info.DataOffset, (int)info.ByteLength);
    }

    /// <summary>Bytes [offset, offset + length) of a tensor, without copying.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside the tensor.</exception>
    /// <exception cref="KeyNotFoundException">There is no such tensor.</exception>
    /// <exception cref="ObjectDisposedException">The file has been disposed.</exception>
    public ReadOnlySpan<byte> GetBytes(string name, long offset, int length)
    {
        var info = GetInfo(name);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(offset + length, info.ByteLength, nameof(length));
        return _file.Slice(_dataStart + info.DataOffset + offset, length);
    }

    /// <summary>Unmaps the file. Idempotent; afterwards members throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose() => _file.Dispose();

    private string Where => _file.Path is null ? "the GGUF data (in memory)" : $"GGUF file '{_file.Path}'";

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_file.IsDisposed, this);

    // ------------------------------------------------------------------ parsing

    private static GgufFile Parse(FileBytes file)
    {
        var header = new Cursor(file.Slice(0, (int)Math.Min(file.Length, int.MaxValue)), file.Path);
        if (header.Remaining < 4 || BinaryPrimitives.ReadUInt32LittleEndian(header.Take(4, "magic")) != Magic)
            throw header.Malformed("the file does not start with the magic 'GGUF'.");
        uint version = header.U32("version");
        if ((version & 0xFFFF) == 0 && version != 0)
            throw header.Malformed($"version 0x{version:X8} looks byte-swapped: the file was written on a big-endian host.");
        if (version is not (2 or 3))
            throw header.Malformed($"version {version} is not supported (GGUF 2 and 3 are).");
        long tensorCount = header.Count("tensor count", minimumBytesEach: 8 + 4 + 4 + 8);
        long kvCount = header.Count("metadata count", minimumBytesEach: 8 + 1 + 4);

        var metadata = new OrderedDictionary<string, GgufValue>(StringComparer.Ordinal);
        for (long i = 0; i < kvCount; i++)
        {
            string key = header.String("metadata key");
            if (key.Length == 0)
                throw header.Malformed($"metadata entry {i} has an empty key.");
            var type = header.ValueType($"metadata '{key}'");
            var value = type == GgufValueType.Array ? header.Array(key) : new GgufValue(type, header.Scalar(type, key));
            if (!metadata.TryAdd(key, value))
                throw header.Malformed($"metadata key '{key}' appears twice.");
        }

        int alignment = DefaultAlignment;
        if (metadata.TryGetValue(AlignmentKey, out var a))
        {
            if (a.Type != GgufValueType.UInt32)
                throw header.Malformed($"'{AlignmentKey}' is {a.Type}, not UInt32.");
            uint value = (uint)a.Value;
            if (value == 0 || (value & (value - 1)) != 0 || value > 1 << 30)
                throw header.Malformed($"'{AlignmentKey}' is {value}, not a power of 2.");
            alignment = (int)value;
        }

        var tensors = new List<GgufTensorInfo>((int)tensorCount);
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (long i = 0; i < tensorCount; i++)
        {
            string name = header.String("tensor name");
            if (Encoding.UTF8.GetByteCount(name) > MaxNameBytes)
                throw header.Malformed($"tensor name '{name}' is longer than {MaxNameBytes} bytes.");
            if (!names.Add(name))
                throw header.Malformed($"tensor '{name}' appears twice.");
            uint dimensionCount = header.U32($"tensor '{name}' dimension count");
            if (dimensionCount > MaxDimensions)
                throw new GgufFormatException($"{dimensionCount} dimensions, more than {MaxDimensions}.", file.Path, name);
            var dimensions = new long[dimensionCount];
            long elements = 1;
            for (int d = 0; d < dimensionCount; d++)
            {
                dimensions[d] = header.I64($"tensor '{name}' dimension {d}");
                if (dimensions[d] < 0)
                    throw new GgufFormatException($"dimension {d} is negative ({dimensions[d]}).", file.Path, name);
                elements = dimensions[d] == 0 || elements <= long.MaxValue / dimensions[d]
                    ? elements * dimensions[d]
                    : throw new GgufFormatException("its element count overflows 64 bits.", file.Path, name);
            }
            int typeId = header.I32($"tensor '{name}' type");
            var type = (GgufTensorType)typeId;
            var (blockSize, typeSize) = GgufTensorInfo.Traits(type);
            if (blockSize == 0)
                throw new GgufFormatException($"ggml type {typeId} is not a type ggml defines.", file.Path, name);
            long rowLength = dimensionCount > 0 ? dimensions[0] : 1;
            if (rowLength % blockSize != 0)
                throw new GgufFormatException($"its rows of {rowLength} values are not a multiple of {type}'s block of {blockSize}.", file.Path, name);
            long offset = (long)Math.Min(header.U64($"tensor '{name}' offset"), long.MaxValue);
            if (offset % alignment != 0)
                throw new GgufFormatException($"data offset {offset} is not a multiple of the alignment {alignment}.", file.Path, name);
            tensors.Add(new GgufTensorInfo(name, dimensions, type, offset, elements / blockSize * typeSize));
        }

        long dataStart = tensorCount > 0 ? (header.Position + alignment - 1) / alignment * alignment : header.Position;
        long dataLength = file.Length - dataStart;
        GgufTensorInfo? previous = null;
        foreach (var t in tensors.OrderBy(t => t.DataOffset).ThenBy(t => t.ByteLength))
        {
            if (t.DataOffset > dataLength || t.ByteLength > dataLength - t.DataOffset)
                throw new GgufFormatException($"its {t.ByteLength} bytes at data offset {t.DataOffset} run past the end of the file " +
                                              $"({dataLength} bytes of data).", file.Path, t.Name);
            if (previous is not null && t.DataOffset < previous.DataOffset + previous.ByteLength && t.ByteLength > 0)
                throw new GgufFormatException($"its bytes overlap tensor '{previous.Name}'.", file.Path, t.Name);
            if (t.ByteLength > 0)
                previous = t;
        }
        return new GgufFile(file, (int)version, alignment, dataStart, metadata, tensors);
    }

    /// <summary>A bounds-checked little-endian reader over the header.</summary>
    private ref struct Cursor
    {
        private readonly ReadOnlySpan<byte> _data;
        private readonly string? _path;
        private int _position;

        public Cursor(ReadOnlySpan<byte> data, string? path)
        {
            _data = data;
            _path = path;
            _position = 0;
        }

        public readonly int Position => _position;

        public readonly int Remaining => _data.Length - _position;

        public readonly GgufFormatException Malformed(string problem) => new(problem, _path, null);

        public ReadOnlySpan<byte> Take(long count, string what)
        {
            if (count < 0 || count > Remaining)
                throw Malformed($"the header ends inside the {what} (needs {count} bytes at offset {_position}, {Remaining} left).");
            var span = _data.Slice(_position, (int)count);
            _position += (int)count;
            return span;
        }

        public uint U32(string what) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what));

        public int I32(string what) => BinaryPrimitives.ReadInt32LittleEndian(Take(4, what));

        public ulong U64(string what) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));

        public long I64(string what) => BinaryPrimitives.ReadInt64LittleEndian(Take(8, what));

        /// <summary>A count of records each at least <paramref name="minimumBytesEach"/> long: more than the rest of the header can hold is malformed.</summary>
        public long Count(string what, int minimumBytesEach)
        {
            long count = I64(what);
            if (count < 0 || count > Remaining / minimumBytesEach)
                throw Malformed($"the {what} {count} is impossible for a header with {Remaining} bytes left.");
            return count;
        }

        public string String(string what)
        {
            ulong length = U64(what + " length");
            if (length > (ulong)Remaining)
                throw Malformed($"the {what} claims {length} bytes at offset {_position}, but only {Remaining} are left.");
            return Encoding.UTF8.GetString(Take((long)length, what));
        }

        public GgufValueType ValueType(string what)
        {
            int type = I32(what + " type");
            return type is >= 0 and <= (int)GgufValueType.Float64
                ? (GgufValueType)type
                : throw Malformed($"{what} has the unknown value type {type}.");
        }

        public object Scalar(GgufValueType type, string key) => type switch
        {
            GgufValueType.UInt8 => Take(1, key)[0],
            GgufValueType.Int8 => (sbyte)Take(1, key)[0],
            GgufValueType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, key)),
            GgufValueType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(Take(2, key)),
            GgufValueType.UInt32 => U32(key),
            GgufValueType.Int32 => I32(key),
            GgufValueType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(Take(4, key)),
            GgufValueType.Bool => Take(1, key)[0] != 0,
            GgufValueType.String => String($"metadata '{key}' string"),
            GgufValueType.UInt64 => U64(key),
            GgufValueType.Int64 => I64(key),
            GgufValueType.Float64 => BinaryPrimitives.ReadDoubleLittleEndian(Take(8, key)),
            _ => throw Malformed($"metadata '{key}': arrays of arrays are not allowed."),
        };

        public GgufValue Array(string key)
        {
            var elementType = ValueType($"metadata '{key}' element");
            if (elementType == GgufValueType.Array)
                throw Malformed($"metadata '{key}': arrays of arrays are not allowed.");
            ulong count = U64($"metadata '{key}' element count");
            int minimumBytes = elementType switch
            {
                GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
                GgufValueType.UInt16 or GgufValueType.Int16 => 2,
                GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
                _ => 8, // 64-bit values, and strings (their length prefix)
            };
            if (count > (ulong)(Remaining / minimumBytes))
                throw Malformed($"metadata '{key}' claims {count} elements, more than the {Remaining} bytes left can hold.");
            var values = elementType switch
            {
                GgufValueType.UInt8 => (System.Array)new byte[count],
                GgufValueType.Int8 => new sbyte[count],
                GgufValueType.UInt16 => new ushort[count],
                GgufValueType.Int16 => new short[count],
                GgufValueType.UInt32 => new uint[count],
                GgufValueType.Int32 => new int[count],
                GgufValueType.Float32 => new float[count],
                GgufValueType.Bool => new bool[count],
                GgufValueType.String => new string[count],
                GgufValueType.UInt64 => new ulong[count],
                GgufValueType.Int64 => new long[count],
                _ => new double[count],
            };
            for (int i = 0; i < (int)count; i++)
                values.SetValue(Scalar(elementType, key), i);
            return new GgufValue(GgufValueType.Array, values, elementType);
        }
    }
}
