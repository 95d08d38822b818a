//! The programmable interval timer (8253/8254 PIT). Channel 0 at about
//! 1000 Hz makes the kernel's clock ([`crate::time`]) tick where the local
//! APIC timer is not used; channel 2, counting freely with its output
//! unused, is the calibration reference of last resort.

use crate::arch::interrupts::{self, IrqLine, RegisterError};
use crate::sync::IrqSafeMutex;
use crate::time::{self, Widened};
use spin::Once;
use x86_64::instructions::port::Port;

const CHANNEL_0: u16 = 0x40;
const CHANNEL_2: u16 = 0x42;
const MODE: u16 = 0x43;
/// The PC's system control port B: bit 0 gates channel 2, bit 1 would let
/// its output drive the speaker.
const PORT_B: u16 = 0x61;
const GATE_2: u8 = 1 << 0;
const SPEAKER: u8 = 1 << 1;
/// Channel 0 (or 2), low byte then high byte, mode 2 (rate generator), binary.
const RATE_GENERATOR_0: u8 = 0b0011_0100;
const RATE_GENERATOR_2: u8 = 0b1011_0100;
/// Latches channel 2's count for reading.
const LATCH_2: u8 = 0b1000_0000;
/// The PIT's ISA interrupt line.
const IRQ: u8 = 0;

/// The PIT's input clock, in Hz.
pub const INPUT_HZ: u64 = 1_193_182;
/// Divisor for about 1000 interrupts per second (1000.15 Hz: the input clock
/// does not divide evenly); the clock uses the exact period.
const DIVISOR: u64 = 1193;
/// Ticks per second, rounded.
pub const HZ: u64 = INPUT_HZ / DIVISOR;
const PERIOD_FS: u64 = DIVISOR * 1_000_000_000_000_000 / INPUT_HZ;

static LINE: Once<IrqLine> = Once::new();
/// Channel 2's count, counted upwards and widened.
static REFERENCE: IrqSafeMutex<Widened> = IrqSafeMutex::new(Widened::new(16));

/// Starts the clock and programs channel 0 as a rate generator.
pub fn init() -> Result<(), RegisterError> {
    time::start(PERIOD_FS);
    let line = interrupts::register(IRQ, time::tick)?;
    LINE.call_once(|| line);
    // SAFETY: MODE and CHANNEL_0 are the PIT's registers, owned by this
    // driver; the divisor goes low byte first, as the mode says.
    unsafe {
        Port::<u8>::new(MODE).write(RATE_GENERATOR_0);
        Port::<u8>::new(CHANNEL_0).write(DIVISOR as u8);
        Port::<u8>::new(CHANNEL_0).write((DIVISOR >> 8) as u8);
    }
    Ok(())
}

/// Starts channel 2 counting down from 65536, over and over, with the
/// speaker off, and reports whether it counts: a machine without a PIT
/// reads the same value every time.
pub fn start_reference() -> bool {
    // SAFETY: channel 2 and its gate belong to this driver; the speaker bit
    // is cleared so nothing is heard.
    unsafe {
        let mut port_b = Port::<u8>::new(PORT_B);
        let control = port_b.read();
        port_b.write(control & !SPEAKER | GATE_2);
        Port::<u8>::new(MODE).write(RATE_GENERATOR_2);
        Port::<u8>::new(CHANNEL_2).write(0);
        Port::<u8>::new(CHANNEL_2).write(0);
    }
    let first = read_channel_2();
    (0..10_000).any(|_| read_channel_2() != first)
}

/// Channel 2's input clock cycles since [`start_reference`], as long as
/// this is read at least every 55 ms (a full count).
pub fn reference_count() -> u64 {
    // The channel counts down; the widened count goes up.
    REFERENCE.lock().update(u64::from(!read_channel_2()))
}

fn read_channel_2() -> u16 {
    // SAFETY: latching and reading channel 2's count has no effect on the
    // counting; the latch keeps the two bytes consistent.
    unsafe {
        Port::<u8>::new(MODE).write(LATCH_2);
        let low = Port::<u8>::new(CHANNEL_2).read();
        let high = Port::<u8>::new(CHANNEL_2).read();
        u16::from_le_bytes([low, high])
    }
}
