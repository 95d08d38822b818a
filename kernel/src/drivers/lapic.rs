//! The local APIC: this CPU's own interrupt controller. Everything the I/O
//! APIC sends arrives through it and ends with its end of interrupt; its
//! LINT pins carry NMIs as the MADT says; and its timer ticks the kernel's
//! clock, either periodically or, with TSC-deadline mode, at deadlines of the
//! time-stamp counter. x2APIC mode (registers as MSRs) when the CPU offers
//! it, xAPIC mode (registers in a memory page) otherwise.

use super::acpi::{Cpu, LocalNmi};
use crate::arch::cpu;
use crate::arch::interrupts::{self, FIRST_LOCAL_VECTOR, LocalVector, RegisterError, SPURIOUS_VECTOR};
use crate::mem::paging;
use crate::time;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Once;
use x86_64::registers::model_specific::Msr;

const IA32_APIC_BASE: u32 = 0x1b;
const BASE_ENABLE: u64 = 1 << 11;
const BASE_X2APIC: u64 = 1 << 10;
const IA32_TSC_DEADLINE: u32 = 0x6e0;
/// x2APIC mode's MSR for the register at xAPIC offset `o` is this + o / 16.
const X2APIC_MSRS: u32 = 0x800;
/// The xAPIC register page's size.
const PAGE: u64 = 4096;

/// Register offsets in the xAPIC page.
const ID: u32 = 0x20;
const TASK_PRIORITY: u32 = 0x80;
const EOI: u32 = 0xb0;
const SPURIOUS: u32 = 0xf0;
const LVT_TIMER: u32 = 0x320;
const LVT_LINT0: u32 = 0x350;
const LVT_LINT1: u32 = 0x360;
const LVT_ERROR: u32 = 0x370;
const TIMER_INITIAL: u32 = 0x380;
const TIMER_CURRENT: u32 = 0x390;
const TIMER_DIVIDE: u32 = 0x3e0;

const SOFTWARE_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;
const DELIVER_NMI: u32 = 0b100 << 8;
const TIMER_PERIODIC: u32 = 0b01 << 17;
const TIMER_TSC_DEADLINE: u32 = 0b10 << 17;
/// The timer counts the bus clock divided by 16 (divide configuration 0b0011).
const DIVIDE_BY_16: u32 = 0b0011;
const TIMER_VECTOR: u8 = FIRST_LOCAL_VECTOR;

/// How the registers are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The register page, mapped uncached at this virtual address.
    XApic(u64),
    X2Apic,
}

static MODE: Once<Mode> = Once::new();
static TIMER: Once<LocalVector> = Once::new();
/// TSC-deadline mode: the TSC cycles per tick and the next deadline.
static DEADLINE_PERIOD: AtomicU64 = AtomicU64::new(0);
static NEXT_DEADLINE: AtomicU64 = AtomicU64::new(0);

/// Why the local APIC cannot be used.
#[derive(Debug)]
pub enum Error {
    Map(paging::MmioError),
    /// The I/O APICs address local APICs by an 8-bit id in physical mode.
    IdBeyondIoApic(u32),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            Self::Map(error) => write!(f, "its registers cannot be mapped ({error:?})"),
            Self::IdBeyondIoApic(id) => {
                write!(f, "this CPU's APIC id {id} is beyond what an I/O APIC addresses without remapping")
            }
        }
    }
}

/// Enables this CPU's local APIC at `physical_base` (the MADT's address):
/// x2APIC mode if the CPU has it (or the firmware already chose it), the
/// task priority at 0, the spurious vector set, the error interrupt and the
/// LINT pins masked except those the MADT wires to NMI for this CPU (found
/// among `cpus` by its APIC id).
pub fn init(physical_base: u64, cpus: &[Cpu], nmis: &[LocalNmi]) -> Result<(), Error> {
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU.
    let base = unsafe { Msr::new(IA32_APIC_BASE).read() };
    let mode = if cpu::features().x2apic || base & BASE_X2APIC != 0 {
        Mode::X2Apic
    } else {
        Mode::XApic(paging::map_mmio(physical_base, PAGE).map_err(Error::Map)?)
    };
    let enabled = match mode {
        Mode::X2Apic => base | BASE_ENABLE | BASE_X2APIC,
        Mode::XApic(_) => base | BASE_ENABLE,
    };
    // SAFETY: enabling the local APIC, in x2APIC mode only where the CPU has
    // it; going from xAPIC (or disabled) to x2APIC with both bits set is a
    // transition the SDM allows. Interrupts stay off until its LVT entries
    // are set below.
    unsafe { Msr::new(IA32_APIC_BASE).write(enabled) };
    MODE.call_once(|| mode);
    let id = id();
    if id > u32::from(u8::MAX) {
        // SAFETY: back to the state the firmware left, through "disabled"
        // as the SDM requires for leaving x2APIC mode.
        unsafe {
            Msr::new(IA32_APIC_BASE).write(base & !(BASE_ENABLE | BASE_X2APIC));
            Msr::new(IA32_APIC_BASE).write(base);
        }
        return Err(Error::IdBeyondIoApic(id));
    }
    write(TASK_PRIORITY, 0);
    write(LVT_ERROR, LVT_MASKED);
    write(LVT_TIMER, LVT_MASKED);
    let uid = cpus.iter().find(|cpu| cpu.apic_id == id).map(|cpu| cpu.uid);
    for (lint, register) in [(0, LVT_LINT0), (1, LVT_LINT1)] {
        let nmi = nmis.iter().any(|nmi| nmi.lint == lint && (nmi.cpu_uid.is_none() || nmi.cpu_uid == uid));
        write(register, if nmi { DELIVER_NMI } else { LVT_MASKED });
    }
    write(SPURIOUS, SOFTWARE_ENABLE | u32::from(SPURIOUS_VECTOR));
    let others = cpus.iter().filter(|cpu| cpu.apic_id != id).count();
    log::info!(
        "local APIC: {} mode at {physical_base:#x}, APIC id {id}; {} CPUs in the MADT: this one runs the kernel, the other {others} stay parked",
        if is_x2apic() { "x2APIC" } else { "xAPIC" },
        cpus.len()
    );
    Ok(())
}

