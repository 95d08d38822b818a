//! What this CPU offers (CPUID) and its time-stamp counter.

use core::arch::x86_64::{__cpuid, _rdtsc};

/// The CPU features the platform code chooses its clock and interrupt paths
/// by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// The local APIC has x2APIC mode (registers as MSRs): CPUID.1:ECX[21].
    pub x2apic: bool,
    /// The local APIC timer has TSC-deadline mode: CPUID.1:ECX[24].
    pub tsc_deadline: bool,
    /// The TSC ticks at one rate in every power state, so it can be a clock:
    /// CPUID.80000007H:EDX[8].
    pub invariant_tsc: bool,
    /// The page attribute table exists: CPUID.1:EDX[16].
    pub pat: bool,
}

/// Asks CPUID.
pub fn features() -> Features {
    let basic = __cpuid(1);
    let max_extended = __cpuid(0x8000_0000).eax;
    let power = if max_extended >= 0x8000_0007 { __cpuid(0x8000_0007).edx } else { 0 };
    Features {
        x2apic: basic.ecx & (1 << 21) != 0,
        tsc_deadline: basic.ecx & (1 << 24) != 0,
        invariant_tsc: power & (1 << 8) != 0,
        pat: basic.edx & (1 << 16) != 0,
    }
}

/// The time-stamp counter: cycles of a fixed-rate clock when the TSC is
/// invariant.
pub fn read_tsc() -> u64 {
    // SAFETY: RDTSC only reads the counter; the kernel runs at CPL 0, where
    // it is always allowed.
    unsafe { _rdtsc() }
}
