using System.Buffers.Binary;
using System.Collections.ObjectModel;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Microscale.IO;

/// <summary>
/// A read-only safetensors file: an 8-byte little-endian header length N, N bytes of UTF-8 JSON describing the tensors
/// (plus optional string-to-string <c>"__metadata__"</c>), then the data region.
/// </summary>
/// <remarks>
/// <para>The header is validated strictly when the file is opened (see <see cref="SafeTensorsFormatException"/>): every
/// entry must have a known dtype, a non-negative shape and two integer offsets whose span equals the shape's size, lie
/// inside the data region and not overlap another tensor's bytes. Gaps between tensors and after the last one are
/// allowed; unknown fields inside a tensor entry are ignored (as the reference implementation does).</para>
/// <para><see cref="Open"/> memory-maps the file read-only, so tensor bytes are not copied until asked for.
/// <see cref="GetBytes"/> returns a span over the mapping: it must not be used after <see cref="Dispose"/>.</para>
/// <para>Reads may run concurrently; <see cref="Dispose"/> must not run concurrently with them.</para>
/// </remarks>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    /// <summary>The largest header accepted, in bytes (the reference implementation's limit).</summary>
    public const long MaxHeaderLength = 100_000_000;

    private const string MetadataKey = "__metadata__";
    private const int ChunkBytes = 1 << 30; // spans are int-indexed: larger tensors are copied in chunks of this size

    private readonly string? _path;
    private readonly long _dataStart;
    private readonly SafeTensorInfo[] _tensors;
    private readonly ReadOnlyCollection<SafeTensorInfo> _tensorsView;
    private readonly Dictionary<string, SafeTensorInfo> _byName;
    private readonly ReadOnlyDictionary<string, string> _metadata;

    private readonly FileBytes _file;

    private SafeTensorsFile(FileBytes file, long dataStart, List<SafeTensorInfo> tensors, OrderedDictionary<string, string> metadata)
    {
        _path = file.Path;
        _file = file;
        _dataStart = dataStart;
        _tensors = [.. tensors];
        _tensorsView = Array.AsReadOnly(_tensors);
        _byName = new Dictionary<string, SafeTensorInfo>(_tensors.Length, StringComparer.Ordinal);
        foreach (var t in _tensors)
            _byName.Add(t.Name, t);
        _metadata = new ReadOnlyDictionary<string, string>(metadata);
    }

    /// <summary>Opens and validates a file, memory-mapping it read-only (the tensor data is not read until asked for).</summary>
    /// <param name="path">The file's path.</param>
    /// <returns>The open file; dispose it to unmap.</returns>
    /// <exception cref="SafeTensorsFormatException">The file is malformed; the message names the file, the tensor and the problem.</exception>
    /// <exception cref="IOException">The file cannot be opened or mapped.</exception>
    /// <exception cref="PlatformNotSupportedException">The host is big-endian.</exception>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        SafeTensorsDTypeExtensions.EnsureLittleEndian();

        return FileBytes.Open(path, Parse);
    }

    /// <summary>Parses and validates a file held in memory. The array is used in place, not copied: do not modify it
    /// while the returned object is in use.</summary>
    /// <param name="bytes">The whole file.</param>
    /// <returns>The parsed file.</returns>
    /// <exception cref="SafeTensorsFormatException">The data is malformed; the message names the tensor and the problem.</exception>
    /// <exception cref="PlatformNotSupportedException">The host is big-endian.</exception>
    public static SafeTensorsFile FromBytes(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        SafeTensorsDTypeExtensions.EnsureLittleEndian();
        return Parse(FileBytes.Of(bytes));
    }

    private static SafeTensorsFile Parse(FileBytes file)
    {
        if (file.Length < 8)
            throw new SafeTensorsFormatException(
                $"the {(file.Path is null ? "data" : "file")} is {file.Length} bytes long, shorter than the 8-byte header length prefix.", file.Path, null);
        long headerLength = ReadHeaderLength(file.Slice(0, 8), file.Length, file.Path);
        var (tensors, metadata) = ParseHeader(file.Slice(8, (int)headerLength), file.Length - 8 - headerLength, file.Path);
        return new SafeTensorsFile(file, 8 + headerLength, tensors, metadata);
    }

    /// <summary>The header's <c>"__metadata__"</c> entries, in file order; empty when there are none.</summary>
    /// <exception cref="ObjectDisposedException">The file has been disposed.</exception>
    public IReadOnlyDictionary<string, string> Metadata
    {
        get
        {
            ThrowIfDisposed();
            return _metadata;
        }
    }

    /// <summary>Every tensor, in order of data offset (ties: by length, then by name).</summary>
    /// <exception cref="ObjectDisposedException">The file has been disposed.</exception>
    public IReadOnlyList<SafeTensorInfo> Tensors
    {
        get
        {
            ThrowIfDisposed();
            return _tensorsView;
        }
    }

    /// <summary>Whether the file has a tensor of this name (ordinal comparison).</summary>
    /// <param name="name">The tensor's name.</param>
    /// <returns>True when it exists.</returns>
    /// <exception cref="ObjectDisposedException">The file has been disposed.</exception>
    public bool Contains(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        ThrowIfDisposed();
        return _byName.ContainsKey(name);
    }

    /// <summary>The header entry of a tensor.</summary>
    /// <param name="name">The tensor's name.</param>
    /// <returns>Its dtype, shape and location.</returns>
    /// <exception cref="KeyNotFoundException">There is no such tensor; the message lists some that exist.</exception>
    /// <exception cref="ObjectDisposedException">The file has been disposed.</exception>
    public SafeTensorInfo GetInfo(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        ThrowIfDisposed();
        if (_byName.TryGetValue(name, out var info))
            return info;
        throw new KeyNotFoundException(NotFoundMessage(name));
    }

    /// <summary>A tensor's raw little-endian bytes, without copying. For a mapped file the span points into the
    /// mapping: do not use it after <see cref="Dispose"/>.</summary>
    /// <param name="name">The tensor's name.</param>
    /// <returns>Exactly <see cref="SafeTensorInfo.ByteLength"/> bytes. They are not necessarily aligned for their element type.</returns>
    /// <exception cref="KeyNotFoundException">There is no such tensor.</exception>
    /// <exception cref="InvalidOperationException">The tensor is 2 GiB or larger, more than a span can hold; use <see cref="Read{T}"/>.</exception>
    /// <exception cref="ObjectDisposedException">The file has been disposed.</exception>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var info = GetInfo(name);
        if (info.ByteLength > int.MaxValue)
            throw new InvalidOperationException(
                $"Tensor '{name}' is {info.ByteLength} bytes, more than a span can hold; use {nameof(Read)}<T> to copy it into an array.");
        return Slice(_dataStart + info.DataOffset, (int)info.ByteLength);
    }

    /// <summary>Copies a tensor into a new array of its element type.</summary>
    /// <typeparam name="T">The element type, which must match the dtype: F64 <see cref="double"/>, F32 <see cref="float"/>,
    /// F16 <see cref="Half"/>, BF16 <see cref="BFloat16"/> or <see cref="ushort"/>, I32 <see cref="int"/>, I64 <see cref="long"/>,
    /// U8 <see cref="byte"/>, U16 <see cref="ushort"/>, F8_E4M3 <see cref="byte"/> or <see cref="Float8E4M3"/>,
    /// F8_E5M2 <see cref="byte"/> or <see cref="Float8E5M2"/>.</typeparam>
    /// <param name="name">The tensor's name.</param>
    /// <returns>The elements in row-major order (a scalar gives one element).</returns>
    /// <exception cref="KeyNotFoundException">There is no such tensor.</exception>
    /// <exception cref="InvalidOperationException"><typeparamref name="T"/> does not match the tensor's dtype, or the tensor has more elements than an array can hold.</exception>
    /// <exception cref="ObjectDisposedException">The file has been disposed.</exception>
    public T[] Read<T>(string name) where T : unmanaged
    {
        var info = GetInfo(name);
        if (!SafeTensorsDTypeExtensions.IsCompatible<T>(info.DType) || sizeof(T) != info.DType.ElementSize())
            throw new InvalidOperationException(
                $"Tensor '{name}' has dtype {info.DType}, which cannot be read as {typeof(T).FullName}; " +
                $"read it as {SafeTensorsDTypeExtensions.CompatibleTypeNames(info.DType)}" +
                (info.DType is SafeTensorsDType.F32 or SafeTensorsDType.F16 or SafeTensorsDType.BF16 or SafeTensorsDType.F64
                    ? $", or convert it with {nameof(ReadAsSingle)}." : "."));
        var result = AllocateFor<T>(info);
        if (info.ByteLength <= int.MaxValue)
        {
            Slice(_dataStart + info.DataOffset, (int)info.ByteLength).CopyTo(MemoryMarshal.AsBytes(result.AsSpan()));
        }
        else
        {
            // More than 2 GiB: copy elementwise chunks, each within int range.
            int perChunk = ChunkBytes / sizeof(T);
            for (long first = 0; first < result.LongLength; first += perChunk)
            {
                int n = (int)Math.Min(perChunk, result.LongLength - first);
                var dest = MemoryMarshal.AsBytes(result.AsSpan((int)first, n));
                Slice(_dataStart + info.DataOffset + first * sizeof(T), dest.Length).CopyTo(dest);
            }
        }
        return result;
    }

    /// <summary>Reads a floating-point tensor converted to <see cref="float"/>: F32 as is, F16 and BF16 exactly,
    /// F64 rounded to nearest (ties to even).</summary>
    /// <param name="name">The tensor's name.</param>
    /// <returns>The elements in row-major order.</returns>
    /// <exception cref="KeyNotFoundException">There is no such tensor.</exception>
    /// <exception cref="InvalidOperationException">The dtype is not F32, F16, BF16 or F64, or the tensor has more elements than an array can hold.</exception>
    /// <exception cref="ObjectDisposedException">The file has been disposed.</exception>
    public float[] ReadAsSingle(string name)
    {
        var info = GetInfo(name);
        switch (info.DType)
        {
            case SafeTensorsDType.F32:
                return Read<float>(name);
            case SafeTensorsDType.F16:
            case SafeTensorsDType.BF16:
            case SafeTensorsDType.F64:
                break;
            default:
                throw new InvalidOperationException(
                    $"Tensor '{name}' has dtype {info.DType}, which {nameof(ReadAsSingle)} does not convert (it converts F32, F16, BF16 and F64); " +
                    $"use {nameof(Read)}<{SafeTensorsDTypeExtensions.CompatibleTypeNames(info.DType).Split(' ')[0]}> and decode it.");
        }

        var result = AllocateFor<float>(info);
        int size = info.DType.ElementSize();
        int perChunk = ChunkBytes / size;
        for (long first = 0; first < result.LongLength; first += perChunk)
        {
            int n = (int)Math.Min(perChunk, result.LongLength - first);
            var src = Slice(_dataStart + info.DataOffset + first * size, n * size);
            var dst = result.AsSpan((int)first, n);
            switch (info.DType)
            {
                case SafeTensorsDType.F16:
                    for (int i = 0; i < dst.Length; i++)
                        dst[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(src.Slice(2 * i, 2));
                    break;
                case SafeTensorsDType.BF16:
                    for (int i = 0; i < dst.Length; i++)
                        dst[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src.Slice(2 * i, 2)) << 16);
                    break;
                default: // F64
                    for (int i = 0; i < dst.Length; i++)
                        dst[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(src.Slice(8 * i, 8));
                    break;
            }
        }
        return result;
    }

    /// <summary>Unmaps the file. Idempotent; afterwards every member throws <see cref="ObjectDisposedException"/>, and
    /// spans returned by <see cref="GetBytes"/> must no longer be used.</summary>
    public void Dispose()
    {
        _file.Dispose();
    }

    // ------------------------------------------------------------------ data access

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_file.IsDisposed, this);

    private ReadOnlySpan<byte> Slice(long absoluteOffset, int length)
    {
        ThrowIfDisposed();
        return _file.Slice(absoluteOffset, length);
    }

    private T[] AllocateFor<T>(SafeTensorInfo info) where T : unmanaged
    {
        if (info.ElementCount > Array.MaxLength)
            throw new InvalidOperationException(
                $"Tensor '{info.Name}' has {info.ElementCount} elements, more than an array can hold ({Array.MaxLength}).");
        return GC.AllocateUninitializedArray<T>((int)info.ElementCount);
    }

    private string NotFoundMessage(string name)
    {
        string where = _path is null ? "the safetensors data (in memory)" : $"safetensors file '{_path}'";
        if (_tensors.Length == 0)
            return $"No tensor named '{name}' in {where}: it has no tensors.";
        // Suggest the names closest to the one asked for: longest common prefix first, then by name.
        var some = _tensors.Select(t => t.Name)
            .OrderByDescending(n => CommonPrefix(n, name))
            .ThenBy(n => n, StringComparer.Ordinal)
            .Take(5)
            .Select(n => $"'{n}'");
        string more = _tensors.Length > 5 ? ", ..." : "";
        return $"No tensor named '{name}' in {where}; it has {_tensors.Length} tensor(s), e.g. {string.Join(", ", some)}{more}";

        static int CommonPrefix(string a, string b) => a.AsSpan().CommonPrefixLength(b);
    }

    // ------------------------------------------------------------------ parsing

    private static long ReadHeaderLength(ReadOnlySpan<byte> prefix, long fileLength, string? path)
    {
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > MaxHeaderLength)
            throw new SafeTensorsFormatException(
                $"header length {n} is larger than the {MaxHeaderLength}-byte limit (is this a safetensors file?).", path, null);
        if ((long)n > fileLength - 8)
            throw new SafeTensorsFormatException(
                $"header length {n} is larger than the {fileLength - 8} bytes that follow the length prefix (file truncated?).", path, null);
        return (long)n;
    }

    private static (List<SafeTensorInfo> Tensors, OrderedDictionary<string, string> Metadata) ParseHeader(
        ReadOnlySpan<byte> header, long dataLength, string? path)
    {
        if (!Utf8.IsValid(header))
            throw new SafeTensorsFormatException("the header is not valid UTF-8.", path, null);

        var tensors = new List<SafeTensorInfo>();
        var metadata = new OrderedDictionary<string, string>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        bool hasMetadata = false;
        string? current = null; // the tensor being parsed, for the message of a JSON syntax error
        try
        {
            var reader = new Utf8JsonReader(header, new JsonReaderOptions
            {
                CommentHandling = JsonCommentHandling.Disallow,
                AllowTrailingCommas = false,
                AllowMultipleValues = false,
            });
            if (!reader.Read())
                throw Error("the header is empty or blank, expected a JSON object.");
            if (reader.TokenType != JsonTokenType.StartObject)
                throw Error($"the header is a JSON {Describe(reader.TokenType)}, expected a JSON object.");

            while (true)
            {
                current = null;
                Next(ref reader);
                if (reader.TokenType == JsonTokenType.EndObject)
                    break;
                string key = reader.GetString()!;
                if (key == MetadataKey)
                {
                    if (hasMetadata)
                        throw Error($"duplicate key \"{MetadataKey}\" in the header.");
                    hasMetadata = true;
                    ParseMetadata(ref reader, metadata, path);
                    continue;
                }
                if (!seen.Add(key))
                    throw Error($"duplicate key \"{key}\" in the header (the tensor is defined twice).", key);
                current = key;
                tensors.Add(ParseEntry(ref reader, key, dataLength, path));
            }
            current = null;
            if (reader.Read())
                throw Error($"unexpected {Describe(reader.TokenType)} after the header's JSON object.");
        }
        catch (JsonException ex)
        {
            throw new SafeTensorsFormatException($"the header is not valid JSON: {ex.Message}", path, current, ex);
        }
        catch (InvalidOperationException ex) // a string with an escaped lone surrogate, say
        {
            throw new SafeTensorsFormatException($"the header is not valid JSON: {ex.Message}", path, current, ex);
        }

        CheckOverlaps(tensors, path);
        tensors.Sort(static (a, b) =>
        {
            int c = a.DataOffset.CompareTo(b.DataOffset);
            if (c == 0) c = a.ByteLength.CompareTo(b.ByteLength);
            return c != 0 ? c : string.CompareOrdinal(a.Name, b.Name);
        });
        return (tensors, metadata);

        SafeTensorsFormatException Error(string problem, string? tensor = null) => new(problem, path, tensor);
    }

    private static void ParseMetadata(ref Utf8JsonReader reader, OrderedDictionary<string, string> metadata, string? path)
    {
        Next(ref reader);
        if (reader.TokenType != JsonTokenType.StartObject)
            throw new SafeTensorsFormatException(
                $"\"{MetadataKey}\" is a JSON {Describe(reader.TokenType)}, expected an object of strings.", path, null);
        while (true)
        {
            Next(ref reader);
            if (reader.TokenType == JsonTokenType.EndObject)
                return;
            string key = reader.GetString()!;
            Next(ref reader);
            if (reader.TokenType != JsonTokenType.String)
                throw new SafeTensorsFormatException(
                    $"\"{MetadataKey}\" value of \"{key}\" is a JSON {Describe(reader.TokenType)}, expected a string.", path, null);
            if (!metadata.TryAdd(key, reader.GetString()!))
                throw new SafeTensorsFormatException($"duplicate key \"{key}\" in \"{MetadataKey}\".", path, null);
        }
    }

    private static SafeTensorInfo ParseEntry(ref Utf8JsonReader reader, string name, long dataLength, string? path)
    {
        Next(ref reader);
        if (reader.TokenType != JsonTokenType.StartObject)
            throw Error($"the entry is a JSON {Describe(reader.TokenType)}, expected an object with \"dtype\", \"shape\" and \"data_offsets\".");

        string? dtypeText = null;
        List<long>? shape = null;
        List<long>? offsets = null;
        while (true)
        {
            Next(ref reader);
            if (reader.TokenType == JsonTokenType.EndObject)
                break;
            string field = reader.GetString()!;
            switch (field)
            {
                case "dtype":
                    if (dtypeText is not null)
                        throw Error("duplicate key \"dtype\".");
                    Next(ref reader);
                    if (reader.TokenType != JsonTokenType.String)
                        throw Error($"\"dtype\" is a JSON {Describe(reader.TokenType)}, expected a string.");
                    dtypeText = reader.GetString()!;
                    break;
                case "shape":
                    if (shape is not null)
                        throw Error("duplicate key \"shape\".");
                    shape = ReadIntegers(ref reader, "shape", name, path);
                    break;
                case "data_offsets":
                    if (offsets is not null)
                        throw Error("duplicate key \"data_offsets\".");
                    offsets = ReadIntegers(ref reader, "data_offsets", name, path);
                    break;
                default:
                    Next(ref reader);
                    reader.Skip(); // unknown fields are ignored, as the reference implementation does
                    break;
            }
        }

        if (dtypeText is null)
            throw Error("missing \"dtype\".");
        if (shape is null)
            throw Error("missing \"shape\".");
        if (offsets is null)
            throw Error("missing \"data_offsets\".");

        if (!SafeTensorsDTypeExtensions.TryParse(dtypeText, out var dtype))
            throw Error($"unknown dtype \"{dtypeText}\" (supported: {string.Join(", ", Enum.GetNames<SafeTensorsDType>())}).");

        string shapeText = $"[{string.Join(", ", shape)}]";
        foreach (long d in shape)
            if (d < 0)
                throw Error($"negative dimension {d} in shape {shapeText}.");

        if (offsets.Count != 2)
            throw Error($"\"data_offsets\" has {offsets.Count} value(s), expected two integers [begin, end].");
        long begin = offsets[0], end = offsets[1];
        if (begin < 0 || end < 0)
            throw Error($"\"data_offsets\" [{begin}, {end}] has a negative offset.");
        if (begin > end)
            throw Error($"\"data_offsets\" [{begin}, {end}] has begin > end.");

        long expected;
        try
        {
            expected = checked(SafeTensorsDTypeExtensions.ElementCountOf(CollectionsMarshal.AsSpan(shape))!.Value * dtype.ElementSize());
        }
        catch (OverflowException)
        {
            throw Error($"the size of shape {shapeText} x {dtype.ElementSize()} bytes ({dtype}) overflows a 64-bit integer.");
        }
        if (end - begin != expected)
            throw Error($"\"data_offsets\" [{begin}, {end}] span {end - begin} bytes, but shape {shapeText} of {dtype} " +
                        $"({dtype.ElementSize()} bytes per element) needs {expected}.");
        if (end > dataLength)
            throw Error($"\"data_offsets\" [{begin}, {end}] end beyond the data region, which is {dataLength} bytes long (file truncated?).");

        return new SafeTensorInfo(name, dtype, Array.AsReadOnly(shape.ToArray()), begin, end - begin);

        SafeTensorsFormatException Error(string problem) => new(problem, path, name);
    }

    private static List<long> ReadIntegers(ref Utf8JsonReader reader, string field, string name, string? path)
    {
        Next(ref reader);
        if (reader.TokenType != JsonTokenType.StartArray)
            throw new SafeTensorsFormatException(
                $"\"{field}\" is a JSON {Describe(reader.TokenType)}, expected an array of integers.", path, name);
        var values = new List<long>();
        while (true)
        {
            Next(ref reader);
            if (reader.TokenType == JsonTokenType.EndArray)
                return values;
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out long v))
            {
                string text = reader.TokenType switch
                {
                    JsonTokenType.Number => Encoding.UTF8.GetString(reader.ValueSpan),
                    JsonTokenType.String => $"the string \"{Encoding.UTF8.GetString(reader.ValueSpan)}\"",
                    _ => "a JSON " + Describe(reader.TokenType),
                };
                throw new SafeTensorsFormatException(
                    $"\"{field}\"[{values.Count}] is {text}, expected an integer in the 64-bit range.", path, name);
            }
            values.Add(v);
        }
    }

    private static void CheckOverlaps(List<SafeTensorInfo> tensors, string? path)
    {
        // Empty ranges overlap nothing; the others, sorted by start, must each start at or after the previous end.
        var ranges = tensors.Where(t => t.ByteLength > 0).OrderBy(t => t.DataOffset).ToArray();
        for (int i = 1; i < ranges.Length; i++)
        {
            var prev = ranges[i - 1];
            var cur = ranges[i];
            if (cur.DataOffset < prev.DataOffset + prev.ByteLength)
                throw new SafeTensorsFormatException(
                    $"its bytes [{cur.DataOffset}, {cur.DataOffset + cur.ByteLength}) overlap those of tensor '{prev.Name}' " +
                    $"[{prev.DataOffset}, {prev.DataOffset + prev.ByteLength}).", path, cur.Name);
        }
    }

    private static void Next(ref Utf8JsonReader reader)
    {
        if (!reader.Read())
            ThrowTruncatedJson();
    }

    [DoesNotReturn]
    private static void ThrowTruncatedJson() => throw new JsonException("the JSON ends before the header object is closed.");

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "object",
        JsonTokenType.StartArray => "array",
        JsonTokenType.String => "string",
        JsonTokenType.Number => "number",
        JsonTokenType.True or JsonTokenType.False => "boolean",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };
}
