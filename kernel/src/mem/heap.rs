//! The kernel heap: [`Allocator`] (slab + talc) over its own virtual range,
//! which starts small and grows on demand, page by page from the frame
//! allocator, up to a limit. The page below the range stays unmapped, so an
//! underrun faults.

use super::allocator::{Allocator, AllocatorStats};
use super::{frames, paging};
use core::alloc::Layout;
use core::fmt;
use core::ptr::NonNull;
use talc::base::Talc;
use talc::base::binning::Binning;
use talc::source::Source;

/// The unmapped guard page; the heap starts on the page above it.
pub const GUARD_PAGE: u64 = 0xffff_c000_0000_0000;
pub const HEAP_START: u64 = GUARD_PAGE + 4096;
/// The first mapping: the kernel uses under 16 KiB of heap by its first
/// prompt, and each page mapped costs time at boot.
pub const INITIAL_SIZE: usize = 64 << 10;
/// The least each later growth adds.
const GROWTH: usize = 1 << 20;
/// The default limit on the heap's size; `heap=` on the command line
/// (`heap=64M`, say) overrides it.
pub const DEFAULT_LIMIT: usize = 256 << 20;

/// Talc's memory source: maps more of the heap's range when talc runs out.
#[derive(Debug)]
pub struct KernelHeap {
    /// Bytes mapped from `HEAP_START` on.
    mapped: usize,
    limit: usize,
    /// Talc's end of the heap, once it has one.
    end: Option<NonNull<u8>>,
    ready: bool,
}

// SAFETY: the raw heap end is only used under talc's lock.
unsafe impl Send for KernelHeap {}

impl KernelHeap {
    pub const fn new() -> Self {
        Self { mapped: 0, limit: DEFAULT_LIMIT, end: None, ready: false }
    }

    /// Maps `bytes` more (whole pages) at the end of the heap.
    fn map_more(&mut self, bytes: usize) -> Result<(), ()> {
        for offset in (0..bytes).step_by(4096) {
            let page = HEAP_START + (self.mapped + offset) as u64;
            let Some(frame) = frames::allocate() else {
                self.mapped += offset;
                return Err(());
            };
            if paging::map_data(page, frame).is_err() {
                let _ = frames::free(frame);
                self.mapped += offset;
                return Err(());
            }
        }
        self.mapped += bytes;
        Ok(())
    }
}

impl Default for KernelHeap {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: acquire only gives talc memory it has just mapped, contiguous with
// the heap it already has, and never uses the heap itself.
unsafe impl Source for KernelHeap {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        let source = &mut talc.source;
        if !source.ready {
            return Err(());
        }
        let step = if source.mapped == 0 { INITIAL_SIZE } else { GROWTH };
        let want = (layout.size() + layout.align() + 4096).next_multiple_of(step);
        let grow = want.min(source.limit.saturating_sub(source.mapped)) & !4095;
        if grow < layout.size() {
            return Err(());
        }
        let old_mapped = source.mapped;
        let result = source.map_more(grow);
        let new_end = (HEAP_START as usize + talc.source.mapped) as *mut u8;
        if talc.source.mapped == old_mapped {
            return result;
        }
        // SAFETY: HEAP_START..new_end is mapped, writable and used by nothing
        // else; it extends the heap talc has, if any.
        let end = unsafe {
            match talc.source.end {
                None => talc.claim(HEAP_START as *mut u8, talc.source.mapped),
                Some(end) => Some(talc.extend(end, new_end)),
            }
        };
        talc.source.end = end.or(talc.source.end);
        if end.is_some() { Ok(()) } else { Err(()) }
    }
}

#[cfg_attr(target_os = "none", global_allocator)]
// SAFETY: the kernel runs on one CPU, and interrupt handlers never allocate
// or free (the allocator catches one that does).
static HEAP: Allocator<KernelHeap> = unsafe { Allocator::new(KernelHeap::new()) };

/// Opens the heap, with the limit from `heap=` when given.
pub fn init(limit: Option<&str>) {
    let limit = match limit.map(parse_size) {
        Some(Some(bytes)) => bytes,
        Some(None) => {
            log::warn!("ignoring heap={} (expected a size such as 64M or 1G)", limit.unwrap_or(""));
            DEFAULT_LIMIT
        }
        None => DEFAULT_LIMIT,
    };
    HEAP.with_source(|source| {
        source.limit = limit.max(INITIAL_SIZE);
        source.ready = true;
    });
    log::info!(
        "heap at {HEAP_START:#x}, starting at {} KiB, growing on demand up to {} MiB",
        INITIAL_SIZE / 1024,
        limit / (1024 * 1024)
    );
}

/// Changes the heap's limit (it never shrinks below what is mapped).
pub fn set_limit(bytes: usize) {
    HEAP.with_source(|source| source.limit = bytes.max(source.mapped));
}

/// `64M`, `1G`, `4096`, `512K` in bytes.
fn parse_size(text: &str) -> Option<usize> {
    let (digits, unit) = match text.char_indices().last()? {
        (i, 'K' | 'k') => (&text[..i], 1 << 10),
        (i, 'M' | 'm') => (&text[..i], 1 << 20),
        (i, 'G' | 'g') => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    digits.parse::<usize>().ok()?.checked_mul(unit)
}

/// The heap's use, for the shell's `mem` command and the OOM report.
#[derive(Debug, Clone, Copy)]
pub struct HeapStats {
    pub allocator: AllocatorStats,
    /// Bytes of the heap's range mapped so far, and the most allowed.
    pub mapped: usize,
    pub limit: usize,
}

pub fn stats() -> HeapStats {
    let (mapped, limit) = HEAP.with_source(|source| (source.mapped, source.limit));
    HeapStats { allocator: HEAP.stats(), mapped, limit }
}

impl fmt::Display for HeapStats {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let a = &self.allocator;
        writeln!(
            f,
            "heap: {} KiB mapped of {} MiB allowed; {} bytes in use (peak {}); talc manages {} KiB, {} KiB free",
            self.mapped / 1024,
            self.limit / (1024 * 1024),
            a.in_use,
            a.peak,
            a.talc_claimed / 1024,
            a.talc_free / 1024
        )?;
        for (class, stats) in super::slab::CLASSES.iter().zip(&a.classes) {
            writeln!(
                f,
                "  slab {class:>3} B: {:>6} objects, {:>8} bytes, {:>4} slabs",
                stats.objects, stats.bytes, stats.slabs
            )?;
        }
        Ok(())
    }
}

/// Reports an allocation the heap could not satisfy, with the statistics,
/// then halts.
#[cfg(target_os = "none")]
#[alloc_error_handler]
fn out_of_memory(layout: Layout) -> ! {
    // The report must not allocate: it is formatted straight to the consoles.
    crate::arch::x86_64::fatal::stop(format_args!(
        "\nOUT OF MEMORY: could not allocate {} bytes (alignment {})\n{}\nCPU halted.\n",
        layout.size(),
        layout.align(),
        super::stats()
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_k_m_and_g() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("512K"), Some(512 << 10));
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("lots"), None);
    }
}
