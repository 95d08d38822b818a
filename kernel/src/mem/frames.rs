//! Physical memory frames (4 KiB) from the usable regions of the memory map.
//!
//! Allocation is O(1): a freed frame goes on a free list kept inside the free
//! frames themselves, and when the list is empty the next never-used frame
//! is taken from a cursor walking the usable regions. A bitmap of allocated
//! frames refuses to free a frame twice or one that was never handed out,
//! so no frame can be handed out twice. Both the bitmap and the list of
//! regions are sized from the memory map, so no map is too long.

use crate::boot::{BootInfo, RegionKind};
use core::fmt;

pub const FRAME_SIZE: u64 = 4096;
const NONE: u64 = u64::MAX;

/// Where the free list's links are stored: in the free frames, through the
/// HHDM in the kernel, in a map in tests.
pub trait Links {
    fn set_next(&mut self, frame: u64, next: u64);
    fn next(&self, frame: u64) -> u64;
}

/// Counts, in frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameStats {
    pub total: u64,
    pub used: u64,
}

impl FrameStats {
    pub fn free(&self) -> u64 {
        self.total - self.used
    }
}

impl fmt::Display for FrameStats {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mib = |frames: u64| frames * FRAME_SIZE / (1024 * 1024);
        write!(
            f,
            "frames: {} total ({} MiB), {} used, {} free ({} MiB)",
            self.total,
            mib(self.total),
            self.used,
            self.free(),
            mib(self.free())
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    Misaligned(u64),
    /// Not handed out by this allocator (never, or already freed).
    NotAllocated(u64),
}

/// A range of frames the allocator hands out.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    start: u64,
    end: u64,
}

impl Region {
    pub const EMPTY: Region = Region { start: 0, end: 0 };
}

pub struct FrameAllocator<'a, L: Links> {
    /// Room for every region the allocator will be given.
    regions: &'a mut [Region],
    count: usize,
    /// The region and frame the cursor is at.
    current: usize,
    cursor: u64,
    free_head: u64,
    /// One bit per frame from frame `first`: set while allocated.
    allocated: &'a mut [u64],
    first: u64,
    stats: FrameStats,
    links: L,
}

impl<'a, L: Links> FrameAllocator<'a, L> {
    /// An allocator with no memory yet; the bitmap covers frames from
    /// `first_frame` on, 64 per word, and `regions` holds as many regions as
    /// will be added.
    pub fn new(first_frame: u64, bitmap: &'a mut [u64], regions: &'a mut [Region], links: L) -> Self {
        bitmap.fill(0);
        Self {
            regions,
            count: 0,
            current: 0,
            cursor: 0,
            free_head: NONE,
            allocated: bitmap,
            first: first_frame,
            stats: FrameStats::default(),
            links,
        }
    }

    /// Adds the whole frames of physical `start..end` (clipped to what the
    /// bitmap covers); returns how many. A region beyond the room given to
    /// [`new`](Self::new) is refused with an error logged.
    pub fn add_region(&mut self, start: u64, end: u64) -> u64 {
        let covered_end = self.first + self.allocated.len() as u64 * 64;
        let (physical_start, physical_end) = (start, end);
        let start = start.div_ceil(FRAME_SIZE).max(self.first);
        let end = (end / FRAME_SIZE).min(covered_end);
        if start >= end {
            return 0;
        }
        if self.count == self.regions.len() {
            log::error!(
                "frames: no room for region {physical_start:#x}..{physical_end:#x} ({} regions); its memory \
                 stays unused",
                self.regions.len()
            );
            return 0;
        }
        self.regions[self.count] = Region { start, end };
        if self.count == self.current && self.cursor < start {
            self.cursor = start;
        }
        self.count += 1;
        self.stats.total += end - start;
        end - start
    }

    /// A free frame's physical address.
    pub fn allocate(&mut self) -> Option<u64> {
        let frame = if self.free_head != NONE {
            let frame = self.free_head;
            self.free_head = self.links.next(frame);
            frame
        } else {
            loop {
                let region = self.regions.get(self.current).filter(|_| self.current < self.count)?;
                if self.cursor < region.end {
                    self.cursor += 1;
                    let (word, bit) = self.bit(self.cursor - 1);
                    // Reserved frames (page tables) are passed over.
                    if self.allocated[word] & bit == 0 {
                        break self.cursor - 1;
                    }
                    continue;
                }
                self.current += 1;
                self.cursor = self.regions.get(self.current).map_or(0, |r| r.start);
            }
        };
        let (word, bit) = self.bit(frame);
        assert_eq!(self.allocated[word] & bit, 0, "frame {frame:#x} handed out twice");
        self.allocated[word] |= bit;
        self.stats.used += 1;
        Some(frame * FRAME_SIZE)
    }

