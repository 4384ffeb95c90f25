using Microscale.IO;

namespace Microscale.Tests.Unit;

/// <summary>
/// Seeded mutation fuzzing of the checkpoint parsers: a valid file with random bytes flipped, overwritten, inserted or cut
/// must either parse (and then every tensor's bytes must be readable and every quantized weight convertible) or fail with
/// the parser's format exception — never another exception.
/// </summary>
[TestFixture]
public sealed class ParserFuzzTests
{
    private const int Cases = 1500;

    private static byte[] Mutate(byte[] original, Random random)
    {
        var bytes = new List<byte>(original);
        int mutations = random.Next(1, 5);
        for (int i = 0; i < mutations && bytes.Count > 0; i++)
        {
            int at = random.Next(bytes.Count);
            switch (random.Next(5))
            {
                case 0: bytes[at] ^= (byte)(1 << random.Next(8)); break;                       // bit flip
                case 1: bytes[at] = (byte)random.Next(256); break;                             // random byte
                case 2: bytes[at] = random.Next(2) == 0 ? (byte)0xFF : (byte)0; break;         // extreme byte
                case 3: bytes.InsertRange(at, Enumerable.Range(0, random.Next(1, 9)).Select(_ => (byte)random.Next(256))); break;
                default: bytes.RemoveRange(at, Math.Min(bytes.Count - at, random.Next(1, 64))); break;
            }
        }
        return [.. bytes];
    }

    [Test]
    public void GgufMutationsFailOnlyWithFormatErrors()
    {
        var writer = new GgufWriter();
        writer.AddMetadata("general.architecture", "llama");
        writer.AddMetadata("tokenizer.tokens", new GgufValue(GgufValueType.Array, new[] { "a", "b" }, GgufValueType.String));
        writer.AddTensor("w", GgufTensorType.MXFP4, [64, 2], GgufTests.RandomBlocks(GgufTensorType.MXFP4, 2, 64, seed: 1));
        writer.AddTensor("n", GgufTensorType.NVFP4, [64, 1], GgufTests.RandomBlocks(GgufTensorType.NVFP4, 1, 64, seed: 2));
        writer.AddTensor("f", GgufTensorType.F32, [3], new byte[12]);
        var original = writer.ToArray();
        var random = new Random(20261123);
        int parsed = 0;
        for (int i = 0; i < Cases; i++)
        {
            var bytes = Mutate(original, random);
            try
            {
                using var file = GgufFile.FromBytes(bytes);
                parsed++;
                foreach (var t in file.Tensors)
                {
                    _ = file.GetBytes(t.Name).Length;
                    if (GgufQuantized.IsSupported(t.Type) && t.Rows > 0 && t.RowLength > 0)
                        GgufQuantized.Read(file, t.Name).Dispose();
                }
            }
            catch (GgufFormatException)
            {
            }
        }
        TestContext.Out.WriteLine($"{parsed} of {Cases} mutated files still parsed");
        Assert.That(parsed, Is.LessThan(Cases), "the mutations must break some files");
    }

    [Test]
    public void SafeTensorsMutationsFailOnlyWithFormatErrors()
    {
        var writer = new SafeTensorsWriter();
        using var weight = Quantizer.Quantize(SeededGaussian.Create(16 * 64, 1), 16, 64, new QuantizationOptions(QuantFormat.Nvfp4));
        QuantizedCheckpoint.Add(writer, "model.layers.0.mlp.up_proj", CheckpointConvention.ModelOptNvfp4, weight, 0.5f);
        writer.Add<float>("model.norm.weight", new float[8], 8);
        var original = writer.ToArray();
        var random = new Random(7);
        int parsed = 0;
        for (int i = 0; i < Cases; i++)
        {
            var bytes = Mutate(original, random);
            try
            {
                using var checkpoint = SafeTensorsCheckpoint.Of(SafeTensorsFile.FromBytes(bytes));
                parsed++;
                foreach (string name in checkpoint.TensorNames)
                    _ = checkpoint.GetBytes(name).Length;
                if (QuantizedCheckpoint.Detect(checkpoint, "model.layers.0.mlp.up_proj") is not null)
                    QuantizedCheckpoint.Read(checkpoint, "model.layers.0.mlp.up_proj").Weight.Dispose();
            }
            catch (SafeTensorsFormatException)
            {
            }
            catch (KeyNotFoundException)
            {
                // a mutated name: the convention's companion tensor is missing, reported by name
            }
        }
        TestContext.Out.WriteLine($"{parsed} of {Cases} mutated files still parsed");
        Assert.That(parsed, Is.LessThan(Cases), "the mutations must break some files");
    }
}
