//! The boot benchmark's reference (`make bench`): a kernel that leaves QEMU
//! through isa-debug-exit in the first instruction of `kmain`. It links the
//! kernel crate, so it has the kernel's entry (`_start`, three instructions
//! that switch stacks and call `kmain`) and its Limine requests, and Limine
//! does the same work for it as for the real kernel. The time QEMU takes to
//! run it is what firmware and bootloader cost; what the real kernel takes
//! beyond that, up to its shell prompt, is the kernel's own boot.

#![no_std]
#![no_main]

use core::panic::PanicInfo;

#[unsafe(no_mangle)]
extern "C" fn kmain() -> ! {
    // SAFETY: isa-debug-exit at port 0xf4 ends QEMU; on a machine without it
    // the write goes to an unused ISA port and the CPU halts below.
    unsafe { core::arch::asm!("out 0xf4, eax", in("eax") 0x10u32, options(nomem, nostack)) };
    kernel::arch::halt()
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    kernel::panic::handle(info)
}
