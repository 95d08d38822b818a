//! `ud2` is reported as an invalid opcode.

// runner: expect-serial=EXCEPTION: invalid opcode (#UD) (vector 6)
// runner: expect-serial=CPU halted.

#![no_std]
#![no_main]

harness::fault_kernel!("invalid_opcode", || {
    // SAFETY: ud2 only raises #UD, which is what is tested.
    unsafe { core::arch::asm!("ud2") };
});
