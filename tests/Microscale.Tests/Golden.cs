namespace Microscale.Tests;

/// <summary>Paths of the golden vectors copied from ../shared/golden into tests/golden.</summary>
internal static class Golden
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "golden");

    public static string PathOf(string fileName) => Path.Combine(Directory, fileName);

    public static IEnumerable<string> Files(string pattern) =>
        System.IO.Directory.GetFiles(Directory, pattern).Select(Path.GetFileName).Order()!;
}