    /// Returns the frame at physical `address`.
    pub fn free(&mut self, address: u64) -> Result<(), FrameError> {
        if !address.is_multiple_of(FRAME_SIZE) {
            return Err(FrameError::Misaligned(address));
        }
        let frame = address / FRAME_SIZE;
        if frame < self.first || frame >= self.first + self.allocated.len() as u64 * 64 {
            return Err(FrameError::NotAllocated(address));
        }
        let (word, bit) = self.bit(frame);
        if self.allocated[word] & bit == 0 {
            return Err(FrameError::NotAllocated(address));
        }
        self.allocated[word] &= !bit;
        self.links.set_next(frame, self.free_head);
        self.free_head = frame;
        self.stats.used -= 1;
        Ok(())
    }

    /// Marks the frame at `address` as in use for good (a page table that a
    /// region about to be added holds), unless it is already.
    pub fn reserve(&mut self, address: u64) {
        let frame = address / FRAME_SIZE;
        if frame < self.first || frame >= self.first + self.allocated.len() as u64 * 64 {
            return;
        }
        let (word, bit) = self.bit(frame);
        if self.allocated[word] & bit == 0 {
            self.allocated[word] |= bit;
            self.stats.used += 1;
        }
    }

    pub fn stats(&self) -> FrameStats {
        self.stats
    }

    fn bit(&self, frame: u64) -> (usize, u64) {
        let index = frame - self.first;
        ((index / 64) as usize, 1 << (index % 64))
    }
}

/// Links stored in the free frames themselves, through the HHDM.
struct HhdmLinks(u64);

impl Links for HhdmLinks {
    fn set_next(&mut self, frame: u64, next: u64) {
        // SAFETY: the frame is free (just returned) and mapped by the HHDM.
        unsafe { ((self.0 + frame * FRAME_SIZE) as *mut u64).write(next) }
    }

    fn next(&self, frame: u64) -> u64 {
        // SAFETY: the frame is on the free list, whose first word is its link.
        unsafe { ((self.0 + frame * FRAME_SIZE) as *const u64).read() }
    }
}

static FRAMES: spin::Mutex<Option<FrameAllocator<'static, HhdmLinks>>> = spin::Mutex::new(None);

/// Builds the frame allocator from the usable regions, leaving out boot
/// memory (which this seals). Logs usable memory.
pub fn init(info: &BootInfo) {
    // The bitmap covers only memory that can ever be handed out: reserved
    // ranges can lie far above RAM (QEMU reports one at 1 TiB).
    let end = info
        .memory_map()
        .iter()
        .filter(|r| matches!(r.kind, RegionKind::Usable | RegionKind::BootloaderReclaimable))
        .map(|r| r.end())
        .max()
        .unwrap_or(0);
    let words = (end / FRAME_SIZE).div_ceil(64) as usize;
    // Every usable and reclaimable region, one of them split by boot memory.
    let regions = info
        .memory_map()
        .iter()
        .filter(|r| matches!(r.kind, RegionKind::Usable | RegionKind::BootloaderReclaimable))
        .count()
        + 1;
    let (Some(bitmap), Some(regions)) =
        (super::early::alloc_slice(words, 0u64), super::early::alloc_slice(regions, Region::EMPTY))
    else {
        log::error!("no boot memory left for the frame bitmap; physical memory allocation is unavailable");
        return;
    };
    let carved = super::early::seal();
    let mut allocator = FrameAllocator::new(0, bitmap, regions, HhdmLinks(info.hhdm_offset));
    for region in info.memory_map().iter().filter(|r| r.kind == RegionKind::Usable) {
        let (start, end) = (region.base, region.end());
        match &carved {
            Some(carved) if carved.region == (start..end) => {
                allocator.add_region(carved.left.start, carved.left.end);
            }
            _ => {
                allocator.add_region(start, end);
            }
        }
    }
    let stats = allocator.stats();
    *FRAMES.lock() = Some(allocator);
    log::info!("{stats}");
}

/// Adds the bootloader-reclaimable regions, now that nothing of Limine's is
/// read any more (boot information was copied out, `_start` left Limine's
/// stack, the GDT and IDT are the kernel's). The frames that `in_use` names
/// (Limine's page tables, still active and kept in that memory) stay
/// reserved. Returns the bytes gained.
pub fn reclaim_bootloader_memory(info: &BootInfo, in_use: impl FnOnce(&mut dyn FnMut(u64))) -> u64 {
    let mut frames = FRAMES.lock();
    let Some(frames) = frames.as_mut() else { return 0 };
    let before = frames.stats();
    // Only the tables in the regions about to be added: the others lie in
    // memory the allocator never hands out (boot memory, say).
    let reclaimable = |address: u64| {
        info.memory_map()
            .iter()
            .any(|r| r.kind == RegionKind::BootloaderReclaimable && (r.base..r.end()).contains(&address))
    };
    in_use(&mut |address| {
        if reclaimable(address) {
            frames.reserve(address)
        }
    });
    for region in info.memory_map().iter().filter(|r| r.kind == RegionKind::BootloaderReclaimable) {
        frames.add_region(region.base, region.end());
    }
    let after = frames.stats();
    (after.free() - before.free()) * FRAME_SIZE
}

