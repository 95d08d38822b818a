//! Boot-time memory: permanent allocations carved out of the largest usable
//! region of the memory map, for what must exist before (or without) a heap,
//! such as the console's text grid and back buffer. Nothing carved is ever
//! freed.

use crate::boot::{BootInfo, RegionKind};
use core::mem::{MaybeUninit, align_of, size_of};
use spin::Mutex;

/// A region being carved from its top down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Carve {
    base: u64,
    top: u64,
}

impl Carve {
    /// Takes `size` bytes aligned to `align` (a power of two) off the top.
    fn take(&mut self, size: u64, align: u64) -> Option<u64> {
        let start = self.top.checked_sub(size)? & !(align - 1);
        if start < self.base {
            return None;
        }
        self.top = start;
        Some(start)
    }

    /// Puts the top back to `top`, an earlier top of this carve, which
    /// began at `start`.
    fn release_to(&mut self, top: u64, start: u64) {
        if (self.top..=start).contains(&top) {
            self.top = top;
        }
    }
}

/// The region being carved, where it started, and the HHDM offset.
struct Boot {
    carve: Carve,
    initial_top: u64,
    hhdm: u64,
}

static REGION: Mutex<Option<Boot>> = Mutex::new(None);

/// Chooses the region to carve from: the largest usable one.
pub fn init(info: &BootInfo) {
    let largest = info
        .memory_map()
        .iter()
        .filter(|region| region.kind == RegionKind::Usable)
        .max_by_key(|region| region.length);
    if let Some(region) = largest {
        let top = region.end();
        let carve = Carve { base: region.base, top };
        *REGION.lock() = Some(Boot { carve, initial_top: top, hhdm: info.hhdm_offset });
    }
}

/// Bytes of `count` values of `T`, if that is a size at all.
fn bytes_for<T>(count: usize) -> Option<u64> {
    count.checked_mul(size_of::<T>()).map(|bytes| bytes as u64)
}

/// A new slice of `count` copies of `value`, or `None` when boot memory is
/// exhausted (or [`init`] has not run).
pub fn alloc_slice<T: Copy>(count: usize, value: T) -> Option<&'static mut [T]> {
    let slice = alloc_uninit(count)?;
    for slot in slice.iter_mut() {
        slot.write(value);
    }
    // SAFETY: every element was just written.
    Some(unsafe { slice.assume_init_mut() })
}

/// Carves room for `count` values of `T`, returning its address in the HHDM.
fn carve<T>(count: usize) -> Option<*mut T> {
    let size = bytes_for::<T>(count)?;
    let align = (align_of::<T>() as u64).max(4096);
    let mut region = REGION.lock();
    let boot = region.as_mut()?;
    let physical = boot.carve.take(size, align)?;
    Some((boot.hhdm + physical) as *mut T)
}

/// A new slice of `count` values not yet written: for storage filled only
/// as it is used (a scrollback), where writing it all at boot would cost a
/// pass over megabytes.
pub fn alloc_uninit<T>(count: usize) -> Option<&'static mut [MaybeUninit<T>]> {
    let pointer = carve::<MaybeUninit<T>>(count)?;
    // SAFETY: the range is usable RAM that this module hands out once (the
    // carve only moves down), mapped writable by the HHDM and suitably
    // aligned; `MaybeUninit` needs no initialisation.
    Some(unsafe { core::slice::from_raw_parts_mut(pointer, count) })
}

/// A new slice of `count` bytes holding whatever the memory held: for
/// buffers that are written before they are read (a back buffer, rendered
/// glyphs), which filling first would cost a pass over megabytes at boot.
pub fn alloc_bytes(count: usize) -> Option<&'static mut [u8]> {
    let pointer = carve::<u8>(count)?;
    // SAFETY: as in `alloc_uninit`; and every byte value is a valid `u8`:
    // RAM the kernel has not written holds what the firmware and bootloader
    // left there, which the kernel reads like any memory it is handed.
    Some(unsafe { core::slice::from_raw_parts_mut(pointer, count) })
}

/// A 4 KiB frame of boot memory, by its physical address: for page tables
/// made before the frame allocator exists.
pub fn alloc_frame() -> Option<u64> {
    let mut region = REGION.lock();
    let boot = region.as_mut()?;
    boot.carve.take(4096, 4096)
}

/// How far boot memory was carved, to give back what follows if the
/// allocations it was carved for come to nothing.
#[derive(Debug, Clone, Copy)]
pub struct Mark(u64);

pub fn mark() -> Mark {
    Mark(REGION.lock().as_ref().map_or(0, |boot| boot.carve.top))
}

/// Gives back everything carved since `mark`.
///
/// # Safety
/// Nothing carved since `mark` may be used any more: the slices handed out
/// since then must be dropped.
pub unsafe fn release_to(mark: Mark) {
    if let Some(boot) = REGION.lock().as_mut() {
        boot.carve.release_to(mark.0, boot.initial_top);
    }
}

/// Ends boot-time allocation and returns the physical range carved, which
/// the frame allocator must leave alone. Later requests get `None`.
pub fn seal() -> Option<(u64, u64)> {
    let boot = REGION.lock().take()?;
    SEALED_USED.store(boot.initial_top - boot.carve.top, core::sync::atomic::Ordering::Relaxed);
    Some((boot.carve.top, boot.initial_top))
}

static SEALED_USED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Bytes carved so far.
pub fn used() -> u64 {
    REGION.lock().as_ref().map_or(SEALED_USED.load(core::sync::atomic::Ordering::Relaxed), |boot| {
        boot.initial_top - boot.carve.top
    })
}

#[cfg(test)]
mod tests {
    use super::{Carve, bytes_for};

    #[test]
    fn sizes_that_overflow_are_refused() {
        assert_eq!(bytes_for::<u64>(3), Some(24));
        assert_eq!(bytes_for::<u64>(usize::MAX / 4), None);
    }

    #[test]
    fn carving_can_be_given_back_to_a_mark() {
        let mut carve = Carve { base: 0x10_0000, top: 0x20_0000 };
        carve.take(0x1000, 0x1000);
        let mark = carve.top;
        carve.take(0x8000, 0x1000);
        carve.take(0x10, 0x1000);
        carve.release_to(mark, 0x20_0000);
        assert_eq!(carve.top, 0x1f_f000);
        carve.release_to(0x30_0000, 0x20_0000);
        assert_eq!(carve.top, 0x1f_f000, "a top above the start is refused");
    }

    #[test]
    fn carves_downward_aligned_and_never_below_the_base() {
        let mut carve = Carve { base: 0x10_0000, top: 0x20_0000 };
        assert_eq!(carve.take(0x1800, 0x1000), Some(0x1f_e000));
        assert_eq!(carve.take(0x10, 0x1000), Some(0x1f_d000));
        assert_eq!(carve.take(0x20_0000, 0x1000), None);
        assert_eq!(carve.top, 0x1f_d000);
        assert_eq!(carve.take(0xf_d000, 0x1000), Some(0x10_0000));
        assert_eq!(carve.take(1, 1), None);
    }
}
