//! Power through ACPI: the `\_S5` sleep type from the AML, powering off
//! through the PM1 control registers, and resetting through the FADT's
//! reset register.

use super::host::Host;
use super::register::write_port;
use super::tables::{ACPI, Acpi, Fadt, SleepType};
use crate::time;
use ::acpi::{
    AcpiTables, Handler,
    aml::{AmlError, Interpreter, namespace::AmlName, object::Object},
    registers::FixedRegisters,
    sdt::{SdtHeader, Signature, facs::Facs, fadt::Fadt as FadtTable},
};
use alloc::{format, string::String, sync::Arc, vec::Vec};
use core::str::FromStr;
use core::time::Duration;

/// PM1 control: the sleep type field and the bit that enters it.
const SLP_TYP_SHIFT: u32 = 10;
const SLP_TYP_MASK: u64 = 0b111 << SLP_TYP_SHIFT;
const SLP_EN: u64 = 1 << 13;
/// PM1 control: set once the platform is in ACPI mode.
const SCI_EN: u64 = 1;
/// How long the firmware may take to switch to ACPI mode (the spec's 3 s).
const ACPI_MODE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a reset or power-off write may take before it counts as failed.
const SETTLE: Duration = Duration::from_millis(500);

/// The AML interpreter and the `\_S5` sleep type, loaded on first use:
/// the first `poweroff`. Loading the DSDT's and SSDTs' AML takes about
/// 12 ms under emulation, an eighth of what the kernel adds to the boot, and
/// only powering off needs it, so the boot does not wait for it. Needs interrupts on (AML
/// may wait). Logs what it found, or why powering off will not work.
fn aml(acpi: &Acpi) -> &Result<(Interpreter<Host>, SleepType), String> {
    acpi.aml.call_once(|| {
        let start = time::uptime();
        let aml = load_aml(&acpi.tables);
        match &aml {
            Ok((_, sleep)) => log::info!(
                "ACPI: \\_S5 sleep type {}/{} (AML loaded and evaluated in {} ms)",
                sleep.a,
                sleep.b,
                (time::uptime() - start).as_millis()
            ),
            Err(why) => log::warn!("ACPI: no \\_S5 sleep type, so poweroff will not work: {why}"),
        }
        aml
    })
}

#[expect(
    clippy::arc_with_non_send_sync,
    reason = "the acpi crate's interpreter takes its registers in an Arc; one CPU uses them"
)]
fn load_aml(tables: &AcpiTables<Host>) -> Result<(Interpreter<Host>, SleepType), String> {
    let fadt = tables.find_table::<FadtTable>().ok_or("the firmware has no FADT")?;
    let registers = FixedRegisters::new(&fadt, Host).map_err(|error| format!("PM1 registers: {error:?}"))?;
    let facs = fadt.facs_address().ok().map(|address| {
        // SAFETY: the FADT names the FACS's physical address.
        unsafe { Host.map_physical_region::<Facs>(address, size_of::<Facs>()) }
    });
    let dsdt = tables.dsdt().map_err(|error| format!("no DSDT ({error:?})"))?;
    let interpreter = Interpreter::new(Host, dsdt.revision, Arc::new(registers), facs);
    let ssdts = tables.ssdts().map(|ssdt| (Signature::SSDT, ssdt));
    for (name, table) in core::iter::once((Signature::DSDT, dsdt)).chain(ssdts) {
        let length = table.length as usize;
        let header = size_of::<SdtHeader>();
        if length < header {
            return Err(format!("the {name} is shorter than its header"));
        }
        // SAFETY: the root table lists a table of `length` bytes there.
        let mapping = unsafe { Host.map_physical_region::<SdtHeader>(table.phys_address, length) };
        // SAFETY: the mapping covers the `length` bytes the checksum sums.
        unsafe { mapping.validate(name) }.map_err(|error| format!("the {name} is broken ({error:?})"))?;
        // SAFETY: the mapping covers the whole table; its AML follows the header.
        let aml = unsafe {
            core::slice::from_raw_parts(
                mapping.virtual_start.as_ptr().cast::<u8>().add(header),
                length - header,
            )
        };
        interpreter
            .load_table(aml)
            .map_err(|error| format!("the {name}'s AML failed to load ({error:?})"))?;
    }
    let s5 = AmlName::from_str("\\_S5").map_err(|error| format!("{error:?}"))?;
    let package = interpreter.evaluate(s5, Vec::new()).map_err(|error| match error {
        AmlError::ObjectDoesNotExist(_) => "the AML defines no \\_S5".into(),
        other => format!("evaluating \\_S5 failed ({other:?})"),
    })?;
    let Object::Package(elements) = &*package else { return Err("\\_S5 is not a package".into()) };
    let values: Vec<u64> = elements.iter().map_while(|element| element.as_integer().ok()).collect();
    let sleep = sleep_type(&values).ok_or_else(|| format!("\\_S5 holds no sleep type: {}", *package))?;
    Ok((interpreter, sleep))
}

