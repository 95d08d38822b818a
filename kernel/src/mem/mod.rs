//! Memory management: boot memory, physical frames, page tables, the heap,
//! and frames for devices' DMA.

pub mod allocator;
pub mod dma;
pub mod early;
pub mod frames;
pub mod heap;
pub mod paging;
pub mod slab;

use crate::arch;
use crate::boot::BootInfo;
use core::fmt;

/// Boot memory and the page tables: what the consoles need before the heap
/// exists. Also unmaps the guard pages below the kernel's stacks, which
/// needs the page tables.
pub fn init_early(info: &BootInfo) {
    early::init(info);
    paging::init(info.hhdm_offset);
    for (stack, guard) in arch::stack_guard_pages() {
        if let Err(error) = paging::make_guard_page(guard) {
            log::warn!("no guard page below the {stack} stack: {error:?}");
        }
    }
}

/// The frame allocator (from what boot memory left, then the memory Limine
/// used and no longer needs) and the heap. Ends boot memory.
pub fn init(info: &BootInfo) {
    frames::init(info);
    let reclaimed = frames::reclaim_bootloader_memory(info, |reserve| paging::for_each_table_frame(reserve));
    log::info!("reclaimed {} KiB of bootloader memory; {}", reclaimed / 1024, frames::stats());
    heap::init(info.option("heap"));
}

/// Physical frames and the heap, in one place (what the shell's `mem` shows).
#[derive(Debug, Clone, Copy)]
pub struct MemoryStats {
    pub frames: frames::FrameStats,
    pub heap: heap::HeapStats,
}

pub fn stats() -> MemoryStats {
    MemoryStats { frames: frames::stats(), heap: heap::stats() }
}

impl fmt::Display for MemoryStats {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        writeln!(f, "{}", self.frames)?;
        write!(f, "{}", self.heap)
    }
}
