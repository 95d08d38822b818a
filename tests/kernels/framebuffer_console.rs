//! Text printed to the framebuffer console appears on the real framebuffer
//! as the font's glyphs, in the colours the escape sequences asked for.
//! (Under UEFI the shell boots read the screen back; `boot_info` checks the
//! framebuffer's mapping under both firmwares.)

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(harness::run)]
#![reexport_test_harness_main = "test_main"]

use harness::screen::{assert_framebuffer_text, cursor_row, row_is};
use kernel::console::color::{DEFAULT_BG, DEFAULT_FG, PALETTE, Rgb, xterm_256};
use kernel::println;

harness::test_kernel!();

#[test_case]
fn printed_text_is_drawn_with_the_font() {
    let text = "The quick brown fox jumps over the lazy dog 0123456789 {}[]|~";
    println!("{text}");
    let row = cursor_row() - 1;
    assert!(row_is(row, text));
    assert_framebuffer_text((row, 0), text, DEFAULT_FG, DEFAULT_BG);
}

#[test_case]
fn sgr_colours_reach_the_pixels() {
    println!("\x1b[31;44mred on blue\x1b[0m \x1b[38;2;1;200;3;48;5;17mtruecolour\x1b[0m");
    let row = cursor_row() - 1;
    assert!(row_is(row, "red on blue truecolour"));
    assert_framebuffer_text((row, 0), "red on blue", PALETTE[1], PALETTE[4]);
    assert_framebuffer_text((row, 11), " ", DEFAULT_FG, DEFAULT_BG);
    assert_framebuffer_text((row, 12), "truecolour", Rgb::new(1, 200, 3), xterm_256(17));
}

#[test_case]
fn missing_glyphs_show_the_replacement_character() {
    println!("中");
    let row = cursor_row() - 1;
    assert_framebuffer_text((row, 0), "\u{fffd}", DEFAULT_FG, DEFAULT_BG);
}
