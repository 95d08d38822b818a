//! 1,200 lines with colour escapes (more than the 1,000 lines of
//! scrollback) scroll through the console, which ends showing the last of
//! them, on the grid and on the framebuffer. They are written as the kernel
//! writes once it runs its tasks: coalesced, so that the screen is presented
//! at most once a timer tick however many scrolls that brings, and once
//! more when the writer is done.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(harness::run)]
#![reexport_test_harness_main = "test_main"]

use harness::Text;
use harness::screen::{assert_framebuffer_text, cursor_row, row_is};
use kernel::console::{self, color::PALETTE};

harness::test_kernel!();

const LINES: usize = 1_200;

#[test_case]
fn the_last_lines_are_on_screen_after_1200() {
    console::coalesce_output();
    for i in 0..LINES {
        // Screen only: the test is about the screen, and 1,200 lines through
        // the emulated UART would take most of its time.
        console::print_screen(format_args!("line {i:05} \x1b[3{}mcolour {}\x1b[0m\n", i % 8, i % 8));
    }
    console::present();
    let last = cursor_row() - 1;
    for back in 0..5 {
        let i = LINES - 1 - back;
        let text = Text::<32>::format(format_args!("line {i:05} colour {}", i % 8));
        assert!(row_is(last - back, text.as_str()), "row {} should read {:?}", last - back, text.as_str());
    }
    assert_framebuffer_text((last, 11), "colour 7", PALETTE[7], PALETTE[0]);
    assert_framebuffer_text((last - 1, 11), "colour 6", PALETTE[6], PALETTE[0]);
}
