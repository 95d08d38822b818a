//! A failed assertion reaches the panic handler with its message, and the
//! kernel's panic report gets out on serial.

#![no_std]
#![no_main]

use core::panic::PanicInfo;
use harness::{Exit, exit_qemu};

#[unsafe(no_mangle)]
extern "C" fn kmain() -> ! {
    harness::start();
    harness::report!("should_panic::failed_assertion_panics ... ");
    assert_eq!(1 + 1, 3, "deliberate failure");
    harness::report!("FAILED: the assertion did not panic\n");
    exit_qemu(Exit::Failure)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    kernel::panic::report(info);
    let message = harness::Text::<256>::format(format_args!("{}", info.message()));
    if message.as_str().contains("deliberate failure") {
        harness::report!("ok\n");
        exit_qemu(Exit::Success)
    } else {
        harness::report!("FAILED: unexpected panic\n");
        exit_qemu(Exit::Failure)
    }
}
