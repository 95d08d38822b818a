//! Architecture-specific code. Only x86_64 exists; the rest of the kernel
//! reaches the CPU and the PC platform through this module.

pub mod x86_64;

pub use self::x86_64::{halt, init};
