//! The boot sequence. Limine enters `kmain` in 64-bit long mode with paging on,
//! the kernel mapped at its link address and the higher-half direct map set up;
//! each step below brings up one subsystem of the `kernel` library.

#![no_std]
#![no_main]

use core::panic::PanicInfo;
use kernel::{arch, boot, console, mem};

#[unsafe(no_mangle)]
extern "C" fn kmain() -> ! {
    console::init();
    let boot = boot::init();
    mem::early::init(boot);
    console::init_screen(boot);
    boot.log_banner();
    arch::idle()
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    kernel::panic::handle(info)
}
