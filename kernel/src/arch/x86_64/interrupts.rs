//! Device interrupts: drivers claim a line, the IDT's stubs dispatch here.
//!
//! A driver calls [`register`] with the line its device raises and a
//! handler, and keeps the returned [`IrqLine`] for as long as it wants the
//! interrupts. Which controller delivers the line (the 8259 pair, or the I/O
//! APIC and the local APIC) is the business of the [`Controller`] that the
//! platform code installs; drivers never see it. Acknowledging the
//! controller happens in one place, [`dispatch`], after the handler ran.
//!
//! The top vectors belong to the CPU's own interrupt sources, which no
//! controller line feeds: the local APIC's timer claims one with
//! [`register_local`], and [`SPURIOUS_VECTOR`] is never acknowledged.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use spin::Once;

/// The first vector the CPU leaves to devices (0..31 are its exceptions).
pub const FIRST_VECTOR: u8 = 32;
/// Vectors for devices: everything after the exceptions. Line `n` of the
/// controller arrives on vector `FIRST_VECTOR + n`.
pub const DEVICE_VECTORS: usize = 256 - FIRST_VECTOR as usize;
/// Vectors from here up are the CPU's own (its local APIC's), never a
/// controller line's.
pub const FIRST_LOCAL_VECTOR: u8 = 0xf0;
/// What the local APIC raises when an interrupt vanished before the CPU took
/// it. Nothing is in service then, so it must get no end of interrupt.
pub const SPURIOUS_VECTOR: u8 = 0xff;

/// A device's interrupt handler. It runs with interrupts off, must not block,
/// allocate or take a lock that task code holds with interrupts on.
pub type Handler = fn();

/// The hardware that delivers device interrupts to the CPU.
pub trait Controller: Sync {
    /// For the boot log.
    fn name(&self) -> &'static str;
    /// Whether it delivers `line`: the 8259 pair has lines 0 to 15, an I/O
    /// APIC the ISA lines the firmware's tables route to one of its inputs.
    fn has_line(&self, line: u8) -> bool;
    /// Lets `line`'s interrupts through.
    fn unmask(&self, line: u8);
    /// Stops `line`'s interrupts.
    fn mask(&self, line: u8);
    /// Whether an interrupt that arrived for `line` is real. An 8259 raises
    /// its lowest-priority line for a request that vanished; those need no
    /// handler (and the controller deals with their acknowledgement).
    fn is_genuine(&self, line: u8) -> bool;
    /// Tells the controller the handler for `line` is done.
    fn end_of_interrupt(&self, line: u8);
}

static CONTROLLER: Once<&'static dyn Controller> = Once::new();

/// A registered handler per device vector, as a `fn` address (0: none).
static HANDLERS: [AtomicUsize; DEVICE_VECTORS] = [const { AtomicUsize::new(0) }; DEVICE_VECTORS];
/// Vectors whose unclaimed interrupt was already reported, to report once.
static REPORTED: [AtomicBool; DEVICE_VECTORS] = [const { AtomicBool::new(false) }; DEVICE_VECTORS];
/// Lines whose spurious interrupt was already reported, likewise.
static SPURIOUS_REPORTED: [AtomicBool; DEVICE_VECTORS] = [const { AtomicBool::new(false) }; DEVICE_VECTORS];

/// Device interrupt handlers running now (they do not nest: the CPU keeps
/// interrupts off in a handler, but exceptions inside one could).
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Whether the CPU is running a device interrupt's handler: code that may
/// run there must not allocate, free, or wait for a lock task code holds.
pub fn in_handler() -> bool {
    IN_HANDLER.load(Ordering::Relaxed) > 0
}
/// The end-of-interrupt function of each claimed local vector, as a `fn`
/// address (0: none), indexed from [`FIRST_LOCAL_VECTOR`].
static LOCAL_ACKS: [AtomicUsize; LOCAL_VECTORS] = [const { AtomicUsize::new(0) }; LOCAL_VECTORS];
const LOCAL_VECTORS: usize = (SPURIOUS_VECTOR - FIRST_LOCAL_VECTOR) as usize;

/// Installs the interrupt controller; the platform code does this once, before
/// any driver registers.
pub fn set_controller(controller: &'static dyn Controller) {
    CONTROLLER.call_once(|| controller);
}

/// The installed controller's name.
pub fn controller_name() -> &'static str {
    CONTROLLER.get().map_or("none", |controller| controller.name())
}

/// Why a line could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterError {
    /// There is no such line.
    NoSuchLine(u8),
    /// Another driver holds it.
    Taken(u8),
    /// No controller is installed yet.
    NoController,
    /// The vector is not one of the CPU's local vectors.
    NotLocal(u8),
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::NoSuchLine(line) => write!(f, "there is no interrupt line {line}"),
            Self::Taken(line) => write!(f, "interrupt line {line} is already registered"),
            Self::NoController => f.write_str("no interrupt controller is installed"),
            Self::NotLocal(vector) => write!(f, "vector {vector} is not one of the CPU's local vectors"),
        }
    }
}

/// A claimed interrupt line. Dropping it masks the line and frees it.
#[must_use = "dropping the IrqLine releases the interrupt line at once"]
#[derive(Debug)]
pub struct IrqLine {
    line: u8,
}

