//! COM1, a 16550 UART at 115200 8N1: the serial console's wire, and an input
//! for running the kernel headless.
//!
//! Output is queued: writers append to a ring and the transmit-empty
//! interrupt hands the UART sixteen bytes (its FIFO) at a time, so a long
//! burst of output never keeps interrupts off for the milliseconds the wire
//! takes. Until that interrupt is enabled (early boot), and on the fatal
//! paths, output is written synchronously instead. When the ring is full, a
//! writer in task context waits for room; one that cannot wait (interrupts
//! off) drops its bytes, and the loss is counted and reported. IRQ 4 also
//! hands received bytes to the serial input task through [`RECEIVED`].

use crate::arch::interrupts::{self, IrqLine, RegisterError};
use crate::sync::IrqSafeMutex;
use crate::sync::queue::IrqQueue;
use core::fmt::{self, Write};
use spin::Once;
use uart_16550::{Config, Uart16550Tty, Uart16550TtyError, backend::PioBackend, spec::registers::IER};

const COM1: u16 = 0x3f8;
/// COM1's ISA interrupt line.
const IRQ: u8 = 4;
/// Output queued for the transmit interrupt: a screenful of log lines.
const QUEUE_BYTES: usize = 16 * 1024;

/// Bytes from the receive interrupt to the serial input task.
pub static RECEIVED: IrqQueue<256> = IrqQueue::new();

struct Com1 {
    port: Uart16550Tty<PioBackend>,
    queue: Ring,
    /// Whether the transmit interrupt drains `queue` (else writes are
    /// synchronous).
    queued: bool,
    /// Bytes dropped because the queue was full, not yet reported.
    dropped: usize,
}

/// Unset until [`init`], and on machines without a UART at COM1. (A `Once`
/// starts as zeros: the 16 KiB queue costs the kernel image nothing.)
static PORT: Once<IrqSafeMutex<Com1>> = Once::new();

static LINE: Once<IrqLine> = Once::new();

/// Probes COM1 and initialises it if it answers: its scratch register must
/// keep what is written to it, and in loopback mode it must give back what
/// it sends. Without it (no such port on many current machines) nothing is
/// written to these ports, no interrupt line is taken and there is no
/// serial input; the console says so on screen.
pub fn init() -> Result<(), ProbeError> {
    // SAFETY: COM1 is the standard base; nothing else in the kernel drives
    // these ports, and the port object is kept behind `PORT`'s lock.
    let port = unsafe { Uart16550Tty::new_port(COM1, Config::default()) }?;
    PORT.call_once(|| IrqSafeMutex::new(Com1 { port, queue: Ring::new(), queued: false, dropped: 0 }));
    Ok(())
}

/// Why COM1 is not used: it did not answer, or failed its self-test.
pub type ProbeError = Uart16550TtyError;

/// Whether COM1 answered [`init`]'s probe.
pub fn present() -> bool {
    PORT.get().is_some()
}

/// Takes IRQ 4 and asks COM1 to raise it when a byte arrives and when it can
/// take more output; from then on output is queued. Without COM1 nothing is
/// registered.
pub fn enable_interrupts() -> Result<(), RegisterError> {
    let Some(port) = PORT.get() else { return Ok(()) };
    let line = interrupts::register(IRQ, on_interrupt)?;
    LINE.call_once(|| line);
    let mut com1 = port.lock();
    com1.port.inner_mut().enable_interrupts(IER::DATA_READY | IER::THR_EMPTY);
    com1.queued = true;
    Ok(())
}

fn on_interrupt() {
    let Some(port) = PORT.get() else { return };
    let mut com1 = port.lock();
    // Reading the identification register acknowledges a transmit-empty
    // interrupt; loop until nothing is pending, or an edge-triggered line
    // would stay raised and never interrupt again.
    while com1.port.inner_mut().isr().has_pending_interrupt() {
        while let Ok(byte) = com1.port.inner_mut().try_receive_byte() {
            RECEIVED.push(byte);
        }
        com1.transmit();
    }
    com1.transmit();
}

impl Com1 {
    /// Hands the UART as much of the queue as its FIFO takes now.
    fn transmit(&mut self) {
        let sent = self.port.inner_mut().send_bytes(self.queue.front());
        self.queue.consume(sent);
    }

    /// Writes the queue out, waiting for the wire: for the fatal paths.
    fn drain(&mut self) {
        while !self.queue.is_empty() {
            self.transmit();
        }
    }
}

/// Queues (or, before the transmit interrupt, writes) `bytes`.
fn send(bytes: &[u8]) {
    let may_wait = send_unreported(bytes);
    report_drops(may_wait);
}

/// [`send`], leaving dropped bytes to be reported by a later write; returns
/// whether the writer may wait.
fn send_unreported(mut bytes: &[u8]) -> bool {
    let may_wait = x86_64::instructions::interrupts::are_enabled() && !interrupts::in_handler();
    let Some(port) = PORT.get() else { return may_wait };
    while !bytes.is_empty() {
        {
            let mut com1 = port.lock();
            if !com1.queued {
                com1.port.inner_mut().send_bytes_exact(bytes);
                return may_wait;
            }
            let taken = com1.queue.push(bytes);
            bytes = &bytes[taken..];
            com1.transmit();
            if !bytes.is_empty() && !may_wait {
                com1.dropped += bytes.len();
                return may_wait;
            }
        }
        if !bytes.is_empty() {
            // The transmit interrupt makes room.
            x86_64::instructions::hlt();
        }
    }
    may_wait
}

