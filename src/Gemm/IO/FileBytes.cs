using System.IO.MemoryMappedFiles;

namespace Microscale.IO;

/// <summary>
/// The bytes of a checkpoint file, either memory-mapped read-only or held in an array, for the file readers
/// (<see cref="SafeTensorsFile"/>, <see cref="GgufFile"/>). Spans handed out point into the mapping: they must not be used
/// after <see cref="Dispose"/>. Reads may run concurrently; <see cref="Dispose"/> must not run concurrently with them.
/// </summary>
internal sealed unsafe class FileBytes : IDisposable
{
    private byte[]? _bytes;
    private MemoryMappedFile? _map;
    private MemoryMappedViewAccessor? _view;
    private byte* _base;
    private int _disposed;

    private FileBytes(string? path, long length)
    {
        Path = path;
        Length = length;
    }

    /// <summary>The file's path; null for bytes held in memory.</summary>
    public string? Path { get; }

    /// <summary>The length in bytes.</summary>
    public long Length { get; }

    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>Wraps an array in place (not copied).</summary>
    public static FileBytes Of(byte[] bytes) => new(null, bytes.Length) { _bytes = bytes };

    /// <summary>Memory-maps a file read-only (an empty file is held as an empty array: it cannot be mapped).</summary>
    /// <exception cref="IOException">The file cannot be opened or mapped.</exception>
    public static FileBytes Map(string path)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        long length;
        MemoryMappedFile map;
        try
        {
            length = stream.Length;
            if (length == 0)
            {
                stream.Dispose();
                return new FileBytes(path, 0) { _bytes = [] };
            }
            // The map owns the stream from here on (leaveOpen: false): the file stays open while it is mapped.
            map = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read, HandleInheritability.None,
                                                  leaveOpen: false);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
        var result = new FileBytes(path, length) { _map = map };
        try
        {
            result._view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* basePtr = null;
            result._view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
            result._base = basePtr + result._view.PointerOffset;
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>Maps a file and parses it; the mapping is released if parsing throws.</summary>
    public static T Open<T>(string path, Func<FileBytes, T> parse)
    {
        var file = Map(path);
        try
        {
            return parse(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Bytes [offset, offset + length); the caller has checked the range against <see cref="Length"/>.</summary>
    /// <exception cref="ObjectDisposedException">Disposed.</exception>
    public ReadOnlySpan<byte> Slice(long offset, int length)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return _bytes is not null ? _bytes.AsSpan(checked((int)offset), length) : new ReadOnlySpan<byte>(_base + offset, length);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        if (_view is not null)
        {
            if (_base is not null)
                _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _view = null;
        }
        _map?.Dispose();
        _map = null;
        _base = null;
        _bytes = null;
    }
}
