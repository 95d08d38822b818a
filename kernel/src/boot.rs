//! The Limine boot protocol: the requests this kernel places in its image and
//! the checked answers ([`BootInfo`]) that the rest of the kernel works from.
//!
//! Limine fills the requests in before jumping to `kmain`; nothing here is
//! valid to read until then. This is the only module that names Limine's
//! types: what it answers is converted into the kernel's own ([`MemoryRegion`],
//! [`Framebuffer`], [`Firmware`]) and copied out of bootloader memory.

pub mod memory_map;

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};
use limine::{
    BaseRevision,
    firmware_type::FirmwareType,
    memory_map::{Entry, EntryType},
    request::{
        BootloaderInfoRequest, ExecutableFileRequest, FirmwareTypeRequest, FramebufferRequest, HhdmRequest,
        MemoryMapRequest, RequestsEndMarker, RequestsStartMarker, RsdpRequest, StackSizeRequest,
    },
};
use memory_map::{Edge, Repairs};
use spin::Once;

/// The protocol revision the kernel is written against. The pinned Limine
/// (8.2.0) implements revisions 0 to 2; under 2 the higher-half direct map
/// covers at least the first 4 GiB of physical memory, which includes legacy
/// VGA memory and most framebuffers.
pub const BASE_REVISION: u64 = 2;

/// Limine's stack. `_start` moves to the kernel's own, guarded stack before
/// anything else runs, so this only has to hold `_start` itself.
pub const STACK_SIZE: u64 = 64 * 1024;

#[used]
#[unsafe(link_section = ".limine_requests_start")]
static REQUESTS_START: RequestsStartMarker = RequestsStartMarker::new();

#[used]
#[unsafe(link_section = ".limine_requests")]
static REVISION: BaseRevision = BaseRevision::with_revision(BASE_REVISION);

#[used]
#[unsafe(link_section = ".limine_requests")]
static BOOTLOADER_INFO: BootloaderInfoRequest = BootloaderInfoRequest::new();

#[used]
#[unsafe(link_section = ".limine_requests")]
static FIRMWARE_TYPE: FirmwareTypeRequest = FirmwareTypeRequest::new();

#[used]
#[unsafe(link_section = ".limine_requests")]
static STACK: StackSizeRequest = StackSizeRequest::new().with_size(STACK_SIZE);

#[used]
#[unsafe(link_section = ".limine_requests")]
static HHDM: HhdmRequest = HhdmRequest::new();

#[used]
#[unsafe(link_section = ".limine_requests")]
static MEMORY_MAP: MemoryMapRequest = MemoryMapRequest::new();

#[used]
#[unsafe(link_section = ".limine_requests")]
static FRAMEBUFFER: FramebufferRequest = FramebufferRequest::new();

#[used]
#[unsafe(link_section = ".limine_requests")]
static EXECUTABLE_FILE: ExecutableFileRequest = ExecutableFileRequest::new();

#[used]
#[unsafe(link_section = ".limine_requests")]
static RSDP: RsdpRequest = RsdpRequest::new();

#[used]
#[unsafe(link_section = ".limine_requests_end")]
static REQUESTS_END: RequestsEndMarker = RequestsEndMarker::new();

/// What the bootloader handed over, checked for what the kernel cannot boot
/// without, and copied out of the bootloader's memory so that memory can be
/// reclaimed.
pub struct BootInfo {
    /// Bootloader name and version, as Limine reports them.
    bootloader: Option<(FixedStr<32>, FixedStr<32>)>,
    pub firmware: Firmware,
    /// Virtual address of physical address 0 in the higher-half direct map.
    pub hhdm_offset: u64,
    /// The memory map, sorted and without overlaps ([`memory_map`]).
    map: &'static [MemoryRegion],
    /// Entries in the firmware's map, and what was repaired in it.
    firmware_entries: usize,
    repairs: Repairs,
    /// The first framebuffer, if the firmware set up a linear one.
    pub framebuffer: Option<Framebuffer>,
    /// Physical address of the ACPI RSDP, if the firmware has ACPI tables.
    pub rsdp: Option<u64>,
    cmdline: FixedStr<512>,
}

