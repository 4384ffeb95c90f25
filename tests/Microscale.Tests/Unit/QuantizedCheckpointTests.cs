using System.Text.Json;
using Microscale.IO;

namespace Microscale.Tests.Unit;

/// <summary>Checkpoint conventions (ModelOpt NVFP4, compressed-tensors NVFP4, gpt-oss MXFP4, FP8): load(export(w)) returns
/// w's exact bytes, values decode as each format defines them, sharded checkpoints resolve across files, and malformed
/// tensors are named.</summary>
[TestFixture]
public sealed class QuantizedCheckpointTests
{
    private static QuantizedTensor Weight(QuantFormat format, int rows = 24, int columns = 96, int seed = 1) =>
        Quantizer.Quantize(HadamardTests.StudentT3(rows * columns, seed), rows, columns, new QuantizationOptions(format));

    private static SafeTensorsCheckpoint InMemory(SafeTensorsWriter writer) => SafeTensorsCheckpoint.Of(SafeTensorsFile.FromBytes(writer.ToArray()));

    private static void AssertSameTensor(QuantizedTensor expected, QuantizedTensor actual)
    {
        Assert.That(actual.Options.Format, Is.EqualTo(expected.Options.Format));
        Assert.That((actual.Rows, actual.Columns), Is.EqualTo((expected.Rows, expected.Columns)));
        Assert.That(actual.Data.ToArray(), Is.EqualTo(expected.Data.ToArray()), "codes");
        Assert.That(actual.BlockScales.ToArray(), Is.EqualTo(expected.BlockScales.ToArray()), "block scales");
        Assert.That(actual.DecodeScales.ToArray(), Is.EqualTo(expected.DecodeScales.ToArray()), "decode scales");
    }

    [TestCase(CheckpointConvention.ModelOptNvfp4, QuantFormat.Nvfp4)]
    [TestCase(CheckpointConvention.CompressedTensorsNvfp4, QuantFormat.Nvfp4)]
    [TestCase(CheckpointConvention.Fp8, QuantFormat.Fp8PerTensor)]
    [TestCase(CheckpointConvention.Fp8, QuantFormat.Fp8PerRow)]
    [TestCase(CheckpointConvention.GptOssMxfp4, QuantFormat.Mxfp4)]
    public void ExportThenLoadIsIdentical(CheckpointConvention convention, QuantFormat format)
    {
        for (int seed = 1; seed <= 5; seed++)
        {
            using var weight = Weight(format, seed: seed);
            float? input = convention == CheckpointConvention.GptOssMxfp4 ? null : 0.0123f * seed;
            var writer = new SafeTensorsWriter();
            QuantizedCheckpoint.Add(writer, "model.layers.0.mlp.down_proj", convention, weight, input);
            using var checkpoint = InMemory(writer);
            Assert.That(QuantizedCheckpoint.Detect(checkpoint, "model.layers.0.mlp.down_proj"), Is.EqualTo(convention));
            var loaded = QuantizedCheckpoint.Read(checkpoint, "model.layers.0.mlp.down_proj");
            using (loaded.Weight)
            {
                AssertSameTensor(weight, loaded.Weight);
                Assert.That(loaded.InputScale, Is.EqualTo(input));
            }
        }
    }

    [Test]
    public void CompressedTensorsStoresTheReciprocalGlobalScale()
    {
        using var weight = Weight(QuantFormat.Nvfp4, seed: 7);
        var writer = new SafeTensorsWriter();
        QuantizedCheckpoint.Add(writer, "w", CheckpointConvention.CompressedTensorsNvfp4, weight);
        using var file = SafeTensorsFile.FromBytes(writer.ToArray());
        Assert.That(file.GetInfo("w.weight_global_scale").Shape, Is.EqualTo(new long[] { 1 }));
        float stored = file.Read<float>("w.weight_global_scale")[0];
        Assert.That(1f / stored, Is.EqualTo(weight.GlobalScale));
        Assert.That(stored, Is.EqualTo(1.0 / weight.GlobalScale).Within(1e-6).Percent);
        Assert.That(file.GetInfo("w.weight_scale").DType, Is.EqualTo(SafeTensorsDType.F8_E4M3));

        // 0.0123f has no binary32 whose reciprocal rounds back to it: the exact value rides in the metadata.
        float value = 0.0123f, reciprocal = 1f / value;
        Assert.That(1f / reciprocal, Is.Not.EqualTo(value));
        var inexact = new SafeTensorsWriter();
        QuantizedCheckpoint.Add(inexact, "w", CheckpointConvention.CompressedTensorsNvfp4, weight, inputScale: 0.0123f);
        using (var checkpoint = InMemory(inexact))
        {
            Assert.That(checkpoint.FileOf("w.input_global_scale").Metadata.ContainsKey("microscale:w.input_global_scale"));
            var loaded = QuantizedCheckpoint.Read(checkpoint, "w");
            loaded.Weight.Dispose();
            Assert.That(loaded.InputScale, Is.EqualTo(0.0123f));
        }
    }

