//! Ember: a teaching-and-hobby x86_64 kernel booted by Limine.
//!
//! The library holds every subsystem and the boot sequence ([`init`]);
//! `main.rs` runs that sequence and then the shell, and the test kernels
//! under `tests/kernels` run the very same sequence before their tests.
//! Modules that do not touch hardware build on the host too, so `cargo test`
//! exercises them there.
//!
//! Layers, from the bottom; each imports only those below it:
//! `sync`, `time` and `boot` (no kernel imports), `arch` (the CPU), `mem`,
//! `drivers` (one module per device), `console`, `task`, `shell`.

#![cfg_attr(not(test), no_std)]
#![feature(abi_x86_interrupt)]
#![cfg_attr(target_os = "none", feature(alloc_error_handler))]
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod arch;
pub mod boot;
pub mod console;
pub mod drivers;
pub mod mem;
pub mod panic;
pub mod shell;
pub mod sync;
pub mod task;
#[cfg(test)]
mod testing;
pub mod time;

/// Brings the machine up, one subsystem per step, and returns what the
/// bootloader handed over. Interrupts are on when it returns.
pub fn init() -> &'static boot::BootInfo {
    arch::init();
    console::init();
    // Its timestamp is when the bootloader handed over (serial only: the
    // screen is not up yet).
    log::info!("kernel started");
    let info = boot::init();
    mem::init_early(info);
    console::init_screen(info);
    info.log_banner();
    mem::init(info);
    drivers::init(info);
    info
}