impl Drop for IrqLine {
    fn drop(&mut self) {
        if let Some(controller) = CONTROLLER.get() {
            controller.mask(self.line);
        }
        HANDLERS[self.line as usize].store(0, Ordering::Release);
    }
}

/// Claims interrupt `line` (an ISA IRQ number on a PC) for `handler` and
/// unmasks it.
pub fn register(line: u8, handler: Handler) -> Result<IrqLine, RegisterError> {
    let controller = CONTROLLER.get().ok_or(RegisterError::NoController)?;
    if !controller.has_line(line) {
        return Err(RegisterError::NoSuchLine(line));
    }
    HANDLERS[line as usize]
        .compare_exchange(0, handler as usize, Ordering::AcqRel, Ordering::Relaxed)
        .map_err(|_| RegisterError::Taken(line))?;
    REPORTED[line as usize].store(false, Ordering::Relaxed);
    controller.unmask(line);
    Ok(IrqLine { line })
}

/// A claimed local vector. Dropping it frees the vector; its source must be
/// stopped first.
#[must_use = "dropping the LocalVector releases the vector at once"]
#[derive(Debug)]
pub struct LocalVector {
    vector: u8,
}

impl Drop for LocalVector {
    fn drop(&mut self) {
        HANDLERS[(self.vector - FIRST_VECTOR) as usize].store(0, Ordering::Release);
        LOCAL_ACKS[(self.vector - FIRST_LOCAL_VECTOR) as usize].store(0, Ordering::Release);
    }
}

/// Claims `vector`, one of the CPU's local vectors (from
/// [`FIRST_LOCAL_VECTOR`], below [`SPURIOUS_VECTOR`]), for `handler`. The
/// dispatcher calls `end_of_interrupt` after the handler: the local source
/// knows its own acknowledgement.
pub fn register_local(
    vector: u8,
    handler: Handler,
    end_of_interrupt: fn(),
) -> Result<LocalVector, RegisterError> {
    if !(FIRST_LOCAL_VECTOR..SPURIOUS_VECTOR).contains(&vector) {
        return Err(RegisterError::NotLocal(vector));
    }
    HANDLERS[(vector - FIRST_VECTOR) as usize]
        .compare_exchange(0, handler as usize, Ordering::AcqRel, Ordering::Relaxed)
        .map_err(|_| RegisterError::Taken(vector))?;
    // The source is started only once this returns, so nothing can arrive
    // between the handler and its acknowledgement being known.
    LOCAL_ACKS[(vector - FIRST_LOCAL_VECTOR) as usize].store(end_of_interrupt as usize, Ordering::Release);
    REPORTED[(vector - FIRST_VECTOR) as usize].store(false, Ordering::Relaxed);
    Ok(LocalVector { vector })
}

/// Runs the handler registered for device vector `vector` and acknowledges
/// the controller, or the local source. The IDT's stubs call this for every
/// device vector.
pub(super) fn dispatch(vector: u8) {
    match vector {
        SPURIOUS_VECTOR => {}
        FIRST_LOCAL_VECTOR.. => dispatch_local(vector),
        _ => dispatch_line(vector),
    }
}

fn dispatch_line(vector: u8) {
    let (Some(line), Some(controller)) = (vector.checked_sub(FIRST_VECTOR), CONTROLLER.get()) else {
        return;
    };
    if !controller.has_line(line) {
        if !REPORTED[line as usize].swap(true, Ordering::Relaxed) {
            log::warn!("interrupt on vector {vector}, which {} does not use; ignored", controller.name());
        }
        return;
    }
    if !controller.is_genuine(line) {
        if !SPURIOUS_REPORTED[line as usize].swap(true, Ordering::Relaxed) {
            log::info!(
                "spurious interrupt on line {line} (vector {vector}); ignored, as the {} asks",
                controller.name()
            );
        }
        return;
    }
    if !run_handler(vector) && !REPORTED[line as usize].swap(true, Ordering::Relaxed) {
        log::warn!("unclaimed interrupt on line {line} (vector {vector}); no driver registered it");
    }
    controller.end_of_interrupt(line);
}

fn dispatch_local(vector: u8) {
    if !run_handler(vector) {
        if !REPORTED[(vector - FIRST_VECTOR) as usize].swap(true, Ordering::Relaxed) {
            log::warn!("unclaimed local interrupt on vector {vector}; nothing registered it");
        }
        return;
    }
    match LOCAL_ACKS[(vector - FIRST_LOCAL_VECTOR) as usize].load(Ordering::Acquire) {
        0 => {}
        address => {
            // SAFETY: only `register_local` stores into LOCAL_ACKS, and it
            // stores a `fn()`'s address.
            let end_of_interrupt = unsafe { core::mem::transmute::<usize, fn()>(address) };
            end_of_interrupt();
        }
    }
}

/// Runs the handler registered for `vector`; false if there is none.
fn run_handler(vector: u8) -> bool {
    match HANDLERS[(vector - FIRST_VECTOR) as usize].load(Ordering::Acquire) {
        0 => false,
        address => {
            // SAFETY: only `register` and `register_local` store into
            // HANDLERS, and they store a `Handler`'s address.
            let handler: Handler = unsafe { core::mem::transmute::<usize, Handler>(address) };
            IN_HANDLER.fetch_add(1, Ordering::Relaxed);
            handler();
            IN_HANDLER.fetch_sub(1, Ordering::Relaxed);
            true
        }
    }
}
