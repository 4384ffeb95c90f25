using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Microscale.IO;

namespace Microscale.Tests.Unit;

[TestFixture]
public class SafeTensorsTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "microscale-safetensors-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir))
            Directory.Delete(_dir, recursive: true);
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>A file by hand: the 8-byte length of <paramref name="headerJson"/>, the header as UTF-8, then the data.</summary>
    private static byte[] Build(string headerJson, int dataLength = 0) => Build(Encoding.UTF8.GetBytes(headerJson), new byte[dataLength]);

    private static byte[] Build(byte[] header, byte[] data) => Build((ulong)header.Length, header, data);

    private static byte[] Build(ulong declaredHeaderLength, byte[] header, byte[] data)
    {
        var file = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, declaredHeaderLength);
        header.CopyTo(file, 8);
        data.CopyTo(file, 8 + header.Length);
        return file;
    }

    private static SafeTensorsFormatException Malformed(byte[] file) =>
        Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.FromBytes(file).Dispose())!;

    private static string HeaderOf(byte[] file)
    {
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(file);
        return Encoding.UTF8.GetString(file, 8, (int)n);
    }

    private static byte[] BytesOf<T>(params T[] values) where T : unmanaged => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    // ------------------------------------------------------------------ round trips

    [Test]
    public void RoundTrip_EveryDType_PreservesValuesShapesAndMetadata()
    {
        double[] f64 = [1.0, -2.5, double.Epsilon, double.NaN, double.PositiveInfinity, 1e300];
        float[] f32 = [0f, -0f, 1.5f, float.MaxValue, float.NaN, -3.25f];
        Half[] f16 = [(Half)1.5f, (Half)(-2f), Half.MaxValue, Half.Epsilon];
        BFloat16[] bf16 = [BFloat16.FromSingle(3.140625f), BFloat16.FromRawValue(0x8001), BFloat16.NaN, BFloat16.PositiveInfinity];
        int[] i32 = [int.MinValue, -1, 0, 1, int.MaxValue, 42];
        long[] i64 = [long.MinValue, long.MaxValue, 7];
        byte[] u8 = [0, 1, 127, 128, 255, 9];
        ushort[] u16 = [0, 1, 0x7FC0, ushort.MaxValue];
        byte[] e4m3 = [0x00, 0x7E, 0x7F, 0xFE];
        Float8E5M2[] e5m2 = [Float8E5M2.FromRawValue(0x3C), Float8E5M2.FromRawValue(0x7B)];

        var w = new SafeTensorsWriter();
        w.Metadata["format"] = "pt";
        w.Metadata["note"] = "héllo \"world\"";
        w.Add("f64", f64, 2, 3);
        w.Add("f32", f32, 3, 2);
        w.Add("f16", f16, 4);
        w.Add("bf16", bf16, 2, 2);
        w.Add("i32", i32, 6);
        w.Add("i64", i64, 3, 1);
        w.Add("u8", u8, 1, 6);
        w.Add("u16", u16, 2, 1, 2);
        w.Add("e4m3", SafeTensorsDType.F8_E4M3, [2, 2], e4m3);
        w.Add("e5m2", e5m2, 2);
        w.Add("empty", ReadOnlySpan<float>.Empty, 2, 0, 3);
        w.Add("scalar", [7L]);

        using var f = SafeTensorsFile.FromBytes(w.ToArray());

        Assert.That(f.Tensors, Has.Count.EqualTo(12));
        Assert.That(f.Metadata, Is.EqualTo(new Dictionary<string, string> { ["format"] = "pt", ["note"] = "héllo \"world\"" }));
        Assert.That(f.Metadata.Keys, Is.EqualTo(new[] { "format", "note" }));

        Assert.That(f.Read<double>("f64"), Is.EqualTo(f64));
        Assert.That(f.Read<float>("f32"), Is.EqualTo(f32));
        Assert.That(BitConverter.SingleToInt32Bits(f.Read<float>("f32")[1]), Is.EqualTo(BitConverter.SingleToInt32Bits(-0f)));
        Assert.That(f.Read<Half>("f16"), Is.EqualTo(f16));
        Assert.That(f.Read<BFloat16>("bf16").Select(b => b.RawValue), Is.EqualTo(bf16.Select(b => b.RawValue)));
        Assert.That(f.Read<ushort>("bf16"), Is.EqualTo(bf16.Select(b => b.RawValue)));
        Assert.That(f.Read<int>("i32"), Is.EqualTo(i32));
        Assert.That(f.Read<long>("i64"), Is.EqualTo(i64));
        Assert.That(f.Read<byte>("u8"), Is.EqualTo(u8));
        Assert.That(f.Read<ushort>("u16"), Is.EqualTo(u16));
        Assert.That(f.Read<byte>("e4m3"), Is.EqualTo(e4m3));
        Assert.That(f.Read<Float8E4M3>("e4m3").Select(x => x.RawValue), Is.EqualTo(e4m3));
        Assert.That(f.Read<byte>("e5m2"), Is.EqualTo(new byte[] { 0x3C, 0x7B }));
        Assert.That(f.Read<float>("empty"), Is.Empty);
        Assert.That(f.Read<long>("scalar"), Is.EqualTo(new[] { 7L }));

        var expected = new (string Name, SafeTensorsDType DType, long[] Shape)[]
        {
            ("f64", SafeTensorsDType.F64, [2, 3]), ("f32", SafeTensorsDType.F32, [3, 2]), ("f16", SafeTensorsDType.F16, [4]),
            ("bf16", SafeTensorsDType.BF16, [2, 2]), ("i32", SafeTensorsDType.I32, [6]), ("i64", SafeTensorsDType.I64, [3, 1]),
            ("u8", SafeTensorsDType.U8, [1, 6]), ("u16", SafeTensorsDType.U16, [2, 1, 2]), ("e4m3", SafeTensorsDType.F8_E4M3, [2, 2]),
            ("e5m2", SafeTensorsDType.F8_E5M2, [2]), ("empty", SafeTensorsDType.F32, [2, 0, 3]), ("scalar", SafeTensorsDType.I64, []),
        };
        foreach (var (name, dtype, shape) in expected)
        {
            var info = f.GetInfo(name);
            Assert.That(info.Name, Is.EqualTo(name));
            Assert.That(info.DType, Is.EqualTo(dtype), name);
            Assert.That(info.Shape, Is.EqualTo(shape), name);
            Assert.That(info.ByteLength, Is.EqualTo(info.ElementCount * dtype.ElementSize()), name);
            Assert.That(f.GetBytes(name).Length, Is.EqualTo(info.ByteLength), name);
        }
        Assert.That(f.GetInfo("scalar").ElementCount, Is.EqualTo(1));
        Assert.That(f.GetInfo("empty").ElementCount, Is.Zero);
    }

    [Test]
    public void Writer_LaysOutTensorsSortedByName_Contiguous_HeaderPaddedTo8()
    {
        var w = new SafeTensorsWriter();
        w.Add("zeta", new float[] { 1, 2, 3 }, 3);
        w.Add("alpha", new byte[] { 9 }, 1);
        w.Add("mid", new long[] { 5, 6 }, 2);
        byte[] bytes = w.ToArray();

        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.That(n % 8, Is.Zero);
        Assert.That(bytes, Has.Length.EqualTo(8 + n + 1 + 16 + 12));
        Assert.That(HeaderOf(bytes), Is.EqualTo(
            """{"alpha":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"mid":{"dtype":"I64","shape":[2],"data_offsets":[1,17]},"zeta":{"dtype":"F32","shape":[3],"data_offsets":[17,29]}}""".PadRight((int)n)));

        using var f = SafeTensorsFile.FromBytes(bytes);
        Assert.That(f.Tensors.Select(t => t.Name), Is.EqualTo(new[] { "alpha", "mid", "zeta" }));
        Assert.That(f.Tensors.Select(t => t.DataOffset), Is.EqualTo(new long[] { 0, 1, 17 }));
        Assert.That(f.Read<long>("mid"), Is.EqualTo(new long[] { 5, 6 }));
        Assert.That(f.Read<float>("zeta"), Is.EqualTo(new float[] { 1, 2, 3 })); // unaligned in the file: offset 17
    }

    [Test]
    public void Writer_EscapesAndSortsLikePythonJsonDumps()
    {
        // Expected bytes from Python: json.dumps(header, separators=(",", ":")) with names sorted by code point.
        const string expected =
            """{"__metadata__":{"note":"caf\u00e9 \"q\" \\ /\t\u007f","z":"1"},"a\u00e9":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"tab\tname":{"dtype":"U8","shape":[1],"data_offsets":[2,3]},"\uffefy":{"dtype":"U8","shape":[1],"data_offsets":[3,4]},"\ud83d\ude00x":{"dtype":"U8","shape":[1],"data_offsets":[4,5]}}    """;
        var w = new SafeTensorsWriter();
        w.Metadata["note"] = "café \"q\" \\ /\t\u007f";
        w.Metadata["z"] = "1";
        string[] names = ["b", "\U0001F600x", "aé", "\uFFEFy", "tab\tname"];
        foreach (var name in names)
            w.Add(name, new byte[] { 1 }, 1);
        byte[] bytes = w.ToArray();
        Assert.That(HeaderOf(bytes), Is.EqualTo(expected));

        using var f = SafeTensorsFile.FromBytes(bytes);
        Assert.That(f.Tensors.Select(t => t.Name), Is.EqualTo(new[] { "aé", "b", "tab\tname", "\uFFEFy", "\U0001F600x" }));
        Assert.That(f.Metadata["note"], Is.EqualTo("café \"q\" \\ /\t\u007f"));
    }

    [Test]
    public void Writer_Empty_WritesEmptyObject()
    {
        byte[] bytes = new SafeTensorsWriter().ToArray();
        Assert.That(bytes, Is.EqualTo(Build("{}      ")));
        using var f = SafeTensorsFile.FromBytes(bytes);
        Assert.That(f.Tensors, Is.Empty);
        Assert.That(f.Metadata, Is.Empty);
    }

    [Test]
    public void SaveThenOpen_MemoryMapped_ReadAsSingleConvertsF16Bf16F64()
    {
        Half[] f16 = [(Half)1.5f, (Half)(-2f), Half.MaxValue, Half.Epsilon, (Half)0.333f, Half.NegativeInfinity];
        BFloat16[] bf16 = [BFloat16.FromSingle(3.140625f), BFloat16.FromSingle(-1e30f), BFloat16.FromRawValue(0x0001), BFloat16.NaN];
        double[] f64 = [0.1, 1.0 + 1e-12, 1e300, -1e-300, double.NaN];
        float[] f32 = [1, 2, 3];

        var w = new SafeTensorsWriter();
        w.Add("h", f16, 2, 3);
        w.Add("b", bf16, 4);
        w.Add("d", f64, 5);
        w.Add("f", f32, 3);
        w.Add("u", new byte[] { 1, 2 }, 2);
        string path = Path.Combine(_dir, "model.safetensors");
        w.Save(path);
        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { path }), "no temporary file is left behind");

        using var f = SafeTensorsFile.Open(path);
        Assert.That(f.ReadAsSingle("h"), Is.EqualTo(f16.Select(x => (float)x)));
        Assert.That(f.ReadAsSingle("h")[2], Is.EqualTo(65504f));
        float[] b = f.ReadAsSingle("b");
        Assert.That(b[0], Is.EqualTo(3.140625f));
        Assert.That(b[1], Is.EqualTo(bf16[1].ToSingle()));
        Assert.That(BitConverter.SingleToInt32Bits(b[2]), Is.EqualTo(0x00010000));
        Assert.That(float.IsNaN(b[3]), Is.True);
        Assert.That(f.ReadAsSingle("d"), Is.EqualTo(f64.Select(x => (float)x)));
        Assert.That(f.ReadAsSingle("d")[0], Is.EqualTo(0.1f));
        Assert.That(f.ReadAsSingle("d")[2], Is.EqualTo(float.PositiveInfinity));
        Assert.That(f.ReadAsSingle("f"), Is.EqualTo(f32));
        Assert.That(f.GetBytes("u").ToArray(), Is.EqualTo(new byte[] { 1, 2 }));

        var ex = Assert.Throws<InvalidOperationException>(() => f.ReadAsSingle("u"));
        Assert.That(ex!.Message, Does.Contain("'u'").And.Contain("U8"));
    }

    [Test]
    public void Save_Overwrites_AndAFailedSaveLeavesTheOldFileAndNoTemporary()
    {
        string path = Path.Combine(_dir, "x.safetensors");
        var good = new SafeTensorsWriter();
        good.Add("a", new float[] { 1 }, 1);
        good.Save(path);
        byte[] before = File.ReadAllBytes(path);

        var again = new SafeTensorsWriter();
        again.Add("b", new int[] { 1, 2 }, 2);
        again.Save(path); // overwrites
        using (var f = SafeTensorsFile.Open(path))
            Assert.That(f.Tensors.Select(t => t.Name), Is.EqualTo(new[] { "b" }));
        good.Save(path);

        var bad = new SafeTensorsWriter();
        bad.Add("c", new float[] { 1 }, 1);
        bad.Metadata["broken"] = null!; // fails while the header is being written
        Assert.Throws<ArgumentException>(() => bad.Save(path));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { path }));

        string fresh = Path.Combine(_dir, "never.safetensors");
        Assert.Throws<ArgumentException>(() => bad.Save(fresh));
        Assert.That(File.Exists(fresh), Is.False);
        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { path }));
    }

    [Test]
    public void WriteTo_Stream_EqualsToArray()
    {
        var w = new SafeTensorsWriter();
        w.Metadata["k"] = "v";
        w.Add("x", new double[] { 1, 2, 3, 4 }, 2, 2);
        using var ms = new MemoryStream();
        ms.WriteByte(0xAA); // starts at the current position
        w.WriteTo(ms);
        Assert.That(ms.ToArray().Skip(1), Is.EqualTo(w.ToArray()));
    }

    // ------------------------------------------------------------------ golden files

    [Test]
    public void Golden_Codecs_NamesDTypesShapesAndMetadata()
    {
        using var f = SafeTensorsFile.Open(Golden.PathOf("codecs.safetensors"));
        Assert.That(f.Metadata["spec"], Is.EqualTo("NUMERICS.md"));
        Assert.That(f.Metadata.ContainsKey("seed"), Is.True);

        var input = f.GetInfo("input_f32");
        Assert.That(input.DType, Is.EqualTo(SafeTensorsDType.F32));
        Assert.That(input.Shape, Has.Count.EqualTo(1));
        long n = input.Shape[0];
        Assert.That(n, Is.GreaterThan(0));

        foreach (var name in new[] { "e2m1_sat", "e4m3_sat", "e4m3_ieee", "e5m2_sat", "e5m2_ieee", "ue4m3_sat" })
        {
            var info = f.GetInfo(name);
            Assert.That(info.DType, Is.EqualTo(SafeTensorsDType.U8), name);
            Assert.That(info.Shape, Is.EqualTo(new[] { n }), name);
            Assert.That(f.Read<byte>(name), Has.Length.EqualTo(n), name);
        }
        var bf16 = f.GetInfo("bf16");
        Assert.That(bf16.DType, Is.EqualTo(SafeTensorsDType.U16));
        Assert.That(bf16.Shape, Is.EqualTo(new[] { n }));

        // The bf16 codes are the round-to-nearest-even of input_f32 (NaN as 0x7FC0).
        float[] x = f.Read<float>("input_f32");
        ushort[] codes = f.Read<ushort>("bf16");
        for (int i = 0; i < x.Length; i++)
            Assert.That(codes[i], Is.EqualTo(BFloat16.FromSingle(x[i]).RawValue), $"input_f32[{i}] = {x[i]}");

        // E2M1 decodes its 16 codes to the OCP values.
        Assert.That(f.Read<float>("decode_e2m1"),
            Is.EqualTo(new float[] { 0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0f, -0.5f, -1, -1.5f, -2, -3, -4, -6 }));

        Assert.That(f.Tensors.Select(t => t.DataOffset), Is.Ordered);
        Assert.That(f.Tensors.Select(t => t.DType).Distinct(),
            Is.EquivalentTo(new[] { SafeTensorsDType.F32, SafeTensorsDType.U8, SafeTensorsDType.U16 }));
        foreach (var t in f.Tensors)
            Assert.That(t.ByteLength, Is.EqualTo(t.ElementCount * t.DType.ElementSize()), t.Name);
    }

    [Test]
    public void Golden_Gemm1x64x64_Operands()
    {
        using var f = SafeTensorsFile.Open(Golden.PathOf("gemm_1x64x64.safetensors"));
        var a = f.GetInfo("a");
        var b = f.GetInfo("b");
        var c = f.GetInfo("mxfp4_c");
        Assert.That(a.DType, Is.EqualTo(SafeTensorsDType.F32));
        Assert.That(a.Shape, Is.EqualTo(new long[] { 1, 64 }));
        Assert.That(b.DType, Is.EqualTo(SafeTensorsDType.F32));
        Assert.That(b.Shape, Is.EqualTo(new long[] { 64, 64 }));
        Assert.That(c.DType, Is.EqualTo(SafeTensorsDType.F64));
        Assert.That(c.Shape, Is.EqualTo(new long[] { 1, 64 }));

        Assert.That(f.Read<float>("a"), Has.Length.EqualTo(64).And.All.Not.NaN);
        Assert.That(f.Read<float>("b"), Has.Length.EqualTo(64 * 64));
        double[] cd = f.Read<double>("mxfp4_c");
        Assert.That(f.ReadAsSingle("mxfp4_c"), Is.EqualTo(cd.Select(v => (float)v)));
        Assert.That(f.Metadata["spec"], Is.EqualTo("NUMERICS.md"));
    }

    private static IEnumerable<string> GoldenFiles() => Golden.Files("*.safetensors");

    [TestCaseSource(nameof(GoldenFiles))]
    public void Golden_WriteBack_ReproducesTheFileByteForByte(string fileName)
    {
        string path = Golden.PathOf(fileName);
        byte[] original = File.ReadAllBytes(path);

        using var f = SafeTensorsFile.Open(path);
        var w = new SafeTensorsWriter();
        foreach (var (k, v) in f.Metadata)
            w.Metadata[k] = v;
        foreach (var t in f.Tensors)
            w.Add(t.Name, t.DType, t.Shape.ToArray(), f.GetBytes(t.Name));

        Assert.That(w.ToArray(), Is.EqualTo(original));

        string copy = Path.Combine(_dir, fileName);
        w.Save(copy);
        Assert.That(File.ReadAllBytes(copy), Is.EqualTo(original));

        using var fromBytes = SafeTensorsFile.FromBytes(original);
        Assert.That(fromBytes.Tensors, Is.EqualTo(f.Tensors));
    }

    // ------------------------------------------------------------------ malformed files

    [Test]
    public void Malformed_ShorterThan8Bytes()
    {
        var ex = Malformed(new byte[5]);
        Assert.That(ex.Message, Does.Contain("5 bytes").And.Contain("shorter than"));

        string path = Path.Combine(_dir, "tiny.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        var ex2 = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.That(ex2!.Message, Does.Contain(path).And.Contain("3 bytes"));
        Assert.That(ex2.FilePath, Is.EqualTo(path));

        string empty = Path.Combine(_dir, "empty.safetensors");
        File.WriteAllBytes(empty, []);
        Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(empty).Dispose());
    }

    [Test]
    public void Malformed_HeaderLengthLargerThanFile()
    {
        var ex = Malformed(Build(1000, Encoding.UTF8.GetBytes("{}      "), []));
        Assert.That(ex.Message, Does.Contain("header length 1000").And.Contain("8 bytes"));
    }

    [Test]
    public void Malformed_HeaderLengthOver100MB()
    {
        var ex = Malformed(Build(200_000_000, Encoding.UTF8.GetBytes("{}      "), []));
        Assert.That(ex.Message, Does.Contain("200000000").And.Contain("limit"));

        var ex2 = Malformed(Build(ulong.MaxValue, Encoding.UTF8.GetBytes("{}      "), []));
        Assert.That(ex2.Message, Does.Contain(ulong.MaxValue.ToString()));
    }

    [Test]
    public void Malformed_HeaderNotUtf8()
    {
        byte[] header = [.. "{\"a"u8, 0xFF, 0xFE, .. "\":1}"u8];
        var ex = Malformed(Build(header, []));
        Assert.That(ex.Message, Does.Contain("UTF-8"));
    }

    [TestCase("{\"a\": {\"dtype\": \"F32\"", TestName = "Malformed_HeaderNotJson(unterminated)")]
    [TestCase("{not json}", TestName = "Malformed_HeaderNotJson(bare word)")]
    [TestCase("{\"a\":1,}", TestName = "Malformed_HeaderNotJson(trailing comma)")]
    [TestCase("{} {}", TestName = "Malformed_HeaderNotJson(two values)")]
    [TestCase("{}/*c*/", TestName = "Malformed_HeaderNotJson(comment)")]
    [TestCase("", TestName = "Malformed_HeaderNotJson(empty)")]
    public void Malformed_HeaderNotJson(string header)
    {
        var ex = Malformed(Build(header));
        Assert.That(ex.Message, Does.Contain("JSON"));
    }

    [TestCase("[1,2]", "array")]
    [TestCase("\"text\"", "string")]
    [TestCase("42", "number")]
    [TestCase("null", "null")]
    public void Malformed_HeaderNotAnObject(string header, string kind)
    {
        var ex = Malformed(Build(header));
        Assert.That(ex.Message, Does.Contain("JSON " + kind).And.Contain("expected a JSON object"));
    }

    [TestCase("""{"t":{"shape":[1],"data_offsets":[0,4]}}""", "\"dtype\"")]
    [TestCase("""{"t":{"dtype":"F32","data_offsets":[0,4]}}""", "\"shape\"")]
    [TestCase("""{"t":{"dtype":"F32","shape":[1]}}""", "\"data_offsets\"")]
    public void Malformed_EntryMissingField(string header, string field)
    {
        var ex = Malformed(Build(header, 4));
        Assert.That(ex.Message, Does.Contain("missing " + field).And.Contain("'t'"));
        Assert.That(ex.TensorName, Is.EqualTo("t"));
    }

    [TestCase("""{"t":5}""", "the entry is a JSON number")]
    [TestCase("""{"t":[]}""", "the entry is a JSON array")]
    [TestCase("""{"t":{"dtype":5,"shape":[1],"data_offsets":[0,4]}}""", "\"dtype\" is a JSON number")]
    [TestCase("""{"t":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}""", "\"shape\" is a JSON string")]
    [TestCase("""{"t":{"dtype":"F32","shape":[1],"data_offsets":{"b":0}}}""", "\"data_offsets\" is a JSON object")]
    [TestCase("""{"t":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}""", "\"shape\"[0] is a JSON boolean")]
    [TestCase("""{"t":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}""", "\"shape\"[0] is 1.5")]
    [TestCase("""{"t":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}""", "\"shape\"[0] is the string \"1\"")]
    [TestCase("""{"t":{"dtype":null,"shape":[1],"data_offsets":[0,4]}}""", "\"dtype\" is a JSON null")]
    public void Malformed_EntryFieldOfWrongJsonType(string header, string expected)
    {
        var ex = Malformed(Build(header, 4));
        Assert.That(ex.Message, Does.Contain(expected).And.Contain("'t'"));
    }

    [TestCase("F7")]
    [TestCase("f32")]
    [TestCase("BOOL")]
    [TestCase("1")]
    public void Malformed_UnknownDType(string dtype)
    {
        var ex = Malformed(Build($$$"""{"t":{"dtype":"{{{dtype}}}","shape":[1],"data_offsets":[0,4]}}""", 4));
        Assert.That(ex.Message, Does.Contain($"unknown dtype \"{dtype}\"").And.Contain("'t'"));
    }

    [Test]
    public void Malformed_NegativeDimension()
    {
        var ex = Malformed(Build("""{"t":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,0]}}"""));
        Assert.That(ex.Message, Does.Contain("negative dimension -3").And.Contain("[2, -3]").And.Contain("'t'"));
    }

    [TestCase("[0]", "has 1 value(s)")]
    [TestCase("[0,4,8]", "has 3 value(s)")]
    [TestCase("[]", "has 0 value(s)")]
    [TestCase("[0.5,4]", "\"data_offsets\"[0] is 0.5")]
    [TestCase("[0,1e1]", "\"data_offsets\"[1] is 1e1")]
    [TestCase("[0,99999999999999999999]", "\"data_offsets\"[1] is 99999999999999999999")]
    [TestCase("[-4,0]", "negative offset")]
    [TestCase("[8,4]", "begin > end")]
    public void Malformed_DataOffsetsNotTwoOrderedNonNegativeIntegers(string offsets, string expected)
    {
        var ex = Malformed(Build($$$"""{"t":{"dtype":"F32","shape":[1],"data_offsets":{{{offsets}}}}}""", 16));
        Assert.That(ex.Message, Does.Contain(expected).And.Contain("'t'"));
    }

    [Test]
    public void Malformed_ByteLengthDoesNotMatchShape()
    {
        var ex = Malformed(Build("""{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}""", 24));
        Assert.That(ex.Message, Does.Contain("'w'").And.Contain("span 20 bytes").And.Contain("needs 24"));
    }

    [Test]
    public void Malformed_ShapeProductOverflows()
    {
        var ex = Malformed(Build("""{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"""));
        Assert.That(ex.Message, Does.Contain("overflows").And.Contain("'w'"));
        var ex2 = Malformed(Build("""{"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}}"""));
        Assert.That(ex2.Message, Does.Contain("overflows"));
    }

    [Test]
    public void Malformed_OffsetsBeyondDataRegion()
    {
        var ex = Malformed(Build("""{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 8));
        Assert.That(ex.Message, Does.Contain("'w'").And.Contain("beyond the data region").And.Contain("8 bytes"));
    }

    [Test]
    public void Malformed_TruncatedFileIsDetected()
    {
        var w = new SafeTensorsWriter();
        w.Add("first", new float[] { 1, 2 }, 2);
        w.Add("second", new double[] { 3, 4 }, 2);
        byte[] full = w.ToArray();
        using (SafeTensorsFile.FromBytes(full)) { }

        byte[] cut = full[..^1];
        var ex = Malformed(cut);
        Assert.That(ex.Message, Does.Contain("'second'").And.Contain("truncated"));

        string path = Path.Combine(_dir, "cut.safetensors");
        File.WriteAllBytes(path, full[..20]); // inside the header
        var ex2 = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.That(ex2!.Message, Does.Contain(path).And.Contain("truncated"));
    }

    [Test]
    public void Malformed_OverlappingTensors()
    {
        var ex = Malformed(Build(
            """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12));
        Assert.That(ex.Message, Does.Contain("overlap").And.Contain("'a'").And.Contain("'b'"));

        var same = Malformed(Build(
            """{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}""", 4));
        Assert.That(same.Message, Does.Contain("overlap"));
    }

    [Test]
    public void GapsAndSharedEmptyRangesAreAllowed_TensorsAreInOffsetOrder()
    {
        byte[] data = [.. BytesOf(1f), 0xEE, 0xEE, 0xEE, 0xEE, .. BytesOf(2f), 0xEE];
        byte[] file = Build(Encoding.UTF8.GetBytes(
            """{"z":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}""" +
            ""","e":{"dtype":"F32","shape":[0,7],"data_offsets":[8,8]},"s":{"dtype":"U8","shape":[0],"data_offsets":[2,2]}}"""), data);
        using var f = SafeTensorsFile.FromBytes(file);
        Assert.That(f.Tensors.Select(t => t.Name), Is.EqualTo(new[] { "z", "s", "e", "a" }));
        Assert.That(f.Read<float>("a"), Is.EqualTo(new[] { 2f }));
        Assert.That(f.Read<float>("z"), Is.EqualTo(new[] { 1f }));
        Assert.That(f.Read<float>("e"), Is.Empty);
        Assert.That(f.GetBytes("s").IsEmpty, Is.True);
    }

    [TestCase("""{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"t":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}""", "duplicate key \"t\"")]
    [TestCase("""{"__metadata__":{},"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"__metadata__":{}}""", "duplicate key \"__metadata__\"")]
    [TestCase("""{"t":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}""", "duplicate key \"dtype\"")]
    [TestCase("""{"t":{"dtype":"U8","shape":[1],"shape":[1],"data_offsets":[0,1]}}""", "duplicate key \"shape\"")]
    [TestCase("""{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"data_offsets":[0,1]}}""", "duplicate key \"data_offsets\"")]
    [TestCase("""{"__metadata__":{"k":"1","k":"2"}}""", "duplicate key \"k\"")]
    [TestCase("""{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"\u0074":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}""", "duplicate key \"t\"")]
    public void Malformed_DuplicateKeys(string header, string expected)
    {
        var ex = Malformed(Build(header, 2));
        Assert.That(ex.Message, Does.Contain(expected));
    }

    [TestCase("""{"__metadata__":{"k":1}}""", "value of \"k\" is a JSON number")]
    [TestCase("""{"__metadata__":{"ok":"x","k":["a"]}}""", "value of \"k\" is a JSON array")]
    [TestCase("""{"__metadata__":{"k":null}}""", "value of \"k\" is a JSON null")]
    [TestCase("""{"__metadata__":{"k":{"a":"b"}}}""", "value of \"k\" is a JSON object")]
    [TestCase("""{"__metadata__":["a"]}""", "\"__metadata__\" is a JSON array")]
    [TestCase("""{"__metadata__":"a"}""", "\"__metadata__\" is a JSON string")]
    public void Malformed_MetadataValuesNotStrings(string header, string expected)
    {
        var ex = Malformed(Build(header));
        Assert.That(ex.Message, Does.Contain(expected).And.Contain("__metadata__"));
    }

    [Test]
    public void Lenient_HeaderWhitespaceAndUnknownEntryFieldsAreAccepted()
    {
        byte[] file = Build(Encoding.UTF8.GetBytes(
            """ { "t" : { "extra" : {"x":[1,2]}, "dtype" : "I32", "shape" : [ ], "data_offsets" : [ 0 , 4 ] } }      """), BytesOf(-5));
        using var f = SafeTensorsFile.FromBytes(file);
        Assert.That(f.Read<int>("t"), Is.EqualTo(new[] { -5 }));
        Assert.That(f.GetInfo("t").Shape, Is.Empty);
        Assert.That(f.Metadata, Is.Empty);
    }

    [Test]
    public void Malformed_Open_MessageNamesTheFile()
    {
        string path = Path.Combine(_dir, "bad.safetensors");
        File.WriteAllBytes(path, Build("""{"t":{"dtype":"Q8","shape":[1],"data_offsets":[0,1]}}""", 1));
        var ex = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.That(ex!.Message, Does.Contain(path).And.Contain("'t'").And.Contain("\"Q8\""));
        Assert.That(ex.FilePath, Is.EqualTo(path));
        Assert.That(ex.TensorName, Is.EqualTo("t"));
    }

    // ------------------------------------------------------------------ API misuse

    private static SafeTensorsFile Sample()
    {
        var w = new SafeTensorsWriter();
        w.Add("weight", new float[] { 1, 2, 3, 4 }, 2, 2);
        w.Add("bias", new BFloat16[] { BFloat16.FromSingle(1), BFloat16.FromSingle(2) }, 2);
        w.Add("codes", new byte[] { 1, 2, 3 }, 3);
        w.Add("index", new long[] { 1 }, 1);
        return SafeTensorsFile.FromBytes(w.ToArray());
    }

    [Test]
    public void Read_WithTheWrongType_Throws()
    {
        using var f = Sample();
        var ex = Assert.Throws<InvalidOperationException>(() => f.Read<double>("weight"));
        Assert.That(ex!.Message, Does.Contain("'weight'").And.Contain("F32").And.Contain("System.Double"));
        Assert.Throws<InvalidOperationException>(() => f.Read<int>("weight"));
        Assert.Throws<InvalidOperationException>(() => f.Read<Half>("bias"));
        Assert.Throws<InvalidOperationException>(() => f.Read<short>("bias"));
        Assert.Throws<InvalidOperationException>(() => f.Read<sbyte>("codes"));
        Assert.Throws<InvalidOperationException>(() => f.Read<Float8E4M3>("codes")); // U8, not F8_E4M3
        Assert.Throws<InvalidOperationException>(() => f.Read<ulong>("index"));
        Assert.Throws<InvalidOperationException>(() => f.ReadAsSingle("codes"));
        Assert.Throws<InvalidOperationException>(() => f.ReadAsSingle("index"));

        Assert.That(f.Read<ushort>("bias"), Is.EqualTo(new ushort[] { 0x3F80, 0x4000 }));
        Assert.That(f.ReadAsSingle("bias"), Is.EqualTo(new[] { 1f, 2f }));
    }

    [Test]
    public void GetInfo_MissingName_ThrowsKeyNotFoundListingSomeNames()
    {
        using var f = Sample();
        var ex = Assert.Throws<KeyNotFoundException>(() => f.GetInfo("weights"));
        Assert.That(ex!.Message, Does.Contain("'weights'").And.Contain("'weight'").And.Contain("4 tensor"));
        Assert.Throws<KeyNotFoundException>(() => f.GetBytes("nope"));
        Assert.Throws<KeyNotFoundException>(() => f.Read<float>("nope"));
        Assert.Throws<KeyNotFoundException>(() => f.ReadAsSingle("nope"));
        Assert.That(f.Contains("weight"), Is.True);
        Assert.That(f.Contains("Weight"), Is.False);
    }

    [Test]
    public void UseAfterDispose_Throws_DisposeTwiceIsFine([Values] bool mapped)
    {
        SafeTensorsFile f;
        if (mapped)
        {
            string path = Path.Combine(_dir, "d.safetensors");
            using (var s = Sample())
            {
                var w = new SafeTensorsWriter();
                foreach (var t in s.Tensors)
                    w.Add(t.Name, t.DType, t.Shape.ToArray(), s.GetBytes(t.Name));
                w.Save(path);
            }
            f = SafeTensorsFile.Open(path);
        }
        else
        {
            f = Sample();
        }
        Assert.That(f.Read<float>("weight"), Is.EqualTo(new float[] { 1, 2, 3, 4 }));
        f.Dispose();
        Assert.DoesNotThrow(f.Dispose);

        Assert.Throws<ObjectDisposedException>(() => f.GetBytes("weight"));
        Assert.Throws<ObjectDisposedException>(() => f.Read<float>("weight"));
        Assert.Throws<ObjectDisposedException>(() => f.ReadAsSingle("weight"));
        Assert.Throws<ObjectDisposedException>(() => f.GetInfo("weight"));
        Assert.Throws<ObjectDisposedException>(() => f.Contains("weight"));
        Assert.Throws<ObjectDisposedException>(() => _ = f.Tensors);
        Assert.Throws<ObjectDisposedException>(() => _ = f.Metadata);
    }

    [Test]
    public void Writer_RejectsBadArguments()
    {
        var w = new SafeTensorsWriter();
        w.Add("a", new float[] { 1 }, 1);

        var dup = Assert.Throws<ArgumentException>(() => w.Add("a", new float[] { 2 }, 1));
        Assert.That(dup!.ParamName, Is.EqualTo("name"));
        Assert.That(dup.Message, Does.Contain("'a'"));
        var dupBytes = Assert.Throws<ArgumentException>(() => w.Add("a", SafeTensorsDType.U8, [1], [1]));
        Assert.That(dupBytes!.ParamName, Is.EqualTo("name"));

        var meta = Assert.Throws<ArgumentException>(() => w.Add("__metadata__", new float[] { 1 }, 1));
        Assert.That(meta!.ParamName, Is.EqualTo("name"));
        Assert.Throws<ArgumentNullException>(() => w.Add(null!, new float[] { 1 }, 1));
        var surrogate = Assert.Throws<ArgumentException>(() => w.Add("bad\uD800", new float[] { 1 }, 1));
        Assert.That(surrogate!.ParamName, Is.EqualTo("name"));

        var len = Assert.Throws<ArgumentException>(() => w.Add("b", SafeTensorsDType.F32, [2, 2], new byte[15]));
        Assert.That(len!.ParamName, Is.EqualTo("data"));
        Assert.That(len.Message, Does.Contain("16").And.Contain("15"));
        var count = Assert.Throws<ArgumentException>(() => w.Add("b", new float[] { 1, 2, 3 }, 2, 2));
        Assert.That(count!.ParamName, Is.EqualTo("data"));

        Assert.Throws<ArgumentOutOfRangeException>(() => w.Add("b", new float[] { 1 }, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => w.Add("b", (SafeTensorsDType)99, [1], [1]));
        Assert.Throws<ArgumentException>(() => w.Add("b", ReadOnlySpan<float>.Empty, long.MaxValue, 2));
        Assert.Throws<ArgumentException>(() => w.Add("b", new sbyte[] { 1 }, 1));
        Assert.Throws<ArgumentException>(() => w.Add("b", new short[] { 1 }, 1));

        // Nothing bad was added.
        using var f = SafeTensorsFile.FromBytes(w.ToArray());
        Assert.That(f.Tensors.Select(t => t.Name), Is.EqualTo(new[] { "a" }));
    }

    [Test]
    public void SafeTensorInfo_ValueEqualityAndElementCount()
    {
        var a = new SafeTensorInfo("x", SafeTensorsDType.F32, new long[] { 2, 3 }, 0, 24);
        var b = new SafeTensorInfo("x", SafeTensorsDType.F32, new List<long> { 2, 3 }, 0, 24);
        Assert.That(a, Is.EqualTo(b));
        Assert.That(a.GetHashCode(), Is.EqualTo(b.GetHashCode()));
        Assert.That(a with { Shape = new long[] { 3, 2 } }, Is.Not.EqualTo(b));
        Assert.That((a with { Shape = new long[] { 3, 2, 5 } }).ElementCount, Is.EqualTo(30));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new SafeTensorInfo("n", SafeTensorsDType.U8, new long[] { -1 }, 0, 0));
        Assert.That(a.ElementCount, Is.EqualTo(6));
        Assert.That(a.ToString(), Does.Contain("Shape = [2, 3]"));
        Assert.That(new SafeTensorInfo("s", SafeTensorsDType.F64, Array.Empty<long>(), 0, 8).ElementCount, Is.EqualTo(1));
        Assert.That(SafeTensorsDType.F8_E5M2.ElementSize(), Is.EqualTo(1));
        Assert.That(SafeTensorsDType.BF16.ElementSize(), Is.EqualTo(2));
        Assert.That(SafeTensorsDType.I64.ElementSize(), Is.EqualTo(8));
    }
}
