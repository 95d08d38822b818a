//! Ember: a teaching-and-hobby x86_64 kernel booted by Limine.
//!
//! The library holds every subsystem; `main.rs` only sequences them, and the
//! test kernels under `tests/kernels` link the same library. Modules that do
//! not touch hardware build on the host too, so `cargo test` exercises them
//! there.

#![cfg_attr(not(test), no_std)]
#![feature(abi_x86_interrupt)]
#![cfg_attr(target_os = "none", feature(alloc_error_handler))]

extern crate alloc;

pub mod arch;
pub mod boot;
pub mod console;
pub mod mem;
pub mod panic;
pub mod shell;
pub mod task;
