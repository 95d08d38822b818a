//! With interrupts on: breakpoints return, the timer ticks and wakes busy and
//! async sleepers, and keyboard bytes arrive through the interrupt.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(harness::run)]
#![reexport_test_harness_main = "test_main"]

use core::future::Future;
use core::pin::pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use core::time::Duration;
use kernel::arch::x86_64::pit;
use kernel::task::keyboard::SCANCODES;
use x86_64::instructions::{hlt, interrupts, port::Port};

harness::test_kernel!();

#[test_case]
fn interrupts_are_enabled_after_init() {
    assert!(interrupts::are_enabled());
}

#[test_case]
fn a_breakpoint_returns() {
    let before = core::hint::black_box(41);
    interrupts::int3();
    assert_eq!(before + 1, 42);
}

/// Executes `int3` while being formatted, i.e. with the console locks held.
struct BreaksWhileFormatted;

impl core::fmt::Display for BreaksWhileFormatted {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        interrupts::int3();
        f.write_str("formatted")
    }
}

#[test_case]
fn a_breakpoint_under_the_console_locks_returns() {
    kernel::println!("breakpoint inside println: {}", BreaksWhileFormatted);
    assert!(harness::screen::row_is(
        harness::screen::cursor_row() - 1,
        "breakpoint inside println: formatted"
    ));
}

#[test_case]
fn the_timer_ticks_at_about_1000_hz() {
    let (ticks, uptime) = (pit::ticks(), pit::uptime());
    pit::busy_wait(Duration::from_millis(50));
    let elapsed = pit::ticks() - ticks;
    assert!((50..60).contains(&elapsed), "{elapsed} ticks in a 50 ms wait");
    assert!(pit::uptime() - uptime >= Duration::from_millis(50));
}

static WOKEN: AtomicBool = AtomicBool::new(false);

fn flag_waker() -> Waker {
    fn clone(_: *const ()) -> RawWaker {
        RawWaker::new(core::ptr::null(), &VTABLE)
    }
    fn wake(_: *const ()) {
        WOKEN.store(true, Ordering::SeqCst);
    }
    fn drop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);
    // SAFETY: the vtable's functions ignore the data pointer and are sound
    // for any number of clones.
    unsafe { Waker::from_raw(RawWaker::new(core::ptr::null(), &VTABLE)) }
}

#[test_case]
fn an_async_sleep_is_woken_by_the_timer() {
    let start = pit::ticks();
    let waker = flag_waker();
    let mut context = Context::from_waker(&waker);
    let mut sleep = pin!(pit::sleep(Duration::from_millis(30)));
    let mut polls = 0;
    loop {
        polls += 1;
        WOKEN.store(false, Ordering::SeqCst);
        if let Poll::Ready(()) = sleep.as_mut().poll(&mut context) {
            break;
        }
        while !WOKEN.load(Ordering::SeqCst) {
            hlt();
        }
    }
    assert!(pit::ticks() - start >= 30);
    assert!(polls <= 3, "polled {polls} times: the sleep was not woken by its deadline");
}

#[test_case]
fn keyboard_bytes_arrive_through_irq1() {
    while SCANCODES.pop().is_some() {}
    for byte in [0x1e, 0x9e] {
        // SAFETY: i8042 command 0xd2 puts the next data byte into the
        // controller's output buffer as if the keyboard had sent it, raising
        // IRQ 1 like a key press.
        unsafe {
            Port::<u8>::new(0x64).write(0xd2);
            Port::<u8>::new(0x60).write(byte);
        }
        pit::busy_wait(Duration::from_millis(5));
        assert_eq!(SCANCODES.pop(), Some(byte));
    }
}