/// What a range of physical memory is, as far as the kernel cares. Ordered
/// from the least to the most restrictive: where the firmware's entries
/// overlap, the greater kind wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RegionKind {
    /// Free RAM.
    Usable,
    /// RAM that holds the bootloader's data (page tables, boot information)
    /// until the kernel no longer needs it.
    BootloaderReclaimable,
    /// The kernel image and modules, and the kernel's copy of the memory
    /// map.
    Kernel,
    /// RAM holding the ACPI tables, or the firmware's ACPI storage (NVS).
    Acpi,
    /// Anything else: firmware, the framebuffer, holes, bad RAM.
    Reserved,
}

/// One entry of the memory map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    pub base: u64,
    pub length: u64,
    pub kind: RegionKind,
}

impl MemoryRegion {
    pub fn end(&self) -> u64 {
        self.base + self.length
    }
}

impl From<&Entry> for MemoryRegion {
    fn from(entry: &Entry) -> Self {
        let kind = match entry.entry_type {
            EntryType::USABLE => RegionKind::Usable,
            EntryType::BOOTLOADER_RECLAIMABLE => RegionKind::BootloaderReclaimable,
            EntryType::EXECUTABLE_AND_MODULES => RegionKind::Kernel,
            EntryType::ACPI_RECLAIMABLE | EntryType::ACPI_NVS => RegionKind::Acpi,
            _ => RegionKind::Reserved,
        };
        MemoryRegion { base: entry.base, length: entry.length, kind }
    }
}

/// A string copied into a fixed buffer (cut at a character boundary).
#[derive(Clone, Copy)]
struct FixedStr<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> FixedStr<N> {
    fn of(text: &str) -> Self {
        let mut len = text.len().min(N);
        while !text.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0; N];
        bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
        Self { bytes, len }
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

/// The firmware that started the machine (and Limine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    Uefi32,
    Uefi64,
    /// Limine did not say, or said something this kernel does not know.
    Unknown,
}

/// A linear framebuffer as Limine set it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framebuffer {
    /// Virtual address (inside the HHDM) of the top-left pixel.
    pub address: usize,
    pub width: u32,
    pub height: u32,
    /// Bytes from one row to the next; may exceed `width * bpp / 8`.
    pub pitch: u32,
    pub bpp: u16,
    pub red: ColorMask,
    pub green: ColorMask,
    pub blue: ColorMask,
}

/// Where one colour channel sits in a pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColorMask {
    pub size: u8,
    pub shift: u8,
}

/// Why the kernel cannot continue with what the bootloader handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootError {
    /// The bootloader does not implement the protocol revision the kernel
    /// needs (or is not Limine at all).
    UnsupportedRevision,
    NoHhdm,
    NoMemoryMap,
    EmptyMemoryMap,
    /// No usable memory can hold the kernel's copy of the memory map.
    NoRoomForMemoryMap,
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::UnsupportedRevision => write!(
                f,
                "the bootloader does not support Limine protocol base revision {BASE_REVISION}; \
                 boot this kernel with Limine 8.x (the project pins 8.2.0)"
            ),
            Self::NoHhdm => f.write_str(
                "the bootloader gave no higher-half direct map (HHDM response missing); \
                 the kernel cannot reach physical memory",
            ),
            Self::NoMemoryMap => f.write_str(
                "the bootloader gave no memory map (memory map response missing); \
                 the kernel cannot know which memory is free",
            ),
            Self::EmptyMemoryMap => f.write_str("the bootloader's memory map has no entries"),
            Self::NoRoomForMemoryMap => {
                f.write_str("no usable memory is free to hold the kernel's copy of the memory map")
            }
        }
    }
}

/// Limine's raw answers, before any checking; they point into memory that
/// the kernel reclaims once they are copied. Kept apart from the statics so
/// the checks in [`BootInfo::from_answers`] run on the host.
#[derive(Clone, Copy)]
struct Answers {
    revision_supported: bool,
    bootloader: Option<(&'static str, &'static str)>,
    firmware: Option<Firmware>,
    hhdm_offset: Option<u64>,
    memory_map: Option<&'static [&'static Entry]>,
    framebuffer: Option<Framebuffer>,
    /// The RSDP's address as Limine gives it: inside the HHDM under base
    /// revisions before 3 (as here), physical from revision 3 on.
    rsdp: Option<u64>,
    cmdline: Option<&'static str>,
}

