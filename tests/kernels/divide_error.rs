//! A division by zero in machine code (Rust's own would panic first) is
//! reported as a divide error.

// runner: expect-serial=EXCEPTION: divide error (#DE) (vector 0)
// runner: expect-serial=CPU halted.

#![no_std]
#![no_main]

harness::fault_kernel!("divide_error", || {
    let divisor = core::hint::black_box(0u64);
    // SAFETY: `div` by zero raises #DE, which is what is tested; rax and rdx
    // are declared clobbered.
    unsafe { core::arch::asm!("div {0}", in(reg) divisor, inout("rax") 1u64 => _, inout("rdx") 0u64 => _) };
});
