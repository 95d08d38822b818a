//! A panic that strikes while the screen console's lock is held (inside the
//! formatting of a `println!`) is still reported, in red, on the screen.

#![no_std]
#![no_main]

use core::fmt;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use harness::screen::{assert_framebuffer_text, cursor_row, row_is};
use harness::{Exit, exit_qemu};
use kernel::console::color::{DEFAULT_BG, PALETTE};

/// Formats fine for serial, then panics when formatted for the screen,
/// which `print` does with the screen's lock held.
struct PanicsOnSecondUse;

static USES: AtomicUsize = AtomicUsize::new(0);

impl fmt::Display for PanicsOnSecondUse {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if USES.fetch_add(1, Ordering::Relaxed) == 1 {
            panic!("deliberate panic under the console lock");
        }
        f.write_str("formatted once")
    }
}

#[unsafe(no_mangle)]
extern "C" fn kmain() -> ! {
    harness::start();
    harness::report!("panic_screen::panic_under_the_console_lock_reaches_the_screen ... ");
    kernel::println!("about to panic: {}", PanicsOnSecondUse);
    harness::report!("FAILED: no panic\n");
    exit_qemu(Exit::Failure)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    static PANICKED: AtomicBool = AtomicBool::new(false);
    if PANICKED.swap(true, Ordering::Relaxed) {
        // A check below failed: report that failure instead.
        harness::fail(info);
    }
    kernel::panic::report(info);
    // The report ends with a newline: its line is the one above the cursor.
    let row = cursor_row() - 1;
    let expected = harness::Text::<128>::format(format_args!(
        "KERNEL PANIC at {}:{}: deliberate panic under the console lock",
        info.location().map_or("?", |l| l.file()),
        info.location().map_or(0, |l| l.line())
    ));
    assert!(row_is(row, expected.as_str()), "the panic report is not on screen row {row}");
    assert_framebuffer_text((row, 0), "KERNEL PANIC", PALETTE[9], DEFAULT_BG);
    harness::report!("ok\n");
    exit_qemu(Exit::Success)
}
