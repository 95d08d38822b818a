//! With no display adapter (QEMU `-vga none`), Limine hands over no
//! framebuffer and a BIOS boot falls back to the VGA text console, whose
//! buffer at 0xb8000 holds what was printed.

// runner: qemu-args=-vga none

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(harness::run)]
#![reexport_test_harness_main = "test_main"]

use harness::screen::{cursor_row, row_is};
use kernel::drivers::vga;
use kernel::{boot, println};

harness::test_kernel!();

#[test_case]
fn there_is_no_framebuffer() {
    assert!(boot::info().framebuffer.is_none());
}

#[test_case]
fn printed_text_lands_in_the_vga_buffer() {
    let text = "VGA text: 80x25, grey on black";
    println!("{text}");
    let row = cursor_row() - 1;
    assert!(row_is(row, text));
    let buffer = (boot::info().hhdm_offset + vga::TEXT_BUFFER) as *const u16;
    for (col, ch) in text.bytes().enumerate() {
        // SAFETY: row < 25 and col < 80 index the 80x25 buffer, which the HHDM
        // maps; reading it back is fine here (nothing displays it).
        let entry = unsafe { buffer.add(row * vga::COLS + col).read_volatile() };
        assert_eq!(entry, 0x0700 | ch as u16, "column {col}");
    }
}
