namespace Microscale;

/// <summary>How a conversion to an 8-bit float treats values beyond the largest finite value (NUMERICS.md §1).</summary>
public enum OverflowMode
{
    /// <summary>
    /// <c>satfinite</c>: finite values beyond the maximum and ±Inf become ±max; NaN becomes the NaN code 0x7F.
    /// What every quantizer and PTX <c>cvt.rn.satfinite</c> do.
    /// </summary>
    Saturate,

    /// <summary>
    /// IEEE-like: E4M3FN overflow (|x| &gt; 464, ±Inf) becomes NaN with the input's sign; E5M2 overflow
    /// (|x| ≥ 61440) becomes ±Inf. What a plain cast in PyTorch or ml_dtypes does.
    /// </summary>
    Ieee,
}
