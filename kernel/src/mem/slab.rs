//! The slab front-end: small allocations come from per-size-class free lists
//! in 4 KiB slabs, so allocating and freeing them is a pop or a push.
//!
//! Size classes are powers of two from 8 to 512 bytes; a slab is page
//! aligned, so every object is aligned to its class size. A free object holds
//! the link to the next free object of its class.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

/// Bytes of one slab.
pub const SLAB_SIZE: usize = 4096;
/// Object sizes, smallest first.
pub const CLASSES: [usize; 7] = [8, 16, 32, 64, 128, 256, 512];

/// The class serving `layout`, if it is small enough: the smallest class at
/// least as large as both its size and its alignment.
#[inline]
pub fn class_for(layout: Layout) -> Option<usize> {
    let need = layout.size().max(layout.align());
    if need > CLASSES[CLASSES.len() - 1] {
        return None;
    }
    // 8 bytes is class 0, 9..=16 class 1, and so on: log2, rounded up, less 3.
    Some((need.max(8).next_power_of_two().trailing_zeros() - 3) as usize)
}

/// Use of one size class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Objects handed out and not freed.
    pub objects: usize,
    /// Bytes requested by those objects (at most `objects * class size`).
    pub bytes: usize,
    /// Slabs carved for this class.
    pub slabs: usize,
}

pub struct Slab {
    free: [*mut u8; CLASSES.len()],
    stats: [ClassStats; CLASSES.len()],
    #[cfg(debug_assertions)]
    tags: Tags,
}

/// Debug builds remember each slab's class, to catch an object freed with a
/// layout of another class (or one that no slab handed out), which would
/// silently corrupt the free lists.
#[cfg(debug_assertions)]
struct Tags {
    /// Open addressing by slab address; 0 is an empty entry.
    slabs: [usize; TAGS],
    classes: [u8; TAGS],
    /// Whether every slab is recorded (the table never filled up).
    complete: bool,
}

#[cfg(debug_assertions)]
const TAGS: usize = 4096;

#[cfg(debug_assertions)]
impl Tags {
    const fn new() -> Self {
        Self { slabs: [0; TAGS], classes: [0; TAGS], complete: true }
    }

    fn slot(slab: usize) -> usize {
        (slab / SLAB_SIZE).wrapping_mul(0x9e37_79b9) % TAGS
    }

    fn record(&mut self, slab: usize, class: usize) {
        let start = Self::slot(slab);
        for i in 0..TAGS {
            let at = (start + i) % TAGS;
            if self.slabs[at] == 0 {
                self.slabs[at] = slab;
                self.classes[at] = class as u8;
                return;
            }
        }
        self.complete = false;
    }

    /// The class of the slab holding `object`, if recorded.
    fn class_of(&self, object: usize) -> Option<usize> {
        let slab = object & !(SLAB_SIZE - 1);
        let start = Self::slot(slab);
        (0..TAGS)
            .map(|i| (start + i) % TAGS)
            .take_while(|&at| self.slabs[at] != 0)
            .find(|&at| self.slabs[at] == slab)
            .map(|at| self.classes[at] as usize)
    }

    fn check(&self, object: usize, class: usize) {
        match self.class_of(object) {
            Some(found) => assert_eq!(
                found, class,
                "slab: object {object:#x} of a {} B slab freed as a {} B object",
                CLASSES[found], CLASSES[class]
            ),
            None => assert!(
                !self.complete,
                "slab: object {object:#x} freed as {} B, but no slab holds it",
                CLASSES[class]
            ),
        }
    }
}

// SAFETY: the free lists point into slabs that only this `Slab` hands out;
// access is serialised by the lock around it.
unsafe impl Send for Slab {}

impl Slab {
    pub const fn new() -> Self {
        Self {
            free: [ptr::null_mut(); CLASSES.len()],
            stats: [ClassStats { objects: 0, bytes: 0, slabs: 0 }; CLASSES.len()],
            #[cfg(debug_assertions)]
            tags: Tags::new(),
        }
    }

    pub fn stats(&self) -> [ClassStats; CLASSES.len()] {
        self.stats
    }

    /// An object of class `class` for `size` requested bytes; `new_slab`
    /// supplies a page-aligned `SLAB_SIZE` block when the class has none free.
    ///
    /// # Safety
    /// Slabs from `new_slab` must be valid, writable and unused elsewhere.
    pub unsafe fn alloc(
        &mut self,
        class: usize,
        size: usize,
        new_slab: impl FnOnce() -> Option<NonNull<u8>>,
    ) -> Option<NonNull<u8>> {
        if self.free[class].is_null() {
            let slab = new_slab()?.as_ptr();
            let object = CLASSES[class];
            // Thread the slab's objects onto the free list, first one on top.
            for i in (0..SLAB_SIZE / object).rev() {
                // SAFETY: `i * object` lies inside the slab; objects are at
                // least 8 bytes and 8-aligned, room for a link.
                unsafe {
                    let cell = slab.add(i * object);
                    cell.cast::<*mut u8>().write(self.free[class]);
                    self.free[class] = cell;
                }
            }
            self.stats[class].slabs += 1;
            #[cfg(debug_assertions)]
            self.tags.record(slab as usize, class);
        }
        let object = self.free[class];
        // SAFETY: a free object starts with the link to the next free one.
        self.free[class] = unsafe { object.cast::<*mut u8>().read() };
        self.stats[class].objects += 1;
        self.stats[class].bytes += size;
        NonNull::new(object)
    }

