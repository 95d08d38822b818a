//! The tables: read once at boot through the `acpi` crate and converted
//! into the kernel's own types, each missing or broken part logged and left
//! out.

use super::host::Host;
use super::register::Register;
use crate::boot::BootInfo;
use ::acpi::{
    AcpiError, AcpiTable, AcpiTables, HpetInfo, PhysicalMapping,
    address::GenericAddress,
    aml::Interpreter,
    platform::interrupt::{self as model, InterruptModel, LocalInterruptLine, NmiProcessor},
    sdt::{
        Signature,
        fadt::Fadt as FadtTable,
        hpet::HpetTable,
        madt::{Madt as MadtTable, MadtEntry},
    },
};
use alloc::{format, string::String, vec::Vec};
use core::fmt;
use spin::Once;

/// Interrupt polarity as the MADT gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    /// As the bus's specification says (for ISA: active high).
    Conforming,
    ActiveHigh,
    ActiveLow,
}

/// Interrupt trigger mode as the MADT gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// As the bus's specification says (for ISA: edge).
    Conforming,
    Edge,
    Level,
}

impl fmt::Display for Polarity {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Self::Conforming => "the bus's polarity",
            Self::ActiveHigh => "active high",
            Self::ActiveLow => "active low",
        })
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Self::Conforming => "the bus's trigger mode",
            Self::Edge => "edge-triggered",
            Self::Level => "level-triggered",
        })
    }
}

/// A processor's local APIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu {
    /// The processor's ACPI UID, which NMI entries name.
    pub uid: u32,
    pub apic_id: u32,
    /// Firmware marks processors that must not be started as disabled.
    pub enabled: bool,
}

/// An I/O APIC: its registers and the first global system interrupt (GSI)
/// of its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoApic {
    pub id: u8,
    pub address: u64,
    pub gsi_base: u32,
}

/// An ISA interrupt that does not arrive on the I/O APIC input of its own
/// number, or not active high and edge triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Override {
    pub isa_irq: u8,
    pub gsi: u32,
    pub polarity: Polarity,
    pub trigger: Trigger,
}

/// A GSI wired to a non-maskable interrupt rather than a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NmiSource {
    pub gsi: u32,
    pub polarity: Polarity,
    pub trigger: Trigger,
}

/// A local APIC input (LINT0 or LINT1) wired to NMI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalNmi {
    /// The processor's UID, or `None` for all processors.
    pub cpu_uid: Option<u32>,
    /// 0 for LINT0, 1 for LINT1.
    pub lint: u8,
}

/// The MADT: the APIC interrupt model.
#[derive(Debug, Clone)]
pub struct Madt {
    pub local_apic_address: u64,
    pub cpus: Vec<Cpu>,
    pub io_apics: Vec<IoApic>,
    pub overrides: Vec<Override>,
    pub nmi_sources: Vec<NmiSource>,
    pub local_nmis: Vec<LocalNmi>,
    /// The machine also has the two 8259s, which must be masked.
    pub has_8259: bool,
}

/// The HPET's register block.
#[derive(Debug, Clone, Copy)]
pub struct Hpet {
    pub address: u64,
    pub counter_is_64_bit: bool,
    pub comparators: u8,
}

/// The FADT's fixed hardware, as far as the kernel uses it.
#[derive(Debug, Clone)]
pub struct Fadt {
    pub pm_timer: Option<Register>,
    pub pm_timer_is_32_bit: bool,
    /// The reset register and the value to write, if the FADT offers them.
    pub reset: Option<(Register, u8)>,
    pub pm1a_control: Register,
    pub pm1b_control: Option<Register>,
    /// Where ACPI mode is switched on: the SMI command port and the value.
    pub smi_command: u32,
    pub acpi_enable: u8,
    pub sci_irq: u16,
    /// Hardware-reduced ACPI has no PM1 registers; it sleeps through the
    /// sleep control register instead.
    pub hardware_reduced: bool,
}

/// The values to write into SLP_TYPa and SLP_TYPb for a sleep state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SleepType {
    pub a: u8,
    pub b: u8,
}

/// What the firmware's ACPI tables describe.
pub struct Acpi {
    pub rsdp: u64,
    pub revision: u8,
    /// The signatures of the tables the RSDT/XSDT lists.
    pub signatures: Vec<Signature>,
    /// The MADT, or why it cannot be used.
    pub madt: Result<Madt, String>,
    pub hpet: Option<Hpet>,
    pub fadt: Option<Fadt>,
    pub(super) tables: AcpiTables<Host>,
    /// The AML, once loaded, and the `\_S5` sleep type it gives.
    pub(super) aml: Once<Result<(Interpreter<Host>, SleepType), String>>,
}

pub(super) static ACPI: Once<Acpi> = Once::new();

