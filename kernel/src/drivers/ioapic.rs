//! The I/O APICs and, with the local APIC, the interrupt controller of
//! machines that have them: installed in place of the 8259s, behind the same
//! [`Controller`] trait, so drivers still register their ISA line.
//!
//! A line is an ISA IRQ. The MADT's interrupt source overrides say which
//! global system interrupt (GSI) it arrives on and with what polarity and
//! trigger (QEMU, like most PCs, wires IRQ 0 to GSI 2); the GSI is an input
//! of one I/O APIC, whose redirection entry sends it to this CPU's local
//! APIC on vector `FIRST_VECTOR + line`. The end of interrupt goes to the
//! local APIC, which passes it on to the I/O APIC for level-triggered lines.

use super::acpi::{IoApic as IoApicEntry, Madt, NmiSource, Override, Polarity, Trigger};
use super::lapic;
use crate::arch::interrupts::{self, Controller, FIRST_VECTOR};
use crate::mem::paging;
use crate::sync::IrqSafeMutex;
use alloc::vec::Vec;
use core::fmt;
use spin::Once;

/// The register window: write a register's index to IOREGSEL, then read or
/// write it through IOWIN.
const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;
const WINDOW_BYTES: u64 = 0x20;
/// Registers.
const VERSION: u32 = 0x01;
const REDIRECTION_TABLE: u32 = 0x10;

/// Redirection entry bits.
const DELIVER_NMI: u64 = 0b100 << 8;
const ACTIVE_LOW: u64 = 1 << 13;
const LEVEL_TRIGGERED: u64 = 1 << 15;
const MASKED: u64 = 1 << 16;
const DESTINATION_SHIFT: u32 = 56;

/// ISA lines: what drivers register.
const ISA_LINES: u8 = 16;

/// Where an ISA line arrives, and how it signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub gsi: u32,
    pub active_low: bool,
    pub level: bool,
}

/// Routes ISA IRQ `irq` through the MADT's `overrides`: an override for it
/// gives its GSI, polarity and trigger ("conforming" meaning ISA's active
/// high and edge); without one it arrives on the GSI of its own number,
/// unless an override took that input for another IRQ or an NMI source
/// claims it, in which case the IRQ has no input at all.
pub fn route(irq: u8, overrides: &[Override], nmi_sources: &[NmiSource]) -> Option<Route> {
    let route = match overrides.iter().find(|o| o.isa_irq == irq) {
        Some(o) => Route {
            gsi: o.gsi,
            active_low: o.polarity == Polarity::ActiveLow,
            level: o.trigger == Trigger::Level,
        },
        None if overrides.iter().any(|o| o.gsi == u32::from(irq)) => return None,
        None => Route { gsi: irq.into(), active_low: false, level: false },
    };
    (!nmi_sources.iter().any(|nmi| nmi.gsi == route.gsi)).then_some(route)
}

/// The redirection entry that sends a GSI routed as `route` to local APIC
/// `destination` (physical mode, fixed delivery) on `vector`, masked or not.
fn redirection_entry(route: Route, vector: u8, destination: u8, masked: bool) -> u64 {
    let mut entry = u64::from(vector) | u64::from(destination) << DESTINATION_SHIFT;
    if route.active_low {
        entry |= ACTIVE_LOW;
    }
    if route.level {
        entry |= LEVEL_TRIGGERED;
    }
    if masked {
        entry |= MASKED;
    }
    entry
}

/// One I/O APIC: its register window and the GSIs of its inputs.
struct IoApic {
    window: u64,
    gsi_base: u32,
    inputs: u32,
    /// Held across the select-then-access pair.
    lock: IrqSafeMutex<()>,
}

impl IoApic {
    fn new(entry: &IoApicEntry) -> Result<Self, paging::MmioError> {
        let window = paging::map_mmio(entry.address, WINDOW_BYTES)?;
        let mut io_apic = Self { window, gsi_base: entry.gsi_base, inputs: 0, lock: IrqSafeMutex::new(()) };
        io_apic.inputs = (io_apic.read(VERSION) >> 16 & 0xff) + 1;
        Ok(io_apic)
    }

    fn serves(&self, gsi: u32) -> bool {
        (self.gsi_base..self.gsi_base + self.inputs).contains(&gsi)
    }

    fn read(&self, register: u32) -> u32 {
        let _held = self.lock.lock();
        // SAFETY: the window is this I/O APIC's registers, mapped uncached;
        // selecting a register and reading it has no other effect.
        unsafe {
            ((self.window + IOREGSEL) as *mut u32).write_volatile(register);
            ((self.window + IOWIN) as *const u32).read_volatile()
        }
    }

