using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Microscale.IO;

/// <summary>
/// Builds a safetensors file in memory and writes it out. The output matches the Python reference writer byte for
/// byte: the header is compact JSON with <c>"__metadata__"</c> first (when there is any metadata), then the tensors
/// sorted by name (by Unicode code point), each as <c>{"dtype":..,"shape":[..],"data_offsets":[b,e]}</c>; strings are
/// escaped as Python's <c>json.dumps</c> does (non-ASCII as <c>\uXXXX</c>); the header is padded with spaces to a
/// multiple of 8 bytes; the data follows contiguously in the same order, without alignment padding.
/// </summary>
/// <remarks>Not thread-safe. <see cref="Add(string, SafeTensorsDType, ReadOnlySpan{long}, ReadOnlySpan{byte})"/> and
/// <see cref="Add{T}"/> copy their data, so the caller's buffers may be reused at once.</remarks>
public sealed class SafeTensorsWriter
{
    private const string MetadataKey = "__metadata__";
    private const int ChunkBytes = 1 << 20;
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly OrderedDictionary<string, string> _metadata = new(StringComparer.Ordinal);

    /// <summary>Creates an empty writer.</summary>
    /// <exception cref="PlatformNotSupportedException">The host is big-endian.</exception>
    public SafeTensorsWriter() => SafeTensorsDTypeExtensions.EnsureLittleEndian();

    /// <summary>The header's <c>"__metadata__"</c> entries, written in insertion order. Left empty, no
    /// <c>"__metadata__"</c> key is written.</summary>
    public IDictionary<string, string> Metadata => _metadata;

    /// <summary>Adds a tensor from its raw little-endian bytes (copied).</summary>
    /// <param name="name">A unique name; not <c>"__metadata__"</c>.</param>
    /// <param name="dtype">The element type.</param>
    /// <param name="shape">The dimensions, outermost first; empty for a scalar. Dimensions may be 0.</param>
    /// <param name="data">Exactly product(<paramref name="shape"/>) × element size bytes.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is reserved, already added or not valid UTF-16;
    /// or the length of <paramref name="data"/> does not match <paramref name="shape"/>; or the shape's size overflows.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dtype"/> is undefined or a dimension is negative.</exception>
    public void Add(string name, SafeTensorsDType dtype, ReadOnlySpan<long> shape, ReadOnlySpan<byte> data)
    {
        byte[] nameUtf8 = ValidateName(name);
        if (!Enum.IsDefined(dtype))
            throw new ArgumentOutOfRangeException(nameof(dtype), dtype, $"Not a defined {nameof(SafeTensorsDType)}.");
        long count = ElementCount(shape);
        long expected = ByteCount(count, dtype, shape);
        if (data.Length != expected)
            throw new ArgumentException(
                $"Tensor '{name}': shape {Format(shape)} of {dtype} needs {expected} bytes ({count} x {dtype.ElementSize()}), but data has {data.Length}.",
                nameof(data));
        _entries.Add(name, new Entry(name, nameUtf8, dtype, shape.ToArray(), data.ToArray(), data.Length));
    }

