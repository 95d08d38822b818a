//! The memory map lists the RAM QEMU was given, every usable frame is handed
//! out exactly once, only frames of usable (or reclaimed bootloader) regions
//! are handed out, and freed frames are handed out again.
//!
//! The BIOS boot has 8 GiB, 5 GiB of it above the 32-bit PCI hole.

// runner: firmware=both
// runner: bios-qemu-args=-m 8G

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(harness::run)]
#![reexport_test_harness_main = "test_main"]

use kernel::boot::{self, Firmware, RegionKind};
use kernel::mem::{early, frames};

harness::test_kernel!();

/// The usable (or reclaimed) region holding `address`.
fn usable_region(address: u64) -> Option<core::ops::Range<u64>> {
    boot::info()
        .memory_map()
        .iter()
        .filter(|e| matches!(e.kind, RegionKind::Usable | RegionKind::BootloaderReclaimable))
        .map(|e| e.base..e.end())
        .find(|range| range.contains(&address))
}

#[test_case]
fn the_memory_map_lists_the_ram_qemu_was_given() {
    harness::memory::assert_map_lists_qemu_ram();
}

#[test_case]
fn the_allocator_covers_usable_and_reclaimed_memory_less_boot_memory() {
    let reclaimable: u64 = boot::info()
        .memory_map()
        .iter()
        .filter(|e| e.kind == RegionKind::BootloaderReclaimable)
        .map(|e| e.length / frames::FRAME_SIZE)
        .sum();
    let usable_frames = boot::info().usable_bytes() / frames::FRAME_SIZE + reclaimable;
    let boot_frames = early::used().div_ceil(frames::FRAME_SIZE);
    assert!(early::used() < 8 << 20, "{} KiB of boot memory", early::used() / 1024);
    let total = frames::stats().total;
    assert!(
        total + boot_frames <= usable_frames && total + boot_frames + 16 >= usable_frames,
        // Boot memory is the consoles' few MiB and the frame bitmap.
        "{total} frames + {boot_frames} of boot memory, but {usable_frames} usable"
    );
}

#[test_case]
fn every_usable_frame_is_handed_out_exactly_once() {
    // One bit per frame up to the end of usable memory (the runner gives
    // this kernel 8 GiB under BIOS, 5 GiB of it above 4 GiB), on the
    // heap: the frames used for it come from the allocator before the sweep
    // begins.
    let end = boot::info()
        .memory_map()
        .iter()
        .filter(|e| matches!(e.kind, RegionKind::Usable | RegionKind::BootloaderReclaimable))
        .map(|e| e.end())
        .max()
        .expect("usable memory");
    if boot::info().firmware == Firmware::Bios {
        assert!(end > 4 << 30, "usable memory ends at {end:#x}: the test wants memory above 4 GiB");
    }
    let mut seen = alloc::vec![0u64; (end / 4096).div_ceil(64) as usize];
    let before = frames::stats();
    let mut taken = 0u64;
    let mut region = 0..0;
    while let Some(address) = frames::allocate() {
        if !region.contains(&address) {
            region = usable_region(address)
                .unwrap_or_else(|| panic!("frame {address:#x} is not in a usable region"));
        }
        let (word, bit) = ((address / 4096 / 64) as usize, 1u64 << (address / 4096 % 64));
        assert_eq!(seen[word] & bit, 0, "frame {address:#x} handed out twice");
        seen[word] |= bit;
        taken += 1;
    }
    assert_eq!(taken, before.free(), "every free frame was handed out");
    let above_4g: u64 =
        seen.iter().skip((4usize << 30) / 4096 / 64).map(|bits| bits.count_ones() as u64).sum();
    let usable_above_4g: u64 = boot::info()
        .memory_map()
        .iter()
        .filter(|e| e.kind == RegionKind::Usable)
        .map(|e| e.end().saturating_sub(e.base.max(4 << 30)) / 4096)
        .sum();
    // Boot memory may lie above 4 GiB too.
    let boot_frames = early::used().div_ceil(frames::FRAME_SIZE);
    assert!(
        above_4g + boot_frames + 16 >= usable_above_4g,
        "{above_4g} of {usable_above_4g} frames above 4 GiB were handed out"
    );
    assert_eq!(frames::stats().free(), 0);
    // Give frames back at 64 places spread over all of memory, up to 64
    // neighbours at each (a freed frame is written to, and QEMU backs each
    // 2 MiB of RAM that is written to on the host: writing to every frame
    // of gigabytes would take it most of a minute); they come out again,
    // last freed first, and no other.
    let mut returned = alloc::vec::Vec::new();
    for (word, &bits) in seen.iter().enumerate().step_by(seen.len().div_ceil(64)) {
        let mut bits = bits;
        while bits != 0 {
            let address = (word as u64 * 64 + bits.trailing_zeros() as u64) * 4096;
            frames::free(address).expect("a frame this test took");
            returned.push(address);
            bits &= bits - 1;
        }
    }
    assert!(frames::free(returned[0]).is_err(), "a double free was accepted");
    assert_eq!(frames::stats().free(), returned.len() as u64);
    for &address in returned.iter().rev() {
        assert_eq!(frames::allocate(), Some(address));
    }
    assert_eq!(frames::allocate(), None);
    assert!(returned.len() >= 32 * 64, "only {} frames returned", returned.len());
}

extern crate alloc;
