//! The active page tables, reached through the higher-half direct map.
//!
//! Limine's tables stay in use; this module edits them, for now to unmap the
//! guard pages below the kernel's stacks so that running off a stack faults
//! instead of silently corrupting whatever lies below.

use spin::Mutex;
use x86_64::{
    VirtAddr,
    registers::control::Cr3,
    structures::paging::{Mapper, OffsetPageTable, Page, PageTable, Size4KiB, mapper::UnmapError},
};

static TABLES: Mutex<Option<OffsetPageTable<'static>>> = Mutex::new(None);

/// Takes over the page tables Limine left active.
pub fn init(hhdm_offset: u64) {
    let (level_4, _) = Cr3::read();
    let virtual_address = hhdm_offset + level_4.start_address().as_u64();
    // SAFETY: CR3 holds the physical address of the active level-4 table, the
    // HHDM maps all of physical memory at `hhdm_offset`, and from here on only
    // this module touches the tables (behind `TABLES`' lock).
    let tables = unsafe {
        let level_4 = &mut *(virtual_address as *mut PageTable);
        OffsetPageTable::new(level_4, VirtAddr::new(hhdm_offset))
    };
    *TABLES.lock() = Some(tables);
}

/// Why a guard page could not be made.
#[derive(Debug)]
pub enum GuardError {
    NotInitialised,
    Unmap(UnmapError),
}

/// Unmaps the 4 KiB page at `address` so that any access to it faults. The
/// frame behind it stays with its owner (it is part of a static stack).
pub fn make_guard_page(address: VirtAddr) -> Result<(), GuardError> {
    let page = Page::<Size4KiB>::containing_address(address);
    let mut tables = TABLES.lock();
    let tables = tables.as_mut().ok_or(GuardError::NotInitialised)?;
    let (_, flush) = tables.unmap(page).map_err(GuardError::Unmap)?;
    flush.flush();
    Ok(())
}
