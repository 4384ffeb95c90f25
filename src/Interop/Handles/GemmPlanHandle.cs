using Microsoft.Win32.SafeHandles;

namespace Microscale.Interop;

/// <summary>Owns an <c>ms_gemm_plan*</c>; releasing it calls <c>ms_gemm_plan_destroy</c> (NULL-safe, cannot fail).</summary>
internal sealed class GemmPlanHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public GemmPlanHandle() : base(ownsHandle: true) { }

    protected override bool ReleaseHandle()
    {
        NativeMethods.ms_gemm_plan_destroy(handle);
        return true;
    }
}
