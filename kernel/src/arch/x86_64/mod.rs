//! x86_64 CPU control.

pub mod pci;
pub mod vga;

use x86_64::instructions::{hlt, interrupts};

/// The kernel's idle loop: sleep until an interrupt arrives, forever.
pub fn idle() -> ! {
    log::info!("boot complete, entering the idle loop");
    loop {
        hlt();
    }
}

/// Stops this CPU for good: interrupts off, then `hlt` in a loop (an NMI can
/// still wake it, hence the loop).
pub fn halt() -> ! {
    interrupts::disable();
    loop {
        hlt();
    }
}