    /// Returns an object of `size` requested bytes to class `class`.
    ///
    /// # Safety
    /// `object` must come from [`Slab::alloc`] with the same class and size,
    /// and not be used afterwards.
    pub unsafe fn free(&mut self, class: usize, object: NonNull<u8>, size: usize) {
        #[cfg(debug_assertions)]
        self.tags.check(object.as_ptr() as usize, class);
        // SAFETY: the object is ours again and large enough for a link.
        unsafe { object.as_ptr().cast::<*mut u8>().write(self.free[class]) };
        self.free[class] = object.as_ptr();
        self.stats[class].objects -= 1;
        self.stats[class].bytes -= size;
    }

    /// Records that an object of class `class` now holds `new_size` bytes
    /// instead of `old_size` (a reallocation within the class).
    pub fn resize(&mut self, class: usize, old_size: usize, new_size: usize) {
        self.stats[class].bytes = self.stats[class].bytes - old_size + new_size;
    }
}

impl Default for Slab {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{alloc, dealloc};
    use std::collections::HashSet;

    fn page() -> Option<NonNull<u8>> {
        // SAFETY: a valid non-zero-size layout; tests leak the pages.
        NonNull::new(unsafe { alloc(Layout::from_size_align(SLAB_SIZE, SLAB_SIZE).unwrap()) })
    }

    #[test]
    #[should_panic(expected = "of a 8 B slab freed as a 64 B object")]
    fn an_object_freed_with_the_wrong_class_is_caught() {
        let mut slab = Slab::new();
        // SAFETY: pages come from the system allocator.
        let object = unsafe { slab.alloc(0, 8, page) }.unwrap();
        // SAFETY: deliberately wrong, which debug builds catch before any
        // list is touched.
        unsafe { slab.free(3, object, 8) };
    }

    #[test]
    #[should_panic(expected = "but no slab holds it")]
    fn an_object_no_slab_handed_out_is_caught() {
        let mut slab = Slab::new();
        // SAFETY: deliberately wrong, caught before the page is written.
        unsafe { slab.free(0, page().unwrap(), 8) };
    }

    #[test]
    fn classes_cover_size_and_alignment() {
        let class = |size, align| class_for(Layout::from_size_align(size, align).unwrap());
        assert_eq!(class(1, 1), Some(0));
        assert_eq!(class(8, 8), Some(0));
        assert_eq!(class(9, 1), Some(1));
        assert_eq!(class(24, 8), Some(2));
        assert_eq!(class(4, 64), Some(3));
        assert_eq!(class(512, 8), Some(6));
        assert_eq!(class(513, 8), None);
        assert_eq!(class(8, 1024), None);
        assert_eq!(class(0, 1), Some(0));
    }

    #[test]
    fn objects_are_distinct_aligned_and_reused() {
        let mut slab = Slab::new();
        let mut seen = HashSet::new();
        let mut objects = Vec::new();
        for _ in 0..1000 {
            // SAFETY: pages come from the system allocator.
            let object = unsafe { slab.alloc(2, 30, page) }.unwrap();
            assert_eq!(object.as_ptr() as usize % 32, 0);
            assert!(seen.insert(object.as_ptr() as usize), "handed out twice");
            objects.push(object);
        }
        assert_eq!(
            slab.stats()[2],
            ClassStats { objects: 1000, bytes: 30_000, slabs: 1000usize.div_ceil(128) }
        );
        for object in objects.drain(..) {
            // SAFETY: each came from alloc with class 2 and size 30.
            unsafe { slab.free(2, object, 30) };
        }
        assert_eq!(slab.stats()[2].objects, 0);
        // Freed objects come back before any new slab is carved.
        for _ in 0..1000 {
            // SAFETY: as above.
            let object = unsafe { slab.alloc(2, 30, || panic!("a new slab was carved")) }.unwrap();
            assert!(seen.contains(&(object.as_ptr() as usize)));
        }
    }

    #[test]
    fn a_failed_slab_fails_the_allocation() {
        let mut slab = Slab::new();
        // SAFETY: no slab is supplied, so nothing is written.
        assert!(unsafe { slab.alloc(0, 8, || None) }.is_none());
        assert_eq!(slab.stats()[0], ClassStats::default());
        // SAFETY: the page is a fresh system allocation.
        unsafe {
            let _ =
                page().map(|p| dealloc(p.as_ptr(), Layout::from_size_align(SLAB_SIZE, SLAB_SIZE).unwrap()));
        }
    }
}
