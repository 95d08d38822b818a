//! ACPI: the firmware's description of the machine, read with the `acpi`
//! crate, and the power controls it names.
//!
//! What the kernel takes from the tables ([`tables`]), converted into its
//! own types at boot: from the MADT the CPUs' local APICs, the I/O APICs,
//! the interrupt source overrides (with their polarity and trigger) and the
//! NMI wiring; from the HPET table the HPET's registers; from the FADT the
//! PM timer, the reset register and the PM1 control registers
//! ([`register`]). The first [`power_off`] runs the DSDT's and SSDTs' AML
//! for the `\_S5` sleep type, which it then writes ([`power`]). What the
//! crate asks of the kernel (mappings, ports, time) is in [`host`].

mod host;
mod power;
mod register;
mod tables;

pub use power::{power_off, reset};
pub use register::Register;
pub use tables::{
    Acpi, Cpu, Error, Fadt, Hpet, IoApic, LocalNmi, Madt, NmiSource, Override, Polarity, SleepType, Trigger,
    info, init,
};
