using Microscale.IO;

namespace Microscale.Tests.Unit;

/// <summary>Every element and scale codec against codecs.safetensors (ml_dtypes reference), bit for bit.</summary>
[TestFixture]
public sealed class CodecGoldenTests
{
    private SafeTensorsFile _file = null!;
    private float[] _input = null!;

    [OneTimeSetUp]
    public void Open()
    {
        _file = SafeTensorsFile.Open(Golden.PathOf("codecs.safetensors"));
        _input = _file.Read<float>("input_f32");
    }

    [OneTimeTearDown]
    public void Close() => _file.Dispose();

    private void AssertCodes(string tensor, Func<float, byte> encode)
    {
        byte[] expected = _file.Read<byte>(tensor);
        var actual = _input.Select(encode).ToArray();
        for (int i = 0; i < expected.Length; i++)
            if (expected[i] != actual[i])
                Assert.Fail($"{tensor}: input {_input[i]:R} (0x{BitConverter.SingleToInt32Bits(_input[i]):X8}) at {i}: expected 0x{expected[i]:X2}, got 0x{actual[i]:X2}");
        Assert.That(actual, Has.Length.EqualTo(expected.Length).And.Length.GreaterThan(25000));
    }

    [Test] public void E2M1Saturate() => AssertCodes("e2m1_sat", x => Float4E2M1.FromSingle(x).RawValue);
    [Test] public void E4M3Saturate() => AssertCodes("e4m3_sat", x => Float8E4M3.FromSingle(x, OverflowMode.Saturate).RawValue);
    [Test] public void E4M3Ieee() => AssertCodes("e4m3_ieee", x => Float8E4M3.FromSingle(x, OverflowMode.Ieee).RawValue);
    [Test] public void E5M2Saturate() => AssertCodes("e5m2_sat", x => Float8E5M2.FromSingle(x, OverflowMode.Saturate).RawValue);
    [Test] public void E5M2Ieee() => AssertCodes("e5m2_ieee", x => Float8E5M2.FromSingle(x, OverflowMode.Ieee).RawValue);
    [Test] public void UE4M3Saturate() => AssertCodes("ue4m3_sat", x => Float8UE4M3.FromSingle(x).RawValue);

    [Test]
    public void BFloat16RoundToNearestEven()
    {
        ushort[] expected = _file.Read<ushort>("bf16");
        for (int i = 0; i < expected.Length; i++)
            Assert.That(((BFloat16)_input[i]).RawValue, Is.EqualTo(expected[i]), $"input {_input[i]:R} at {i}");
    }

    [Test]
    public void DecodeTables()
    {
        Exact.AssertFloats(_file.Read<float>("decode_e2m1"), Enumerable.Range(0, 16).Select(c => Float4E2M1.FromRawValue((byte)c).ToSingle()).ToArray(), "e2m1");
        Exact.AssertFloats(_file.Read<float>("decode_e4m3"), Enumerable.Range(0, 256).Select(c => Float8E4M3.FromRawValue((byte)c).ToSingle()).ToArray(), "e4m3");
        Exact.AssertFloats(_file.Read<float>("decode_e5m2"), Enumerable.Range(0, 256).Select(c => Float8E5M2.FromRawValue((byte)c).ToSingle()).ToArray(), "e5m2");
        Exact.AssertFloats(_file.Read<float>("decode_e8m0"), Enumerable.Range(0, 256).Select(c => Float8E8M0.FromRawValue((byte)c).ToSingle()).ToArray(), "e8m0");
    }

    [Test]
    public void BulkConversionsMatchScalar()
    {
        var codes = new Float8E4M3[_input.Length];
        SmallFloat.ConvertFromSingle<Float8E4M3>(_input, codes, OverflowMode.Saturate);
        var back = new float[_input.Length];
        SmallFloat.ConvertToSingle<Float8E4M3>(codes, back);
        byte[] expected = _file.Read<byte>("e4m3_sat");
        Exact.AssertBytes(expected, codes.Select(c => c.RawValue).ToArray(), "bulk e4m3");
        Exact.AssertFloats(codes.Select(c => c.ToSingle()).ToArray(), back, "bulk decode");
    }

    [Test]
    public void BulkConversionRejectsShortDestination()
    {
        var ex = Assert.Throws<ArgumentException>(() => SmallFloat.ConvertFromSingle<BFloat16>(new float[4], new BFloat16[3]));
        Assert.That(ex!.ParamName, Is.EqualTo("destination"));
    }

    [Test]
    public void PackingPutsEvenElementInLowNibble()
    {
        var values = new[] { Float4E2M1.FromSingle(0.5f), Float4E2M1.FromSingle(-6f), Float4E2M1.FromSingle(3f) };
        var packed = new byte[2];
        Float4E2M1.Pack(values, packed);
        Assert.That(packed, Is.EqualTo(new byte[] { 0xF1, 0x05 }));
        var unpacked = new Float4E2M1[3];
        Float4E2M1.Unpack(packed, unpacked);
        Assert.That(unpacked.Select(v => v.ToSingle()), Is.EqualTo(new[] { 0.5f, -6f, 3f }));
    }

    [Test]
    public void SignedZeroAndEqualitySemantics()
    {
        Assert.That(Float8E4M3.FromSingle(-0.0f, OverflowMode.Saturate).RawValue, Is.EqualTo(0x80));
        Assert.That(Float4E2M1.FromSingle(-0.1f).RawValue, Is.EqualTo(0x8), "negative values that round to zero keep the sign");
        Assert.That(Float8E4M3.NaN == Float8E4M3.NaN, Is.False);
        Assert.That(Float8E4M3.NaN.Equals(Float8E4M3.NaN), Is.True);
        Assert.That(Float8E4M3.FromRawValue(0x80) == Float8E4M3.FromRawValue(0x00), Is.True);
        Assert.That(((BFloat16)1.5f).ToString(), Is.EqualTo("1.5"));
        Assert.That(Float8E8M0.FromExponent(-3).ToSingle(), Is.EqualTo(0.125f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Float8E8M0.FromExponent(128));
    }
}