/// Memory for the kernel's copy of the memory map: `regions` is kept for
/// good and `edges` is scratch, each [`memory_map::capacity`] items; `kept`
/// is the physical range of `regions`, which the map marks as the kernel's.
struct MapStorage {
    regions: &'static mut [MemoryRegion],
    edges: &'static mut [Edge],
    kept: Option<(u64, u64)>,
}

impl BootInfo {
    /// Checks the answers and copies them; `storage` provides room for the
    /// kernel's copy of the map of the entries it is given.
    fn from_answers(
        answers: Answers,
        storage: impl FnOnce(&[&Entry]) -> Option<MapStorage>,
    ) -> Result<Self, BootError> {
        if !answers.revision_supported {
            return Err(BootError::UnsupportedRevision);
        }
        let hhdm_offset = answers.hhdm_offset.ok_or(BootError::NoHhdm)?;
        let memory_map = answers.memory_map.ok_or(BootError::NoMemoryMap)?;
        if memory_map.is_empty() {
            return Err(BootError::EmptyMemoryMap);
        }
        let MapStorage { regions, edges, kept } = storage(memory_map).ok_or(BootError::NoRoomForMemoryMap)?;
        let kept = kept.map(|(start, end)| MemoryRegion {
            base: start,
            length: end - start,
            kind: RegionKind::Kernel,
        });
        let entries = memory_map.iter().map(|entry| MemoryRegion::from(*entry));
        let repairs = memory_map::normalize(entries, kept, edges, regions);
        Ok(Self {
            bootloader: answers.bootloader.map(|(name, version)| (FixedStr::of(name), FixedStr::of(version))),
            firmware: answers.firmware.unwrap_or(Firmware::Unknown),
            hhdm_offset,
            map: &regions[..repairs.regions],
            firmware_entries: memory_map.len(),
            repairs,
            framebuffer: answers.framebuffer,
            rsdp: answers.rsdp.map(|address| address.checked_sub(hhdm_offset).unwrap_or(address)),
            cmdline: FixedStr::of(answers.cmdline.unwrap_or("")),
        })
    }

    /// The memory map: sorted, no overlaps, no empty regions, neighbours of
    /// one kind merged.
    pub fn memory_map(&self) -> &'static [MemoryRegion] {
        self.map
    }

    /// Bootloader name and version.
    pub fn bootloader(&self) -> Option<(&str, &str)> {
        self.bootloader.as_ref().map(|(name, version)| (name.as_str(), version.as_str()))
    }

    /// The `cmdline:` of the `limine.conf` entry that booted the kernel.
    pub fn cmdline(&self) -> &str {
        self.cmdline.as_str()
    }

    /// The value of `key=value` on the command line (the last one wins).
    pub fn option(&self, key: &str) -> Option<&str> {
        option(self.cmdline(), key)
    }

    /// Bytes of memory the map marks usable right now.
    pub fn usable_bytes(&self) -> u64 {
        usable_bytes(self.memory_map())
    }

    /// Logs the boot banner: who booted us, on what, with what memory and
    /// screen.
    pub fn log_banner(&self) {
        let (name, version) = self.bootloader().unwrap_or(("unknown bootloader", "?"));
        log::info!("{name} {version}, protocol base revision {BASE_REVISION}, firmware: {}", self.firmware);
        log::info!("HHDM offset: {:#x}", self.hhdm_offset);
        log::info!(
            "memory: {} MiB usable, {} regions from {} memory map entries",
            self.usable_bytes() / (1024 * 1024),
            self.map.len(),
            self.firmware_entries
        );
        let repairs = self.repairs;
        if repairs.unsorted {
            log::warn!("the firmware's memory map was out of order; sorted");
        }
        if repairs.empty > 0 {
            log::warn!("the firmware's memory map has {} empty entries; left out", repairs.empty);
        }
        if repairs.overlapping_bytes > 0 {
            log::warn!(
                "the firmware's memory map describes {} KiB more than once; counted once, as the most \
                 restrictive kind given",
                repairs.overlapping_bytes.div_ceil(1024)
            );
        }
        match &self.framebuffer {
            Some(fb) => {
                log::info!("framebuffer: {}x{}, pitch {}, {} bpp", fb.width, fb.height, fb.pitch, fb.bpp)
            }
            None => log::info!("framebuffer: none"),
        }
        if !self.cmdline().is_empty() {
            log::info!("command line: {}", self.cmdline());
        }
    }
}