/// A free frame's physical address. No interrupt handler allocates frames,
/// so the lock is an ordinary one.
pub fn allocate() -> Option<u64> {
    FRAMES.lock().as_mut()?.allocate()
}

/// Returns a frame.
pub fn free(address: u64) -> Result<(), FrameError> {
    FRAMES.lock().as_mut().ok_or(FrameError::NotAllocated(address))?.free(address)
}

pub fn stats() -> FrameStats {
    FRAMES.lock().as_ref().map(|f| f.stats()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[derive(Default)]
    struct MapLinks(HashMap<u64, u64>);

    impl Links for MapLinks {
        fn set_next(&mut self, frame: u64, next: u64) {
            self.0.insert(frame, next);
        }
        fn next(&self, frame: u64) -> u64 {
            self.0[&frame]
        }
    }

    fn allocator() -> FrameAllocator<'static, MapLinks> {
        let bitmap = Box::leak(vec![0u64; 64].into_boxed_slice());
        let regions = Vec::leak(vec![Region::EMPTY; 2]);
        let mut frames = FrameAllocator::new(0, bitmap, regions, MapLinks::default());
        assert_eq!(frames.add_region(0x1000, 0x9f000), 0x9e);
        assert_eq!(frames.add_region(0x10_0800, 0x20_0000), 0xff);
        frames
    }

    fn in_regions(address: u64) -> bool {
        (0x1000..0x9f000).contains(&address) || (0x10_1000..0x20_0000).contains(&address)
    }

    #[test]
    fn every_usable_frame_is_handed_out_exactly_once() {
        let mut frames = allocator();
        let total = frames.stats().total;
        let mut seen = HashSet::new();
        while let Some(address) = frames.allocate() {
            assert!(in_regions(address), "{address:#x} is not usable memory");
            assert!(seen.insert(address), "{address:#x} handed out twice");
        }
        assert_eq!(seen.len() as u64, total);
        assert_eq!(frames.stats().free(), 0);
    }

    #[test]
    fn freed_frames_come_back_first_and_counts_follow() {
        let mut frames = allocator();
        let a = frames.allocate().unwrap();
        let b = frames.allocate().unwrap();
        assert_eq!(frames.stats().used, 2);
        frames.free(a).unwrap();
        frames.free(b).unwrap();
        assert_eq!(frames.stats().used, 0);
        assert_eq!(frames.allocate(), Some(b));
        assert_eq!(frames.allocate(), Some(a));
    }

    #[test]
    fn reserved_frames_are_never_handed_out() {
        let bitmap = Box::leak(vec![0u64; 64].into_boxed_slice());
        let mut frames =
            FrameAllocator::new(0, bitmap, Vec::leak(vec![Region::EMPTY; 1]), MapLinks::default());
        frames.reserve(0x3000);
        frames.reserve(0x3000);
        frames.add_region(0x1000, 0x6000);
        assert_eq!(frames.stats(), FrameStats { total: 5, used: 1 });
        let handed: Vec<u64> = std::iter::from_fn(|| frames.allocate()).collect();
        assert_eq!(handed, [0x1000, 0x2000, 0x4000, 0x5000]);
        assert_eq!(frames.free(0x3000), Ok(()), "a reserved frame can be given up by its owner");
    }

    #[test]
    fn thousands_of_regions_are_all_handed_out() {
        // 1500 regions of 1..3 frames with holes between: as many as the
        // room given, and not one more.
        let bitmap = Box::leak(vec![0u64; 8192 / 64].into_boxed_slice());
        let mut frames =
            FrameAllocator::new(0, bitmap, Vec::leak(vec![Region::EMPTY; 1500]), MapLinks::default());
        let mut expected = HashSet::new();
        for i in 0..1500u64 {
            let start = (1 + i * 5) * FRAME_SIZE;
            let length = 1 + i % 3;
            assert_eq!(frames.add_region(start, start + length * FRAME_SIZE), length);
            expected.extend((0..length).map(|frame| start + frame * FRAME_SIZE));
        }
        assert_eq!(frames.add_region(8000 * FRAME_SIZE, 8001 * FRAME_SIZE), 0, "no room is left");
        let handed: HashSet<u64> = std::iter::from_fn(|| frames.allocate()).collect();
        assert_eq!(handed, expected);
    }

    #[test]
    fn double_and_foreign_frees_are_refused() {
        let mut frames = allocator();
        let a = frames.allocate().unwrap();
        frames.free(a).unwrap();
        assert_eq!(frames.free(a), Err(FrameError::NotAllocated(a)));
        assert_eq!(frames.free(0xa0000), Err(FrameError::NotAllocated(0xa0000)));
        assert_eq!(frames.free(0x1_0000_0000), Err(FrameError::NotAllocated(0x1_0000_0000)));
        assert_eq!(frames.free(a + 8), Err(FrameError::Misaligned(a + 8)));
        assert_eq!(frames.stats().used, 0);
    }
}
