//! Device drivers: one module per device of the PC platform. Each owns its
//! ports (named once, at its top) and its state, and claims its interrupt
//! line through [`crate::arch::interrupts::register`].

pub mod acpi;
pub mod hpet;
pub mod pci;
pub mod pic;
pub mod pit;
pub mod pm_timer;
pub mod ps2;
pub mod uart;
pub mod vga;

use crate::arch::{self, interrupts};
use crate::boot::BootInfo;

/// Reads the ACPI tables, installs the interrupt controller, lets each
/// device claim its line, and enables interrupts. Then runs the firmware's
/// AML, which may wait on the clock, for the sleep type that powering off
/// needs. A device whose line cannot be had is logged and left out; the
/// rest still work.
pub fn init(info: &BootInfo) {
    if let Err(error) = acpi::init(info) {
        log::warn!("ACPI: none: {error}");
    }
    pic::init();
    let claims =
        [("timer (PIT)", pit::init()), ("PS/2 keyboard", ps2::init()), ("COM1", uart::enable_receive())];
    for (device, claim) in claims {
        if let Err(error) = claim {
            log::error!("{device}: no interrupts: {error}");
        }
    }
    arch::enable_interrupts();
    log::info!("interrupts through the {}, timer at {} Hz", interrupts::controller_name(), pit::HZ);
    acpi::find_sleep_type();
}

/// Restarts the machine: the FADT's reset register, then the keyboard
/// controller's reset line, then a triple fault; each attempt is logged.
pub fn reboot() -> ! {
    acpi::reset();
    log::info!("reboot: pulsing the reset line through the keyboard controller");
    ps2::pulse_reset_line();
    for _ in 0..1_000_000 {
        core::hint::spin_loop();
    }
    log::warn!("reboot: the keyboard controller did not reset the machine; forcing a triple fault");
    arch::triple_fault()
}