/// The sleep type in a `\_Sx` package: SLP_TYPa and SLP_TYPb as its first
/// two integers, or, in ACPI 1.0's packed form, both in the first one.
fn sleep_type(values: &[u64]) -> Option<SleepType> {
    match *values {
        [a, b, ..] => Some(SleepType { a: (a & 0b111) as u8, b: (b & 0b111) as u8 }),
        [packed] => Some(SleepType { a: (packed & 0b111) as u8, b: ((packed >> 8) & 0b111) as u8 }),
        [] => None,
    }
}

/// Powers the machine off: `\_PTS(5)` if the AML has it, ACPI mode if the
/// platform is not in it yet, then the `\_S5` sleep type and SLP_EN into the
/// PM1 control registers. Returns why not if the machine is still running.
pub fn power_off() -> String {
    let Some(acpi) = ACPI.get() else { return "there are no ACPI tables".into() };
    let Some(fadt) = &acpi.fadt else { return "there is no FADT".into() };
    if fadt.hardware_reduced {
        return "the machine has hardware-reduced ACPI, whose sleep registers are not supported".into();
    }
    let (interpreter, sleep) = match aml(acpi) {
        Ok(aml) => aml,
        Err(why) => return format!("the \\_S5 sleep type is unknown: {why}"),
    };
    prepare_to_sleep(interpreter);
    enter_acpi_mode(fadt);
    match fadt.pm1b_control {
        Some(pm1b) => log::info!(
            "poweroff: SLP_TYP {} into PM1a control ({}), {} into PM1b control ({pm1b}), then SLP_EN",
            sleep.a,
            fadt.pm1a_control,
            sleep.b
        ),
        None => {
            log::info!("poweroff: SLP_TYP {} into PM1a control ({}), then SLP_EN", sleep.a, fadt.pm1a_control)
        }
    }
    let blocks = [Some((fadt.pm1a_control, sleep.a)), fadt.pm1b_control.map(|pm1b| (pm1b, sleep.b))];
    // What was logged must be out before the machine is.
    crate::drivers::uart::flush();
    for (register, typ) in blocks.iter().flatten() {
        register.write(register.read() & !(SLP_TYP_MASK | SLP_EN) | u64::from(*typ) << SLP_TYP_SHIFT);
    }
    for (register, _) in blocks.iter().flatten() {
        register.write(register.read() | SLP_EN);
    }
    time::busy_wait(SETTLE);
    format!("the machine is still running {} ms after SLP_EN was set", SETTLE.as_millis())
}

/// Runs `\_PTS(5)`, the firmware's preparation for S5, when the AML has one.
fn prepare_to_sleep(interpreter: &Interpreter<Host>) {
    let Ok(pts) = AmlName::from_str("\\_PTS") else { return };
    match interpreter.evaluate_if_present(pts, alloc::vec![Object::Integer(5).wrap()]) {
        Ok(Some(_)) => log::info!("poweroff: ran \\_PTS(5)"),
        Ok(None) => {}
        Err(error) => log::warn!("poweroff: \\_PTS(5) failed ({error:?}); going on"),
    }
}

/// Asks the firmware to hand the fixed hardware to the OS (SCI_EN), as the
/// specification wants before a sleep state is entered. Logs when it is
/// needed and when the firmware does not comply.
fn enter_acpi_mode(fadt: &Fadt) {
    if fadt.pm1a_control.read() & SCI_EN != 0 {
        return;
    }
    let Ok(port) = u16::try_from(fadt.smi_command) else { return };
    if port == 0 || fadt.acpi_enable == 0 {
        log::warn!("poweroff: the platform is not in ACPI mode and the FADT gives no way to enter it");
        return;
    }
    log::info!("poweroff: entering ACPI mode ({:#x} to SMI command port {port:#x})", fadt.acpi_enable);
    write_port(port, 8, fadt.acpi_enable.into());
    let deadline = time::uptime() + ACPI_MODE_TIMEOUT;
    while fadt.pm1a_control.read() & SCI_EN == 0 {
        if time::uptime() >= deadline {
            log::warn!("poweroff: the firmware did not enter ACPI mode within 3 s; going on");
            return;
        }
        core::hint::spin_loop();
    }
}

/// Writes the FADT's reset value into its reset register. Returns (after
/// waiting a moment) if the machine did not reset, or at once if the FADT
/// offers no reset register; logs either way.
pub fn reset() {
    let reset = ACPI.get().and_then(|acpi| acpi.fadt.as_ref()).and_then(|fadt| fadt.reset);
    let Some((register, value)) = reset else {
        log::info!("reboot: the FADT offers no reset register");
        return;
    };
    log::info!("reboot: writing {value:#x} to the FADT's reset register ({register})");
    crate::drivers::uart::flush();
    register.write(value.into());
    time::busy_wait(SETTLE);
    log::warn!("reboot: the machine did not reset through the FADT's reset register");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_types_come_from_two_integers_or_one_packed() {
        assert_eq!(sleep_type(&[0, 0, 0, 0]), Some(SleepType { a: 0, b: 0 }));
        assert_eq!(sleep_type(&[5, 7]), Some(SleepType { a: 5, b: 7 }));
        assert_eq!(sleep_type(&[0x0705]), Some(SleepType { a: 5, b: 7 }));
        assert_eq!(sleep_type(&[]), None);
    }
}