/// Why there are no usable ACPI tables.
#[derive(Debug)]
pub enum Error {
    NoRsdp,
    Tables(AcpiError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::NoRsdp => f.write_str("the bootloader found no RSDP (the firmware offers no ACPI tables)"),
            Self::Tables(error) => write!(f, "the RSDP or its root table is broken ({error:?})"),
        }
    }
}

/// Reads the tables the RSDP leads to. Missing or broken parts are logged
/// (one line each) and left out.
pub fn init(info: &BootInfo) -> Result<&'static Acpi, Error> {
    let rsdp = info.rsdp.ok_or(Error::NoRsdp)?;
    // SAFETY: the bootloader found an RSDP at this physical address; the crate
    // checks its signature before following it.
    let tables = unsafe { AcpiTables::from_rsdp(Host, rsdp as usize) }.map_err(Error::Tables)?;
    let signatures = tables.table_headers().map(|(_, header)| header.signature).collect();
    let madt = read_madt(&tables);
    let hpet = read_hpet(&tables).map_err(|why| log::warn!("ACPI: no HPET: {why}")).ok();
    let fadt = read_fadt(&tables).map_err(|why| log::warn!("ACPI: no FADT: {why}")).ok();
    let revision = tables.rsdp_revision;
    let acpi =
        ACPI.call_once(|| Acpi { rsdp, revision, signatures, madt, hpet, fadt, tables, aml: Once::new() });
    log::info!("ACPI: revision {}, tables {}", acpi.revision, SignatureList(&acpi.signatures));
    Ok(acpi)
}

/// The tables, if [`init`] found them.
pub fn info() -> Option<&'static Acpi> {
    ACPI.get()
}

fn read_madt(tables: &AcpiTables<Host>) -> Result<Madt, String> {
    let table = tables.find_table::<MadtTable>().ok_or("the firmware has no MADT")?;
    table.get().validate().map_err(|error| format!("the MADT is broken ({error:?})"))?;
    check_madt_entries(&table)?;
    let (model, processors) =
        InterruptModel::new(tables).map_err(|error| format!("the MADT is broken ({error:?})"))?;
    let (InterruptModel::Apic(apic), Some(processors)) = (model, processors) else {
        return Err("the MADT describes no local APIC".into());
    };
    let cpus = core::iter::once(&processors.boot_processor)
        .chain(&processors.application_processors)
        .map(|cpu| Cpu {
            uid: cpu.processor_uid,
            apic_id: cpu.local_apic_id,
            enabled: cpu.state != ::acpi::platform::ProcessorState::Disabled,
        })
        .collect();
    Ok(Madt {
        local_apic_address: apic.local_apic_address,
        cpus,
        io_apics: apic
            .io_apics
            .iter()
            .map(|io| IoApic {
                id: io.id,
                address: io.address as u64,
                gsi_base: io.global_system_interrupt_base,
            })
            .collect(),
        overrides: apic
            .interrupt_source_overrides
            .iter()
            .map(|o| Override {
                isa_irq: o.isa_source,
                gsi: o.global_system_interrupt,
                polarity: polarity(o.polarity),
                trigger: trigger(o.trigger_mode),
            })
            .collect(),
        nmi_sources: apic
            .nmi_sources
            .iter()
            .map(|n| NmiSource {
                gsi: n.global_system_interrupt,
                polarity: polarity(n.polarity),
                trigger: trigger(n.trigger_mode),
            })
            .collect(),
        local_nmis: apic
            .local_apic_nmi_lines
            .iter()
            .map(|n| LocalNmi {
                cpu_uid: match n.processor {
                    NmiProcessor::All => None,
                    NmiProcessor::ProcessorUid(uid) => Some(uid),
                },
                lint: match n.line {
                    LocalInterruptLine::Lint0 => 0,
                    LocalInterruptLine::Lint1 => 1,
                },
            })
            .collect(),
        has_8259: apic.also_has_legacy_pics,
    })
}

/// Refuses a MADT whose entries do not tile the table (an entry shorter than
/// its own header would make the crate's walk over them never end) or that
/// names no local APIC (the crate expects one).
fn check_madt_entries(table: &PhysicalMapping<Host, MadtTable>) -> Result<(), String> {
    let length = table.get().header.length as usize;
    // SAFETY: the mapping covers the table's `length` bytes, which the
    // checksum check just read.
    let bytes = unsafe { core::slice::from_raw_parts(table.virtual_start.as_ptr().cast::<u8>(), length) };
    let entries = bytes.get(size_of::<MadtTable>()..).ok_or("the MADT is shorter than its header")?;
    check_entry_lengths(entries)?;
    let names_a_cpu = table
        .get()
        .entries()
        .any(|entry| matches!(entry, MadtEntry::LocalApic(_) | MadtEntry::LocalX2Apic(_)));
    if names_a_cpu { Ok(()) } else { Err("the MADT names no local APIC".into()) }
}

