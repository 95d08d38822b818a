//! Limine handed over everything the kernel relies on, and it is sane; the
//! frame allocator hands out exactly the usable memory; and the kernel maps
//! the framebuffer write-combining, device registers uncached and the heap
//! write-back, as the PAT and the page tables read back say. The BIOS boot
//! has 64 MiB, the least the kernel is meant for (`frames` boots 8 GiB).

// runner: firmware=both
// runner: bios-qemu-args=-m 64M

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(harness::run)]
#![reexport_test_harness_main = "test_main"]

use kernel::arch::pat::{self, MemoryType};
use kernel::boot::{self, Firmware, RegionKind};
use kernel::mem::paging;

harness::test_kernel!();

#[test_case]
fn booted_by_the_pinned_limine() {
    let (name, version) = boot::info().bootloader().expect("bootloader info response");
    assert_eq!(name, "Limine");
    assert_eq!(version, "8.2.0");
}

#[test_case]
fn firmware_is_known() {
    let firmware = boot::info().firmware;
    assert!(matches!(firmware, Firmware::Bios | Firmware::Uefi64), "firmware: {firmware}");
}

#[test_case]
fn hhdm_is_in_the_higher_half_and_maps_usable_memory() {
    let info = boot::info();
    assert!(info.hhdm_offset >= 0xffff_8000_0000_0000, "HHDM offset {:#x}", info.hhdm_offset);
    assert_eq!(info.hhdm_offset % 4096, 0);
    let region = info.memory_map().iter().find(|e| e.kind == RegionKind::Usable).expect("a usable region");
    let word = (info.hhdm_offset + region.base) as *mut u64;
    // SAFETY: the region is usable RAM that nothing owns yet (no allocator
    // runs in this kernel), and the HHDM maps it writable.
    unsafe {
        let saved = word.read_volatile();
        word.write_volatile(0x5a5a_a5a5_dead_beef);
        assert_eq!(word.read_volatile(), 0x5a5a_a5a5_dead_beef);
        word.write_volatile(saved);
    }
}

#[test_case]
fn memory_map_is_sorted_and_page_aligned() {
    let info = boot::info();
    let map = info.memory_map();
    for pair in map.windows(2) {
        assert!(pair[0].base + pair[0].length <= pair[1].base, "overlap at {:#x}", pair[1].base);
    }
    for entry in map.iter().filter(|e| e.kind == RegionKind::Usable) {
        assert_eq!(entry.base % 4096, 0);
        assert_eq!(entry.length % 4096, 0);
    }
}

#[test_case]
fn the_memory_map_lists_the_ram_qemu_was_given() {
    harness::memory::assert_map_lists_qemu_ram();
}

#[test_case]
fn framebuffer_geometry_is_consistent() {
    let fb = boot::info().framebuffer.expect("a framebuffer (QEMU's std VGA has one)");
    assert!(fb.width >= 640 && fb.height >= 400, "{}x{}", fb.width, fb.height);
    assert!(matches!(fb.bpp, 16 | 24 | 32), "bpp {}", fb.bpp);
    assert!(fb.pitch as u64 >= fb.width as u64 * fb.bpp as u64 / 8);
    let last = fb.address + (fb.height as usize - 1) * fb.pitch as usize;
    // SAFETY: Limine maps the whole framebuffer (height * pitch bytes)
    // writable; this writes the last row's first pixel back unchanged.
    unsafe {
        let pixel = last as *mut u8;
        pixel.write_volatile(pixel.read_volatile());
    }
}

#[test_case]
fn the_cpu_tables_are_the_kernels_own() {
    // Limine's GDT lives in memory the kernel reclaims; the kernel loads its
    // own (in its image, in the top 2 GiB) before anything else.
    let gdt = x86_64::instructions::tables::sgdt();
    let idt = x86_64::instructions::tables::sidt();
    for (table, base) in [("GDT", gdt.base.as_u64()), ("IDT", idt.base.as_u64())] {
        assert!(base >= 0xffff_ffff_8000_0000, "the {table} is at {base:#x}, outside the kernel image");
    }
}

#[test_case]
fn the_allocator_covers_usable_and_reclaimed_memory_less_boot_memory() {
    harness::memory::assert_allocator_covers_usable_memory();
}

#[test_case]
fn every_usable_frame_is_handed_out_exactly_once() {
    harness::memory::assert_every_frame_is_handed_out_once();
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
