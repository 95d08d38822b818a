//! An allocation beyond the heap's limit ends in the allocation error
//! handler, which reports the request and the heap's statistics.

// runner: expect-serial=OUT OF MEMORY: could not allocate 8388608 bytes (alignment 1)
// runner: expect-serial=heap: 4096 KiB mapped of 4 MiB allowed
// runner: expect-serial=slab   8 B:
// runner: expect-serial=CPU halted.

#![no_std]
#![no_main]

extern crate alloc;

harness::fault_kernel!("heap_oom", || {
    kernel::mem::heap::set_limit(4 << 20);
    // Fill the heap up to its limit first, so that it is all mapped.
    let filler = alloc::vec![1u8; 3 << 20];
    let too_big = alloc::vec![0u8; 8 << 20];
    core::hint::black_box((filler, too_big));
});
