namespace Microscale.Tests.Gpu;

/// <summary>A fixture whose tests each get a fresh Native-backend context (ignored where the native library or a GPU is missing).</summary>
public abstract class NativeFixture
{
    protected MicroscaleContext Context { get; private set; } = null!;

    [SetUp]
    public void CreateNativeContext()
    {
        TestBackends.Require(Backend.Native);
        Context = MicroscaleContext.Create(Backend.Native);
    }

    [TearDown]
    public void DisposeNativeContext() => Context?.Dispose();
}