    /// <summary>Adds a tensor from typed elements (copied); the dtype follows from <typeparamref name="T"/>.</summary>
    /// <typeparam name="T"><see cref="double"/> F64, <see cref="float"/> F32, <see cref="Half"/> F16, <see cref="BFloat16"/> BF16,
    /// <see cref="int"/> I32, <see cref="long"/> I64, <see cref="byte"/> U8, <see cref="ushort"/> U16,
    /// <see cref="Float8E4M3"/> F8_E4M3, <see cref="Float8E5M2"/> F8_E5M2. For other dtypes with the same .NET type
    /// (BF16 held as <see cref="ushort"/>, FP8 held as <see cref="byte"/>) use the overload that takes a dtype.</typeparam>
    /// <param name="name">A unique name; not <c>"__metadata__"</c>.</param>
    /// <param name="data">Exactly product(<paramref name="shape"/>) elements, row-major.</param>
    /// <param name="shape">The dimensions, outermost first; none for a scalar.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> has no dtype; <paramref name="name"/> is reserved,
    /// already added or not valid UTF-16; the length of <paramref name="data"/> does not match <paramref name="shape"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A dimension is negative.</exception>
    public void Add<T>(string name, ReadOnlySpan<T> data, params ReadOnlySpan<long> shape) where T : unmanaged
    {
        byte[] nameUtf8 = ValidateName(name);
        if (!SafeTensorsDTypeExtensions.TryInfer<T>(out var inferred))
            throw new ArgumentException(
                $"Tensor '{name}': element type {typeof(T).FullName} has no safetensors dtype; use the overload that takes a {nameof(SafeTensorsDType)} and bytes.",
                nameof(data));
        var dtype = inferred.Value;
        long count = ElementCount(shape);
        long byteLength = ByteCount(count, dtype, shape);
        if (data.Length != count)
            throw new ArgumentException(
                $"Tensor '{name}': shape {Format(shape)} needs {count} elements, but data has {data.Length}.", nameof(data));
        _entries.Add(name, new Entry(name, nameUtf8, dtype, shape.ToArray(), data.ToArray(), byteLength));
    }

