using System.Text;

namespace Microscale.IO;

/// <summary>One tensor's entry in a safetensors header.</summary>
/// <param name="Name">The tensor's name (the header key).</param>
/// <param name="DType">The element type.</param>
/// <param name="Shape">The dimensions, outermost first; empty for a scalar.</param>
/// <param name="DataOffset">Offset of the first byte, relative to the start of the data region (the header's
/// <c>data_offsets[0]</c>), not to the start of the file.</param>
/// <param name="ByteLength">Length in bytes (<c>data_offsets[1] - data_offsets[0]</c>).</param>
/// <remarks>Equality compares <see cref="Shape"/> element by element.</remarks>
public sealed record SafeTensorInfo(string Name, SafeTensorsDType DType, IReadOnlyList<long> Shape, long DataOffset, long ByteLength)
{
    private readonly IReadOnlyList<long> _shape = Shape;
    private readonly long _elementCount = CountElements(Shape);

    /// <summary>The dimensions, outermost first; empty for a scalar.</summary>
    /// <exception cref="ArgumentNullException">Set to null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Set to a shape with a negative dimension.</exception>
    /// <exception cref="OverflowException">Set to a shape whose element count does not fit in a <see cref="long"/>.</exception>
    public IReadOnlyList<long> Shape
    {
        get => _shape;
        init
        {
            _elementCount = CountElements(value); // kept in step for `with { Shape = ... }`
            _shape = value;
        }
    }

    /// <summary>The number of elements: the product of <see cref="Shape"/> (1 for a scalar, 0 when a dimension is 0).</summary>
    public long ElementCount => _elementCount;

    private static long CountElements(IReadOnlyList<long> shape)
    {
        ArgumentNullException.ThrowIfNull(shape, nameof(Shape));
        long[] dims = [.. shape];
        return SafeTensorsDTypeExtensions.ElementCountOf(dims)
            ?? throw new ArgumentOutOfRangeException(nameof(Shape), $"Shape [{string.Join(", ", dims)}] has a negative dimension.");
    }

    /// <summary>Value equality; <see cref="Shape"/> is compared element by element.</summary>
    /// <param name="other">The entry to compare with.</param>
    /// <returns>True when every member is equal.</returns>
    public bool Equals(SafeTensorInfo? other) =>
        other is not null
        && Name == other.Name
        && DType == other.DType
        && DataOffset == other.DataOffset
        && ByteLength == other.ByteLength
        && Shape.SequenceEqual(other.Shape);

    /// <summary>A hash consistent with <see cref="Equals(SafeTensorInfo?)"/>.</summary>
    /// <returns>The hash code.</returns>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Name);
        hash.Add(DType);
        hash.Add(DataOffset);
        hash.Add(ByteLength);
        foreach (long d in Shape)
            hash.Add(d);
        return hash.ToHashCode();
    }

    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append("Name = ").Append(Name)
            .Append(", DType = ").Append(DType.ToString())
            .Append(", Shape = [").AppendJoin(", ", Shape).Append(']')
            .Append(", DataOffset = ").Append(DataOffset)
            .Append(", ByteLength = ").Append(ByteLength);
        return true;
    }
}
