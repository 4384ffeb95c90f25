using System.Text.Json;

namespace Microscale.IO;

/// <summary>
/// A Hugging Face checkpoint: one <c>*.safetensors</c> file, or shards listed by a <c>*.safetensors.index.json</c>
/// (<c>{"weight_map": {"tensor name": "shard file", ...}}</c>). Shards are memory-mapped when first used. Disposing closes
/// them; spans handed out must not be used afterwards.
/// </summary>
public sealed class SafeTensorsCheckpoint : IDisposable
{
    private readonly string _directory;
    private readonly Dictionary<string, string> _shardOf;          // tensor -> shard file name
    private readonly Dictionary<string, SafeTensorsFile> _open = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private bool _disposed;

    private SafeTensorsCheckpoint(string directory, Dictionary<string, string> shardOf)
    {
        _directory = directory;
        _shardOf = shardOf;
    }

    /// <summary>The tensor names, in index order.</summary>
    public IReadOnlyCollection<string> TensorNames => _shardOf.Keys;

    /// <summary>Opens a checkpoint: a <c>.safetensors</c> file, an index <c>.json</c>, or a directory holding
    /// <c>model.safetensors.index.json</c> or a single <c>model.safetensors</c>.</summary>
    /// <exception cref="FileNotFoundException">Nothing to open at <paramref name="path"/>.</exception>
    /// <exception cref="SafeTensorsFormatException">The index or a shard is malformed, or the index names a missing shard.</exception>
    public static SafeTensorsCheckpoint Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            string index = Path.Combine(path, "model.safetensors.index.json"), single = Path.Combine(path, "model.safetensors");
            path = File.Exists(index) ? index : File.Exists(single) ? single
                : throw new FileNotFoundException($"'{path}' holds neither model.safetensors.index.json nor model.safetensors.", path);
        }
        if (!File.Exists(path))
            throw new FileNotFoundException($"No checkpoint at '{path}'.", path);
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            return Wrap(directory, Path.GetFileName(path), SafeTensorsFile.Open(path));
        }
        var shardOf = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var json = JsonDocument.Parse(File.ReadAllBytes(path));
            if (!json.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsFormatException($"Index '{path}' has no \"weight_map\" object.");
            foreach (var entry in map.EnumerateObject())
            {
                string shard = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()! : "";
                if (shard.Length == 0 || Path.GetFileName(shard) != shard)
                    throw new SafeTensorsFormatException($"Index '{path}': tensor '{entry.Name}' maps to '{shard}', not a file name beside the index.");
                shardOf[entry.Name] = shard;
            }
        }
        catch (JsonException ex)
        {
            throw new SafeTensorsFormatException($"Index '{path}' is not valid JSON: {ex.Message}", ex);
        }
        foreach (string shard in shardOf.Values.Distinct())
            if (!File.Exists(Path.Combine(directory, shard)))
                throw new SafeTensorsFormatException($"Index '{path}' names shard '{shard}', which does not exist.");
        return new SafeTensorsCheckpoint(directory, shardOf);
    }

    /// <summary>A checkpoint of one already open file (for example <see cref="SafeTensorsFile.FromBytes"/>); disposing the
    /// checkpoint disposes the file.</summary>
    public static SafeTensorsCheckpoint Of(SafeTensorsFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        return Wrap("(in memory)", "(file)", file);
    }

    // A checkpoint of one open file, every tensor mapped to it under `shard`.
    private static SafeTensorsCheckpoint Wrap(string directory, string shard, SafeTensorsFile file)
    {
        var checkpoint = new SafeTensorsCheckpoint(directory, file.Tensors.ToDictionary(t => t.Name, _ => shard, StringComparer.Ordinal));
        checkpoint._open[shard] = file;
        return checkpoint;
    }

    /// <summary>Whether the checkpoint has a tensor of this name.</summary>
    public bool Contains(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _shardOf.ContainsKey(name);
    }

    /// <summary>The shard file holding a tensor (opened if needed).</summary>
    /// <exception cref="KeyNotFoundException">No such tensor.</exception>
    /// <exception cref="SafeTensorsFormatException">The shard is malformed, or lacks the tensor its index promises.</exception>
    public SafeTensorsFile FileOf(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_shardOf.TryGetValue(name, out var shard))
                throw new KeyNotFoundException($"No tensor named '{name}' in the checkpoint at '{_directory}' ({_shardOf.Count} tensors).");
            if (!_open.TryGetValue(shard, out var file))
            {
                file = SafeTensorsFile.Open(Path.Combine(_directory, shard));
                _open[shard] = file;
            }
            if (!file.Contains(name))
                throw new SafeTensorsFormatException($"Shard '{shard}' lacks tensor '{name}', which the index places there.");
            return file;
        }
    }

    /// <summary>A tensor's header entry.</summary>
    public SafeTensorInfo GetInfo(string name) => FileOf(name).GetInfo(name);

    /// <summary>A tensor's bytes, without copying.</summary>
    public ReadOnlySpan<byte> GetBytes(string name) => FileOf(name).GetBytes(name);

    /// <summary>Closes every open shard. Idempotent.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
            foreach (var file in _open.Values)
                file.Dispose();
            _open.Clear();
        }
    }
}
