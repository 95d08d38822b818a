//! Device interrupts: drivers claim a line, the IDT's stubs dispatch here.
//!
//! A driver calls [`register`] with the line its device raises and a
//! handler, and keeps the returned [`IrqLine`] for as long as it wants the
//! interrupts. Which controller delivers the line (today the 8259 pair,
//! later the I/O APIC or MSI) is the business of the [`Controller`] that the
//! platform code installs; drivers never see it. Acknowledging the
//! controller happens in one place, [`dispatch`], after the handler ran.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use spin::Once;

/// The first vector the CPU leaves to devices (0..31 are its exceptions).
pub const FIRST_VECTOR: u8 = 32;
/// Vectors for devices: everything after the exceptions. Line `n` of the
/// controller arrives on vector `FIRST_VECTOR + n`.
pub const DEVICE_VECTORS: usize = 256 - FIRST_VECTOR as usize;

/// A device's interrupt handler. It runs with interrupts off, must not block,
/// allocate or take a lock that task code holds with interrupts on.
pub type Handler = fn();

/// The hardware that delivers device interrupts to the CPU.
pub trait Controller: Sync {
    /// For the boot log.
    fn name(&self) -> &'static str;
    /// How many lines it has (16 for the 8259 pair).
    fn lines(&self) -> u8;
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
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::NoSuchLine(line) => write!(f, "there is no interrupt line {line}"),
            Self::Taken(line) => write!(f, "interrupt line {line} is already registered"),
            Self::NoController => f.write_str("no interrupt controller is installed"),
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
    if line >= controller.lines() {
        return Err(RegisterError::NoSuchLine(line));
    }
    HANDLERS[line as usize]
        .compare_exchange(0, handler as usize, Ordering::AcqRel, Ordering::Relaxed)
        .map_err(|_| RegisterError::Taken(line))?;
    REPORTED[line as usize].store(false, Ordering::Relaxed);
    controller.unmask(line);
    Ok(IrqLine { line })
}

/// Runs the handler registered for device vector `vector` and acknowledges
/// the controller. The IDT's stubs call this for every device vector.
pub(super) fn dispatch(vector: u8) {
    let (Some(line), Some(controller)) = (vector.checked_sub(FIRST_VECTOR), CONTROLLER.get()) else {
        return;
    };
    if line >= controller.lines() {
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
    match HANDLERS[line as usize].load(Ordering::Acquire) {
        0 => {
            if !REPORTED[line as usize].swap(true, Ordering::Relaxed) {
                log::warn!("unclaimed interrupt on line {line} (vector {vector}); no driver registered it");
            }
        }
        address => {
            // SAFETY: only `register` stores into HANDLERS, and it stores a
            // `Handler`'s address.
            let handler: Handler = unsafe { core::mem::transmute::<usize, Handler>(address) };
            IN_HANDLER.fetch_add(1, Ordering::Relaxed);
            handler();
            IN_HANDLER.fetch_sub(1, Ordering::Relaxed);
        }
    }
    controller.end_of_interrupt(line);
}