/// Logs (from task context) how many bytes were dropped since last time.
fn report_drops(may_wait: bool) {
    if !may_wait {
        return;
    }
    let dropped = PORT.get().map_or(0, |port| core::mem::take(&mut port.lock().dropped));
    if dropped > 0 {
        log::warn!(
            "serial: {dropped} bytes of output dropped (the queue was full while interrupts were off)"
        );
    }
}

/// Formats straight into the queue, piece by piece: the lock is held only
/// while a piece is queued, never while the arguments are formatted.
struct Queue;

impl Write for Queue {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        send(s.as_bytes());
        Ok(())
    }
}

/// Writes to COM1.
pub fn write_fmt(args: fmt::Arguments) {
    let _ = Queue.write_fmt(args);
}

/// Writes `text` and logs nothing, not even dropped bytes (a later write
/// reports them): for a writer that holds a lock the logger takes.
pub fn write_str_unlogged(text: &str) {
    send_unreported(text.as_bytes());
}

/// Waits until everything queued is on the wire: before the machine resets
/// or QEMU exits, say.
pub fn flush() {
    if let Some(port) = PORT.get() {
        port.lock().drain();
    }
}

/// Writes unless the port's lock is held (by the code a trap interrupted).
pub fn try_write_fmt(args: fmt::Arguments) {
    struct TryQueue;
    impl Write for TryQueue {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let mut com1 = PORT.get().and_then(IrqSafeMutex::try_lock).ok_or(fmt::Error)?;
            if com1.queued {
                let taken = com1.queue.push(s.as_bytes());
                com1.dropped += s.len() - taken;
                com1.transmit();
            } else {
                com1.port.inner_mut().send_bytes_exact(s.as_bytes());
            }
            Ok(())
        }
    }
    let _ = TryQueue.write_fmt(args);
}

/// Writes a fatal report, synchronously and after what was queued, even if
/// the failing code held the port's lock.
///
/// # Safety
/// Only for fatal paths: the caller never returns to the code that may hold
/// the lock, and no other CPU is running.
pub unsafe fn write_fmt_fatal(args: fmt::Arguments) {
    if let Some(port) = PORT.get() {
        // SAFETY: per this function's contract.
        let mut com1 = unsafe { port.lock_for_fatal_path() };
        com1.drain();
        let _ = com1.port.write_fmt(args);
    }
}

/// Writes `text` with nothing but the UART's registers: not even what was
/// queued goes first. For a fault while a fatal report was being written.
///
/// # Safety
/// As for [`write_fmt_fatal`].
pub unsafe fn write_str_fatal(text: &str) {
    if let Some(port) = PORT.get() {
        // SAFETY: per this function's contract.
        let mut com1 = unsafe { port.lock_for_fatal_path() };
        com1.port.inner_mut().send_bytes_exact(text.as_bytes());
    }
}

/// A byte ring for the output queue.
struct Ring {
    bytes: [u8; QUEUE_BYTES],
    /// Index of the oldest byte, and how many there are.
    head: usize,
    len: usize,
}

impl Ring {
    const fn new() -> Self {
        Self { bytes: [0; QUEUE_BYTES], head: 0, len: 0 }
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends what fits of `data`; returns how much did.
    fn push(&mut self, data: &[u8]) -> usize {
        let taken = data.len().min(QUEUE_BYTES - self.len);
        for (i, &byte) in data[..taken].iter().enumerate() {
            self.bytes[(self.head + self.len + i) % QUEUE_BYTES] = byte;
        }
        self.len += taken;
        taken
    }

    /// The oldest bytes, as many as lie contiguous.
    fn front(&self) -> &[u8] {
        let end = (self.head + self.len).min(QUEUE_BYTES);
        &self.bytes[self.head..end]
    }

    fn consume(&mut self, count: usize) {
        self.head = (self.head + count) % QUEUE_BYTES;
        self.len -= count;
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;

    #[test]
    fn the_ring_keeps_order_across_its_end_and_refuses_overflow() {
        let mut ring = Ring::new();
        let chunk = [7u8; 10_000];
        assert_eq!(ring.push(&chunk), 10_000);
        ring.consume(ring.front().len());
        assert!(ring.is_empty());
        let text: Vec<u8> = (0..=255u8).cycle().take(16 * 1024).collect();
        assert_eq!(ring.push(&text[..9_000]), 9_000);
        assert_eq!(ring.push(&text[9_000..]), 16 * 1024 - 9_000);
        assert_eq!(ring.push(b"x"), 0, "a full ring takes nothing");
        let mut out = Vec::new();
        while !ring.is_empty() {
            let front = ring.front().to_vec();
            out.extend_from_slice(&front);
            ring.consume(front.len());
        }
        assert_eq!(out, text);
    }
}
