//! Boot-time memory: permanent allocations carved out of the largest usable
//! region of the memory map, for what must exist before (or without) a heap,
//! such as the console's text grid and back buffer. Nothing carved is ever
//! freed.
//!
//! The region is carved from both ends. What the boot writes at once (the
//! grid, the frame bitmap, page tables) comes off the top, which Limine
//! leaves next to the kernel image and its own structures; the large
//! buffers filled a little at a time (the back buffer, the scrollback) come
//! off the bottom. So the memory the boot touches lies together instead of
//! around megabytes it does not touch yet. That matters under a hypervisor,
//! which backs guest memory when it is first touched, in 2 MiB pages where
//! it can: under QEMU on the build machine each such page costs 0.25 ms,
//! or 6 ms when the host has to find fresh memory for it.

use crate::boot::{BootInfo, RegionKind};
use core::mem::{MaybeUninit, align_of, size_of};
use spin::Mutex;

/// A region being carved from its top down and its bottom up: what is left
/// is `base..top`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Carve {
    base: u64,
    top: u64,
}

/// Which end of the region an allocation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Memory the boot writes at once.
    Top,
    /// Large buffers written a part at a time.
    Bottom,
}

impl Carve {
    /// Takes `size` bytes aligned to `align` (a power of two) off `end`.
    fn take_from(&mut self, end: End, size: u64, align: u64) -> Option<u64> {
        match end {
            End::Top => self.take(size, align),
            End::Bottom => self.take_low(size, align),
        }
    }

    /// Takes `size` bytes aligned to `align` (a power of two) off the bottom.
    fn take_low(&mut self, size: u64, align: u64) -> Option<u64> {
        let start = self.base.checked_add(align - 1)? & !(align - 1);
        let end = start.checked_add(size)?;
        if end > self.top {
            return None;
        }
        self.base = end;
        Some(start)
    }

    /// Takes `size` bytes aligned to `align` (a power of two) off the top.
    fn take(&mut self, size: u64, align: u64) -> Option<u64> {
        let start = self.top.checked_sub(size)? & !(align - 1);
        if start < self.base {
            return None;
        }
        self.top = start;
        Some(start)
    }

    /// Puts both ends back to `earlier`, a state of this carve that began
    /// as `initial`.
    fn release_to(&mut self, earlier: Carve, initial: Carve) {
        if (self.top..=initial.top).contains(&earlier.top)
            && (initial.base..=self.base).contains(&earlier.base)
        {
            *self = earlier;
        }
    }

    /// Bytes carved since `initial`.
    fn used(&self, initial: Carve) -> u64 {
        (initial.top - self.top) + (self.base - initial.base)
    }
}

/// The region being carved, as it started, and the HHDM offset.
struct Boot {
    carve: Carve,
    initial: Carve,
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
        let carve = Carve { base: region.base, top: region.end() };
        *REGION.lock() = Some(Boot { carve, initial: carve, hhdm: info.hhdm_offset });
    }
}

/// Bytes of `count` values of `T`, if that is a size at all.
fn bytes_for<T>(count: usize) -> Option<u64> {
    count.checked_mul(size_of::<T>()).map(|bytes| bytes as u64)
}

/// A new slice of `count` copies of `value`, or `None` when boot memory is
/// exhausted (or [`init`] has not run).
pub fn alloc_slice<T: Copy>(count: usize, value: T) -> Option<&'static mut [T]> {
    let slice = uninit::<T>(End::Top, count)?;
    for slot in slice.iter_mut() {
        slot.write(value);
    }
    // SAFETY: every element was just written.
    Some(unsafe { slice.assume_init_mut() })
}

/// `value`, moved into boot memory: for a structure written at once that
/// would otherwise be a static with an initial value, whose every byte is
/// part of the kernel image read from the boot medium.
pub fn alloc_value<T>(value: T) -> Option<&'static mut T> {
    Some(uninit::<T>(End::Top, 1)?[0].write(value))
}

/// Carves room for `count` values of `T` off `end`, not yet written.
fn uninit<T>(end: End, count: usize) -> Option<&'static mut [MaybeUninit<T>]> {
    let size = bytes_for::<T>(count)?;
    let align = (align_of::<T>() as u64).max(4096);
    let mut region = REGION.lock();
    let boot = region.as_mut()?;
    let physical = boot.carve.take_from(end, size, align)?;
    let pointer = (boot.hhdm + physical) as *mut MaybeUninit<T>;
    // SAFETY: the range is usable RAM that this module hands out once (each
    // end of the carve only moves inwards), mapped writable by the HHDM and
    // suitably aligned; `MaybeUninit` needs no initialisation.
    Some(unsafe { core::slice::from_raw_parts_mut(pointer, count) })
}

