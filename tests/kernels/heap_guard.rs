//! The page below the heap is a guard: touching it is a page fault there.

// runner: expect-serial=EXCEPTION: page fault (#PF) (vector 14)
// runner: expect-serial=page not present, write, kernel mode
// runner: expect-serial=faulting address (CR2) 0xffffc00000000ff8
// runner: expect-serial=CPU halted.

#![no_std]
#![no_main]

harness::fault_kernel!("heap_guard", || {
    let below_heap = (kernel::mem::heap::HEAP_START - 8) as *mut u64;
    // SAFETY: deliberately unsound: the guard page is unmapped, so this faults.
    unsafe { below_heap.write_volatile(1) };
});
