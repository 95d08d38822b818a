//! Unbounded recursion runs into the kernel stack's guard page; pushing the
//! page fault's frame on the full stack fails too, so the CPU raises a double
//! fault, whose handler runs on its own IST stack and says so.

// runner: expect-serial=EXCEPTION: double fault (#DF) (vector 8)
// runner: expect-serial=handler running on the double-fault IST stack
// runner: expect-serial=CPU halted.

#![no_std]
#![no_main]
#![allow(unconditional_recursion)]

fn recurse(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 16]);
    recurse(depth + 1) + frame[3]
}

harness::fault_kernel!("stack_overflow", || {
    core::hint::black_box(recurse(0));
});
