//! The kernel allocator (slab + talc) against talc alone and against
//! `linked_list_allocator` (the tutorial's choice), each over the same 64 MiB
//! arena (its pages touched before any allocator runs, so none pays for
//! first touches), in one run.
//!
//! The churn workloads are traces generated once from a fixed seed: a live
//! set of blocks, then operations that each free one live block (chosen at
//! random) and allocate a block of a new random size in its place (sizes
//! spread evenly over the powers of two in the range, 8-byte aligned). Every
//! allocator replays the same trace, so they do exactly the same
//! allocations and frees, and only the replay is timed (the random numbers
//! are drawn before). Ours and talc replay it in turn, several times, and
//! the fastest replay of each counts; the linked list, 100 to 200 times
//! slower, replays the trace's first operations once.

use kernel::mem::allocator::Allocator;
use std::alloc::{GlobalAlloc, Layout};
use std::time::Instant;
use talc::TalcLock;
use talc::source::Claim;

const ARENA: usize = 64 << 20;
/// Replays of each trace by ours and talc; the fastest counts.
const ROUNDS: usize = 5;
/// Operations of each churn trace, and of them the linked list's share.
const OPERATIONS: usize = 2_000_000;
const LIST_OPERATIONS: usize = 40_000;

pub fn run() {
    let arena: &'static mut [u8] = Box::leak(vec![0u8; ARENA].into_boxed_slice());
    arena.fill(1);
    let base = arena.as_mut_ptr();
    println!("allocator benchmark: {} MiB arena, ops/s (higher is better)", ARENA >> 20);
    println!(
        "  {:<41} {:>12} {:>12} {:>12} {:>9} {:>9}",
        "workload", "ours", "talc", "linked list", "vs talc", "vs list"
    );
    let churns = [
        (
            "small-object churn (8..256 B, 10k live)",
            Trace::new(10_000, 8, 256),
            "  (goal >= 1.5x talc, >= 10x list)",
        ),
        ("mixed sizes up to 64 KiB (1k live)", Trace::new(1_000, 8, 64 << 10), ""),
    ];
    for (name, trace, goal) in &churns {
        let (mut ours, mut talc) = (0f64, 0f64);
        for _ in 0..ROUNDS {
            ours = ours.max(trace.replay(&fresh_ours(base), OPERATIONS));
            talc = talc.max(trace.replay(&fresh_talc(base), OPERATIONS));
        }
        let list = trace.replay(&fresh_list(base), LIST_OPERATIONS);
        print_row(name, ours, talc, list, goal);
    }
    let (mut ours, mut talc) = (0f64, 0f64);
    for _ in 0..ROUNDS {
        ours = ours.max(vec_growth(&fresh_ours(base), 20_000));
        talc = talc.max(vec_growth(&fresh_talc(base), 20_000));
    }
    let list = vec_growth(&fresh_list(base), 1_000);
    print_row("Vec growth by realloc (to 256 KiB)", ours, talc, list, "");
    let (ours, talc) = (until_full(&fresh_ours(base)), until_full(&fresh_talc(base)));
    println!(
        "  usable bytes before OOM (mixed sizes): ours {:.1} MiB, talc {:.1} MiB: {:.1}% of talc  (goal >= 85%)",
        ours as f64 / (1 << 20) as f64,
        talc as f64 / (1 << 20) as f64,
        100.0 * ours as f64 / talc as f64
    );
}

fn print_row(name: &str, ours: f64, talc: f64, list: f64, goal: &str) {
    println!(
        "  {name:<41} {:>12.0} {:>12.0} {:>12.0} {:>8.2}x {:>8.1}x{goal}",
        ours,
        talc,
        list,
        ours / talc,
        ours / list
    );
}

fn fresh_ours(base: *mut u8) -> Allocator<Claim> {
    // SAFETY: the arena is leaked; each allocator gets it after the last is
    // gone, and this thread alone uses it.
    unsafe { Allocator::new(Claim::new(base, ARENA)) }
}

