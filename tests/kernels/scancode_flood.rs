//! More scancodes than the queue holds: the excess is dropped and counted in
//! the interrupt handler, reported by the keyboard task, and the keyboard
//! keeps working.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(harness::run)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::sync::Arc;
use core::time::Duration;
use kernel::drivers::ps2;
use kernel::task::executor::{Executor, Task};
use kernel::task::input::{KEYS, Key};
use kernel::task::keyboard;
use kernel::time;
use spin::Mutex;

harness::test_kernel!();

/// Makes the keyboard controller deliver `byte` as if typed (IRQ 1).
fn inject(byte: u8) {
    ps2::inject_scancode(byte);
    // Let the interrupt take it before the next one.
    time::busy_wait(Duration::from_millis(1));
}

#[test_case]
fn a_flood_is_dropped_counted_reported_and_survived() {
    // 300 presses of F12 (no character) with nobody reading the queue.
    for _ in 0..300 {
        inject(0x58);
    }
    let mut executor = Executor::new();
    executor.spawn(Task::new("keyboard", keyboard::task(keyboard::layout(None).unwrap())));
    executor.run_until(|| keyboard::reported_drops() > 0);
    assert_eq!(keyboard::reported_drops(), 300 - 128, "128 fit in the queue");
    // The keyboard still works: 'x' pressed and released reaches the keys.
    let seen = Arc::new(Mutex::new(None));
    let probe = Arc::clone(&seen);
    executor.spawn(Task::new("probe", async move {
        *probe.lock() = Some(KEYS.next().await);
    }));
    inject(0x2d);
    inject(0xad);
    executor.run_until(|| seen.lock().is_some());
    assert_eq!(*seen.lock(), Some(Key::Char('x')));
}
