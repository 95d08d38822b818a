//! The i8042 PS/2 controller and the keyboard on its first port: IRQ 1
//! hands each scancode to the keyboard task through [`SCANCODES`]. The
//! controller also drives the CPU's reset line, which `reboot` pulses.

use crate::arch::interrupts::{self, IrqLine, RegisterError};
use crate::sync::queue::IrqQueue;
use spin::Once;
use x86_64::instructions::port::Port;

const DATA: u16 = 0x60;
const COMMAND: u16 = 0x64;
/// Controller commands.
const WRITE_KEYBOARD_OUTPUT: u8 = 0xd2;
const PULSE_RESET_LINE: u8 = 0xfe;
/// The keyboard's ISA interrupt line.
const IRQ: u8 = 1;

/// Scancodes (set 1, as the controller translates them) from the interrupt
/// handler to the keyboard task.
pub static SCANCODES: IrqQueue<128> = IrqQueue::new();

static LINE: Once<IrqLine> = Once::new();

/// Takes the keyboard's interrupt.
pub fn init() -> Result<(), RegisterError> {
    let line = interrupts::register(IRQ, on_interrupt)?;
    LINE.call_once(|| line);
    Ok(())
}

fn on_interrupt() {
    // SAFETY: reading the data port takes the byte that raised IRQ 1.
    let scancode = unsafe { Port::<u8>::new(DATA).read() };
    SCANCODES.push(scancode);
}

/// Makes the controller deliver `byte` as if the keyboard had sent it (the
/// "write keyboard output buffer" command), raising IRQ 1: how the test
/// kernels type without a keyboard.
pub fn inject_scancode(byte: u8) {
    // SAFETY: the command puts the next data byte into the controller's
    // output buffer as keyboard input; nothing else changes.
    unsafe {
        Port::<u8>::new(COMMAND).write(WRITE_KEYBOARD_OUTPUT);
        Port::<u8>::new(DATA).write(byte);
    }
}

/// Pulses the CPU's reset line. Returns if the controller ignores it (or is
/// absent).
pub fn pulse_reset_line() {
    // SAFETY: the command resets the machine; the caller wants exactly that.
    unsafe { Port::<u8>::new(COMMAND).write(PULSE_RESET_LINE) };
}
