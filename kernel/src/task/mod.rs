//! Tasks: the executor and the async sources that feed the shell (the
//! keyboard and the serial line).

pub mod executor;
pub mod input;
pub mod keyboard;
pub mod queue;
pub mod serial;

use crate::boot::BootInfo;
use executor::{Executor, Task};

/// Starts the input tasks and the shell and runs them for good; the CPU
/// sleeps whenever no task is ready (the kernel's idle loop).
pub fn run(info: &BootInfo) -> ! {
    let layout = keyboard::layout(info.option("keymap")).unwrap_or_else(|| {
        log::warn!("unknown keymap={}; using the US layout", info.option("keymap").unwrap_or(""));
        keyboard::layout(None).expect("the US layout")
    });
    let mut executor = Executor::new();
    executor.spawn(Task::new("keyboard", keyboard::task(layout)));
    executor.spawn(Task::new("serial input", serial::task()));
    executor.spawn(Task::new("shell", crate::shell::task()));
    log::info!("boot complete, entering the idle loop");
    executor.run()
}
