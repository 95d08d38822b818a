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
}

static REPORTER: Once<Reporter> = Once::new();

/// Registers where reports go; the first registration stays.
pub fn set_reporter(reporter: Reporter) {
    REPORTER.call_once(|| reporter);
}

/// Reports `args` and halts this CPU for good. A fault while reporting (a
/// broken console) comes back here and halts at once instead of looping.
pub fn stop(args: fmt::Arguments) -> ! {
    static STOPPING: AtomicBool = AtomicBool::new(false);
    if !STOPPING.swap(true, Ordering::Relaxed)
        && let Some(reporter) = REPORTER.get()
    {
        // SAFETY: this path halts below and never returns to the interrupted
        // code; the kernel runs on one CPU.
        unsafe { (reporter.fatal)(args) };
    }
    super::halt()
}

/// Reports a trap that returns, on every console that is free right now.
pub fn report_trap(args: fmt::Arguments) {
    if let Some(reporter) = REPORTER.get() {
        (reporter.trap)(args);
    }
}
