//! COM1, a 16550 UART at 115200 8N1: the serial console's wire, always on,
//! the one output that works before (and without) any screen, and an input
//! for running the kernel headless. IRQ 4 hands received bytes to the
//! serial input task through [`RECEIVED`].

use crate::arch::interrupts::{self, IrqLine, RegisterError};
use crate::sync::IrqSafeMutex;
use crate::sync::queue::IrqQueue;
use core::fmt::{self, Write};
use spin::Once;
use uart_16550::{Config, Uart16550Tty, backend::PioBackend, spec::registers::IER};

const COM1: u16 = 0x3f8;
/// COM1's ISA interrupt line.
const IRQ: u8 = 4;

/// `None` until [`init`], and on machines without a UART at COM1.
static PORT: IrqSafeMutex<Option<Uart16550Tty<PioBackend>>> = IrqSafeMutex::new(None);

/// Bytes from the receive interrupt to the serial input task.
pub static RECEIVED: IrqQueue<256> = IrqQueue::new();

static LINE: Once<IrqLine> = Once::new();

/// Initialises COM1. A machine without it keeps running silent.
pub fn init() {
    // SAFETY: COM1 is the standard base; nothing else in the kernel drives
    // these ports, and the port object is kept behind `PORT`'s lock.
    let port = unsafe { Uart16550Tty::new_port(COM1, Config::default()) };
    *PORT.lock() = port.ok();
}

/// Takes IRQ 4 and asks COM1 to raise it when a byte arrives. Without COM1
/// there is nothing to receive, and nothing is registered.
pub fn enable_receive() -> Result<(), RegisterError> {
    if PORT.lock().is_none() {
        return Ok(());
    }
    let line = interrupts::register(IRQ, on_interrupt)?;
    LINE.call_once(|| line);
    if let Some(port) = PORT.lock().as_mut() {
        port.inner_mut().enable_interrupts(IER::DATA_READY);
    }
    Ok(())
}

fn on_interrupt() {
    let mut port = PORT.lock();
    let Some(port) = port.as_mut() else { return };
    while let Ok(byte) = port.inner_mut().try_receive_byte() {
        RECEIVED.push(byte);
    }
}

/// Writes to COM1; interrupts stay off meanwhile, so a handler that prints
/// can never find the port locked by the code it interrupted.
pub fn write_fmt(args: fmt::Arguments) {
    if let Some(port) = PORT.lock().as_mut() {
        let _ = port.write_fmt(args);
    }
}

/// Writes unless the port's lock is held (by the code a trap interrupted).
pub fn try_write_fmt(args: fmt::Arguments) {
    if let Some(mut port) = PORT.try_lock()
        && let Some(port) = port.as_mut()
    {
        let _ = port.write_fmt(args);
    }
}

/// Writes a fatal report even if the failing code held the port's lock.
///
/// # Safety
/// Only for fatal paths: the caller never returns to the code that may hold
/// the lock, and no other CPU is running.
pub unsafe fn write_fmt_fatal(args: fmt::Arguments) {
    // SAFETY: per this function's contract.
    if let Some(port) = unsafe { PORT.lock_for_fatal_path() }.as_mut() {
        let _ = port.write_fmt(args);
    }
}
