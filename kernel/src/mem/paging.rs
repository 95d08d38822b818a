//! The active page tables, reached through the higher-half direct map.
//!
//! Limine's tables stay in use; this module edits them: it maps the heap's
//! pages, maps device registers uncached and the framebuffer
//! write-combining, and unmaps the guard pages below the kernel's stacks, so
//! that running off a stack faults instead of silently corrupting whatever
//! lies below. It never makes a mapping both writable and executable. The
//! x86 page-table types stay inside: callers pass plain addresses.

use super::frames;
use crate::arch::pat::{self, MemoryType};
use spin::Mutex;
use x86_64::{
    PhysAddr, VirtAddr,
    registers::control::Cr3,
    registers::model_specific::{Efer, EferFlags},
    structures::paging::{
        FrameAllocator, Mapper, OffsetPageTable, Page, PageSize, PageTable, PageTableFlags, PhysFrame,
        Size2MiB, Size4KiB, Translate,
        mapper::{MapToError, MappedFrame, TranslateResult, UnmapError},
        page_table::PageTableEntry,
    },
};

static TABLES: Mutex<Option<OffsetPageTable<'static>>> = Mutex::new(None);

/// Takes over the page tables Limine left active. Only the first call does:
/// the level-4 table must have one owner.
pub fn init(hhdm_offset: u64) {
    let mut owner = TABLES.lock();
    if owner.is_some() {
        return;
    }
    let (level_4, _) = Cr3::read();
    let virtual_address = hhdm_offset + level_4.start_address().as_u64();
    // SAFETY: CR3 holds the physical address of the active level-4 table, the
    // HHDM maps all of physical memory at `hhdm_offset`, and this is the one
    // reference to it: from here on the tables are reached only through
    // `TABLES`, under its lock.
    let tables = unsafe {
        let level_4 = &mut *(virtual_address as *mut PageTable);
        OffsetPageTable::new(level_4, VirtAddr::new(hhdm_offset))
    };
    *owner = Some(tables);
    drop(owner);
    // Non-executable mappings need no-execute enabled (Limine normally has).
    // SAFETY: setting NXE only makes the NX bit in page tables effective.
    unsafe { Efer::update(|flags| flags.insert(EferFlags::NO_EXECUTE_ENABLE)) };
}

/// Page-table frames come from the frame allocator, or, before it exists
/// (the framebuffer is mapped first), from boot memory.
struct TableFrames;

// SAFETY: frames::allocate and early::alloc_frame hand out each unused frame
// once, and never each other's.
unsafe impl FrameAllocator<Size4KiB> for TableFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame> {
        let address = frames::allocate().or_else(super::early::alloc_frame)?;
        Some(PhysFrame::containing_address(PhysAddr::new(address)))
    }
}

/// Why a page could not be mapped.
#[derive(Debug)]
pub enum MapError {
    NotInitialised,
    Map(MapToError<Size4KiB>),
}

/// Maps the 4 KiB page at virtual `page` to the frame at physical `frame`
/// as kernel data: writable, never executable, global.
pub fn map_data(page: u64, frame: u64) -> Result<(), MapError> {
    let flags = PageTableFlags::PRESENT
        | PageTableFlags::WRITABLE
        | PageTableFlags::NO_EXECUTE
        | PageTableFlags::GLOBAL;
    let mut tables = TABLES.lock();
    let tables = tables.as_mut().ok_or(MapError::NotInitialised)?;
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(page));
    let frame = PhysFrame::containing_address(PhysAddr::new(frame));
    // SAFETY: the page is in a range the caller owns and the frame is one it
    // was just handed; data mappings are never executable.
    let flush = unsafe { tables.map_to(page, frame, flags, &mut TableFrames) }.map_err(MapError::Map)?;
    flush.flush();
    Ok(())
}

/// Where device registers are mapped: physical address `p` appears at
/// `MMIO_WINDOW + p`. A fixed offset makes mapping the same registers twice
/// harmless (the second call finds the pages there) and needs no bookkeeping.
const MMIO_WINDOW: u64 = 0xffff_e000_0000_0000;
/// The same for write-combining mappings (the framebuffer): a window of its
/// own, so that no page of one window ever needs the other's type.
const WRITE_COMBINING_WINDOW: u64 = 0xffff_f000_0000_0000;
/// Physical addresses each window reaches: 16 TiB, beyond any register
/// block or framebuffer the kernel drives.
const MMIO_WINDOW_SIZE: u64 = 1 << 44;

