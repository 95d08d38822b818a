//! Tasks: the executor, the USB driver's task, the tasks that turn the
//! keyboards' scancodes and reports and the serial line's bytes into keys,
//! and the clock's second calibration.

pub mod executor;
pub mod input;
pub mod keyboard;
pub mod serial_input;
pub mod usb_keyboard;

use crate::boot::BootInfo;
use crate::{drivers, time};
use alloc::vec::Vec;
use core::time::Duration;
use executor::{Executor, Task};

/// Runs the input tasks and `tasks` for good; the CPU sleeps whenever no
/// task is ready (the kernel's idle loop).
pub fn run(info: &BootInfo, tasks: impl IntoIterator<Item = Task>) -> ! {
    run_all(info, tasks.into_iter().collect())
}

/// The body of [`run`], not generic: compiled once, in this crate. As part
/// of a generic function it was compiled again in the crate that calls
/// `run`, with every task it spawns: 20 KiB of the USB driver twice.
fn run_all(info: &BootInfo, tasks: Vec<Task>) -> ! {
    let layout = keyboard::layout(info.option("keymap")).unwrap_or_else(|| {
        log::warn!("unknown keymap={}; using the US layout", info.option("keymap").unwrap_or(""));
        keyboard::layout(None).expect("the US layout")
    });
    let mut executor = Executor::new();
    executor.spawn(Task::new("keyboard", keyboard::task(layout)));
    if crate::drivers::uart::present() {
        executor.spawn(Task::new("serial input", serial_input::task()));
    }
    executor.spawn(Task::new("usb", crate::drivers::usb::run()));
    executor.spawn(Task::new("usb keyboard", usb_keyboard::task(info.option("keymap").map(Into::into))));
    executor.spawn(Task::new("clock", refine_clock()));
    for task in tasks {
        executor.spawn(task);
    }
    log::info!("boot complete, entering the idle loop");
    // From here the executor presents the screen at the end of each round.
    crate::console::coalesce_output();
    executor.run()
}

/// The boot's quick calibration measured the TSC over 2 ms; a second later
/// it is measured again over the whole second (see [`drivers::clock::refine`]).
async fn refine_clock() {
    time::sleep(Duration::from_secs(1)).await;
    drivers::clock::refine();
}
