//! The boot sequence. Limine starts the kernel in 64-bit long mode with paging
//! on, the kernel mapped at its link address and the higher-half direct map
//! set up; `_start` (arch/x86_64/stack.rs) moves to the kernel's own stack
//! and calls `kmain`, where each step brings up one subsystem.

#![no_std]
#![no_main]

use core::panic::PanicInfo;
use kernel::{arch, boot, console, mem, task};

#[unsafe(no_mangle)]
extern "C" fn kmain() -> ! {
    console::init();
    let boot = boot::init();
    mem::init_early(boot);
    console::init_screen(boot);
    boot.log_banner();
    mem::init(boot);
    arch::init();
    task::run(boot)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    kernel::panic::handle(info)
}
