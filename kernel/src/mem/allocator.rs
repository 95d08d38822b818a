//! The kernel's allocator: the slab front-end for small requests, talc for
//! everything else (large or over-aligned requests, and the slabs
//! themselves). Generic over talc's memory source, so the host tests and
//! benchmarks run exactly this code over a plain arena.
//!
//! The slab and the usage counters are CPU-local: the kernel runs on one CPU
//! and interrupt handlers never allocate, so they need no lock, and a small
//! allocation or free takes no atomic read-modify-write at all (a locked
//! instruction costs as much as the rest of a slab operation put together).
//! Talc sits behind a lock, taken only for large requests and to carve a new
//! slab. A guard flag, set while the allocator runs, turns a broken rule (an
//! interrupt handler allocating in the middle of an allocation) into a panic
//! that says so, where it would otherwise corrupt the free lists.

use super::slab::{self, ClassStats, SLAB_SIZE, Slab};
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Mutex;
use talc::DefaultBinning;
use talc::base::Talc;
use talc::source::Source;

/// What a slab is carved from.
const SLAB_PAGE: Layout = match Layout::from_size_align(SLAB_SIZE, SLAB_SIZE) {
    Ok(layout) => layout,
    Err(_) => panic!("SLAB_SIZE is a power of two"),
};

pub struct Allocator<S: Source> {
    /// Set while an allocation or free runs.
    busy: AtomicBool,
    local: UnsafeCell<Local>,
    talc: Mutex<Talc<S, DefaultBinning>>,
}

/// The CPU-local part: the slab and the counters.
struct Local {
    slab: Slab,
    /// Bytes handed out (as requested) and not freed, and the most ever.
    in_use: usize,
    peak: usize,
}

impl Local {
    fn count(&mut self, freed: usize, allocated: usize) {
        self.in_use = self.in_use - freed + allocated;
        self.peak = self.peak.max(self.in_use);
    }
}

// SAFETY: `new`'s contract: one CPU (or thread) at a time uses the
// allocator, and never re-enters it (the guard checks that), so the local
// part is never accessed concurrently; talc is behind its lock.
unsafe impl<S: Source + Send> Sync for Allocator<S> {}

/// Exclusive use of the local part while it lives.
struct Guard<'a> {
    busy: &'a AtomicBool,
    local: &'a mut Local,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.busy.store(false, Ordering::Release);
    }
}

/// Where the heap's memory is, for the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatorStats {
    pub classes: [ClassStats; slab::CLASSES.len()],
    /// Bytes talc manages (slabs and large allocations included).
    pub talc_claimed: usize,
    /// Of those, bytes still free for allocation.
    pub talc_free: usize,
    /// Bytes requested and not freed, through either path.
    pub in_use: usize,
    pub peak: usize,
}

impl<S: Source> Allocator<S> {
    /// # Safety
    /// Only one CPU (or thread) may use the allocator, and no interrupt
    /// handler: the kernel runs on one CPU and its handlers must not
    /// allocate or free. (A handler that does, while the allocator runs,
    /// is caught and panics.)
    pub const unsafe fn new(source: S) -> Self {
        Self {
            busy: AtomicBool::new(false),
            local: UnsafeCell::new(Local { slab: Slab::new(), in_use: 0, peak: 0 }),
            talc: Mutex::new(Talc::new(source)),
        }
    }

    /// Enters the allocator: the local part is ours until the guard drops.
    /// A plain load and store, not a locked instruction: on one CPU only an
    /// interrupt could get between them, and a handler that allocates then
    /// runs to completion before this code goes on.
    fn enter(&self) -> Guard<'_> {
        #[cfg(target_os = "none")]
        debug_assert!(
            !crate::arch::interrupts::in_handler(),
            "the heap was entered from an interrupt handler"
        );
        assert!(
            !self.busy.load(Ordering::Acquire),
            "the heap was entered while it was in use: an interrupt handler allocated or freed"
        );
        self.busy.store(true, Ordering::Relaxed);
        // SAFETY: the flag was clear, so no other access to the local part
        // is live (`new`'s contract rules out other CPUs); the reference
        // does not outlive the guard that clears the flag.
        Guard { busy: &self.busy, local: unsafe { &mut *self.local.get() } }
    }

    /// Runs `f` on talc's memory source (to change its limits, say).
    pub fn with_source<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.talc.lock().source)
    }

    pub fn stats(&self) -> AllocatorStats {
        let guard = self.enter();
        let local = &mut *guard.local;
        let counters = *self.talc.lock().counters();
        AllocatorStats {
            classes: local.slab.stats(),
            talc_claimed: counters.claimed_bytes,
            talc_free: counters.available_bytes,
            in_use: local.in_use,
            peak: local.peak,
        }
    }

    /// A slab object of `class` for `size` bytes; talc supplies new slabs.
    fn slab_alloc(&self, local: &mut Local, class: usize, size: usize) -> Option<NonNull<u8>> {
        // SAFETY: slab pages come fresh from talc; the size is non-zero or
        // rounds up to the class.
        unsafe { local.slab.alloc(class, size, || self.talc.lock().allocate(SLAB_PAGE)) }
    }
}

