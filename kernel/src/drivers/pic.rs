//! The two 8259 programmable interrupt controllers: the PC's original
//! interrupt controller, cascaded on line 2. Remapped to vectors 32..47
//! (0..31 are the CPU's exceptions), every line masked until a driver
//! registers it, and installed as the kernel's interrupt controller; or,
//! where the I/O APIC takes over, remapped and masked for good.

use crate::arch::interrupts::{self, Controller, FIRST_VECTOR};
use crate::sync::IrqSafeMutex;
use pic8259::ChainedPics;
use x86_64::instructions::port::Port;

/// Command ports (the data ports, one above each, are driven through
/// `pic8259`).
const PRIMARY_COMMAND: u16 = 0x20;
const SECONDARY_COMMAND: u16 = 0xa0;
/// Operation command words.
const READ_IN_SERVICE: u8 = 0x0b;
const END_OF_INTERRUPT: u8 = 0x20;

const PRIMARY_OFFSET: u8 = FIRST_VECTOR;
const SECONDARY_OFFSET: u8 = PRIMARY_OFFSET + 8;
/// The line the secondary PIC is cascaded on.
const CASCADE: u8 = 2;
/// Each PIC's lowest-priority line, raised for requests that vanished.
const SPURIOUS_PRIMARY: u8 = 7;
const SPURIOUS_SECONDARY: u8 = 15;

struct Pics {
    chained: IrqSafeMutex<ChainedPics>,
}

static PICS: Pics = Pics {
    chained: IrqSafeMutex::new(
        // SAFETY: the offsets put the PICs' vectors right after the CPU
        // exceptions, where the IDT dispatches device vectors.
        unsafe { ChainedPics::new(PRIMARY_OFFSET, SECONDARY_OFFSET) },
    ),
};

/// Remaps both PICs, masks every line but the cascade and makes them the
/// interrupt controller that drivers' lines go through.
pub fn init() {
    // SAFETY: the PICs are programmed once, at boot, before interrupts are
    // enabled, and every vector they can raise has a handler in the IDT.
    unsafe {
        let mut pics = PICS.chained.lock();
        pics.initialize();
        pics.write_masks(!(1 << CASCADE), 0xff);
    }
    interrupts::set_controller(&PICS);
}

/// Remaps both PICs out of the exceptions' vectors and masks every line, for
/// machines whose interrupts go through the I/O APIC. On a machine without
/// 8259s the writes go nowhere.
pub fn disable() {
    // SAFETY: as for `init`; with every line masked they raise nothing.
    unsafe {
        let mut pics = PICS.chained.lock();
        pics.initialize();
        pics.write_masks(0xff, 0xff);
    }
}

/// Whether `line` (7 or 15) really is in service: a PIC raises those lines
/// for interrupts that vanished before acknowledgement, and then its
/// in-service register has the bit clear.
fn in_service(command: u16) -> bool {
    // SAFETY: OCW3 READ_IN_SERVICE selects the in-service register for the
    // next read of the same command port; nothing else is changed.
    let isr = unsafe {
        Port::<u8>::new(command).write(READ_IN_SERVICE);
        Port::<u8>::new(command).read()
    };
    isr & 0x80 != 0
}

impl Controller for Pics {
    fn name(&self) -> &'static str {
        "8259 PIC"
    }

    fn has_line(&self, line: u8) -> bool {
        line < 16
    }

    fn unmask(&self, line: u8) {
        self.set_masked(line, false);
    }

    fn mask(&self, line: u8) {
        self.set_masked(line, true);
    }

    fn is_genuine(&self, line: u8) -> bool {
        match line {
            SPURIOUS_PRIMARY => in_service(PRIMARY_COMMAND),
            SPURIOUS_SECONDARY => {
                let genuine = in_service(SECONDARY_COMMAND);
                if !genuine {
                    // It still came through the primary's cascade line, so
                    // the primary (only) needs its end of interrupt.
                    // SAFETY: a non-specific EOI to the primary's command port.
                    unsafe { Port::<u8>::new(PRIMARY_COMMAND).write(END_OF_INTERRUPT) };
                }
                genuine
            }
            _ => true,
        }
    }

    fn end_of_interrupt(&self, line: u8) {
        // SAFETY: called by the dispatcher once the line's handler is done.
        unsafe { self.chained.lock().notify_end_of_interrupt(PRIMARY_OFFSET + line) }
    }
}

impl Pics {
    fn set_masked(&self, line: u8, masked: bool) {
        let mut pics = self.chained.lock();
        // SAFETY: the masks only change which lines are delivered; a line is
        // unmasked only once a handler is registered for it.
        unsafe {
            let [primary, secondary] = pics.read_masks();
            let mut masks = u16::from_le_bytes([primary, secondary]);
            if masked {
                masks |= 1 << line;
            } else {
                masks &= !(1 << line);
            }
            let [primary, secondary] = masks.to_le_bytes();
            pics.write_masks(primary, secondary);
        }
    }
}
