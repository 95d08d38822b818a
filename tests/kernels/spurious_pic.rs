//! On the 8259s (forced with `irq=legacy`), an interrupt on each PIC's
//! lowest-priority line with nothing in service is spurious: it is
//! recognised, reported once, runs no handler, and the timer keeps ticking.

// runner: cmdline=irq=legacy

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(harness::run)]
#![reexport_test_harness_main = "test_main"]

use core::time::Duration;
use kernel::time;

harness::test_kernel!();

#[test_case]
fn the_8259s_deliver_the_interrupts() {
    assert_eq!(kernel::arch::interrupts::controller_name(), "8259 PIC");
}

#[test_case]
fn spurious_interrupts_of_both_pics_are_recognised_and_reported() {
    use kernel::arch::interrupts::FIRST_VECTOR;
    // SAFETY: vectors 39 and 47 are the PICs' lowest-priority lines; with
    // nothing in service they are spurious, and the dispatcher only reports.
    unsafe {
        harness::raise::<{ FIRST_VECTOR + 7 }>();
        harness::raise::<{ FIRST_VECTOR + 15 }>();
    }
    let rows = kernel::console::with_grid(|grid| grid.rows()).expect("a screen console");
    for line in ["line 7 (vector 39)", "line 15 (vector 47)"] {
        let reported = (0..rows).any(|row| {
            let text = harness::screen::row_text(row);
            text.contains("spurious interrupt on") && text.contains(line)
        });
        assert!(reported, "no report of a spurious interrupt on {line}");
    }
    // The timer still ticks: a wrong acknowledgement would have stopped it.
    let ticks = time::ticks();
    time::busy_wait(Duration::from_millis(5));
    assert!(time::ticks() > ticks);
}
