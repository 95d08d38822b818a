//! The kernel's clock: a count of timer ticks, the uptime it adds up to,
//! and sleepers: busy ones ([`busy_wait`]) and async ones ([`sleep`]), which
//! the executor wakes once their tick has come.
//!
//! Whatever device ticks (the PIT today) calls [`start`] with its period and
//! then [`tick`] from its interrupt handler; nothing here knows the device.

use alloc::collections::BTreeMap;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use spin::Mutex;

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

/// Counts a tick. For the timer's interrupt handler: it touches one atomic
/// and nothing else, so it never allocates, frees or takes a lock. Sleepers
/// are woken from task context, by [`wake_due`].
pub fn tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Sleeping tasks, by (deadline, sleep id), with their wakers. Only task
/// context touches it (the executor and the sleeps themselves), so an
/// ordinary lock will do and it may grow without bound.
static SLEEPERS: Mutex<BTreeMap<(u64, u64), Waker>> = Mutex::new(BTreeMap::new());
/// The earliest deadline in SLEEPERS (u64::MAX: none), readable without the
/// lock by an executor deciding whether to halt.
static NEXT_DEADLINE: AtomicU64 = AtomicU64::new(u64::MAX);

/// Whether a sleeper is due, so the executor must not halt before waking it.
pub fn sleeper_due() -> bool {
    NEXT_DEADLINE.load(Ordering::Acquire) <= ticks()
}

/// Wakes every sleeper whose deadline has passed. The executor calls this
/// each round, in task context.
pub fn wake_due() {
    let now = ticks();
    loop {
        let waker = {
            let mut sleepers = SLEEPERS.lock();
            let due = sleepers.first_key_value().is_some_and(|(&(deadline, _), _)| deadline <= now);
            let waker = if due { sleepers.pop_first().map(|(_, waker)| waker) } else { None };
            update_next_deadline(&sleepers);
            waker
        };
        match waker {
            Some(waker) => waker.wake(),
            None => return,
        }
    }
}

fn update_next_deadline(sleepers: &BTreeMap<(u64, u64), Waker>) {
    let next = sleepers.first_key_value().map_or(u64::MAX, |(&(deadline, _), _)| deadline);
    NEXT_DEADLINE.store(next, Ordering::Release);
}

/// A future that completes `duration` after it is created.
pub fn sleep(duration: Duration) -> Sleep {
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    Sleep {
        deadline: deadline_after(duration).max(ticks() + 1),
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        registered: false,
    }
}

pub struct Sleep {
    deadline: u64,
    id: u64,
    /// Whether SLEEPERS holds this sleep's waker.
    registered: bool,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context) -> Poll<()> {
        if ticks() >= self.deadline {
            self.release();
            return Poll::Ready(());
        }
        let mut sleepers = SLEEPERS.lock();
        sleepers.insert((self.deadline, self.id), cx.waker().clone());
        update_next_deadline(&sleepers);
        self.registered = true;
        Poll::Pending
    }
}

impl Sleep {
    fn release(&mut self) {
        if core::mem::take(&mut self.registered) {
            let mut sleepers = SLEEPERS.lock();
            sleepers.remove(&(self.deadline, self.id));
            update_next_deadline(&sleepers);
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
