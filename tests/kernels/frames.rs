//! The memory map lists the RAM QEMU was given, every usable frame is handed
//! out exactly once, only frames of usable (or reclaimed bootloader) regions
//! are handed out, and freed frames are handed out again.
//!
//! A BIOS boot with 8 GiB, 5 GiB of it above the 32-bit PCI hole; the same
//! checks run on UEFI in `boot_info`.

// runner: bios-qemu-args=-m 8G

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(harness::run)]
#![reexport_test_harness_main = "test_main"]

use kernel::boot;

harness::test_kernel!();

#[test_case]
fn the_memory_map_lists_the_ram_qemu_was_given() {
    harness::memory::assert_map_lists_qemu_ram();
}

#[test_case]
fn the_allocator_covers_usable_and_reclaimed_memory_less_boot_memory() {
    harness::memory::assert_allocator_covers_usable_memory();
}

#[test_case]
fn every_usable_frame_is_handed_out_exactly_once_above_4_gib_too() {
    let end = boot::info().memory_map().iter().map(|e| e.end()).max().expect("a memory map");
    assert!(end > 4 << 30, "memory ends at {end:#x}: the test wants memory above 4 GiB");
    harness::memory::assert_every_frame_is_handed_out_once();
}
