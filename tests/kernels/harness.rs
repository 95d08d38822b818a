//! The in-kernel test framework shared by every test kernel.
//!
//! A test kernel is a `#[test_case]` list run by [`run`] (through the nightly
//! `custom_test_frameworks` feature), or a hand-written `kmain` for a test
//! whose end is a fault. Results go to serial; the verdict leaves through
//! QEMU's `isa-debug-exit` device, which `tests/runner` attaches and reads.

#![no_std]

use core::{any::type_name, panic::PanicInfo};
use kernel::{boot, console, println};
use x86_64::instructions::port::Port;

/// What a test kernel reports to QEMU. QEMU exits with `(code << 1) | 1`, so
/// success is 33 and failure 35: neither can be mistaken for QEMU's own exit
/// codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Exit {
    Success = 0x10,
    Failure = 0x11,
}

const ISA_DEBUG_EXIT_PORT: u16 = 0xf4;

/// Ends the run with `exit`. Without the isa-debug-exit device (a test kernel
/// booted by hand) the CPU halts instead.
pub fn exit_qemu(exit: Exit) -> ! {
    // SAFETY: the runner attaches isa-debug-exit at this port; elsewhere the
    // write goes to an unused ISA port and has no effect.
    unsafe { Port::new(ISA_DEBUG_EXIT_PORT).write(exit as u32) };
    kernel::arch::halt()
}

/// Brings up what every test kernel needs: the serial console and the
/// checked boot information (whose banner the runner also inspects).
pub fn start() -> &'static boot::BootInfo {
    console::init();
    let info = boot::init();
    info.log_banner();
    info
}

/// A test: anything callable, reported under its path.
pub trait Testable {
    fn run(&self);
}

impl<T: Fn()> Testable for T {
    fn run(&self) {
        kernel::print!("{} ... ", type_name::<T>());
        self();
        println!("ok");
    }
}

/// The `test_runner`: runs every `#[test_case]` in order, then reports
/// success. The first failing test panics, which ends the run in [`fail`].
pub fn run(tests: &[&dyn Testable]) {
    println!("running {} tests", tests.len());
    for test in tests {
        test.run();
    }
    println!("all {} tests passed", tests.len());
}

/// Panic handler body for test kernels: report and end the run as failed.
pub fn fail(info: &PanicInfo) -> ! {
    println!("FAILED");
    kernel::panic::report(info);
    exit_qemu(Exit::Failure)
}

/// Defines `kmain` and the panic handler of a `#[test_case]` test kernel.
#[macro_export]
macro_rules! test_kernel {
    () => {
        #[unsafe(no_mangle)]
        extern "C" fn kmain() -> ! {
            $crate::start();
            test_main();
            $crate::exit_qemu($crate::Exit::Success)
        }

        #[panic_handler]
        fn panic(info: &core::panic::PanicInfo) -> ! {
            $crate::fail(info)
        }
    };
}
