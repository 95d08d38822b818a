//! A read from an unmapped address is reported as a page fault with that
//! address and the decoded flags.

// runner: expect-serial=EXCEPTION: page fault (#PF) (vector 14)
// runner: expect-serial=error code 0x0: page not present, read, kernel mode
// runner: expect-serial=faulting address (CR2) 0xdeadbeef000
// runner: expect-serial=CPU halted.

#![no_std]
#![no_main]

harness::fault_kernel!("page_fault", || {
    // SAFETY: deliberately unsound: nothing is mapped there, so the read faults.
    let value = unsafe { (0x0dea_dbee_f000 as *const u64).read_volatile() };
    core::hint::black_box(value);
});
