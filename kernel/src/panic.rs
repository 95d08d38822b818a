//! The kernel's answer to a panic: a report on every console, then a halt.

use core::fmt;
use core::panic::PanicInfo;

use core::sync::atomic::{AtomicBool, Ordering};

/// ` in task N (name)` when a task was being polled.
struct TaskName(Option<(u64, &'static str)>);

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.0 {
            Some((id, name)) => write!(f, " in task {id} ({name})"),
            None => Ok(()),
        }
    }
}

/// Reports a panic and stops the CPU. `main.rs`'s panic handler calls this.
/// A panic while reporting one (a broken console) stops the CPU at once
/// instead of recursing until the stack overflows.
pub fn handle(info: &PanicInfo) -> ! {
    static PANICKING: AtomicBool = AtomicBool::new(false);
    if !PANICKING.swap(true, Ordering::Relaxed) {
        report(info);
    }
    crate::arch::halt()
}

/// Prints `KERNEL PANIC at file:line: message` on serial and, in red, on the
/// screen, even when the panic struck while a console lock was held.
pub fn report(info: &PanicInfo) {
    let message = info.message();
    let task = TaskName(crate::task::executor::current());
    // SAFETY: the panic path never returns to the interrupted code, and this
    // kernel runs on one CPU.
    unsafe {
        match info.location() {
            Some(at) => crate::console::print_fatal(format_args!(
                "\nKERNEL PANIC{task} at {}:{}: {}\n",
                at.file(),
                at.line(),
                message
            )),
            None => crate::console::print_fatal(format_args!("\nKERNEL PANIC{task}: {message}\n")),
        }
    }
}
