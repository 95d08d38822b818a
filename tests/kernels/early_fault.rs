//! A fault in the first steps of the boot sequence, before memory or a
//! screen exist, is caught and reported on serial: the CPU's tables and the
//! serial console come first.

// runner: expect-serial=EXCEPTION: page fault (#PF) (vector 14)
// runner: expect-serial=faulting address (CR2) 0xdeadbeef000
// runner: expect-serial=CPU halted.

#![no_std]
#![no_main]

use core::panic::PanicInfo;

#[unsafe(no_mangle)]
extern "C" fn kmain() -> ! {
    // The first steps of `kernel::init` (the banner, which the runner checks,
    // needs only the boot information): no memory, no screen yet.
    kernel::arch::init();
    kernel::console::init();
    kernel::boot::init().log_banner();
    harness::report!("early_fault ... ");
    // SAFETY: deliberately unsound: nothing is mapped there, so the read faults.
    let value = unsafe { (0x0dea_dbee_f000 as *const u64).read_volatile() };
    core::hint::black_box(value);
    harness::report!("FAILED: no exception\n");
    harness::exit_qemu(harness::Exit::Failure)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    harness::fail(info)
}
