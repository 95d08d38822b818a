//! Text printed to the framebuffer console appears on the real framebuffer
//! as the font's glyphs, in the colours the escape sequences asked for; the
//! framebuffer is mapped write-combining, device registers uncached and the
//! heap write-back, as the PAT and the page tables read back say.

// runner: firmware=both

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(harness::run)]
#![reexport_test_harness_main = "test_main"]

use harness::screen::{assert_framebuffer_text, cursor_row, row_is};
use kernel::arch::pat::{self, MemoryType};
use kernel::boot;
use kernel::console::color::{DEFAULT_BG, DEFAULT_FG, PALETTE, Rgb, xterm_256};
use kernel::mem::paging;
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

#[test_case]
fn the_framebuffer_is_write_combining_devices_uncached_and_ram_write_back() {
    let table = pat::decode(pat::read());
    assert_eq!(table[pat::WRITE_COMBINING_ENTRY], Some(MemoryType::WriteCombining), "PAT {:#x}", pat::read());
    assert_eq!(table[0], Some(MemoryType::WriteBack), "PAT {:#x}", pat::read());
    assert_eq!(table[3], Some(MemoryType::Uncacheable), "PAT {:#x}", pat::read());

    // The console's mapping of the framebuffer: mapping it again finds the
    // same pages and returns their address.
    let info = boot::info();
    let fb = info.framebuffer.expect("a framebuffer");
    let physical = fb.address as u64 - info.hhdm_offset;
    let length = fb.pitch as u64 * fb.height as u64;
    let address = paging::map_write_combining(physical, length).expect("the framebuffer's mapping");
    assert_ne!(address, fb.address as u64, "the framebuffer is drawn through the HHDM");
    for offset in (0..length).step_by(4096) {
        let page = paging::mapping(address + offset).expect("every page of the framebuffer mapped");
        assert_eq!(page.physical, physical + offset);
        assert_eq!(page.pat_entry, pat::WRITE_COMBINING_ENTRY, "page at offset {offset:#x}");
        assert!(page.writable && !page.executable);
    }

    // The local APIC's registers (mapped by the interrupt setup) stay
    // uncached.
    let lapic = paging::map_mmio(0xfee0_0000, 4096).expect("the local APIC's mapping");
    let registers = paging::mapping(lapic).expect("the local APIC mapped");
    assert_eq!(table[registers.pat_entry], Some(MemoryType::Uncacheable));

    // The heap is RAM: write-back.
    let boxed = alloc::boxed::Box::new([0u8; 64]);
    let heap = paging::mapping(boxed.as_ptr() as u64).expect("the heap in 4 KiB pages");
    assert_eq!(table[heap.pat_entry], Some(MemoryType::WriteBack));
}

extern crate alloc;
