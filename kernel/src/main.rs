//! The kernel's entry. Limine starts the kernel in 64-bit long mode with
//! paging on, the kernel mapped at its link address and the higher-half
//! direct map set up; `_start` (arch/x86_64/stack.rs) moves to the kernel's
//! own stack and calls `kmain`, which runs the boot sequence and then the
//! tasks, the shell among them, for good.

#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

use core::panic::PanicInfo;
use kernel::{shell, task, task::executor::Task};

#[unsafe(no_mangle)]
extern "C" fn kmain() -> ! {
    let info = kernel::init();
    task::run(info, [Task::new("shell", shell::task())])
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    kernel::panic::handle(info)
}