/// Why device memory could not be mapped.
#[derive(Debug)]
pub enum MmioError {
    NotInitialised,
    /// The range reaches beyond what the window covers.
    OutOfWindow {
        physical: u64,
        length: u64,
    },
    /// The window's page is mapped to another frame (a bug in this module).
    Map(MapToError<Size4KiB>),
    /// The same for a 2 MiB page of the write-combining window.
    MapLarge(MapToError<Size2MiB>),
}

/// Maps `length` bytes of device registers at physical `physical` and
/// returns their virtual address. The pages are uncached (PCD and PWT: PAT
/// entry 3, UC in the power-on and the kernel's table), so every access
/// reaches the device in program order, writable and never executable. The
/// HHDM maps the same addresses write-back, which device registers must not
/// be accessed through.
pub fn map_mmio(physical: u64, length: u64) -> Result<u64, MmioError> {
    map_window(MMIO_WINDOW, physical, length, PageTableFlags::NO_CACHE | PageTableFlags::WRITE_THROUGH, false)
}

/// Maps `length` bytes of video memory at physical `physical`
/// write-combining (PWT alone: PAT entry 1 in the kernel's table), writable
/// and never executable, and returns their virtual address. Stores are
/// combined into bursts, and never cached: reading back is slow, which the
/// console never does. Where entry 1 is not write-combining (a CPU without
/// a PAT), the memory is mapped uncached instead, with the reason logged:
/// never write-back, which would hold the picture in the cache.
///
/// Whole 2 MiB stretches get 2 MiB pages: a 4K screen spans 32 MiB, which in
/// 4 KiB pages is 8,000 entries to write at boot and as many TLB entries to
/// draw through. Only this window uses them, and a range is always split the
/// same way, so mapping the framebuffer again finds the same pages.
pub fn map_write_combining(physical: u64, length: u64) -> Result<u64, MmioError> {
    if pat::decode(pat::read())[pat::WRITE_COMBINING_ENTRY] != Some(MemoryType::WriteCombining) {
        log::warn!(
            "no write-combining page type (no PAT): video memory is mapped uncached, and draws slowly"
        );
        return map_mmio(physical, length);
    }
    // PWT alone selects entry 1 in a 2 MiB entry as in a 4 KiB one: the PAT
    // bit, which moves between the two, stays clear.
    map_window(WRITE_COMBINING_WINDOW, physical, length, PageTableFlags::WRITE_THROUGH, true)
}

/// Maps physical `physical..+length` at the same offset in `window`, with
/// `caching` (PCD and PWT bits) added to a data mapping's flags; with
/// `large`, each 2 MiB-aligned whole 2 MiB of the range as one page.
fn map_window(
    window: u64,
    physical: u64,
    length: u64,
    caching: PageTableFlags,
    large: bool,
) -> Result<u64, MmioError> {
    let end = physical.checked_add(length.max(1)).filter(|&end| end <= MMIO_WINDOW_SIZE);
    let Some(end) = end else { return Err(MmioError::OutOfWindow { physical, length }) };
    let flags = PageTableFlags::PRESENT
        | PageTableFlags::WRITABLE
        | PageTableFlags::NO_EXECUTE
        | PageTableFlags::GLOBAL
        | caching;
    let mut tables = TABLES.lock();
    let tables = tables.as_mut().ok_or(MmioError::NotInitialised)?;
    let mut address = physical & !(Size4KiB::SIZE - 1);
    while address < end {
        if large && address.is_multiple_of(Size2MiB::SIZE) && end - address >= Size2MiB::SIZE {
            map_page::<Size2MiB>(tables, window + address, address, flags).map_err(MmioError::MapLarge)?;
            address += Size2MiB::SIZE;
        } else {
            map_page::<Size4KiB>(tables, window + address, address, flags).map_err(MmioError::Map)?;
            address += Size4KiB::SIZE;
        }
    }
    Ok(window + physical)
}

/// Maps the `S` page at `page` to the frame at `frame` in a device window;
/// finding it mapped there already is not an error.
fn map_page<S: PageSize>(
    tables: &mut OffsetPageTable<'static>,
    page: u64,
    frame: u64,
    flags: PageTableFlags,
) -> Result<(), MapToError<S>>
where
    OffsetPageTable<'static>: Mapper<S>,
{
    let page = Page::<S>::containing_address(VirtAddr::new(page));
    let frame = PhysFrame::<S>::containing_address(PhysAddr::new(frame));
    // SAFETY: the page lies in a device window, which only `map_window`
    // maps, each page to the frame at its own offset and always with the
    // window's caching and page sizes; device memory is never executable and
    // never handed out as RAM.
    match unsafe { tables.map_to(page, frame, flags, &mut TableFrames) } {
        Ok(flush) => {
            flush.flush();
            Ok(())
        }
        Err(MapToError::PageAlreadyMapped(mapped)) if mapped == frame => Ok(()),
        Err(error) => Err(error),
    }
}