    [Test]
    public void ModelOptValuesAreElementTimesScaleTimesGlobalRoundedOnce()
    {
        using var weight = Weight(QuantFormat.Nvfp4, seed: 3);
        var writer = new SafeTensorsWriter();
        QuantizedCheckpoint.Add(writer, "w", CheckpointConvention.ModelOptNvfp4, weight);
        using var checkpoint = InMemory(writer);
        using var loaded = QuantizedCheckpoint.Read(checkpoint, "w").Weight;
        var file = checkpoint.FileOf("w.weight");
        var packed = file.GetBytes("w.weight").ToArray();
        var scales = file.GetBytes("w.weight_scale").ToArray();
        float g = file.Read<float>("w.weight_scale_2")[0];
        var values = loaded.Dequantize(Backend.Reference);
        for (int i = 0; i < values.Length; i++)
        {
            int code = (packed[i / 2] >> (4 * (i % 2))) & 0xF;
            double expected = (double)Float4E2M1.FromRawValue((byte)code).ToSingle() * Float8UE4M3.FromRawValue(scales[i / 16]).ToSingle() * g;
            Assert.That(values[i], Is.EqualTo((float)expected), $"value {i}");
        }
    }

    [Test]
    public void GptOssExpertsStackAndSliceAsTransformersDecodesThem()
    {
        var experts = Enumerable.Range(0, 3).Select(e => Weight(QuantFormat.Mxfp4, rows: 8, columns: 64, seed: 10 + e)).ToList();
        try
        {
            var writer = new SafeTensorsWriter();
            QuantizedCheckpoint.AddGptOssExperts(writer, "model.layers.0.mlp.experts.gate_up_proj", experts);
            using var checkpoint = InMemory(writer);
            var blocksInfo = checkpoint.GetInfo("model.layers.0.mlp.experts.gate_up_proj_blocks");
            Assert.That(blocksInfo.Shape, Is.EqualTo(new long[] { 3, 8, 2, 16 }));
            using var all = QuantizedCheckpoint.Read(checkpoint, "model.layers.0.mlp.experts.gate_up_proj").Weight;
            Assert.That((all.Rows, all.Columns), Is.EqualTo((24, 64)));
            using var second = QuantizedCheckpoint.Read(checkpoint, "model.layers.0.mlp.experts.gate_up_proj", expert: 1).Weight;
            AssertSameTensor(experts[1], second);
            // transformers' convert_moe_packed_tensors: lut[low nibble] is element 2k, lut[high] 2k+1, times 2^(scale - 127).
            float[] lut = [0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f, -0f, -0.5f, -1f, -1.5f, -2f, -3f, -4f, -6f];
            var blocks = checkpoint.GetBytes("model.layers.0.mlp.experts.gate_up_proj_blocks").ToArray();
            var scales = checkpoint.GetBytes("model.layers.0.mlp.experts.gate_up_proj_scales").ToArray();
            var expected = new float[blocks.Length * 2];
            for (int b = 0; b < blocks.Length; b++)
            {
                float s = MathF.ScaleB(1f, scales[b / 16] - 127);
                expected[2 * b] = lut[blocks[b] & 0xF] * s;
                expected[2 * b + 1] = lut[blocks[b] >> 4] * s;
            }
            Exact.AssertFloats(expected, all.Dequantize(Backend.Reference), "gpt-oss MXFP4", 64);
            Assert.Throws<ArgumentOutOfRangeException>(() => QuantizedCheckpoint.Read(checkpoint, "model.layers.0.mlp.experts.gate_up_proj", expert: 3));
        }
        finally
        {
            experts.ForEach(e => e.Dispose());
        }
    }

    [Test]
    public void Fp8ScalesInBFloat16PerChannelLoad()
    {
        // compressed-tensors keeps scales in the model's dtype: BF16 [N, 1].
        using var weight = Weight(QuantFormat.Fp8PerRow, rows: 4, columns: 32);
        var writer = new SafeTensorsWriter();
        writer.Add("w.weight", SafeTensorsDType.F8_E4M3, [4, 32], weight.Data);
        var bf16 = weight.DecodeScales.ToArray().Select(v => (BFloat16)v).ToArray();
        writer.Add<BFloat16>("w.weight_scale", bf16, 4, 1);
        using var checkpoint = InMemory(writer);
        using var loaded = QuantizedCheckpoint.Read(checkpoint, "w").Weight;
        Assert.That(loaded.Format, Is.EqualTo(QuantFormat.Fp8PerRow));
        Assert.That(loaded.DecodeScales.ToArray(), Is.EqualTo(bf16.Select(v => v.ToSingle()).ToArray()));
    }

