//! The executor on real hardware: many tasks, wake-ups in order, tasks that
//! spawn tasks, and an idle CPU woken by the timer.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(harness::run)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::{sync::Arc, vec::Vec};
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use kernel::drivers::ps2::{self, SCANCODES};
use kernel::task::executor::{self, Executor, Task};
use kernel::time;
use spin::Mutex;

harness::test_kernel!();

#[test_case]
fn a_thousand_tasks_all_finish() {
    let mut executor = Executor::new();
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..1000 {
        let done = Arc::clone(&done);
        executor.spawn(Task::new("counter", async move {
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    executor.run_until(|| done.load(Ordering::SeqCst) == 1000);
    assert!(executor.is_empty());
}

#[test_case]
fn woken_tasks_run_in_wake_order() {
    let mut executor = Executor::new();
    let order = Arc::new(Mutex::new(Vec::new()));
    // Each task sleeps a different time, so the timer wakes them in order.
    // The deadlines are set here, 50 ms apart, so that an emulator stalled
    // between the tasks' first polls cannot reorder them.
    for (name, ms) in [(3u32, 150u64), (1, 50), (2, 100)] {
        let order = Arc::clone(&order);
        let sleep = time::sleep(Duration::from_millis(ms));
        executor.spawn(Task::new("sleeper", async move {
            sleep.await;
            order.lock().push(name);
        }));
    }
    executor.run_until(|| order.lock().len() == 3);
    assert_eq!(*order.lock(), [1, 2, 3]);
}

#[test_case]
fn a_task_can_spawn_tasks() {
    let mut executor = Executor::new();
    let done = Arc::new(AtomicUsize::new(0));
    let inner = Arc::clone(&done);
    executor.spawn(Task::new("parent", async move {
        for _ in 0..10 {
            let done = Arc::clone(&inner);
            executor::spawn(Task::new("child", async move {
                done.fetch_add(1, Ordering::SeqCst);
            }));
        }
    }));
    executor.run_until(|| done.load(Ordering::SeqCst) == 10);
}

#[test_case]
fn an_idle_executor_sleeps_until_the_timer_wakes_its_task() {
    let mut executor = Executor::new();
    let polls = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let (p, f) = (Arc::clone(&polls), Arc::clone(&finished));
    executor.spawn(Task::new("sleeper", async move {
        p.fetch_add(1, Ordering::SeqCst);
        time::sleep(Duration::from_millis(50)).await;
        p.fetch_add(1, Ordering::SeqCst);
        f.store(1, Ordering::SeqCst);
    }));
    let (start, ticks, halts) = (time::uptime(), time::ticks(), executor::idle_halts());
    executor.run_until(|| finished.load(Ordering::SeqCst) == 1);
    let (ticks, halts) = (time::ticks() - ticks, executor::idle_halts() - halts);
    assert!(time::uptime() - start >= Duration::from_millis(50));
    assert_eq!(polls.load(Ordering::SeqCst), 2, "the task was polled while it had nothing to do");
    // Each tick wakes the halted CPU once: an idle loop that spins instead
    // of halting would count none.
    assert!(halts >= ticks / 2 && halts <= ticks + 5, "the idle CPU halted {halts} times in {ticks} ticks");
}

/// Polls once, leaving its waker with the keyboard's queue, then finishes:
/// the queue's interrupt handler then holds the last reference to it.
struct LeavesItsWakerWithTheKeyboard {
    polled: bool,
}

impl core::future::Future for LeavesItsWakerWithTheKeyboard {
    type Output = ();
    fn poll(mut self: core::pin::Pin<&mut Self>, cx: &mut core::task::Context) -> core::task::Poll<()> {
        use futures_util::Stream;
        if self.polled {
            return core::task::Poll::Ready(());
        }
        self.polled = true;
        let _ = core::pin::pin!(SCANCODES.stream()).poll_next(cx);
        cx.waker().wake_by_ref();
        core::task::Poll::Pending
    }
}

#[test_case]
fn a_waker_released_by_an_interrupt_is_freed_in_task_context() {
    while SCANCODES.pop().is_some() {}
    let in_use = kernel::mem::stats().heap.allocator.in_use;
    let mut executor = Executor::new();
    executor.spawn(Task::new("gone", LeavesItsWakerWithTheKeyboard { polled: false }));
    while !executor.is_empty() {
        executor.run_ready();
    }
    // The handler drops the task's last waker: in debug builds, freeing it
    // there would trip the heap's check; it must wait for the executor.
    ps2::inject_scancode(0x58);
    time::busy_wait(Duration::from_millis(5));
    assert_eq!(SCANCODES.pop(), Some(0x58));
    executor.run_ready();
    drop(executor);
    assert_eq!(kernel::mem::stats().heap.allocator.in_use, in_use, "the task's memory was not all freed");
}