/// The map is long; show it by its size.
impl fmt::Debug for BootInfo {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("BootInfo")
            .field("bootloader", &self.bootloader())
            .field("firmware", &self.firmware)
            .field("hhdm_offset", &format_args!("{:#x}", self.hhdm_offset))
            .field("memory_map_regions", &self.map.len())
            .field("framebuffer", &self.framebuffer)
            .field("rsdp", &self.rsdp)
            .field("cmdline", &self.cmdline())
            .finish()
    }
}

fn option<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_whitespace().rev().find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

fn usable_bytes(regions: &[MemoryRegion]) -> u64 {
    regions.iter().filter(|region| region.kind == RegionKind::Usable).map(|region| region.length).sum()
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Self::Bios => "BIOS",
            Self::Uefi32 => "UEFI (32-bit)",
            Self::Uefi64 => "UEFI",
            Self::Unknown => "unknown",
        })
    }
}

static INFO: Once<BootInfo> = Once::new();

/// The framebuffer's memory: `length` bytes (`height` rows of `pitch`) from
/// physical `physical`. Handed out once ([`take_framebuffer_memory`]), to
/// the console that draws there, which maps it as video memory wants.
#[derive(Debug, PartialEq, Eq)]
pub struct FramebufferMemory {
    pub physical: u64,
    pub length: usize,
}

/// The framebuffer's memory, the first time it is asked for: the console
/// that draws there is its one owner.
pub fn take_framebuffer_memory() -> Option<FramebufferMemory> {
    static TAKEN: AtomicBool = AtomicBool::new(false);
    let info = info();
    let fb = info.framebuffer?;
    if TAKEN.swap(true, Ordering::Relaxed) {
        return None;
    }
    Some(FramebufferMemory {
        physical: fb.address as u64 - info.hhdm_offset,
        length: fb.pitch as usize * fb.height as usize,
    })
}

/// Reads and checks Limine's answers. Panics with the reason when the kernel
/// cannot continue (so bring up the serial console first).
pub fn init() -> &'static BootInfo {
    INFO.call_once(|| {
        let answers = read_answers();
        let hhdm = answers.hhdm_offset.unwrap_or(0);
        BootInfo::from_answers(answers, |entries| hhdm_storage(hhdm, entries))
            .unwrap_or_else(|error| panic!("{error}"))
    })
}

/// Room for the kernel's copy of the map of `entries`, at the top of a
/// usable range (which nothing uses yet: no allocator exists), reached
/// through the HHDM.
fn hhdm_storage(hhdm: u64, entries: &[&Entry]) -> Option<MapStorage> {
    // One entry more: the copy's own, marking its storage.
    let capacity = memory_map::capacity(entries.len() + 1);
    let (regions_bytes, edges_bytes) = memory_map::storage_bytes(entries.len() + 1);
    let start = memory_map::place(
        entries.iter().map(|entry| MemoryRegion::from(*entry)),
        regions_bytes + edges_bytes,
    )?;
    let regions = (hhdm + start) as *mut MemoryRegion;
    let edges = (hhdm + start + regions_bytes) as *mut Edge;
    // SAFETY: `place` found these bytes in usable memory that no entry of
    // another kind overlaps; nothing owns usable memory before the kernel's
    // allocators start, and those leave `kept` alone. The HHDM maps usable
    // memory writable; `regions_bytes` is a multiple of the page size, so both
    // arrays are aligned, and every item is written before the slices are made.
    unsafe {
        for i in 0..capacity {
            regions.add(i).write(MemoryRegion { base: 0, length: 0, kind: RegionKind::Reserved });
            edges.add(i).write(Edge::EMPTY);
        }
        Some(MapStorage {
            regions: core::slice::from_raw_parts_mut(regions, capacity),
            edges: core::slice::from_raw_parts_mut(edges, capacity),
            kept: Some((start, start + regions_bytes)),
        })
    }
}