/// Checks that MADT entries (type, length, body) follow each other to the
/// end of `entries` exactly, each at least as long as its two header bytes.
fn check_entry_lengths(entries: &[u8]) -> Result<(), String> {
    let mut at = 0;
    while at < entries.len() {
        match entries.get(at + 1) {
            Some(&len) if len >= 2 && at + len as usize <= entries.len() => at += len as usize,
            _ => return Err(format!("the MADT's entry at offset {at} has a bad length")),
        }
    }
    Ok(())
}

fn polarity(polarity: model::Polarity) -> Polarity {
    match polarity {
        model::Polarity::SameAsBus => Polarity::Conforming,
        model::Polarity::ActiveHigh => Polarity::ActiveHigh,
        model::Polarity::ActiveLow => Polarity::ActiveLow,
    }
}

fn trigger(trigger: model::TriggerMode) -> Trigger {
    match trigger {
        model::TriggerMode::SameAsBus => Trigger::Conforming,
        model::TriggerMode::Edge => Trigger::Edge,
        model::TriggerMode::Level => Trigger::Level,
    }
}

fn read_hpet(tables: &AcpiTables<Host>) -> Result<Hpet, String> {
    let table = tables.find_table::<HpetTable>().ok_or("the firmware has no HPET table")?;
    table.get().validate().map_err(|error| format!("the HPET table is broken ({error:?})"))?;
    if { table.base_address }.address_space != 0 {
        return Err("the HPET table does not place it in memory".into());
    }
    let info = HpetInfo::new(tables).map_err(|error| format!("{error:?}"))?;
    Ok(Hpet {
        address: info.base_address as u64,
        counter_is_64_bit: info.main_counter_is_64bits,
        comparators: info.num_comparators + 1,
    })
}

fn read_fadt(tables: &AcpiTables<Host>) -> Result<Fadt, String> {
    let fadt = tables.find_table::<FadtTable>().ok_or("the firmware has no FADT")?;
    fadt.validate().map_err(|error| format!("the FADT is broken ({error:?})"))?;
    let gas = |what: &str, gas: Result<GenericAddress, AcpiError>| {
        gas.map_err(|error| format!("its {what} is unreadable ({error:?})"))
            .and_then(|gas| Register::from_gas(gas).map_err(|why| format!("its {what}: {why}")))
    };
    let flags = { fadt.flags };
    let pm_timer = match fadt.pm_timer_block() {
        Ok(Some(block)) => Register::from_gas(block)
            .map_err(|why| log::warn!("ACPI: the FADT's PM timer is unusable: {why}"))
            .ok(),
        Ok(None) => None,
        Err(error) => {
            log::warn!("ACPI: the FADT's PM timer is unreadable ({error:?})");
            None
        }
    };
    let reset = if flags.supports_system_reset_via_fadt() {
        match gas("reset register", fadt.reset_register()) {
            Ok(register) => Some((register, fadt.reset_value)),
            Err(why) => {
                log::warn!("ACPI: the FADT offers a reset register, but {why}");
                None
            }
        }
    } else {
        None
    };
    let pm1b_control = match fadt.pm1b_control_block() {
        Ok(Some(block)) => Some(gas("PM1b control block", Ok(block))?),
        Ok(None) => None,
        Err(error) => return Err(format!("its PM1b control block is unreadable ({error:?})")),
    };
    Ok(Fadt {
        pm_timer,
        pm_timer_is_32_bit: flags.pm_timer_is_32_bit(),
        reset,
        pm1a_control: gas("PM1a control block", fadt.pm1a_control_block())?,
        pm1b_control,
        smi_command: fadt.smi_cmd_port,
        acpi_enable: fadt.acpi_enable,
        sci_irq: fadt.sci_interrupt,
        hardware_reduced: flags.system_is_hw_reduced_acpi(),
    })
}

/// Signatures separated by spaces.
struct SignatureList<'a>(&'a [Signature]);

impl fmt::Display for SignatureList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, signature) in self.0.iter().enumerate() {
            write!(f, "{}{signature}", if i == 0 { "" } else { " " })?;
        }
        Ok(())
    }
}

/// What the `acpi` shell command prints.
impl fmt::Display for Acpi {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        writeln!(f, "RSDP at {:#x}, ACPI revision {}", self.rsdp, self.revision)?;
        writeln!(f, "tables: {}", SignatureList(&self.signatures))?;
        match &self.madt {
            Ok(madt) => write!(f, "{madt}")?,
            Err(why) => writeln!(f, "MADT: unusable: {why}")?,
        }
        match &self.hpet {
            Some(hpet) => writeln!(
                f,
                "HPET: at {:#x}, {}-bit counter, {} comparators",
                hpet.address,
                if hpet.counter_is_64_bit { 64 } else { 32 },
                hpet.comparators
            )?,
            None => writeln!(f, "HPET: none")?,
        }
        match &self.fadt {
            Some(fadt) => write!(f, "{fadt}")?,
            None => writeln!(f, "FADT: none")?,
        }
        match self.aml.get() {
            Some(Ok((_, sleep))) => writeln!(f, "\\_S5: SLP_TYPa {}, SLP_TYPb {}", sleep.a, sleep.b),
            Some(Err(why)) => writeln!(f, "\\_S5: unknown: {why}"),
            None => writeln!(f, "\\_S5: AML not loaded yet (the first poweroff loads it)"),
        }
    }
}

