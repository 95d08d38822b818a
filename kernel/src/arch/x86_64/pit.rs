//! The programmable interval timer (8253/8254 PIT), channel 0 at 1000 Hz:
//! the kernel's clock. It counts ticks, tells the uptime, and wakes sleepers,
//! busy ones (`busy_wait`) and async ones (`sleep`).

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll};
use core::time::Duration;
use futures_util::task::AtomicWaker;
use x86_64::instructions::{hlt, interrupts, port::Port};

/// The PIT's input clock, in Hz.
const INPUT_HZ: u64 = 1_193_182;
/// Divisor for about 1000 interrupts per second (1000.15 Hz: the input clock
/// does not divide evenly). Uptime is computed from the exact period.
const DIVISOR: u64 = 1193;
/// Ticks per second, rounded.
pub const HZ: u64 = INPUT_HZ / DIVISOR;

static TICKS: AtomicU64 = AtomicU64::new(0);

/// Programs channel 0 as a rate generator and unmasks IRQ 0.
pub fn init() {
    // SAFETY: 0x43 is the PIT's mode register and 0x40 channel 0's data port;
    // mode 2 (rate generator), low byte then high byte of the divisor.
    unsafe {
        Port::<u8>::new(0x43).write(0b0011_0100);
        Port::<u8>::new(0x40).write(DIVISOR as u8);
        Port::<u8>::new(0x40).write((DIVISOR >> 8) as u8);
    }
    super::pic::unmask(super::pic::TIMER);
}

/// Timer interrupts since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Time since the timer started.
pub fn uptime() -> Duration {
    ticks_to_duration(ticks())
}

fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_nanos((ticks as u128 * DIVISOR as u128 * 1_000_000_000 / INPUT_HZ as u128) as u64)
}

/// Ticks that cover at least `duration`.
fn ticks_for(duration: Duration) -> u64 {
    (duration.as_nanos() * INPUT_HZ as u128).div_ceil(DIVISOR as u128 * 1_000_000_000) as u64
}

/// Waits `duration`, sleeping the CPU between ticks. Interrupts must be on:
/// waiting with them off would never end, so that is refused.
pub fn busy_wait(duration: Duration) {
    assert!(interrupts::are_enabled(), "pit::busy_wait with interrupts disabled would never return");
    let deadline = ticks() + ticks_for(duration);
    while ticks() < deadline {
        hlt();
    }
}

/// Sleepers waiting for a tick: a deadline (0: free slot) and a waker.
struct Sleeper {
    deadline: AtomicU64,
    waker: AtomicWaker,
}

const SLEEPERS: usize = 32;

static SLEEPERS_TABLE: [Sleeper; SLEEPERS] =
    [const { Sleeper { deadline: AtomicU64::new(0), waker: AtomicWaker::new() } }; SLEEPERS];

/// Called by the timer interrupt: counts the tick and wakes due sleepers.
/// Takes no lock and allocates nothing.
pub(super) fn tick() {
    let now = TICKS.fetch_add(1, Ordering::Relaxed) + 1;
    for sleeper in &SLEEPERS_TABLE {
        let deadline = sleeper.deadline.load(Ordering::Acquire);
        if deadline != 0 && deadline <= now {
            sleeper.waker.wake();
        }
    }
}

/// A future that completes `duration` after it is created.
pub fn sleep(duration: Duration) -> Sleep {
    Sleep { deadline: ticks() + ticks_for(duration).max(1), slot: None }
}

pub struct Sleep {
    deadline: u64,
    slot: Option<usize>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context) -> Poll<()> {
        if ticks() >= self.deadline {
            self.release();
            return Poll::Ready(());
        }
        if self.slot.is_none() {
            let deadline = self.deadline;
            self.slot = SLEEPERS_TABLE.iter().position(|sleeper| {
                sleeper.deadline.compare_exchange(0, deadline, Ordering::AcqRel, Ordering::Relaxed).is_ok()
            });
        }
        match self.slot {
            Some(slot) => SLEEPERS_TABLE[slot].waker.register(cx.waker()),
            // Every slot taken: ask to be polled again rather than be lost.
            None => cx.waker().wake_by_ref(),
        }
        // The tick may have come between the check and the registration.
        if ticks() >= self.deadline {
            self.release();
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Sleep {
    fn release(&mut self) {
        if let Some(slot) = self.slot.take() {
            SLEEPERS_TABLE[slot].waker.take();
            SLEEPERS_TABLE[slot].deadline.store(0, Ordering::Release);
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_tick_is_about_a_millisecond() {
        assert_eq!(HZ, 1000);
        let tick = ticks_to_duration(1);
        assert!(tick > Duration::from_micros(999) && tick < Duration::from_micros(1000), "{tick:?}");
    }

    #[test]
    fn waits_round_up_to_whole_ticks() {
        assert_eq!(ticks_for(Duration::ZERO), 0);
        assert_eq!(ticks_for(Duration::from_nanos(1)), 1);
        assert_eq!(ticks_for(Duration::from_millis(1)), 2);
        assert!(ticks_to_duration(ticks_for(Duration::from_millis(250))) >= Duration::from_millis(250));
    }
}
