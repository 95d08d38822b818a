//! Memory management: boot memory, physical frames, page tables, the heap,
//! and frames for devices' DMA.

pub mod allocator;
pub mod dma;
pub mod early;
pub mod frames;
pub mod heap;
pub mod paging;
pub mod slab;

use crate::arch::{self, pat};
use crate::boot::{BootInfo, FramebufferMemory};
use core::fmt;

/// Boot memory, the page tables and the page attribute table: what the
/// consoles need before the heap exists. Also unmaps the guard pages below
/// the kernel's stacks, which needs the page tables.
pub fn init_early(info: &BootInfo) {
    early::init(info);
    paging::init(info.hhdm_offset);
    match pat::init() {
        Ok(before) => log::debug!("PAT: {:#018x}, was {before:#018x}", pat::read()),
        Err(pat::NoPat) => {
            log::warn!("this CPU has no page attribute table: no write-combining video memory")
        }
    }
    for (stack, guard) in arch::stack_guard_pages() {
        if let Err(error) = paging::make_guard_page(guard) {
            log::warn!("no guard page below the {stack} stack: {error:?}");
        }
    }
}

/// Maps the framebuffer's memory write-combining in the kernel's own tables
/// ([`paging::map_write_combining`]) for its one owner.
pub fn map_framebuffer(memory: FramebufferMemory) -> Result<&'static mut [u8], paging::MmioError> {
    let address = paging::map_write_combining(memory.physical, memory.length as u64)?;
    // SAFETY: the pages just mapped hold the framebuffer's `length` bytes,
    // writable; `boot` hands its memory out once, so this is the only
    // reference made through the mapping.
    Ok(unsafe { core::slice::from_raw_parts_mut(address as *mut u8, memory.length) })
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
