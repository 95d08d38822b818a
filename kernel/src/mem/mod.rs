//! Memory management: boot memory, physical frames, page tables and the heap.

pub mod allocator;
pub mod early;
pub mod frames;
pub mod heap;
pub mod paging;
pub mod slab;

use crate::boot::BootInfo;

/// Boot memory and the page tables: what the consoles and the CPU set-up
/// need before the heap exists.
pub fn init_early(info: &BootInfo) {
    early::init(info);
    paging::init(info.hhdm_offset);
}

/// The frame allocator (from what boot memory left, then the memory Limine
/// used and no longer needs) and the heap. Ends boot memory.
pub fn init(info: &BootInfo) {
    frames::init(info);
    let reclaimed = frames::reclaim_bootloader_memory(info);
    log::info!("reclaimed {} KiB of bootloader memory; {}", reclaimed / 1024, frames::stats());
    heap::init(info.option("heap"));
}
