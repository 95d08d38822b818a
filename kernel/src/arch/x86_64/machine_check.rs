//! Machine-check architecture: the CPU's own reports of hardware errors. At
//! boot the kernel turns reporting on (without it a machine check resets
//! the machine); when one strikes, the banks that hold an error are read
//! out for the fatal report.

use core::arch::x86_64::__cpuid;
use core::fmt;
use x86_64::registers::control::{Cr4, Cr4Flags};
use x86_64::registers::model_specific::Msr;

const MCG_CAP: u32 = 0x179;
const MCG_STATUS: u32 = 0x17a;
const MCG_CTL: u32 = 0x17b;
/// Bank `i`'s registers are at `MC0_CTL + 4 * i` (CTL, STATUS, ADDR, MISC).
const MC0_CTL: u32 = 0x400;
/// MCG_CAP: the bank count, and whether MCG_CTL exists.
const BANK_COUNT: u64 = 0xff;
const CTL_PRESENT: u64 = 1 << 8;
/// MCi_STATUS bits.
const VALID: u64 = 1 << 63;
const UNCORRECTED: u64 = 1 << 61;
const ADDRESS_VALID: u64 = 1 << 58;
const CONTEXT_CORRUPT: u64 = 1 << 57;
/// CPUID.1:EDX: machine-check exception, and the architecture's MSRs.
const CPUID_MCE: u32 = 1 << 7;
const CPUID_MCA: u32 = 1 << 14;

fn read(msr: u32) -> u64 {
    // SAFETY: only called for MSRs that CPUID and MCG_CAP say exist.
    unsafe { Msr::new(msr).read() }
}

fn banks() -> u32 {
    let features = __cpuid(1).edx;
    if features & CPUID_MCA == 0 { 0 } else { (read(MCG_CAP) & BANK_COUNT) as u32 }
}

/// Turns machine-check reporting on: every bank's error types enabled, then
/// the exception itself (CR4.MCE).
pub fn enable() {
    if __cpuid(1).edx & CPUID_MCE == 0 {
        return;
    }
    let banks = banks();
    // SAFETY: the MSRs written exist (CPUID and MCG_CAP say so); all ones
    // enables the reporting of every error type, as the SDM recommends.
    unsafe {
        if banks > 0 && read(MCG_CAP) & CTL_PRESENT != 0 {
            Msr::new(MCG_CTL).write(u64::MAX);
        }
        for bank in 0..banks {
            Msr::new(MC0_CTL + 4 * bank).write(u64::MAX);
        }
        Cr4::update(|flags| flags.insert(Cr4Flags::MACHINE_CHECK_EXCEPTION));
    }
}

/// The global status and every bank holding an error, read when formatted.
pub struct Banks;

impl fmt::Display for Banks {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let banks = banks();
        if banks == 0 {
            return Ok(());
        }
        write!(f, "\n  MCG_STATUS {:#x}", read(MCG_STATUS))?;
        for bank in 0..banks {
            let status = read(MC0_CTL + 4 * bank + 1);
            if status & VALID == 0 {
                continue;
            }
            write!(f, "\n  bank {bank}: status {status:#x}")?;
            if status & ADDRESS_VALID != 0 {
                write!(f, ", address {:#x}", read(MC0_CTL + 4 * bank + 2))?;
            }
            if status & UNCORRECTED != 0 {
                f.write_str(", uncorrected")?;
            }
            if status & CONTEXT_CORRUPT != 0 {
                f.write_str(", processor context corrupt")?;
            }
        }
        Ok(())
    }
}
