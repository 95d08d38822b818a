//! Loading a selector beyond the GDT's end into DS is reported as a general
//! protection fault with that selector decoded.

// runner: expect-serial=EXCEPTION: general protection fault (#GP) (vector 13)
// runner: expect-serial=error code 0x80: selector 0x80: entry 16 of the GDT
// runner: expect-serial=CPU halted.

#![no_std]
#![no_main]

harness::fault_kernel!("general_protection", || {
    // SAFETY: the GDT has 5 entries, so selector 0x80 (entry 16) raises #GP
    // with it as the error code, which is what is tested.
    unsafe { core::arch::asm!("mov ds, {0:x}", in(reg) 0x80u64) };
});
