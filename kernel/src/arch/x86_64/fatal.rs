//! Where the CPU layer's last words go. The console registers itself here
//! at boot; the CPU layer itself knows no console.
//!
//! Until something registers, reports are dropped: a fault that early halts
//! without a word, but it halts instead of resetting the machine.

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Once;

/// How reports reach the consoles.
#[derive(Clone, Copy)]
pub struct Reporter {
    /// For a report after which the CPU halts: may take over locks that the
    /// interrupted code held, since that code never runs again.
    ///
    /// # Safety
    /// Called only on paths that never return to the interrupted code, with
    /// no other CPU running.
    pub fatal: unsafe fn(fmt::Arguments),
    /// For traps that return (a breakpoint): must never wait for a lock.
    pub trap: fn(fmt::Arguments),
    /// One line, for a fault while a fatal report was being written: to the
    /// simplest output there is (serial), touching nothing that may be
    /// broken.
    ///
    /// # Safety
    /// As for `fatal`.
    pub last_words: unsafe fn(&str),
}

static REPORTER: Once<Reporter> = Once::new();

/// Registers where reports go; the first registration stays.
pub fn set_reporter(reporter: Reporter) {
    REPORTER.call_once(|| reporter);
}

/// Reports `args` and halts this CPU for good. A fault while reporting (a
/// broken console, say) comes back here: it gets a one-line report on
/// serial, naming itself, and the CPU halts at once instead of looping.
pub fn stop(args: fmt::Arguments) -> ! {
    static STOPPING: AtomicBool = AtomicBool::new(false);
    let again = STOPPING.swap(true, Ordering::Relaxed);
    if let Some(reporter) = REPORTER.get() {
        if again {
            let mut line = FirstLine::default();
            let _ = fmt::write(&mut line, args);
            let mut out = FirstLine::default();
            let _ = fmt::write(
                &mut out,
                format_args!("\nfault while reporting a fault: {}; CPU halted.\n", line.as_str()),
            );
            // SAFETY: as below.
            unsafe { (reporter.last_words)(out.as_str()) };
        } else {
            // SAFETY: this path halts below and never returns to the
            // interrupted code; the kernel runs on one CPU.
            unsafe { (reporter.fatal)(args) };
        }
    }
    super::halt()
}

/// The first non-empty line of what is written, cut to a fixed size: built
/// without the heap, which may be what broke.
struct FirstLine {
    bytes: [u8; 160],
    len: usize,
    done: bool,
}

impl Default for FirstLine {
    fn default() -> Self {
        Self { bytes: [0; 160], len: 0, done: false }
    }
}

impl FirstLine {
    fn as_str(&self) -> &str {
        match core::str::from_utf8(&self.bytes[..self.len]) {
            Ok(text) => text,
            Err(error) => core::str::from_utf8(&self.bytes[..error.valid_up_to()]).unwrap_or(""),
        }
    }
}

impl fmt::Write for FirstLine {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if self.done || self.len == self.bytes.len() {
                break;
            }
            if byte == b'\n' {
                self.done = self.len > 0;
                continue;
            }
            self.bytes[self.len] = byte;
            self.len += 1;
        }
        Ok(())
    }
}

/// Reports a trap that returns, on every console that is free right now.
pub fn report_trap(args: fmt::Arguments) {
    if let Some(reporter) = REPORTER.get() {
        (reporter.trap)(args);
    }
}
