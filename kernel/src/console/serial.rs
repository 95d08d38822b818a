//! COM1, the serial console: always on, the one output that works before (and
//! without) any screen, and what the test runner reads.

use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::{Config, Uart16550Tty, backend::PioBackend, spec::registers::IER};
use x86_64::instructions::interrupts;

const COM1: u16 = 0x3f8;

/// `None` until [`init`], and on machines without a UART at COM1.
static PORT: Mutex<Option<Uart16550Tty<PioBackend>>> = Mutex::new(None);

/// Initialises COM1 (115200 8N1). A machine without it keeps running silent.
pub fn init() {
    // SAFETY: 0x3f8 is the standard COM1 base; nothing else in the kernel
    // drives these ports, and the port object is kept behind `PORT`'s lock.
    let port = unsafe { Uart16550Tty::new_port(COM1, Config::default()) };
    interrupts::without_interrupts(|| *PORT.lock() = port.ok());
}

/// Asks COM1 to interrupt (IRQ 4) when a byte arrives. False without COM1.
pub fn enable_receive_interrupt() -> bool {
    interrupts::without_interrupts(|| match PORT.lock().as_mut() {
        Some(port) => {
            port.inner_mut().enable_interrupts(IER::DATA_READY);
            true
        }
        None => false,
    })
}

/// A received byte, if one is waiting. For the IRQ 4 handler: the port's
/// lock is only ever taken with interrupts off, so it is free here.
pub fn receive() -> Option<u8> {
    PORT.lock().as_mut()?.inner_mut().try_receive_byte().ok()
}

/// Writes to COM1 with interrupts off, so that a handler printing on this CPU
/// cannot spin on a lock that the code it interrupted is holding.
pub fn write_fmt(args: fmt::Arguments) {
    interrupts::without_interrupts(|| {
        if let Some(port) = PORT.lock().as_mut() {
            let _ = port.write_fmt(args);
        }
    });
}

/// Writes unless the port's lock is held (by the code a trap interrupted);
/// returns whether it wrote.
pub fn try_write_fmt(args: fmt::Arguments) -> bool {
    interrupts::without_interrupts(|| match PORT.try_lock() {
        Some(mut port) => {
            if let Some(port) = port.as_mut() {
                let _ = port.write_fmt(args);
            }
            true
        }
        None => false,
    })
}

/// Writes a panic report even if the panicking code held the port's lock.
///
/// # Safety
/// Only for the panic path: the caller never returns to the code that may hold
/// the lock, and no other CPU is running.
pub unsafe fn write_fmt_in_panic(args: fmt::Arguments) {
    interrupts::disable();
    if PORT.is_locked() {
        // SAFETY: per this function's contract the holder never runs again.
        unsafe { PORT.force_unlock() };
    }
    write_fmt(args);
}
