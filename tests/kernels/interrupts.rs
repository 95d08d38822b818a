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

use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use kernel::drivers::ps2::{self, SCANCODES};
use kernel::drivers::rtc;
use kernel::time;
use x86_64::instructions::{hlt, interrupts};

harness::test_kernel!();

#[test_case]
fn interrupts_are_enabled_after_init() {
    assert!(interrupts::are_enabled());
}

#[test_case]
fn a_breakpoint_is_reported_and_execution_resumes() {
    let row = harness::screen::cursor_row();
    interrupts::int3();
    let report = harness::screen::row_text(row);
    assert!(
        report.starts_with("breakpoint (#BP, vector 3) at RIP 0xffffffff8")
            && report.ends_with("; continuing"),
        "the breakpoint report reads {report:?}"
    );
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
    // Each console formats the line, so the second breakpoint's report may
    // follow it on screen.
    let row = harness::screen::cursor_row();
    assert!(
        (row.saturating_sub(2)..row)
            .any(|row| harness::screen::row_is(row, "breakpoint inside println: formatted")),
        "the line printed around the breakpoints is not on screen"
    );
}

/// Waits for the CMOS clock's next second and returns the tick count then.
fn ticks_at_next_rtc_second() -> u64 {
    let second = rtc::now().second;
    while rtc::now().second == second {
        hlt();
    }
    time::ticks()
}

/// The wait is measured on the clock, which is not a count of ticks: an
/// emulator that falls behind (a busy host) drops ticks, so a few may be
/// missing, but never more than the wait's length allows.
#[test_case]
fn the_timer_keeps_time_with_the_cmos_clock() {
    let start = ticks_at_next_rtc_second();
    let uptime = time::uptime();
    ticks_at_next_rtc_second();
    let end = ticks_at_next_rtc_second();
    let elapsed = end - start;
    // An emulator that falls behind may merge ticks, so only a timer far too
    // slow (or dead) or too fast fails; the clock itself must be within 10%.
    assert!((1500..=2200).contains(&elapsed), "{elapsed} timer ticks in 2 seconds of the CMOS clock");
    let measured = time::uptime() - uptime;
    assert!(
        measured > Duration::from_millis(1800) && measured < Duration::from_millis(2200),
        "uptime advanced {measured:?} in 2 seconds of the CMOS clock"
    );
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
    unsafe { harness::raise::<{ FIRST_VECTOR + COM2 }>() };
    assert_eq!(COM2_INTERRUPTS.load(Ordering::SeqCst), 1);
    drop(line);
    // SAFETY: as above; with the line released no handler runs.
    unsafe { harness::raise::<{ FIRST_VECTOR + COM2 }>() };
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
        unsafe { harness::raise::<{ FIRST_VECTOR + 5 }>() };
    }
    let rows = kernel::console::with_grid(|grid| grid.rows()).expect("a screen console");
    let reports = (0..rows)
        .filter(|&row| harness::screen::row_text(row).contains("unclaimed interrupt on line 5 (vector 37)"))
        .count();
    assert_eq!(reports, 1);
}

/// Counts its formattings, and those that ran with interrupts enabled.
struct NotesInterrupts;

static FORMATTED: AtomicUsize = AtomicUsize::new(0);
static FORMATTED_WITH_INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

impl core::fmt::Display for NotesInterrupts {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        FORMATTED.fetch_add(1, Ordering::SeqCst);
        if interrupts::are_enabled() {
            FORMATTED_WITH_INTERRUPTS.fetch_add(1, Ordering::SeqCst);
        }
        f.write_str("noted")
    }
}

#[test_case]
fn printing_keeps_interrupts_enabled() {
    kernel::println!("interrupts while printing: {}", NotesInterrupts);
    assert_eq!(FORMATTED.load(Ordering::SeqCst), 2, "formatted once per console");
    assert_eq!(
        FORMATTED_WITH_INTERRUPTS.load(Ordering::SeqCst),
        2,
        "a console formatted with interrupts off"
    );
}

#[test_case]
fn serial_output_that_cannot_wait_is_dropped_counted_and_reported() {
    // 32 KiB with interrupts off: more than the output queue holds, and no
    // waiting is possible.
    const KIB: &str = match core::str::from_utf8(&[b'~'; 1024]) {
        Ok(text) => text,
        Err(_) => panic!("ASCII"),
    };
    interrupts::without_interrupts(|| {
        for _ in 0..32 {
            kernel::console::print_serial(format_args!("{KIB}"));
        }
    });
    kernel::console::print_serial(format_args!("after the flood\n"));
    let row = harness::screen::cursor_row() - 1;
    let report = harness::screen::row_text(row);
    assert!(
        report.contains("serial: ") && report.contains(" bytes of output dropped"),
        "no report of dropped output; the screen's last line reads {report:?}"
    );
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
    unsafe { harness::raise::<VECTOR>() };
    assert_eq!((LOCAL_INTERRUPTS.load(Ordering::SeqCst), LOCAL_ACKS.load(Ordering::SeqCst)), (1, 1));
    drop(local);
    // SAFETY: released, the vector runs nothing (it is reported once).
    unsafe { harness::raise::<VECTOR>() };
    assert_eq!((LOCAL_INTERRUPTS.load(Ordering::SeqCst), LOCAL_ACKS.load(Ordering::SeqCst)), (1, 1));
}

#[test_case]
fn the_spurious_vector_runs_nothing() {
    use kernel::arch::interrupts::SPURIOUS_VECTOR;
    let before = (LOCAL_INTERRUPTS.load(Ordering::SeqCst), LOCAL_ACKS.load(Ordering::SeqCst));
    // SAFETY: the dispatcher ignores the spurious vector.
    unsafe { harness::raise::<SPURIOUS_VECTOR>() };
    assert_eq!((LOCAL_INTERRUPTS.load(Ordering::SeqCst), LOCAL_ACKS.load(Ordering::SeqCst)), before);
    assert!(interrupts::are_enabled());
}