    [Test]
    public void MalformedTensorsAreNamed()
    {
        string Error(Action<SafeTensorsWriter> build)
        {
            var writer = new SafeTensorsWriter();
            build(writer);
            using var checkpoint = InMemory(writer);
            return Assert.Throws<SafeTensorsFormatException>(() => QuantizedCheckpoint.Read(checkpoint, "w").Weight.Dispose())!.Message;
        }
        Assert.That(Error(w => w.Add<float>("other", [1f])), Does.Contain("No quantized weight under 'w'"));
        Assert.That(Error(w =>
        {
            w.Add("w.weight", SafeTensorsDType.U8, [2, 16], new byte[32]);
            w.Add("w.weight_scale", SafeTensorsDType.F8_E4M3, [2, 1], new byte[2]);
            w.Add<float>("w.weight_scale_2", [1f]);
        }), Does.Contain("needs [2, 2]"));
        Assert.That(Error(w =>
        {
            w.Add("w.weight", SafeTensorsDType.U8, [1, 8], new byte[8]);
            w.Add("w.weight_scale", SafeTensorsDType.F8_E4M3, [1, 1], [0xB8]);
            w.Add<float>("w.weight_scale_2", [1f]);
        }), Does.Contain("0xB8"));
        Assert.That(Error(w =>
        {
            w.Add("w.weight", SafeTensorsDType.F8_E4M3, [256, 256], new byte[256 * 256]);
            w.Add<float>("w.weight_scale", new float[4], 2, 2);
        }), Does.Contain("block scales are not supported"));
        Assert.That(Error(w =>
        {
            w.Add("w.weight_packed", SafeTensorsDType.U8, [1, 8], new byte[8]);
            w.Add("w.weight_scale", SafeTensorsDType.F8_E4M3, [1, 1], [0x38]);
            w.Add<float>("w.weight_global_scale", [0f]);
        }), Does.Contain("positive finite"));
    }

    [Test]
    public void WritersRefuseWhatTheConventionCannotHold()
    {
        var writer = new SafeTensorsWriter();
        using var mx = Weight(QuantFormat.Mxfp4);
        using var nvOddK = Weight(QuantFormat.Nvfp4, columns: 40);
        Assert.Throws<ArgumentException>(() => QuantizedCheckpoint.Add(writer, "a", CheckpointConvention.ModelOptNvfp4, mx));
        Assert.That(Assert.Throws<ArgumentException>(() => QuantizedCheckpoint.Add(writer, "b", CheckpointConvention.ModelOptNvfp4, nvOddK))!.Message,
                    Does.Contain("multiple of 16"));
        Assert.Throws<ArgumentException>(() => QuantizedCheckpoint.Add(writer, "c", CheckpointConvention.GptOssMxfp4, mx, inputScale: 1f));
        Assert.Throws<ArgumentException>(() => QuantizedCheckpoint.AddGptOssExperts(writer, "d", []));
    }

    [Test]
    public void ShardedCheckpointsResolveAcrossFiles()
    {
        string directory = Path.Combine(Path.GetTempPath(), $"microscale-ckpt-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        try
        {
            using var weight = Weight(QuantFormat.Nvfp4, seed: 9);
            var all = new SafeTensorsWriter();
            QuantizedCheckpoint.Add(all, "model.layers.0.mlp.up_proj", CheckpointConvention.ModelOptNvfp4, weight, 0.5f);
            using var full = SafeTensorsFile.FromBytes(all.ToArray());
            // Split the tensors over two shards, as sharded HF checkpoints do, and index them.
            var shards = new[] { new SafeTensorsWriter(), new SafeTensorsWriter() };
            var map = new Dictionary<string, string>();
            for (int i = 0; i < full.Tensors.Count; i++)
            {
                var t = full.Tensors[i];
                shards[i % 2].Add(t.Name, t.DType, t.Shape.ToArray(), full.GetBytes(t.Name));
                map[t.Name] = $"model-0000{i % 2 + 1}-of-00002.safetensors";
            }
            shards[0].Save(Path.Combine(directory, "model-00001-of-00002.safetensors"));
            shards[1].Save(Path.Combine(directory, "model-00002-of-00002.safetensors"));
            File.WriteAllText(Path.Combine(directory, "model.safetensors.index.json"),
                              JsonSerializer.Serialize(new { metadata = new { total_size = 0 }, weight_map = map }));
            using (var checkpoint = SafeTensorsCheckpoint.Open(directory))
            {
                var loaded = QuantizedCheckpoint.Read(checkpoint, "model.layers.0.mlp.up_proj");
                using (loaded.Weight)
                    AssertSameTensor(weight, loaded.Weight);
                Assert.That(loaded.InputScale, Is.EqualTo(0.5f));
                Assert.That(checkpoint.TensorNames, Has.Count.EqualTo(full.Tensors.Count));
            }
            map["model.layers.0.mlp.up_proj.weight"] = "missing.safetensors";
            File.WriteAllText(Path.Combine(directory, "model.safetensors.index.json"), JsonSerializer.Serialize(new { weight_map = map }));
            Assert.That(Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsCheckpoint.Open(directory))!.Message, Does.Contain("missing.safetensors"));
            map["model.layers.0.mlp.up_proj.weight"] = "../elsewhere.safetensors";
            File.WriteAllText(Path.Combine(directory, "model.safetensors.index.json"), JsonSerializer.Serialize(new { weight_map = map }));
            Assert.That(Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsCheckpoint.Open(directory))!.Message, Does.Contain("not a file name"));
            Assert.Throws<FileNotFoundException>(() => SafeTensorsCheckpoint.Open(Path.Combine(directory, "nothing-here")));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
