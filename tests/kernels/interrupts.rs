//! With interrupts on: breakpoints return, the timer ticks and wakes busy and
//! async sleepers, keyboard bytes arrive through the interrupt, drivers'
//! lines reach their handlers, and an unclaimed interrupt is reported once;
//! the CPU's local vectors run their handler and acknowledgement, and the
//! spurious vector runs nothing.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(harness::run)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::string::String;
use core::future::Future;
use core::pin::pin;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use core::time::Duration;
use kernel::drivers::ps2::{self, SCANCODES};
use kernel::time;
use x86_64::instructions::{hlt, interrupts};

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

/// The wait is measured on the clock, which is not a count of ticks: an
/// emulator that falls behind (a busy host) drops ticks, so a few may be
/// missing, but never more than the wait's length allows.
#[test_case]
fn the_timer_ticks_at_about_1000_hz() {
    let (ticks, uptime) = (time::ticks(), time::uptime());
    time::busy_wait(Duration::from_millis(50));
    let elapsed = time::ticks() - ticks;
    assert!((40..60).contains(&elapsed), "{elapsed} ticks in a 50 ms wait");
    assert!(time::uptime() - uptime >= Duration::from_millis(50));
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
    let start = time::uptime();
    let waker = flag_waker();
    let mut context = Context::from_waker(&waker);
    let mut sleep = pin!(time::sleep(Duration::from_millis(30)));
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
    assert!(time::uptime() - start >= Duration::from_millis(30));
    assert!(polls <= 3, "polled {polls} times: the sleep was not woken by its deadline");
}

#[test_case]
fn keyboard_bytes_arrive_through_irq1() {
    while SCANCODES.pop().is_some() {}
    for byte in [0x1e, 0x9e] {
        ps2::inject_scancode(byte);
        time::busy_wait(Duration::from_millis(5));
        assert_eq!(SCANCODES.pop(), Some(byte));
    }
}

/// Raises `VECTOR` in software, as if the line behind it had fired.
///
/// # Safety
/// The vector must be one whose handler expects no error code.
unsafe fn raise<const VECTOR: u8>() {
    // SAFETY: per the contract, the handler returns normally.
    unsafe { core::arch::asm!("int {vector}", vector = const VECTOR) };
}

static COM2_INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

fn count_com2() {
    COM2_INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

#[test_case]
fn a_registered_line_runs_its_handler_until_released() {
    use kernel::arch::interrupts::{FIRST_VECTOR, RegisterError, register};
    const COM2: u8 = 3;
    let line = register(COM2, count_com2).expect("line 3 is free");
    assert_eq!(register(COM2, count_com2).unwrap_err(), RegisterError::Taken(COM2));
    assert_eq!(register(16, count_com2).unwrap_err(), RegisterError::NoSuchLine(16));
    // SAFETY: vector 35 (line 3) dispatches to the handler just registered,
    // which only counts; an end of interrupt with nothing in service (to the
    // local APIC or the 8259s) changes nothing.
    unsafe { raise::<{ FIRST_VECTOR + COM2 }>() };
    assert_eq!(COM2_INTERRUPTS.load(Ordering::SeqCst), 1);
    drop(line);
    // SAFETY: as above; with the line released no handler runs.
    unsafe { raise::<{ FIRST_VECTOR + COM2 }>() };
    assert_eq!(COM2_INTERRUPTS.load(Ordering::SeqCst), 1, "the released handler still ran");
    let again = register(COM2, count_com2).expect("a released line can be registered again");
    drop(again);
}

#[test_case]
fn an_unclaimed_interrupt_is_reported_once() {
    use kernel::arch::interrupts::FIRST_VECTOR;
    for _ in 0..3 {
        // SAFETY: vector 37 (line 5) has no handler: the dispatcher reports
        // it and acknowledges the idle controller, which changes nothing.
        unsafe { raise::<{ FIRST_VECTOR + 5 }>() };
    }
    let reports = kernel::console::with_grid(|grid| {
        (0..grid.rows())
            .filter(|&row| {
                let text: String = grid.row_cells(row).iter().map(|cell| cell.ch).collect();
                text.contains("unclaimed interrupt on line 5 (vector 37)")
            })
            .count()
    })
    .expect("a screen console");
    assert_eq!(reports, 1);
}

static LOCAL_INTERRUPTS: AtomicUsize = AtomicUsize::new(0);
static LOCAL_ACKS: AtomicUsize = AtomicUsize::new(0);

fn count_local() {
    LOCAL_INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

fn count_local_ack() {
    LOCAL_ACKS.fetch_add(1, Ordering::SeqCst);
}

#[test_case]
fn local_vectors_run_their_handler_then_their_acknowledgement() {
    use kernel::arch::interrupts::{FIRST_LOCAL_VECTOR, RegisterError, SPURIOUS_VECTOR, register_local};
    const VECTOR: u8 = FIRST_LOCAL_VECTOR + 1;
    let local = register_local(VECTOR, count_local, count_local_ack).expect("a free local vector");
    assert_eq!(
        register_local(VECTOR, count_local, count_local_ack).unwrap_err(),
        RegisterError::Taken(VECTOR)
    );
    assert_eq!(register_local(40, count_local, count_local_ack).unwrap_err(), RegisterError::NotLocal(40));
    let spurious = register_local(SPURIOUS_VECTOR, count_local, count_local_ack).unwrap_err();
    assert_eq!(spurious, RegisterError::NotLocal(SPURIOUS_VECTOR));
    // SAFETY: the vector's handler and acknowledgement only count.
    unsafe { raise::<VECTOR>() };
    assert_eq!((LOCAL_INTERRUPTS.load(Ordering::SeqCst), LOCAL_ACKS.load(Ordering::SeqCst)), (1, 1));
    drop(local);
    // SAFETY: released, the vector runs nothing (it is reported once).
    unsafe { raise::<VECTOR>() };
    assert_eq!((LOCAL_INTERRUPTS.load(Ordering::SeqCst), LOCAL_ACKS.load(Ordering::SeqCst)), (1, 1));
}

#[test_case]
fn the_spurious_vector_runs_nothing() {
    use kernel::arch::interrupts::SPURIOUS_VECTOR;
    let before = (LOCAL_INTERRUPTS.load(Ordering::SeqCst), LOCAL_ACKS.load(Ordering::SeqCst));
    // SAFETY: the dispatcher ignores the spurious vector.
    unsafe { raise::<SPURIOUS_VECTOR>() };
    assert_eq!((LOCAL_INTERRUPTS.load(Ordering::SeqCst), LOCAL_ACKS.load(Ordering::SeqCst)), before);
    assert!(interrupts::are_enabled());
}