fn fresh_talc(base: *mut u8) -> TalcLock<spin::Mutex<()>, Claim> {
    // SAFETY: as above.
    TalcLock::new(unsafe { Claim::new(base, ARENA) })
}

fn fresh_list(base: *mut u8) -> linked_list_allocator::LockedHeap {
    // SAFETY: as above.
    unsafe { linked_list_allocator::LockedHeap::new(base, ARENA) }
}

/// xorshift64: the same sequence for every allocator.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Sizes from `low` to `high`, spread evenly over powers of two.
    fn size(&mut self, low: usize, high: usize) -> usize {
        let (lo, hi) = (low.ilog2(), high.ilog2());
        let exponent = lo + (self.next() % (hi - lo + 1) as u64) as u32;
        let base = 1usize << exponent;
        (base + (self.next() as usize % base)).clamp(low, high)
    }
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).expect("a valid layout")
}

/// A churn workload: the sizes of the live set, then (slot, new size)
/// replacements.
struct Trace {
    live: Vec<usize>,
    operations: Vec<(u32, u32)>,
}

impl Trace {
    fn new(live: usize, low: usize, high: usize) -> Self {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        let sizes: Vec<usize> = (0..live).map(|_| random.size(low, high)).collect();
        let operations = (0..OPERATIONS)
            .map(|_| ((random.next() % live as u64) as u32, random.size(low, high) as u32))
            .collect();
        Self { live: sizes, operations }
    }

    /// Allocates the live set, then times the first `count` replacements;
    /// operations (an alloc and a free count as 2) per second.
    fn replay(&self, heap: &dyn GlobalAlloc, count: usize) -> f64 {
        let mut blocks: Vec<(*mut u8, Layout)> = self
            .live
            .iter()
            .map(|&size| {
                // SAFETY: non-zero-size layout.
                (unsafe { heap.alloc(layout(size)) }, layout(size))
            })
            .collect();
        assert!(blocks.iter().all(|(p, _)| !p.is_null()), "the arena is too small for the live set");
        let start = Instant::now();
        for &(slot, size) in &self.operations[..count] {
            let (pointer, old) = blocks[slot as usize];
            let new = layout(size as usize);
            // SAFETY: each block is freed once with its layout, then replaced.
            unsafe {
                heap.dealloc(pointer, old);
                let fresh = heap.alloc(new);
                assert!(!fresh.is_null());
                fresh.write(1);
                blocks[slot as usize] = (fresh, new);
            }
        }
        let rate = 2.0 * count as f64 / start.elapsed().as_secs_f64();
        for (pointer, layout) in blocks {
            // SAFETY: still live, freed once.
            unsafe { heap.dealloc(pointer, layout) };
        }
        rate
    }
}

/// Grows a buffer from 8 bytes to 256 KiB by 1.5x steps with `realloc`,
/// `times` times, next to a small live object; operations per second.
fn vec_growth(heap: &dyn GlobalAlloc, times: usize) -> f64 {
    let start = Instant::now();
    let mut ops = 0u64;
    for _ in 0..times {
        let mut size = 8;
        // SAFETY: every pointer is reallocated or freed with its current layout.
        unsafe {
            let mut pointer = heap.alloc(layout(size));
            let neighbour = heap.alloc(layout(24));
            while size < 256 << 10 {
                let new = size + size / 2;
                pointer = heap.realloc(pointer, layout(size), new);
                assert!(!pointer.is_null());
                pointer.add(new - 1).write(1);
                size = new;
                ops += 1;
            }
            heap.dealloc(pointer, layout(size));
            heap.dealloc(neighbour, layout(24));
        }
        ops += 3;
    }
    ops as f64 / start.elapsed().as_secs_f64()
}

/// Bytes allocated with mixed sizes before the first failure.
fn until_full(heap: &dyn GlobalAlloc) -> usize {
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    let mut total = 0;
    loop {
        let size = random.size(8, 64 << 10);
        // SAFETY: non-zero-size layout; the arena is dropped with the allocator.
        if unsafe { heap.alloc(layout(size)) }.is_null() {
            return total;
        }
        total += size;
    }
}
