//! Device drivers: one module per device of the PC platform. Each owns its
//! ports (named once, at its top) and its state, and claims its interrupt
//! line through [`crate::arch::interrupts::register`]. This module chooses
//! between the devices: which controller delivers interrupts, and (through
//! [`clock`]) what keeps time.

pub mod acpi;
pub mod clock;
pub mod hpet;
pub mod ioapic;
pub mod lapic;
pub mod pci;
pub mod pic;
pub mod pit;
pub mod pm_timer;
pub mod ps2;
pub mod rtc;
pub mod uart;
pub mod usb;
pub mod vga;

use crate::arch::{self, interrupts};
use crate::boot::BootInfo;
use alloc::{format, string::String};

/// Reads the ACPI tables, installs the interrupt controller (the I/O APIC
/// and local APIC when the MADT describes them, unless `irq=legacy`; the
/// 8259s otherwise), sets up the clock and timer, lets each device claim its
/// line and enables interrupts. (The firmware's AML, for the sleep type
/// that powering off needs, waits for the first `poweroff`.) Whatever is
/// missing is logged and left out; the rest still works.
pub fn init(info: &BootInfo) {
    let acpi = acpi::init(info);
    let local_apic = install_controller(info, &acpi);
    clock::init(info, acpi.ok(), local_apic);
    let claims = [("PS/2 keyboard", ps2::init()), ("COM1", uart::enable_interrupts())];
    for (device, claim) in claims {
        if let Err(error) = claim {
            log::error!("{device}: no interrupts: {error}");
        }
    }
    arch::enable_interrupts();
    log::info!("interrupts through the {}", interrupts::controller_name());
}

/// Installs the I/O APIC with the local APIC when the MADT describes them
/// (returns true), else the 8259 pair, saying why in one line.
fn install_controller(info: &BootInfo, acpi: &Result<&acpi::Acpi, acpi::Error>) -> bool {
    let why_legacy: String = match (info.option("irq"), acpi) {
        (Some("legacy"), _) => "irq=legacy on the command line".into(),
        (_, Err(error)) => format!("no ACPI tables: {error}"),
        (_, Ok(acpi)) => match &acpi.madt {
            Err(why) => why.clone(),
            Ok(madt) => match use_apic(madt) {
                Ok(()) => return true,
                Err(why) => why,
            },
        },
    };
    if let Some(other) = info.option("irq").filter(|&irq| irq != "legacy" && irq != "apic") {
        log::warn!("ignoring irq={other} (expected apic or legacy)");
    }
    log::warn!("interrupts through the 8259 PICs: {why_legacy}");
    pic::init();
    false
}

/// The local APIC on, the 8259s remapped and masked, the I/O APICs routing
/// the ISA lines: or why not, with the 8259s and the local APIC as they were
/// (the I/O APICs' inputs may be masked by then, which the 8259s never use).
fn use_apic(madt: &acpi::Madt) -> Result<(), String> {
    let io_apics = ioapic::prepare(madt).map_err(|error| format!("I/O APIC: {error}"))?;
    lapic::init(madt.local_apic_address, &madt.cpus, &madt.local_nmis)
        .map_err(|error| format!("local APIC: {error}"))?;
    pic::disable();
    io_apics.install(&madt.nmi_sources);
    Ok(())
}

/// Restarts the machine: the FADT's reset register, then the keyboard
/// controller's reset line, then a triple fault; each attempt is logged.
pub fn reboot() -> ! {
    acpi::reset();
    log::info!("reboot: pulsing the reset line through the keyboard controller");
    uart::flush();
    ps2::pulse_reset_line();
    for _ in 0..1_000_000 {
        core::hint::spin_loop();
    }
    log::warn!("reboot: the keyboard controller did not reset the machine; forcing a triple fault");
    uart::flush();
    arch::triple_fault()
}