// SAFETY: small layouts are served from slab objects of a class at least as
// large as their size and alignment; the rest by talc, which is a correct
// allocator. Each pointer is returned to the path its layout selects, which
// is the path that allocated it.
unsafe impl<S: Source> GlobalAlloc for Allocator<S> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let guard = self.enter();
        let local = &mut *guard.local;
        let pointer = match slab::class_for(layout) {
            Some(class) => self.slab_alloc(local, class, layout.size()),
            // SAFETY: the caller's layout is non-zero-size per GlobalAlloc.
            None => unsafe { self.talc.lock().allocate(layout) },
        };
        match pointer {
            Some(pointer) => {
                local.count(0, layout.size());
                pointer.as_ptr()
            }
            None => ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        let guard = self.enter();
        let local = &mut *guard.local;
        match (slab::class_for(layout), NonNull::new(pointer)) {
            // SAFETY: a small layout was served by this class.
            (Some(class), Some(object)) => unsafe { local.slab.free(class, object, layout.size()) },
            // SAFETY: a large layout was served by talc.
            _ => unsafe { self.talc.lock().deallocate(pointer, layout) },
        }
        local.count(layout.size(), 0);
    }

    /// A reallocation that stays within its size class keeps its object;
    /// talc grows or shrinks large blocks in place when it can; anything
    /// else moves.
    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees the new size is valid for this alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let (old_class, new_class) = (slab::class_for(layout), slab::class_for(new_layout));
        let guard = self.enter();
        let local = &mut *guard.local;
        let in_place = match (old_class, new_class) {
            (Some(old), Some(new)) if old == new => {
                local.slab.resize(old, layout.size(), new_size);
                true
            }
            // SAFETY: a talc block with its layout; the new size is non-zero.
            (None, None) => unsafe { self.talc.lock().try_realloc_in_place(pointer, layout, new_size) },
            _ => false,
        };
        if in_place {
            local.count(layout.size(), new_size);
            return pointer;
        }
        let moved = match new_class {
            Some(class) => self.slab_alloc(local, class, new_size),
            // SAFETY: a non-zero-size layout.
            None => unsafe { self.talc.lock().allocate(new_layout) },
        };
        let Some(moved) = moved else { return ptr::null_mut() };
        // SAFETY: both blocks are live and distinct; the old one is then freed
        // on the path that allocated it.
        unsafe {
            ptr::copy_nonoverlapping(pointer, moved.as_ptr(), layout.size().min(new_size));
            match (old_class, NonNull::new(pointer)) {
                (Some(class), Some(object)) => local.slab.free(class, object, layout.size()),
                _ => self.talc.lock().deallocate(pointer, layout),
            }
        }
        local.count(layout.size(), new_size);
        moved.as_ptr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use talc::source::Claim;

    fn allocator(bytes: usize) -> Allocator<Claim> {
        let arena = Box::leak(vec![0u8; bytes].into_boxed_slice());
        // SAFETY: the leaked arena belongs to this allocator alone, which
        // this test's thread alone uses.
        unsafe { Allocator::new(Claim::new(arena.as_mut_ptr(), arena.len())) }
    }

    /// One live allocation in the model: where, how, and its fill byte.
    struct Live {
        layout: Layout,
        fill: u8,
    }

    fn check_fill(pointer: usize, live: &Live) {
        // SAFETY: the block is live and `layout.size()` bytes long.
        let bytes = unsafe { std::slice::from_raw_parts(pointer as *const u8, live.layout.size()) };
        assert!(bytes.iter().all(|&b| b == live.fill), "contents changed at {pointer:#x}");
    }

    /// `FUZZ_ITERS` operations (default 400,000), sizes 1 B to 64 KiB,
    /// alignments 1 B to 4 KiB, every block's contents checked when it is
    /// freed or moved; the seed is fixed, so a failure repeats.
    #[test]
    fn random_alloc_free_realloc_against_a_model() {
        let iterations: u32 =
            std::env::var("FUZZ_ITERS").ok().and_then(|n| n.parse().ok()).unwrap_or(400_000);
        let heap = allocator(64 << 20);
        let mut live: BTreeMap<usize, Live> = BTreeMap::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut freed_slab_addresses = std::collections::HashSet::new();
        let mut reused = 0;
        for step in 0..iterations {
            let r = next();
            match r % 10 {
                0..=3 => {
                    let size = match r >> 8 & 3 {
                        0 => 1 + (r >> 16) as usize % 64,
                        1 => 1 + (r >> 16) as usize % 512,
                        2 => 1 + (r >> 16) as usize % 4096,
                        _ => 1 + (r >> 16) as usize % 65536,
                    };
                    let align = 1 << ((r >> 40) % 13);
                    let layout = Layout::from_size_align(size, align).unwrap();
                    // SAFETY: non-zero-size layout.
                    let pointer = unsafe { heap.alloc(layout) } as usize;
                    assert_ne!(pointer, 0, "out of memory at step {step}");
                    assert_eq!(pointer % align, 0, "misaligned");
                    if freed_slab_addresses.remove(&pointer) {
                        reused += 1;
                    }
                    // No overlap with any live block.
                    if let Some((&before, block)) = live.range(..=pointer).next_back() {
                        assert!(before + block.layout.size() <= pointer, "overlaps the block at {before:#x}");
                    }
                    if let Some((&after, _)) = live.range(pointer..).next() {
                        assert!(pointer + size <= after, "overlaps the block at {after:#x}");
                    }
                    let fill = step as u8;
                    // SAFETY: the block is `size` bytes and ours.
                    unsafe { ptr::write_bytes(pointer as *mut u8, fill, size) };
                    live.insert(pointer, Live { layout, fill });
                }
                4..=7 if !live.is_empty() => {
                    let key = *live.keys().nth((r >> 8) as usize % live.len()).unwrap();
                    let block = live.remove(&key).unwrap();
                    check_fill(key, &block);
                    if slab::class_for(block.layout).is_some() {
                        freed_slab_addresses.insert(key);
                    }
                    // SAFETY: allocated with this layout and not freed.
                    unsafe { heap.dealloc(key as *mut u8, block.layout) };
                }
                8 | 9 if !live.is_empty() => {
                    let key = *live.keys().nth((r >> 8) as usize % live.len()).unwrap();
                    let block = live.remove(&key).unwrap();
                    check_fill(key, &block);
                    let new_size = 1 + (r >> 20) as usize % 2048;
                    // SAFETY: allocated with this layout; new size is valid.
                    let moved = unsafe { heap.realloc(key as *mut u8, block.layout, new_size) } as usize;
                    assert_ne!(moved, 0);
                    let kept = block.layout.size().min(new_size);
                    // SAFETY: the first `kept` bytes were preserved.
                    let bytes = unsafe { std::slice::from_raw_parts(moved as *const u8, kept) };
                    assert!(bytes.iter().all(|&b| b == block.fill), "realloc lost contents");
                    // SAFETY: the block is now `new_size` bytes.
                    unsafe { ptr::write_bytes(moved as *mut u8, block.fill, new_size) };
                    let layout = Layout::from_size_align(new_size, block.layout.align()).unwrap();
                    live.insert(moved, Live { layout, fill: block.fill });
                }
                _ => {}
            }
            if step % 1000 == 0 {
                let stats = heap.stats();
                let expected: usize = live.values().map(|b| b.layout.size()).sum();
                assert_eq!(stats.in_use, expected, "in-use bytes drifted");
                let slab_bytes: usize = stats.classes.iter().map(|c| c.bytes).sum();
                let slab_model: usize = live
                    .values()
                    .filter(|b| slab::class_for(b.layout).is_some())
                    .map(|b| b.layout.size())
                    .sum();
                assert_eq!(slab_bytes, slab_model, "slab statistics drifted");
                assert!(stats.peak >= stats.in_use);
            }
        }
        assert!(reused > 1000, "freed small blocks were reused only {reused} times");
        for (pointer, block) in std::mem::take(&mut live) {
            check_fill(pointer, &block);
            // SAFETY: allocated with this layout and not freed.
            unsafe { heap.dealloc(pointer as *mut u8, block.layout) };
        }
        let stats = heap.stats();
        assert_eq!(stats.in_use, 0);
        assert!(stats.classes.iter().all(|c| c.objects == 0 && c.bytes == 0));
    }

    #[test]
    #[should_panic(expected = "entered while it was in use")]
    fn entering_the_allocator_while_it_runs_is_caught() {
        let heap = allocator(1 << 20);
        let _guard = heap.enter();
        // SAFETY: a valid layout; the allocator refuses before touching anything.
        unsafe { heap.alloc(Layout::from_size_align(8, 8).unwrap()) };
    }

    #[test]
    fn realloc_within_a_class_keeps_the_object() {
        let heap = allocator(1 << 20);
        let layout = Layout::from_size_align(20, 8).unwrap();
        // SAFETY: valid layouts; the block is freed with its final layout.
        unsafe {
            let pointer = heap.alloc(layout);
            assert_eq!(heap.realloc(pointer, layout, 32), pointer);
            let grown = heap.realloc(pointer, Layout::from_size_align(32, 8).unwrap(), 33);
            assert_ne!(grown, pointer);
            heap.dealloc(grown, Layout::from_size_align(33, 8).unwrap());
        }
        assert_eq!(heap.stats().in_use, 0);
    }

    #[test]
    fn exhaustion_is_a_null_pointer_not_a_crash() {
        let heap = allocator(64 << 10);
        let big = Layout::from_size_align(1 << 20, 8).unwrap();
        // SAFETY: a valid layout.
        assert!(unsafe { heap.alloc(big) }.is_null());
        assert_eq!(heap.stats().in_use, 0);
    }
}
