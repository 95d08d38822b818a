//! The kernel's clock: a count of timer ticks, the uptime it adds up to,
//! and sleepers woken by the ticks, busy ones ([`busy_wait`]) and async ones
//! ([`sleep`]).
//!
//! Whatever device ticks (the PIT today) calls [`start`] with its period and
//! then [`tick`] from its interrupt handler; nothing here knows the device.

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll};
use core::time::Duration;
use futures_util::task::AtomicWaker;

static TICKS: AtomicU64 = AtomicU64::new(0);
/// The tick period in femtoseconds (exact enough for any divided clock); 0
/// until a timer starts.
static PERIOD_FS: AtomicU64 = AtomicU64::new(0);

const FS_PER_NS: u128 = 1_000_000;

/// Declares the tick period; the timer's driver calls this once, before its
/// first tick.
pub fn start(period_fs: u64) {
    PERIOD_FS.store(period_fs, Ordering::Relaxed);
}

/// Timer interrupts since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Time since the timer started.
pub fn uptime() -> Duration {
    ticks_to_duration(ticks(), PERIOD_FS.load(Ordering::Relaxed))
}

fn ticks_to_duration(ticks: u64, period_fs: u64) -> Duration {
    Duration::from_nanos((ticks as u128 * period_fs as u128 / FS_PER_NS) as u64)
}

/// Ticks that cover at least `duration`.
fn ticks_for(duration: Duration, period_fs: u64) -> u64 {
    (duration.as_nanos() * FS_PER_NS).div_ceil(period_fs.max(1) as u128) as u64
}

fn deadline_after(duration: Duration) -> u64 {
    ticks() + ticks_for(duration, PERIOD_FS.load(Ordering::Relaxed))
}

/// Waits `duration`, sleeping the CPU between ticks. Interrupts must be on:
/// waiting with them off would never end, so that is refused.
pub fn busy_wait(duration: Duration) {
    assert!(
        x86_64::instructions::interrupts::are_enabled(),
        "time::busy_wait with interrupts disabled would never return"
    );
    let deadline = deadline_after(duration);
    while ticks() < deadline {
        x86_64::instructions::hlt();
    }
}

/// A sleeper waiting for a tick: its deadline (0: the slot is free) and
/// its task's waker.
struct Sleeper {
    deadline: AtomicU64,
    waker: AtomicWaker,
}

const SLEEPER_SLOTS: usize = 32;

static SLEEPERS: [Sleeper; SLEEPER_SLOTS] =
    [const { Sleeper { deadline: AtomicU64::new(0), waker: AtomicWaker::new() } }; SLEEPER_SLOTS];

/// Counts a tick and wakes due sleepers. For the timer's interrupt handler:
/// takes no lock and allocates nothing.
pub fn tick() {
    let now = TICKS.fetch_add(1, Ordering::Relaxed) + 1;
    for sleeper in &SLEEPERS {
        let deadline = sleeper.deadline.load(Ordering::Acquire);
        if deadline != 0 && deadline <= now {
            sleeper.waker.wake();
        }
    }
}

/// A future that completes `duration` after it is created.
pub fn sleep(duration: Duration) -> Sleep {
    Sleep { deadline: deadline_after(duration).max(ticks() + 1), slot: None }
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
            self.slot = SLEEPERS.iter().position(|sleeper| {
                sleeper.deadline.compare_exchange(0, deadline, Ordering::AcqRel, Ordering::Relaxed).is_ok()
            });
        }
        match self.slot {
            Some(slot) => SLEEPERS[slot].waker.register(cx.waker()),
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
            SLEEPERS[slot].waker.take();
            SLEEPERS[slot].deadline.store(0, Ordering::Release);
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

    /// The PIT's period at divisor 1193 of 1.193182 MHz.
    const PIT_PERIOD_FS: u64 = 999_847_746_784;

    #[test]
    fn one_pit_tick_is_about_a_millisecond() {
        let tick = ticks_to_duration(1, PIT_PERIOD_FS);
        assert!(tick > Duration::from_micros(999) && tick < Duration::from_micros(1000), "{tick:?}");
        let hour = ticks_to_duration(3_600_550, PIT_PERIOD_FS);
        assert_eq!(hour.as_secs(), 3600);
    }

    #[test]
    fn waits_round_up_to_whole_ticks() {
        assert_eq!(ticks_for(Duration::ZERO, PIT_PERIOD_FS), 0);
        assert_eq!(ticks_for(Duration::from_nanos(1), PIT_PERIOD_FS), 1);
        assert_eq!(ticks_for(Duration::from_millis(1), PIT_PERIOD_FS), 2);
        let quarter = ticks_for(Duration::from_millis(250), PIT_PERIOD_FS);
        assert!(ticks_to_duration(quarter, PIT_PERIOD_FS) >= Duration::from_millis(250));
    }
}