    fn write(&self, register: u32, value: u32) {
        let _held = self.lock.lock();
        // SAFETY: as for `read`; callers write redirection entries only.
        unsafe {
            ((self.window + IOREGSEL) as *mut u32).write_volatile(register);
            ((self.window + IOWIN) as *mut u32).write_volatile(value);
        }
    }

    /// Writes the redirection entry of `gsi` (which this I/O APIC serves).
    /// The high half (destination) goes first, so the entry is never
    /// unmasked towards a stale destination.
    fn set_entry(&self, gsi: u32, entry: u64) {
        let register = REDIRECTION_TABLE + 2 * (gsi - self.gsi_base);
        self.write(register + 1, (entry >> 32) as u32);
        self.write(register, entry as u32);
    }
}

/// The I/O APICs with the local APIC: the kernel's interrupt controller.
struct Apic {
    io_apics: Vec<IoApic>,
    /// Per ISA line: the I/O APIC (an index) and the route, if it has one.
    lines: [Option<(usize, Route)>; ISA_LINES as usize],
    /// This CPU's local APIC id, where every line is sent.
    destination: u8,
    name: &'static str,
}

impl Apic {
    fn set_masked(&self, line: u8, masked: bool) {
        if let Some(Some((io_apic, route))) = self.lines.get(line as usize) {
            let entry = redirection_entry(*route, FIRST_VECTOR + line, self.destination, masked);
            self.io_apics[*io_apic].set_entry(route.gsi, entry);
        }
    }
}

impl Controller for Apic {
    fn name(&self) -> &'static str {
        self.name
    }

    fn has_line(&self, line: u8) -> bool {
        matches!(self.lines.get(line as usize), Some(Some(_)))
    }

    fn unmask(&self, line: u8) {
        self.set_masked(line, false);
    }

    fn mask(&self, line: u8) {
        self.set_masked(line, true);
    }

    /// The local APIC raises its spurious vector, never a line's, for an
    /// interrupt that vanished.
    fn is_genuine(&self, _line: u8) -> bool {
        true
    }

    fn end_of_interrupt(&self, _line: u8) {
        lapic::end_of_interrupt();
    }
}

static APIC: Once<Apic> = Once::new();

/// Why the I/O APICs cannot be used.
#[derive(Debug)]
pub enum Error {
    NoIoApic,
    Map(paging::MmioError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::NoIoApic => f.write_str("the MADT lists no I/O APIC"),
            Self::Map(error) => write!(f, "the I/O APIC's registers cannot be mapped ({error:?})"),
        }
    }
}

/// The I/O APICs, mapped with every input masked and the ISA lines routed,
/// not yet the interrupt controller.
pub struct Prepared {
    io_apics: Vec<IoApic>,
    lines: [Option<(usize, Route)>; ISA_LINES as usize],
}

/// Maps the I/O APICs the MADT lists, masks every input and routes the ISA
/// lines through the MADT's overrides. Changes nothing else, so the 8259s
/// can still take over if this fails.
pub fn prepare(madt: &Madt) -> Result<Prepared, Error> {
    if madt.io_apics.is_empty() {
        return Err(Error::NoIoApic);
    }
    let io_apics =
        madt.io_apics.iter().map(IoApic::new).collect::<Result<Vec<_>, _>>().map_err(Error::Map)?;
    for io_apic in &io_apics {
        for gsi in io_apic.gsi_base..io_apic.gsi_base + io_apic.inputs {
            io_apic.set_entry(gsi, MASKED);
        }
    }
    let mut lines = [None; ISA_LINES as usize];
    for (irq, line) in lines.iter_mut().enumerate() {
        let route = route(irq as u8, &madt.overrides, &madt.nmi_sources);
        *line = route
            .and_then(|route| Some((io_apics.iter().position(|io_apic| io_apic.serves(route.gsi))?, route)));
    }
    Ok(Prepared { io_apics, lines })
}

