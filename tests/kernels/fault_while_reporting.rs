//! A fault while a fatal report is being written (here a panic whose message
//! faults when formatted) ends in one line on serial that names the second
//! fault, and a halt: no loop, no reset.

// runner: expect-serial=KERNEL PANIC at tests/kernels/fault_while_reporting.rs
// runner: expect-serial=fault while reporting a fault: EXCEPTION: page fault (#PF) (vector 14); CPU halted.

#![no_std]
#![no_main]

use core::fmt;
use core::panic::PanicInfo;

/// Reads an unmapped address when formatted.
struct FaultsWhenFormatted;

impl fmt::Display for FaultsWhenFormatted {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        // SAFETY: deliberately unsound: nothing is mapped there, so the read
        // faults.
        let value = unsafe { (0x0dea_dbee_f000 as *const u64).read_volatile() };
        write!(f, "{value}")
    }
}

#[unsafe(no_mangle)]
extern "C" fn kmain() -> ! {
    harness::start();
    harness::report!("fault_while_reporting ... ");
    panic!("{}", FaultsWhenFormatted);
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    kernel::panic::handle(info)
}
