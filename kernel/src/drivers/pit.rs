//! The programmable interval timer (8253/8254 PIT), channel 0 at about
//! 1000 Hz: what makes the kernel's clock ([`crate::time`]) tick.

use crate::arch::interrupts::{self, IrqLine, RegisterError};
use crate::time;
use spin::Once;
use x86_64::instructions::port::Port;

const CHANNEL_0: u16 = 0x40;
const MODE: u16 = 0x43;
/// Channel 0, low byte then high byte, mode 2 (rate generator), binary.
const RATE_GENERATOR: u8 = 0b0011_0100;
/// The PIT's ISA interrupt line.
const IRQ: u8 = 0;

/// The PIT's input clock, in Hz.
const INPUT_HZ: u64 = 1_193_182;
/// Divisor for about 1000 interrupts per second (1000.15 Hz: the input clock
/// does not divide evenly); the clock uses the exact period.
const DIVISOR: u64 = 1193;
/// Ticks per second, rounded.
pub const HZ: u64 = INPUT_HZ / DIVISOR;
const PERIOD_FS: u64 = DIVISOR * 1_000_000_000_000_000 / INPUT_HZ;

static LINE: Once<IrqLine> = Once::new();

/// Starts the clock and programs channel 0 as a rate generator.
pub fn init() -> Result<(), RegisterError> {
    time::start(PERIOD_FS);
    let line = interrupts::register(IRQ, time::tick)?;
    LINE.call_once(|| line);
    // SAFETY: MODE and CHANNEL_0 are the PIT's registers, owned by this
    // driver; the divisor goes low byte first, as the mode says.
    unsafe {
        Port::<u8>::new(MODE).write(RATE_GENERATOR);
        Port::<u8>::new(CHANNEL_0).write(DIVISOR as u8);
        Port::<u8>::new(CHANNEL_0).write((DIVISOR >> 8) as u8);
    }
    Ok(())
}
