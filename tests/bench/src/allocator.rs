//! The kernel allocator (slab + talc) against talc alone and against
//! `linked_list_allocator` (the tutorial's choice), each over the same 64 MiB
//! arena with the same seeded workloads, in one run.

use kernel::mem::allocator::Allocator;
use std::alloc::{GlobalAlloc, Layout};
use std::time::{Duration, Instant};
use talc::TalcLock;
use talc::source::Claim;

const ARENA: usize = 64 << 20;
/// Each allocator runs each workload for about this long.
const BUDGET: Duration = Duration::from_millis(700);

pub fn run() {
    let arena: &'static mut [u8] = Box::leak(vec![0u8; ARENA].into_boxed_slice());
    let base = arena.as_mut_ptr();
    println!("allocator benchmark: {} MiB arena, ops/s (higher is better)", ARENA >> 20);
    println!(
        "  {:<34} {:>12} {:>12} {:>12} {:>9} {:>9}",
        "workload", "ours", "talc", "linked list", "vs talc", "vs list"
    );
    type Workload = fn(&dyn GlobalAlloc) -> f64;
    let workloads: [(&str, Workload, &str); 3] = [
        ("small-object churn (8..256 B, 10k live)", small_churn, "  (goal >= 1.5x talc, >= 10x list)"),
        ("mixed sizes up to 64 KiB (1k live)", mixed, ""),
        ("Vec growth by realloc (to 256 KiB)", vec_growth, ""),
    ];
    for (name, workload, goal) in workloads {
        let ours = workload(&fresh_ours(base));
        let talc = workload(&fresh_talc(base));
        let list = workload(&fresh_list(base));
        println!(
            "  {name:<34} {:>12.0} {:>12.0} {:>12.0} {:>8.2}x {:>8.1}x{goal}",
            ours,
            talc,
            list,
            ours / talc,
            ours / list
        );
    }
    let (ours, talc) = (until_full(&fresh_ours(base)), until_full(&fresh_talc(base)));
    println!(
        "  usable bytes before OOM (mixed sizes): ours {:.1} MiB, talc {:.1} MiB: {:.1}% of talc  (goal >= 85%)",
        ours as f64 / (1 << 20) as f64,
        talc as f64 / (1 << 20) as f64,
        100.0 * ours as f64 / talc as f64
    );
}

fn fresh_ours(base: *mut u8) -> Allocator<Claim> {
    // SAFETY: the arena is leaked; each allocator gets it after the last is gone.
    Allocator::new(unsafe { Claim::new(base, ARENA) })
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

/// Keeps `live` blocks of `sizes` alive while replacing a random one per
/// operation; returns operations (alloc + free pairs count as 2) per second.
fn churn(heap: &dyn GlobalAlloc, live: usize, low: usize, high: usize) -> f64 {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut blocks: Vec<(*mut u8, Layout)> = (0..live)
        .map(|_| {
            let layout = layout(random.size(low, high));
            // SAFETY: non-zero-size layout.
            (unsafe { heap.alloc(layout) }, layout)
        })
        .collect();
    assert!(blocks.iter().all(|(p, _)| !p.is_null()), "the arena is too small for the live set");
    let start = Instant::now();
    let mut ops = 0u64;
    while start.elapsed() < BUDGET {
        for _ in 0..256 {
            let slot = random.next() as usize % live;
            let (pointer, old) = blocks[slot];
            let new = layout(random.size(low, high));
            // SAFETY: each block is freed once with its layout, then replaced.
            unsafe {
                heap.dealloc(pointer, old);
                let fresh = heap.alloc(new);
                assert!(!fresh.is_null());
                fresh.write(1);
                blocks[slot] = (fresh, new);
            }
            ops += 2;
        }
    }
    let rate = ops as f64 / start.elapsed().as_secs_f64();
    for (pointer, layout) in blocks {
        // SAFETY: still live, freed once.
        unsafe { heap.dealloc(pointer, layout) };
    }
    rate
}

fn small_churn(heap: &dyn GlobalAlloc) -> f64 {
    churn(heap, 10_000, 8, 256)
}

fn mixed(heap: &dyn GlobalAlloc) -> f64 {
    churn(heap, 1_000, 8, 64 << 10)
}

/// Grows a buffer from 8 bytes to 256 KiB by 1.5x steps with `realloc`, over
/// and over, next to a few small live objects; operations per second.
fn vec_growth(heap: &dyn GlobalAlloc) -> f64 {
    let start = Instant::now();
    let mut ops = 0u64;
    while start.elapsed() < BUDGET {
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