/// A new slice of `count` values not yet written: for storage filled only
/// as it is used (a scrollback), where writing it all at boot would cost a
/// pass over megabytes. It comes off the bottom of the region.
pub fn alloc_uninit<T>(count: usize) -> Option<&'static mut [MaybeUninit<T>]> {
    uninit(End::Bottom, count)
}

/// A new slice of `count` bytes holding whatever the memory held: for
/// buffers that are written before they are read (rendered glyphs), which
/// filling first would cost a pass over them at boot.
pub fn alloc_bytes(count: usize) -> Option<&'static mut [u8]> {
    bytes(End::Top, count)
}

/// Like [`alloc_bytes`], for a large buffer written a part at a time (a
/// back buffer): it comes off the bottom of the region.
pub fn alloc_buffer(count: usize) -> Option<&'static mut [u8]> {
    bytes(End::Bottom, count)
}

fn bytes(end: End, count: usize) -> Option<&'static mut [u8]> {
    let slice = uninit::<u8>(end, count)?;
    // SAFETY: every byte value is a valid `u8`: RAM the kernel has not
    // written holds what the firmware and bootloader left there, which the
    // kernel reads like any memory it is handed.
    Some(unsafe { slice.assume_init_mut() })
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
pub struct Mark(Option<Carve>);

pub fn mark() -> Mark {
    Mark(REGION.lock().as_ref().map(|boot| boot.carve))
}

/// Gives back everything carved since `mark`.
///
/// # Safety
/// Nothing carved since `mark` may be used any more: the slices handed out
/// since then must be dropped.
pub unsafe fn release_to(mark: Mark) {
    if let (Some(boot), Some(earlier)) = (REGION.lock().as_mut(), mark.0) {
        boot.carve.release_to(earlier, boot.initial);
    }
}

/// Ends boot-time allocation and returns the region carved from and the
/// part of it left, the only part the frame allocator may hand out. Later
/// requests get `None`.
pub fn seal() -> Option<Sealed> {
    let boot = REGION.lock().take()?;
    SEALED_USED.store(boot.carve.used(boot.initial), core::sync::atomic::Ordering::Relaxed);
    Some(Sealed { region: boot.initial.base..boot.initial.top, left: boot.carve.base..boot.carve.top })
}

/// What [`seal`] returns: physical address ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub region: core::ops::Range<u64>,
    pub left: core::ops::Range<u64>,
}

static SEALED_USED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Bytes carved so far.
pub fn used() -> u64 {
    REGION
        .lock()
        .as_ref()
        .map_or(SEALED_USED.load(core::sync::atomic::Ordering::Relaxed), |boot| boot.carve.used(boot.initial))
}

#[cfg(test)]
mod tests {
    use super::{Carve, End, bytes_for};

    #[test]
    fn sizes_that_overflow_are_refused() {
        assert_eq!(bytes_for::<u64>(3), Some(24));
        assert_eq!(bytes_for::<u64>(usize::MAX / 4), None);
    }

    #[test]
    fn carving_can_be_given_back_to_a_mark() {
        let initial = Carve { base: 0x10_0000, top: 0x20_0000 };
        let mut carve = initial;
        carve.take(0x1000, 0x1000);
        carve.take_low(0x1000, 0x1000);
        let mark = carve;
        carve.take(0x8000, 0x1000);
        carve.take_low(0x10, 0x1000);
        assert_eq!(carve.used(initial), 0xa010);
        carve.release_to(mark, initial);
        assert_eq!(carve, Carve { base: 0x10_1000, top: 0x1f_f000 });
        carve.release_to(Carve { base: 0x10_1000, top: 0x30_0000 }, initial);
        assert_eq!(carve.top, 0x1f_f000, "a top above the start is refused");
        carve.release_to(Carve { base: 0x0f_0000, top: 0x1f_f000 }, initial);
        assert_eq!(carve.base, 0x10_1000, "a base below the start is refused");
    }

    #[test]
    fn the_two_ends_meet_but_never_cross() {
        let mut carve = Carve { base: 0x10_0800, top: 0x10_8000 };
        assert_eq!(carve.take_from(End::Bottom, 0x2000, 0x1000), Some(0x10_1000), "aligned up");
        assert_eq!(carve.take_from(End::Top, 0x2000, 0x1000), Some(0x10_6000));
        assert_eq!(carve.take_from(End::Bottom, 0x3001, 0x1000), None);
        assert_eq!(carve.take_from(End::Top, 0x3001, 0x1000), None);
        assert_eq!(carve.take_from(End::Bottom, 0x3000, 0x1000), Some(0x10_3000));
        assert_eq!(carve, Carve { base: 0x10_6000, top: 0x10_6000 });
        assert_eq!(carve.take_from(End::Top, 1, 1), None);
        assert_eq!(carve.take_from(End::Bottom, 1, 1), None);
        assert_eq!(carve.take_low(1, 1 << 63), None, "alignment past the end of memory");
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
