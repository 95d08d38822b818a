//! Memory a device reads and writes by itself (DMA): whole zeroed frames,
//! known by their physical address (what the device is told) and reached
//! by the kernel through the higher-half direct map. On x86 the caches are
//! coherent with bus-master accesses, so ordinary write-back memory does.

use super::frames;

/// One zeroed, page-aligned, physically contiguous 4 KiB frame, returned to
/// the frame allocator when dropped. The device must have stopped using it
/// by then.
#[derive(Debug)]
pub struct DmaPage {
    physical: u64,
    virtual_address: u64,
}

/// Bytes in a [`DmaPage`].
pub const PAGE_SIZE: usize = frames::FRAME_SIZE as usize;

impl DmaPage {
    /// A zeroed frame; None when physical memory is exhausted.
    pub fn new() -> Option<DmaPage> {
        let physical = frames::allocate()?;
        let virtual_address = crate::boot::info().hhdm_offset + physical;
        // SAFETY: the frame was just handed out, so nothing else uses it,
        // and the HHDM maps it writable.
        unsafe { core::ptr::write_bytes(virtual_address as *mut u8, 0, PAGE_SIZE) };
        Some(DmaPage { physical, virtual_address })
    }

    /// The address the device uses.
    pub fn physical(&self) -> u64 {
        self.physical
    }

    /// The kernel's pointer to the frame's first byte. Accesses through it
    /// must be volatile where the device may write concurrently.
    pub fn as_ptr(&self) -> *mut u8 {
        self.virtual_address as *mut u8
    }
}

impl Drop for DmaPage {
    fn drop(&mut self) {
        if let Err(error) = frames::free(self.physical) {
            log::error!("DMA page {:#x} could not be freed: {error:?}", self.physical);
        }
    }
}