impl Prepared {
    /// Wires the MADT's NMI sources and installs the I/O APICs with the local
    /// APIC (enabled by now: lines go to its id) as the interrupt controller.
    pub fn install(self, nmi_sources: &[NmiSource]) {
        let destination = lapic::id() as u8;
        for nmi in nmi_sources {
            let route = Route {
                gsi: nmi.gsi,
                active_low: nmi.polarity == Polarity::ActiveLow,
                level: nmi.trigger == Trigger::Level,
            };
            match self.io_apics.iter().find(|io_apic| io_apic.serves(nmi.gsi)) {
                Some(io_apic) => {
                    io_apic.set_entry(nmi.gsi, redirection_entry(route, 0, destination, false) | DELIVER_NMI)
                }
                None => log::warn!("I/O APIC: NMI source GSI {} is on no I/O APIC; left alone", nmi.gsi),
            }
        }
        let inputs: u32 = self.io_apics.iter().map(|io_apic| io_apic.inputs).sum();
        let name = if lapic::is_x2apic() { "I/O APIC + local x2APIC" } else { "I/O APIC + local xAPIC" };
        let Prepared { io_apics, lines } = self;
        let apic = APIC.call_once(|| Apic { io_apics, lines, destination, name });
        log::info!(
            "I/O APIC: {} of them, {inputs} inputs; ISA IRQs routed {}; sent to APIC id {destination}",
            apic.io_apics.len(),
            Routes(&apic.lines)
        );
        interrupts::set_controller(apic);
    }
}

/// The ISA lines that do not arrive on the input of their own number, or
/// not active high and edge triggered, as `IRQ->GSI` with the difference.
struct Routes<'a>(&'a [Option<(usize, Route)>]);

impl fmt::Display for Routes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (irq, line) in self.0.iter().enumerate() {
            match line {
                Some((_, route)) if route.gsi == irq as u32 && !route.level && !route.active_low => {}
                Some((_, route)) => write!(
                    f,
                    "{irq}->{}{}{}, ",
                    route.gsi,
                    if route.level { " level" } else { "" },
                    if route.active_low { " low" } else { "" }
                )?,
                None => write!(f, "{irq}->none, ")?,
            }
        }
        f.write_str("the rest to their own number")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu_overrides() -> [Override; 2] {
        [
            Override { isa_irq: 0, gsi: 2, polarity: Polarity::Conforming, trigger: Trigger::Conforming },
            Override { isa_irq: 9, gsi: 9, polarity: Polarity::ActiveHigh, trigger: Trigger::Level },
        ]
    }

    #[test]
    fn irq_0_arrives_on_gsi_2_as_qemu_wires_it() {
        let overrides = qemu_overrides();
        assert_eq!(route(0, &overrides, &[]), Some(Route { gsi: 2, active_low: false, level: false }));
    }

    #[test]
    fn the_input_an_override_took_is_no_other_irqs() {
        assert_eq!(route(2, &qemu_overrides(), &[]), None);
    }

    #[test]
    fn irqs_without_an_override_keep_their_number_high_and_edge() {
        for irq in [1, 4, 12, 15] {
            assert_eq!(
                route(irq, &qemu_overrides(), &[]),
                Some(Route { gsi: irq.into(), active_low: false, level: false })
            );
        }
    }

    #[test]
    fn overrides_carry_polarity_and_trigger() {
        let overrides = qemu_overrides();
        assert_eq!(route(9, &overrides, &[]), Some(Route { gsi: 9, active_low: false, level: true }));
        let low = [Override { isa_irq: 11, gsi: 20, polarity: Polarity::ActiveLow, trigger: Trigger::Level }];
        assert_eq!(route(11, &low, &[]), Some(Route { gsi: 20, active_low: true, level: true }));
        let edge_low =
            [Override { isa_irq: 3, gsi: 3, polarity: Polarity::ActiveLow, trigger: Trigger::Edge }];
        assert_eq!(route(3, &edge_low, &[]), Some(Route { gsi: 3, active_low: true, level: false }));
    }

    #[test]
    fn a_gsi_wired_to_nmi_carries_no_irq() {
        let nmi = [NmiSource { gsi: 5, polarity: Polarity::Conforming, trigger: Trigger::Conforming }];
        assert_eq!(route(5, &[], &nmi), None);
        let moved =
            [Override { isa_irq: 7, gsi: 5, polarity: Polarity::Conforming, trigger: Trigger::Conforming }];
        assert_eq!(route(7, &moved, &nmi), None);
    }

    #[test]
    fn redirection_entries_hold_vector_flags_and_destination() {
        let route = Route { gsi: 2, active_low: true, level: true };
        let entry = redirection_entry(route, 32, 3, true);
        assert_eq!(entry & 0xff, 32);
        assert_eq!(entry & (0b111 << 8), 0, "fixed delivery");
        assert_eq!(entry & (1 << 11), 0, "physical destination mode");
        assert_ne!(entry & ACTIVE_LOW, 0);
        assert_ne!(entry & LEVEL_TRIGGERED, 0);
        assert_ne!(entry & MASKED, 0);
        assert_eq!(entry >> 56, 3);
        let plain = redirection_entry(Route { gsi: 1, active_low: false, level: false }, 33, 0, false);
        assert_eq!(plain, 33);
    }
}
