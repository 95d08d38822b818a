//! The ACPI power management timer: a counter at 3.579545 MHz, 24 or 32
//! bits wide, in the FADT's fixed hardware. It calibrates the TSC and the
//! local APIC timer when there is no HPET, and is the clock when neither the
//! TSC nor the HPET can be. Its count is widened to 64 bits here, which
//! needs a reading at least once per wrap-around (4.7 s at 24 bits): the
//! timer's ticks read the clock every millisecond.

use super::acpi::{Fadt, Register};
use crate::sync::IrqSafeMutex;
use crate::time::Widened;
use spin::Once;

/// The timer's frequency, fixed by the ACPI specification.
pub const HZ: u64 = 3_579_545;

static REGISTER: Once<Register> = Once::new();
static WIDENED: IrqSafeMutex<Widened> = IrqSafeMutex::new(Widened::new(24));

/// Takes the PM timer the FADT describes; false if it describes none.
pub fn init(fadt: &Fadt) -> bool {
    let Some(register) = fadt.pm_timer else { return false };
    REGISTER.call_once(|| register);
    *WIDENED.lock() = Widened::new(if fadt.pm_timer_is_32_bit { 32 } else { 24 });
    true
}

/// The count, widened to 64 bits.
pub fn counter() -> u64 {
    let raw = REGISTER.get().map_or(0, Register::read);
    WIDENED.lock().update(raw)
}