impl fmt::Display for Madt {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        writeln!(
            f,
            "MADT: local APICs at {:#x}; 8259 PICs {}",
            self.local_apic_address,
            if self.has_8259 { "present" } else { "absent" }
        )?;
        for cpu in &self.cpus {
            let state = if cpu.enabled { "" } else { " (disabled)" };
            writeln!(f, "  CPU uid {}: local APIC id {}{state}", cpu.uid, cpu.apic_id)?;
        }
        for io in &self.io_apics {
            writeln!(f, "  I/O APIC id {} at {:#x}, GSIs from {}", io.id, io.address, io.gsi_base)?;
        }
        for o in &self.overrides {
            writeln!(
                f,
                "  override: ISA IRQ {} -> GSI {} ({}, {})",
                o.isa_irq, o.gsi, o.polarity, o.trigger
            )?;
        }
        for n in &self.nmi_sources {
            writeln!(f, "  NMI source: GSI {} ({}, {})", n.gsi, n.polarity, n.trigger)?;
        }
        for n in &self.local_nmis {
            match n.cpu_uid {
                Some(uid) => writeln!(f, "  local NMI: LINT{} of CPU uid {uid}", n.lint)?,
                None => writeln!(f, "  local NMI: LINT{} of every CPU", n.lint)?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Fadt {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.pm_timer {
            Some(timer) => writeln!(
                f,
                "FADT: PM timer at {timer} ({}-bit count)",
                if self.pm_timer_is_32_bit { 32 } else { 24 }
            )?,
            None => writeln!(f, "FADT: no PM timer")?,
        }
        match &self.reset {
            Some((register, value)) => writeln!(f, "  reset register: {register}, value {value:#x}")?,
            None => writeln!(f, "  reset register: none")?,
        }
        writeln!(f, "  PM1a control: {}", self.pm1a_control)?;
        if let Some(pm1b) = &self.pm1b_control {
            writeln!(f, "  PM1b control: {pm1b}")?;
        }
        writeln!(f, "  SCI on IRQ {}; SMI command port {:#x}", self.sci_irq, self.smi_command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn madt_entries_must_tile_the_table() {
        // A local APIC (8 bytes), an I/O APIC (12) and an override (10).
        let mut entries = [0u8; 30];
        entries[1] = 8;
        entries[8 + 1] = 12;
        entries[20 + 1] = 10;
        assert_eq!(check_entry_lengths(&entries), Ok(()));
        assert_eq!(check_entry_lengths(&[]), Ok(()));
        let mut zero = entries;
        zero[8 + 1] = 0;
        assert!(
            check_entry_lengths(&zero).unwrap_err().contains("offset 8"),
            "a zero length would never advance"
        );
        let mut past_end = entries;
        past_end[20 + 1] = 11;
        assert!(check_entry_lengths(&past_end).is_err());
        assert!(check_entry_lengths(&entries[..29]).is_err(), "a cut-off last entry");
        assert!(check_entry_lengths(&[0]).is_err(), "no room for the length byte");
    }

    #[test]
    fn the_madt_reads_in_words() {
        let madt = Madt {
            local_apic_address: 0xfee0_0000,
            has_8259: true,
            cpus: Vec::new(),
            io_apics: Vec::new(),
            overrides: alloc::vec![
                Override { isa_irq: 0, gsi: 2, polarity: Polarity::Conforming, trigger: Trigger::Conforming },
                Override { isa_irq: 9, gsi: 9, polarity: Polarity::ActiveLow, trigger: Trigger::Level },
            ],
            nmi_sources: alloc::vec![NmiSource {
                gsi: 5,
                polarity: Polarity::ActiveHigh,
                trigger: Trigger::Edge
            }],
            local_nmis: Vec::new(),
        };
        let text = alloc::format!("{madt}");
        assert!(
            text.contains("override: ISA IRQ 0 -> GSI 2 (the bus's polarity, the bus's trigger mode)\n"),
            "{text}"
        );
        assert!(text.contains("override: ISA IRQ 9 -> GSI 9 (active low, level-triggered)\n"), "{text}");
        assert!(text.contains("NMI source: GSI 5 (active high, edge-triggered)\n"), "{text}");
    }
}
