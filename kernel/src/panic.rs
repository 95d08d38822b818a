//! The kernel's answer to a panic: a report on every console, then a halt.

use crate::arch::x86_64::fatal;
use core::fmt;
use core::panic::PanicInfo;

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
/// It goes the way of every fatal report ([`fatal::stop`]), so a panic or
/// fault while reporting (a broken console) gets one line and a halt
/// instead of recursing.
pub fn handle(info: &PanicInfo) -> ! {
    fatal::stop(format_args!("{}", Report(info)))
}

/// Prints `KERNEL PANIC at file:line: message` on serial and, in red, on the
/// screen, even when the panic struck while a console lock was held; for
/// callers that go on (the test kernels' failure path).
pub fn report(info: &PanicInfo) {
    // SAFETY: the panic path never returns to the interrupted code, and this
    // kernel runs on one CPU.
    unsafe { crate::console::print_fatal(format_args!("{}", Report(info))) }
}

/// The report's text.
struct Report<'a>(&'a PanicInfo<'a>);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let task = TaskName(crate::task::executor::current());
        match self.0.location() {
            Some(at) => {
                write!(f, "\nKERNEL PANIC{task} at {}:{}: {}\n", at.file(), at.line(), self.0.message())
            }
            None => write!(f, "\nKERNEL PANIC{task}: {}\n", self.0.message()),
        }
    }
}
