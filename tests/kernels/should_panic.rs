//! A failed assertion reaches the panic handler with its message, and the
//! kernel's panic report gets out on serial.

#![no_std]
#![no_main]

use core::panic::PanicInfo;
use harness::{Exit, exit_qemu};

#[unsafe(no_mangle)]
extern "C" fn kmain() -> ! {
    harness::start();
    kernel::print!("should_panic::failed_assertion_panics ... ");
    assert_eq!(1 + 1, 3, "deliberate failure");
    kernel::println!("FAILED: the assertion did not panic");
    exit_qemu(Exit::Failure)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    kernel::panic::report(info);
    let mut message = Buffer::default();
    let _ = core::fmt::write(&mut message, format_args!("{}", info.message()));
    if message.text().contains("deliberate failure") {
        kernel::println!("ok");
        exit_qemu(Exit::Success)
    } else {
        kernel::println!("FAILED: unexpected panic");
        exit_qemu(Exit::Failure)
    }
}

/// Room for one panic message, to check what it says without a heap.
struct Buffer {
    bytes: [u8; 256],
    len: usize,
}

impl Default for Buffer {
    fn default() -> Self {
        Self {
            bytes: [0; 256],
            len: 0,
        }
    }
}

impl Buffer {
    fn text(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl core::fmt::Write for Buffer {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = (self.len + s.len()).min(self.bytes.len());
        self.bytes[self.len..end].copy_from_slice(&s.as_bytes()[..end - self.len]);
        self.len = end;
        Ok(())
    }
}
