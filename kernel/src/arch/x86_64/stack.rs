//! The kernel's own stacks: statics with an unmapped guard page below each,
//! so that an overflow faults (and ends in the double-fault handler) instead
//! of overwriting memory.

use core::cell::UnsafeCell;

const PAGE: usize = 4096;

/// A stack of `SIZE` bytes with a guard page below it. The CPU writes the
/// stack behind the compiler's back, hence the cells (which also keep it out
/// of read-only memory).
#[repr(C, align(4096))]
pub struct GuardedStack<const SIZE: usize> {
    guard: UnsafeCell<[u8; PAGE]>,
    stack: UnsafeCell<[u8; SIZE]>,
}

// SAFETY: Rust code never reads or writes the bytes; only the CPU uses them,
// as the stack of one context at a time.
unsafe impl<const SIZE: usize> Sync for GuardedStack<SIZE> {}

impl<const SIZE: usize> GuardedStack<SIZE> {
    pub const fn new() -> Self {
        Self { guard: UnsafeCell::new([0; PAGE]), stack: UnsafeCell::new([0; SIZE]) }
    }
}

impl<const SIZE: usize> Default for GuardedStack<SIZE> {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a stack lives, by address, for setting it up and telling whether an
/// address is on it.
#[derive(Debug, Clone, Copy)]
pub struct StackBounds {
    pub guard: u64,
    pub bottom: u64,
    pub top: u64,
}

impl StackBounds {
    pub fn of<const SIZE: usize>(stack: &'static GuardedStack<SIZE>) -> Self {
        let guard = stack as *const _ as u64;
        Self { guard, bottom: guard + PAGE as u64, top: guard + (PAGE + SIZE) as u64 }
    }

    pub fn contains(&self, address: u64) -> bool {
        (self.bottom..=self.top).contains(&address)
    }
}

/// The stack `_start` switches to: the one every kernel thread of control
/// runs on until tasks exist.
pub const KERNEL_STACK_SIZE: usize = 256 * 1024;

#[unsafe(no_mangle)]
static KERNEL_STACK: GuardedStack<KERNEL_STACK_SIZE> = GuardedStack::new();

/// The kernel stack's bounds.
pub fn kernel_stack() -> StackBounds {
    StackBounds::of(&KERNEL_STACK)
}

#[cfg(target_os = "none")]
// Limine starts the kernel here, on its own stack. Switch to the kernel stack
// (its top: the end of the static) and call `kmain`, which never returns.
core::arch::global_asm!(
    ".global _start",
    "_start:",
    "lea rsp, [rip + KERNEL_STACK + {size}]",
    "xor ebp, ebp",
    "call kmain",
    "ud2",
    size = const PAGE + KERNEL_STACK_SIZE,
);
