//! The two 8259 programmable interrupt controllers, remapped to vectors
//! 32..47 (0..31 are the CPU's exceptions), every line masked until a driver
//! claims it.

use pic8259::ChainedPics;
use spin::Mutex;
use x86_64::instructions::port::Port;

pub const PRIMARY_OFFSET: u8 = 32;
pub const SECONDARY_OFFSET: u8 = PRIMARY_OFFSET + 8;

/// IRQ lines in use.
pub const TIMER: u8 = 0;
pub const KEYBOARD: u8 = 1;
pub const COM1: u8 = 4;
const CASCADE: u8 = 2;

/// The vectors on which the PICs report a spurious interrupt (IRQ 7 and 15).
pub const SPURIOUS_PRIMARY: u8 = PRIMARY_OFFSET + 7;
pub const SPURIOUS_SECONDARY: u8 = SECONDARY_OFFSET + 7;

// SAFETY: the offsets put the PICs' vectors right after the CPU exceptions.
static PICS: Mutex<ChainedPics> = Mutex::new(unsafe { ChainedPics::new(PRIMARY_OFFSET, SECONDARY_OFFSET) });

/// The vector of IRQ `line`.
pub const fn vector(line: u8) -> u8 {
    if line < 8 { PRIMARY_OFFSET + line } else { SECONDARY_OFFSET + line - 8 }
}

/// Remaps both PICs and masks every line but the cascade.
pub fn init() {
    let mut pics = PICS.lock();
    // SAFETY: the PICs are programmed once, with interrupts disabled, and
    // their vectors have handlers in the IDT.
    unsafe {
        pics.initialize();
        pics.write_masks(!(1 << CASCADE), 0xff);
    }
}

/// Unmasks IRQ `line` for the driver that handles it.
pub fn unmask(line: u8) {
    let mut pics = PICS.lock();
    // SAFETY: reading and writing the masks only changes which lines are
    // delivered; the caller has installed a handler for this one.
    unsafe {
        let [mut primary, mut secondary] = pics.read_masks();
        if line < 8 {
            primary &= !(1 << line);
        } else {
            secondary &= !(1 << (line - 8));
        }
        pics.write_masks(primary, secondary);
    }
}

/// Signals the end of IRQ `line`'s handling.
pub fn end_of_interrupt(line: u8) {
    // SAFETY: called at the end of the handler of this line's vector.
    unsafe { PICS.lock().notify_end_of_interrupt(vector(line)) }
}

/// Whether IRQ 7 (`secondary` false) or 15 really is in service: a PIC
/// raises those lines for interrupts that vanished before acknowledgement,
/// and then its in-service register has the bit clear.
fn in_service(secondary: bool) -> bool {
    let command = if secondary { 0xa0 } else { 0x20 };
    // SAFETY: OCW3 0x0b selects the in-service register for the next read of
    // the same command port; nothing else is changed.
    let isr = unsafe {
        Port::<u8>::new(command).write(0x0b);
        Port::<u8>::new(command).read()
    };
    isr & 0x80 != 0
}

/// Handles vector 39 (IRQ 7): a spurious one gets no EOI.
pub fn primary_irq7() {
    if in_service(false) {
        end_of_interrupt(7);
    }
}

/// Handles vector 47 (IRQ 15): a spurious one still came through the
/// primary's cascade line, so the primary (only) gets an EOI.
pub fn secondary_irq15() {
    if in_service(true) {
        end_of_interrupt(15);
    } else {
        // SAFETY: EOI to the primary PIC's command port for the cascade IRQ.
        unsafe { Port::<u8>::new(0x20).write(0x20) };
    }
}
