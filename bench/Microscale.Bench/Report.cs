using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Microscale.Bench;

/// <summary>What the GPU sweeps share: medians, geometric means and the NAME.csv / NAME.json files.</summary>
internal static class Report
{
    // NaN marks a baseline that did not run; JSON has no NaN literal, so it is written as the string "NaN" instead of throwing.
    private static readonly JsonSerializerOptions s_json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Sorts <paramref name="samples"/> and returns element n/2 (the upper median for even n, as microscale_selftest reports).</summary>
    public static double Median(double[] samples)
    {
        Array.Sort(samples);
        return samples[samples.Length / 2];
    }

    /// <summary>Geometric mean of the finite positive values (NaN when there are none).</summary>
    public static double GeometricMean(IEnumerable<double> values)
    {
        var valid = values.Where(v => double.IsFinite(v) && v > 0).ToArray();
        return valid.Length == 0 ? double.NaN : Math.Exp(valid.Average(Math.Log));
    }

    /// <summary>Writes <paramref name="rows"/> to NAME.csv (one line per row from <paramref name="fields"/>) and NAME.json.</summary>
    public static void Save<T>(string directory, string name, string header, IReadOnlyList<T> rows, Func<T, IEnumerable<object>> fields)
    {
        using (var csv = new StreamWriter(Path.Combine(directory, name + ".csv")))
        {
            csv.WriteLine(header);
            foreach (var row in rows)
                csv.WriteLine(string.Join(',', fields(row).Select(CsvField)));
        }
        File.WriteAllText(Path.Combine(directory, name + ".json"), JsonSerializer.Serialize(rows, s_json));
    }

    private static string CsvField(object value) => value switch
    {
        string s when s.AsSpan().IndexOfAny(",\"\n") >= 0 => '"' + s.Replace("\"", "\"\"") + '"',
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