/// The boot information; [`init`] must have run.
pub fn info() -> &'static BootInfo {
    INFO.get().expect("boot::info() called before boot::init()")
}

fn read_answers() -> Answers {
    Answers {
        revision_supported: REVISION.is_supported(),
        bootloader: BOOTLOADER_INFO.get_response().map(|r| (r.name(), r.version())),
        firmware: FIRMWARE_TYPE.get_response().map(|r| match r.firmware_type() {
            FirmwareType::X86_BIOS => Firmware::Bios,
            FirmwareType::UEFI_32 => Firmware::Uefi32,
            FirmwareType::UEFI_64 => Firmware::Uefi64,
            _ => Firmware::Unknown,
        }),
        hhdm_offset: HHDM.get_response().map(|r| r.offset()),
        memory_map: MEMORY_MAP.get_response().map(|r| r.entries()),
        framebuffer: FRAMEBUFFER.get_response().and_then(|r| r.framebuffers().next()).map(|fb| Framebuffer {
            address: fb.addr() as usize,
            width: fb.width() as u32,
            height: fb.height() as u32,
            pitch: fb.pitch() as u32,
            bpp: fb.bpp(),
            red: ColorMask { size: fb.red_mask_size(), shift: fb.red_mask_shift() },
            green: ColorMask { size: fb.green_mask_size(), shift: fb.green_mask_shift() },
            blue: ColorMask { size: fb.blue_mask_size(), shift: fb.blue_mask_shift() },
        }),
        rsdp: RSDP.get_response().map(|r| r.address() as u64),
        // Limine 8 passes the entry's `cmdline:` as the kernel file's string.
        cmdline: EXECUTABLE_FILE.get_response().and_then(|r| r.file().string().to_str().ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(base: u64, length: u64, entry_type: EntryType) -> &'static Entry {
        Box::leak(Box::new(Entry { base, length, entry_type }))
    }

    /// Room for a map of any length, on the host's heap.
    fn storage(entries: &[&Entry]) -> Option<MapStorage> {
        let capacity = memory_map::capacity(entries.len() + 1);
        Some(MapStorage {
            regions: Vec::leak(vec![
                MemoryRegion { base: 0, length: 0, kind: RegionKind::Reserved };
                capacity
            ]),
            edges: Vec::leak(vec![Edge::EMPTY; capacity]),
            kept: None,
        })
    }

    fn from_answers(answers: Answers) -> Result<BootInfo, BootError> {
        BootInfo::from_answers(answers, storage)
    }

    fn good_answers() -> Answers {
        let map: &'static [&'static Entry] = Box::leak(Box::new([
            entry(0, 0x9f000, EntryType::USABLE),
            entry(0x9f000, 0x1000, EntryType::RESERVED),
            entry(0x100000, 0x3ff00000, EntryType::USABLE),
            entry(0x40000000, 0x100000, EntryType::BOOTLOADER_RECLAIMABLE),
        ]));
        Answers {
            revision_supported: true,
            bootloader: Some(("Limine", "8.2.0")),
            firmware: Some(Firmware::Bios),
            hhdm_offset: Some(0xffff_8000_0000_0000),
            memory_map: Some(map),
            framebuffer: None,
            rsdp: None,
            cmdline: None,
        }
    }

    #[test]
    fn complete_answers_are_accepted() {
        let info = from_answers(good_answers()).unwrap();
        assert_eq!(info.hhdm_offset, 0xffff_8000_0000_0000);
        assert_eq!(info.memory_map().len(), 4);
        assert_eq!(info.memory_map()[2].base, 0x100000);
        assert_eq!(info.memory_map()[3].kind, RegionKind::BootloaderReclaimable);
        assert_eq!(info.cmdline(), "");
        assert_eq!(info.bootloader(), Some(("Limine", "8.2.0")));
    }

    #[test]
    fn unsupported_revision_is_refused_first() {
        let answers = Answers { revision_supported: false, hhdm_offset: None, ..good_answers() };
        assert_eq!(from_answers(answers).unwrap_err(), BootError::UnsupportedRevision);
    }

    #[test]
    fn missing_hhdm_or_memory_map_is_refused() {
        let no_hhdm = Answers { hhdm_offset: None, ..good_answers() };
        assert_eq!(from_answers(no_hhdm).unwrap_err(), BootError::NoHhdm);
        let no_map = Answers { memory_map: None, ..good_answers() };
        assert_eq!(from_answers(no_map).unwrap_err(), BootError::NoMemoryMap);
        let empty_map = Answers { memory_map: Some(&[]), ..good_answers() };
        assert_eq!(from_answers(empty_map).unwrap_err(), BootError::EmptyMemoryMap);
    }

    #[test]
    fn the_rsdp_address_becomes_physical() {
        let in_hhdm = Answers { rsdp: Some(0xffff_8000_000f_52a0), ..good_answers() };
        assert_eq!(from_answers(in_hhdm).unwrap().rsdp, Some(0xf_52a0));
        let physical = Answers { rsdp: Some(0x7fb7_e014), ..good_answers() };
        assert_eq!(from_answers(physical).unwrap().rsdp, Some(0x7fb7_e014));
        assert_eq!(from_answers(good_answers()).unwrap().rsdp, None);
    }

    #[test]
    fn missing_firmware_type_is_reported_unknown() {
        let answers = Answers { firmware: None, ..good_answers() };
        assert_eq!(from_answers(answers).unwrap().firmware, Firmware::Unknown);
    }

    #[test]
    fn only_usable_regions_count_as_usable_memory() {
        let info = from_answers(good_answers()).unwrap();
        assert_eq!(info.usable_bytes(), 0x9f000 + 0x3ff00000);
    }

    #[test]
    fn a_long_overlapping_unsorted_map_is_kept_whole_and_counted_once() {
        // 1200 usable pages listed backwards with a hole after each, a
        // duplicate of every tenth, and a reserved entry over the first.
        let mut entries: Vec<&'static Entry> =
            (0..1200u64).rev().map(|i| entry(0x10_0000 + i * 0x2000, 0x1000, EntryType::USABLE)).collect();
        entries.extend(
            (0..1200u64).step_by(10).map(|i| entry(0x10_0000 + i * 0x2000, 0x1000, EntryType::USABLE)),
        );
        entries.push(entry(0x10_0000, 0x1000, EntryType::RESERVED));
        entries.push(entry(0x5000_0000, 0, EntryType::USABLE));
        let map: &'static [&'static Entry] = Vec::leak(entries);
        let info = from_answers(Answers { memory_map: Some(map), ..good_answers() }).unwrap();
        assert_eq!(info.memory_map().len(), 1200);
        assert_eq!(info.memory_map()[0].kind, RegionKind::Reserved);
        assert_eq!(info.usable_bytes(), 1199 * 0x1000);
        assert!(info.memory_map().windows(2).all(|pair| pair[0].end() < pair[1].base));
        assert_eq!(
            info.repairs,
            Repairs { regions: 1200, empty: 1, overlapping_bytes: 120 * 0x1000, unsorted: true }
        );
    }

    #[test]
    fn long_strings_are_cut_at_a_character_boundary() {
        assert_eq!(FixedStr::<4>::of("abcdef").as_str(), "abcd");
        assert_eq!(FixedStr::<4>::of("abcé").as_str(), "abc");
        assert_eq!(FixedStr::<8>::of("").as_str(), "");
    }

    #[test]
    fn command_line_options_are_key_value_words() {
        assert_eq!(option("console=vga loglevel=debug", "console"), Some("vga"));
        assert_eq!(option("console=vga loglevel=debug", "loglevel"), Some("debug"));
        assert_eq!(option("consoles=x console=fb console=vga", "console"), Some("vga"));
        assert_eq!(option("quiet", "quiet"), None);
        assert_eq!(option("", "console"), None);
    }

    #[test]
    fn errors_name_the_missing_piece() {
        assert!(BootError::UnsupportedRevision.to_string().contains("base revision 2"));
        assert!(BootError::NoHhdm.to_string().contains("HHDM"));
        assert!(BootError::NoMemoryMap.to_string().contains("memory map"));
    }
}
