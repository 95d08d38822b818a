//! The HPET (high precision event timer). Only its main counter is used: a
//! free-running up-counter whose period the HPET states, which calibrates
//! the TSC and the local APIC timer and, when the TSC cannot be the clock,
//! is the clock itself. Its comparators stay off.

use super::acpi;
use crate::mem::paging;
use crate::sync::IrqSafeMutex;
use crate::time::Widened;
use core::fmt;
use spin::Once;

/// Registers, as offsets into the HPET's block.
const CAPABILITIES: u64 = 0x000;
const CONFIGURATION: u64 = 0x010;
const MAIN_COUNTER: u64 = 0x0f0;
const BLOCK_BYTES: u64 = 0x400;
/// Capabilities: the counter period (femtoseconds) in the high half, and
/// whether the counter has 64 bits.
const PERIOD_SHIFT: u32 = 32;
const COUNTER_IS_64_BIT: u64 = 1 << 13;
/// Configuration: the main counter runs.
const ENABLE: u64 = 1;
/// The specification's bounds on the period: above 0, at most 100 ns.
const MAX_PERIOD_FS: u64 = 100_000_000;
const FS_PER_S: u64 = 1_000_000_000_000_000;

/// The mapped register block.
static REGISTERS: Once<u64> = Once::new();
/// A 32-bit counter's readings, widened (a 64-bit one is used as it is).
static WIDENED: IrqSafeMutex<Option<Widened>> = IrqSafeMutex::new(None);

/// Why the HPET cannot be used.
#[derive(Debug)]
pub enum Error {
    Map(paging::MmioError),
    BadPeriod(u64),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Map(error) => write!(f, "its registers cannot be mapped ({error:?})"),
            Self::BadPeriod(fs) => write!(f, "it states a counter period of {fs} fs, outside 1..=100000000"),
        }
    }
}

/// Maps the HPET the ACPI table describes and starts its main counter.
/// Returns the counter's frequency in Hz.
pub fn init(hpet: &acpi::Hpet) -> Result<u64, Error> {
    let registers = paging::map_mmio(hpet.address, BLOCK_BYTES).map_err(Error::Map)?;
    REGISTERS.call_once(|| registers);
    let capabilities = read_register(CAPABILITIES);
    let period = capabilities >> PERIOD_SHIFT;
    if period == 0 || period > MAX_PERIOD_FS {
        return Err(Error::BadPeriod(period));
    }
    if capabilities & COUNTER_IS_64_BIT == 0 {
        *WIDENED.lock() = Some(Widened::new(32));
    }
    write_register(CONFIGURATION, read_register(CONFIGURATION) | ENABLE);
    Ok(FS_PER_S / period)
}

/// The main counter, widened to 64 bits when it has 32 (which then must be
/// read at least once per wrap-around: 43 s at 100 MHz).
pub fn counter() -> u64 {
    let raw = read_register(MAIN_COUNTER);
    match WIDENED.lock().as_mut() {
        Some(widened) => widened.update(raw),
        None => raw,
    }
}

fn read_register(offset: u64) -> u64 {
    let Some(&registers) = REGISTERS.get() else { return 0 };
    // SAFETY: the HPET's register block is mapped uncached at `registers`,
    // and `offset` is one of its 64-bit registers; reading has no effect.
    unsafe { ((registers + offset) as *const u64).read_volatile() }
}

fn write_register(offset: u64, value: u64) {
    let Some(&registers) = REGISTERS.get() else { return };
    // SAFETY: as for `read_register`; only the configuration register is
    // written, to start the counter.
    unsafe { ((registers + offset) as *mut u64).write_volatile(value) }
}