    /// <summary>Writes the file to <paramref name="path"/>: first to a temporary file in the same folder, which then
    /// replaces any existing file, so a failed write leaves no partial file behind.</summary>
    /// <param name="path">The destination.</param>
    /// <exception cref="ArgumentException"><paramref name="path"/> is null or empty, or a metadata value is null.</exception>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' has no folder.", nameof(path));
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                WriteTo(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(temp);
            }
            catch (IOException)
            {
                // best effort: the original error matters more
            }
            catch (UnauthorizedAccessException)
            {
            }
            throw;
        }
    }

    /// <summary>Writes the file to a stream, starting at its current position.</summary>
    /// <param name="stream">A writable stream; it is not closed.</param>
    /// <exception cref="ArgumentNullException"><paramref name="stream"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="stream"/> is not writable, or a metadata value is null.</exception>
    public void WriteTo(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite)
            throw new ArgumentException("The stream is not writable.", nameof(stream));
        var (header, entries) = BuildHeader();
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        stream.Write(prefix);
        stream.Write(header);
        foreach (var e in entries)
            e.WriteData(stream);
    }

    /// <summary>The whole file as a new array.</summary>
    /// <returns>The file's bytes.</returns>
    /// <exception cref="InvalidOperationException">The file would be larger than an array can hold.</exception>
    /// <exception cref="ArgumentException">A metadata value is null.</exception>
    public byte[] ToArray()
    {
        var (header, entries) = BuildHeader();
        long total = 8 + header.Length;
        foreach (var e in entries)
            total = checked(total + e.ByteLength);
        if (total > Array.MaxLength)
            throw new InvalidOperationException($"The file would be {total} bytes, more than an array can hold; use {nameof(Save)} or {nameof(WriteTo)}.");
        var result = new byte[total];
        using var stream = new MemoryStream(result, writable: true);
        WriteTo(stream);
        return result;
    }

    // ------------------------------------------------------------------ header

    private (byte[] Header, Entry[] Entries) BuildHeader()
    {
        var entries = _entries.Values.ToArray();
        Array.Sort(entries, static (a, b) => a.NameUtf8.AsSpan().SequenceCompareTo(b.NameUtf8)); // = code point order

        var json = new StringBuilder(64 + 96 * entries.Length);
        json.Append('{');
        bool first = true;
        if (_metadata.Count > 0)
        {
            AppendString(json, MetadataKey);
            json.Append(":{");
            bool firstMeta = true;
            foreach (var (key, value) in _metadata)
            {
                if (value is null)
                    throw new ArgumentException($"Metadata value of '{key}' is null.", nameof(Metadata));
                if (!firstMeta)
                    json.Append(',');
                firstMeta = false;
                AppendString(json, key);
                json.Append(':');
                AppendString(json, value);
            }
            json.Append('}');
            first = false;
        }

        long offset = 0;
        foreach (var e in entries)
        {
            if (!first)
                json.Append(',');
            first = false;
            AppendString(json, e.Name);
            json.Append(":{\"dtype\":");
            AppendString(json, e.DType.ToFormatString());
            json.Append(",\"shape\":[");
            for (int i = 0; i < e.Shape.Length; i++)
            {
                if (i > 0)
                    json.Append(',');
                json.Append(e.Shape[i].ToString(CultureInfo.InvariantCulture));
            }
            long end = checked(offset + e.ByteLength);
            json.Append("],\"data_offsets\":[")
                .Append(offset.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(end.ToString(CultureInfo.InvariantCulture)).Append("]}");
            offset = end;
        }
        json.Append('}');
        int padded = (json.Length + 7) / 8 * 8;
        json.Append(' ', padded - json.Length);
        return (Encoding.ASCII.GetBytes(json.ToString()), entries); // AppendString leaves only ASCII
    }

    /// <summary>A JSON string as Python's <c>json.dumps</c> (ensure_ascii) writes it: <c>\"</c>, <c>\\</c>,
    /// <c>\b \f \n \r \t</c>, and every other UTF-16 unit outside ' '..'~' as lowercase <c>\uxxxx</c>.</summary>
    private static void AppendString(StringBuilder json, string s)
    {
        json.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': json.Append("\\\""); break;
                case '\\': json.Append("\\\\"); break;
                case '\b': json.Append("\\b"); break;
                case '\f': json.Append("\\f"); break;
                case '\n': json.Append("\\n"); break;
                case '\r': json.Append("\\r"); break;
                case '\t': json.Append("\\t"); break;
                default:
                    if (c is >= ' ' and <= '~')
                        json.Append(c);
                    else
                        json.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    break;
            }
        }
        json.Append('"');
    }

    // ------------------------------------------------------------------ validation

    private byte[] ValidateName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name == MetadataKey)
            throw new ArgumentException($"'{MetadataKey}' is reserved for the header's metadata and cannot name a tensor.", nameof(name));
        if (_entries.ContainsKey(name))
            throw new ArgumentException($"A tensor named '{name}' has already been added.", nameof(name));
        try
        {
            return StrictUtf8.GetBytes(name);
        }
        catch (EncoderFallbackException ex)
        {
            throw new ArgumentException($"Tensor name '{name}' is not valid UTF-16 (it has a lone surrogate).", nameof(name), ex);
        }
    }

    private static long ElementCount(ReadOnlySpan<long> shape)
    {
        try
        {
            return SafeTensorsDTypeExtensions.ElementCountOf(shape)
                ?? throw new ArgumentOutOfRangeException(nameof(shape), $"Shape {Format(shape)} has a negative dimension.");
        }
        catch (OverflowException ex)
        {
            throw new ArgumentException($"The size of shape {Format(shape)} overflows a 64-bit integer.", nameof(shape), ex);
        }
    }

    private static long ByteCount(long count, SafeTensorsDType dtype, ReadOnlySpan<long> shape)
    {
        try
        {
            return checked(count * dtype.ElementSize());
        }
        catch (OverflowException ex)
        {
            throw new ArgumentException($"The byte size of shape {Format(shape)} of {dtype} overflows a 64-bit integer.", nameof(shape), ex);
        }
    }

    private static string Format(ReadOnlySpan<long> shape) => $"[{string.Join(", ", shape.ToArray())}]";

    /// <summary>A tensor held by the writer; <see cref="Data"/> is a private copy (a byte[] or a T[]).</summary>
    private sealed record Entry(string Name, byte[] NameUtf8, SafeTensorsDType DType, long[] Shape, Array Data, long ByteLength)
    {
        public void WriteData(Stream stream)
        {
            ref byte start = ref MemoryMarshal.GetArrayDataReference(Data);
            for (long done = 0; done < ByteLength; done += ChunkBytes)
            {
                int n = (int)Math.Min(ChunkBytes, ByteLength - done);
                stream.Write(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.AddByteOffset(ref start, (nint)done), n));
            }
        }
    }
}
