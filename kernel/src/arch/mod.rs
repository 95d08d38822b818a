//! Architecture-specific code. Only x86_64 exists; the rest of the kernel
//! reaches the CPU through this module, and devices through `crate::drivers`.

pub mod x86_64;

pub use self::x86_64::{
    cpu, enable_interrupts, halt, init, interrupts, pat, stack_guard_pages, triple_fault,
};
