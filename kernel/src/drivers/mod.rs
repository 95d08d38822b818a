//! Device drivers: one module per device of the PC platform. Each owns its
//! ports (named once, at its top) and its state, and claims its interrupt
//! line through [`crate::arch::interrupts::register`].

pub mod pci;
pub mod pic;
pub mod pit;
pub mod ps2;
pub mod rtc;
pub mod uart;
pub mod vga;

use crate::arch::{self, interrupts};

/// Installs the interrupt controller, lets each device claim its line, and
/// enables interrupts. A device whose line cannot be had is logged and left
/// out; the rest still work.
pub fn init() {
    pic::init();
    let claims =
        [("timer (PIT)", pit::init()), ("PS/2 keyboard", ps2::init()), ("COM1", uart::enable_interrupts())];
    for (device, claim) in claims {
        if let Err(error) = claim {
            log::error!("{device}: no interrupts: {error}");
        }
    }
    arch::enable_interrupts();
    log::info!("interrupts through the {}, timer at {} Hz", interrupts::controller_name(), pit::HZ);
}

/// Restarts the machine: the keyboard controller's reset line, and if that
/// does nothing, a triple fault.
pub fn reboot() -> ! {
    log::info!("rebooting: pulsing the reset line through the keyboard controller");
    uart::flush();
    ps2::pulse_reset_line();
    for _ in 0..1_000_000 {
        core::hint::spin_loop();
    }
    log::warn!("the keyboard controller did not reset the machine; forcing a triple fault");
    uart::flush();
    arch::triple_fault()
}