/// Whether [`init`] enabled the local APIC (it takes message-signalled
/// interrupts then).
pub fn is_enabled() -> bool {
    MODE.get().is_some()
}

/// Whether [`init`] chose x2APIC mode.
pub fn is_x2apic() -> bool {
    MODE.get() == Some(&Mode::X2Apic)
}

/// This CPU's local APIC id.
pub fn id() -> u32 {
    match MODE.get() {
        Some(Mode::X2Apic) => read(ID),
        _ => read(ID) >> 24,
    }
}

/// Ends the interrupt in service. The dispatcher calls it after every
/// handler of a line the I/O APIC delivered, and of the timer.
pub fn end_of_interrupt() {
    write(EOI, 0);
}

/// Starts the timer counting down from its largest count at the bus clock
/// divided by 16, with its interrupt masked: for calibration, which reads
/// [`timer_count`] at both ends of a measured interval.
pub fn start_counting() {
    write(LVT_TIMER, LVT_MASKED);
    write(TIMER_DIVIDE, DIVIDE_BY_16);
    write(TIMER_INITIAL, u32::MAX);
}

/// What is left of the count [`start_counting`] began.
pub fn timer_count() -> u32 {
    read(TIMER_CURRENT)
}

/// Interrupts every `count` timer ticks (bus clock / 16), each calling
/// [`time::tick`].
pub fn start_periodic(count: u32) -> Result<(), RegisterError> {
    claim_timer(time::tick)?;
    write(TIMER_DIVIDE, DIVIDE_BY_16);
    write(LVT_TIMER, TIMER_PERIODIC | u32::from(TIMER_VECTOR));
    write(TIMER_INITIAL, count);
    Ok(())
}

/// Interrupts every `period` TSC cycles in TSC-deadline mode, each calling
/// [`time::tick`]; each interrupt sets the next deadline one period after
/// the last, so the ticks do not drift.
pub fn start_tsc_deadline(period: u64) -> Result<(), RegisterError> {
    claim_timer(on_deadline)?;
    DEADLINE_PERIOD.store(period, Ordering::Relaxed);
    write(LVT_TIMER, TIMER_TSC_DEADLINE | u32::from(TIMER_VECTOR));
    // The SDM asks for the LVT write to be ordered before the first deadline
    // (an MMIO write and an MSR write are not ordered otherwise).
    core::sync::atomic::fence(Ordering::SeqCst);
    set_deadline(cpu::read_tsc() + period);
    Ok(())
}

fn claim_timer(handler: interrupts::Handler) -> Result<(), RegisterError> {
    let timer = interrupts::register_local(TIMER_VECTOR, handler, end_of_interrupt)?;
    TIMER.call_once(|| timer);
    Ok(())
}

fn on_deadline() {
    let period = DEADLINE_PERIOD.load(Ordering::Relaxed);
    let next = NEXT_DEADLINE.load(Ordering::Relaxed) + period;
    // After a long stall with interrupts off, skip the missed ticks rather
    // than fire them back to back: the clock does not count ticks.
    set_deadline(next.max(cpu::read_tsc() + period / 2));
    time::tick();
}

fn set_deadline(tsc: u64) {
    NEXT_DEADLINE.store(tsc, Ordering::Relaxed);
    // SAFETY: IA32_TSC_DEADLINE exists when CPUID reports TSC-deadline mode,
    // which the caller checked; writing it arms the timer.
    unsafe { Msr::new(IA32_TSC_DEADLINE).write(tsc) };
}

fn read(register: u32) -> u32 {
    match MODE.get() {
        Some(Mode::X2Apic) => {
            // SAFETY: in x2APIC mode every local APIC register is this MSR.
            unsafe { Msr::new(X2APIC_MSRS + register / 16).read() as u32 }
        }
        Some(&Mode::XApic(page)) => {
            // SAFETY: the register page is mapped uncached at `page`, and
            // `register` is one of its 16-byte-aligned registers.
            unsafe { ((page + u64::from(register)) as *const u32).read_volatile() }
        }
        None => 0,
    }
}

fn write(register: u32, value: u32) {
    match MODE.get() {
        Some(Mode::X2Apic) => {
            // SAFETY: as for `read`; the callers write what the SDM defines.
            unsafe { Msr::new(X2APIC_MSRS + register / 16).write(value.into()) }
        }
        Some(&Mode::XApic(page)) => {
            // SAFETY: as for `read`.
            unsafe { ((page + u64::from(register)) as *mut u32).write_volatile(value) }
        }
        None => {}
    }
}