/// How a page is mapped: the frame and the PAT entry it selects (to check
/// the memory type a mapping got).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    pub physical: u64,
    /// The entry of the page attribute table (PAT << 2 | PCD << 1 | PWT).
    pub pat_entry: usize,
    pub writable: bool,
    pub executable: bool,
}

impl Mapping {
    fn new(physical: u64, pat_bit: bool, flags: PageTableFlags) -> Mapping {
        Mapping {
            physical,
            pat_entry: pat::entry_of(
                pat_bit,
                flags.contains(PageTableFlags::NO_CACHE),
                flags.contains(PageTableFlags::WRITE_THROUGH),
            ),
            writable: flags.contains(PageTableFlags::WRITABLE),
            executable: !flags.contains(PageTableFlags::NO_EXECUTE),
        }
    }
}

/// The mapping of the 4 KiB or 2 MiB page holding `address`; `None` if it
/// is not mapped or lies in a 1 GiB page.
pub fn mapping(address: u64) -> Option<Mapping> {
    let tables = TABLES.lock();
    let tables = tables.as_ref()?;
    let address = VirtAddr::new(address);
    match tables.translate(address) {
        // In a 4 KiB page's entry, bit 7 (the crate's HUGE_PAGE) is the PAT bit.
        TranslateResult::Mapped { frame: MappedFrame::Size4KiB(frame), offset, flags } => Some(Mapping::new(
            frame.start_address().as_u64() + offset,
            flags.contains(PageTableFlags::HUGE_PAGE),
            flags,
        )),
        // In a 2 MiB page's entry it is bit 12, which the crate reads as part
        // of the address and the translation rounds away.
        TranslateResult::Mapped { frame: MappedFrame::Size2MiB(frame), offset, flags } => {
            let hhdm = tables.phys_offset().as_u64();
            let next = |entry: &PageTableEntry| {
                // SAFETY: the translation just found a 2 MiB page under the
                // lock, so the level-4 and level-3 entries on its path are
                // present and point to tables, which the HHDM maps; they are
                // only read.
                unsafe { &*((hhdm + entry.addr().as_u64()) as *const PageTable) }
            };
            let level_2 = next(&next(&tables.level_4_table()[address.p4_index()])[address.p3_index()]);
            let pat_bit = level_2[address.p2_index()].addr().as_u64() & (1 << 12) != 0;
            Some(Mapping::new(frame.start_address().as_u64() + offset, pat_bit, flags))
        }
        _ => None,
    }
}

/// Calls `f` with the physical address of every page table in use: the
/// level-4 table and every table its entries lead to.
pub fn for_each_table_frame(mut f: impl FnMut(u64)) {
    let tables = TABLES.lock();
    let Some(tables) = tables.as_ref() else { return };
    let hhdm = tables.phys_offset().as_u64();
    f(Cr3::read().0.start_address().as_u64());
    walk(hhdm, tables.level_4_table(), 4, &mut f);
}

/// Walks the tables below `table`; the lock on TABLES is held, so nothing
/// changes them meanwhile.
fn walk(hhdm: u64, table: &PageTable, level: u8, f: &mut impl FnMut(u64)) {
    for entry in table.iter() {
        let flags = entry.flags();
        if level > 1 && flags.contains(PageTableFlags::PRESENT) && !flags.contains(PageTableFlags::HUGE_PAGE)
        {
            f(entry.addr().as_u64());
            // SAFETY: a present, non-huge entry above level 1 points to a page
            // table of the active hierarchy, which the HHDM maps; it is only
            // read, under the lock.
            let next = unsafe { &*((hhdm + entry.addr().as_u64()) as *const PageTable) };
            walk(hhdm, next, level - 1, f);
        }
    }
}

/// Why a page could not be unmapped.
#[derive(Debug)]
pub enum GuardError {
    NotInitialised,
    Unmap(UnmapError),
}

/// Unmaps the 4 KiB page at `address` so that any access to it faults. The
/// frame behind it stays with its owner (it is part of a static stack).
pub fn make_guard_page(address: u64) -> Result<(), GuardError> {
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(address));
    let mut tables = TABLES.lock();
    let tables = tables.as_mut().ok_or(GuardError::NotInitialised)?;
    let (_, flush) = tables.unmap(page).map_err(GuardError::Unmap)?;
    flush.flush();
    Ok(())
}
