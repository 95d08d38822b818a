//! The kernel's clock: a free-running counter, or the timer's ticks, and
//! sleepers: busy ones ([`busy_wait`]) and async ones ([`sleep`]), which
//! the executor wakes once their deadline has come.
//!
//! The platform code declares the clock's counter with [`set_counter`] (the
//! TSC, the HPET, the ACPI PM timer); without one the clock counts the
//! timer's ticks. Whatever device ticks calls [`start`] with its period and
//! then [`tick`] from its interrupt handler; each tick wakes the CPU, and
//! the executor then wakes the sleepers whose deadlines, read on the clock,
//! have come. Nothing here knows a device.

use alloc::collections::BTreeMap;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use spin::{Mutex, Once};

static TICKS: AtomicU64 = AtomicU64::new(0);
/// The tick period in femtoseconds (exact enough for any divided clock); 0
/// until a timer starts.
static PERIOD_FS: AtomicU64 = AtomicU64::new(0);

const FS_PER_NS: u64 = 1_000_000;
const NS_PER_S: u64 = 1_000_000_000;

/// A free-running counter of known frequency: the clock, when there is one.
struct Counter {
    read: fn() -> u64,
    /// Where uptime stands at `origin`, and the frequency it counts at
    /// since, which a better measurement may change ([`set_counter_hz`]).
    /// Changed with interrupts off on the one CPU, so a reader never sees
    /// half a change.
    base_ns: AtomicU64,
    origin: AtomicU64,
    hz: AtomicU64,
}

impl Counter {
    /// Uptime when the counter reads `raw`.
    fn uptime_at(&self, raw: u64) -> Duration {
        let base = Duration::from_nanos(self.base_ns.load(Ordering::Relaxed));
        let counts = raw.wrapping_sub(self.origin.load(Ordering::Relaxed));
        base + counts_to_duration(counts, self.hz.load(Ordering::Relaxed))
    }
}

static COUNTER: Once<Counter> = Once::new();

/// Makes the counter that `read` returns, `hz` counts per second and never
/// wrapping, the clock. Uptime counts from here.
pub fn set_counter(read: fn() -> u64, hz: u64) {
    COUNTER.call_once(|| Counter {
        read,
        base_ns: AtomicU64::new(0),
        origin: AtomicU64::new(read()),
        hz: AtomicU64::new(hz.max(1)),
    });
}

/// The clock's counter runs at `hz` after all: uptime goes on from where it
/// is, at the new rate.
pub fn set_counter_hz(hz: u64) {
    let Some(counter) = COUNTER.get() else { return };
    x86_64::instructions::interrupts::without_interrupts(|| {
        let raw = (counter.read)();
        let now = counter.uptime_at(raw);
        counter.origin.store(raw, Ordering::Relaxed);
        counter.base_ns.store(now.as_nanos() as u64, Ordering::Relaxed);
        counter.hz.store(hz.max(1), Ordering::Relaxed);
    });
}

/// The TSC's frequency once calibration has measured it (0 before), for
/// the log's timestamps; it is known even when the TSC is not the clock.
static TSC_HZ: AtomicU64 = AtomicU64::new(0);

/// Records the TSC's measured frequency.
pub fn set_tsc_hz(hz: u64) {
    TSC_HZ.store(hz, Ordering::Relaxed);
}

/// The TSC's frequency, once calibrated.
pub fn tsc_hz() -> Option<u64> {
    Some(TSC_HZ.load(Ordering::Relaxed)).filter(|&hz| hz != 0)
}

/// Declares the tick period; the timer's driver calls this once, before its
/// first tick.
pub fn start(period_fs: u64) {
    PERIOD_FS.store(period_fs, Ordering::Relaxed);
}

/// Timer interrupts since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Time since the clock started: on the counter, or from the ticks.
pub fn uptime() -> Duration {
    match COUNTER.get() {
        Some(counter) => counter.uptime_at((counter.read)()),
        None => ticks_to_duration(ticks(), PERIOD_FS.load(Ordering::Relaxed)),
    }
}

fn ticks_to_duration(ticks: u64, period_fs: u64) -> Duration {
    Duration::from_nanos(mul_div(ticks, period_fs, FS_PER_NS))
}

fn counts_to_duration(counts: u64, hz: u64) -> Duration {
    Duration::new(counts / hz, mul_div(counts % hz, NS_PER_S, hz) as u32)
}

/// `value * mul / div`, rounded down, in 64-bit arithmetic whenever the
/// product fits, as it does for a reading split into whole seconds and the
/// rest: a 128-bit division is a library call of a few hundred
/// instructions, and the clock is read at every tick and every log line.
pub fn mul_div(value: u64, mul: u64, div: u64) -> u64 {
    match value.checked_mul(mul) {
        Some(product) => product / div,
        None => (u128::from(value) * u128::from(mul) / u128::from(div)) as u64,
    }
}

/// A counter of `bits` bits (a PM timer's 24, an HPET's 32) widened to 64,
/// for as long as it is read at least once per wrap-around: each reading
/// adds what the counter advanced since the last one.
#[derive(Debug, Clone, Copy)]
pub struct Widened {
    mask: u64,
    last: u64,
    total: u64,
}

impl Widened {
    pub const fn new(bits: u32) -> Self {
        Self { mask: if bits >= 64 { u64::MAX } else { (1 << bits) - 1 }, last: 0, total: 0 }
    }

    /// Takes a raw reading (only its low `bits` count) and returns the
    /// widened count.
    pub fn update(&mut self, raw: u64) -> u64 {
        let raw = raw & self.mask;
        self.total = self.total.wrapping_add(raw.wrapping_sub(self.last) & self.mask);
        self.last = raw;
        self.total
    }
}

/// A deadline on the clock, in nanoseconds of uptime.
fn deadline_after(duration: Duration) -> u64 {
    (uptime() + duration).as_nanos() as u64
}

fn now() -> u64 {
    uptime().as_nanos() as u64
}

/// Waits `duration`, sleeping the CPU between ticks. Interrupts must be on:
/// waiting with them off would never end, so that is refused.
pub fn busy_wait(duration: Duration) {
    assert!(
        x86_64::instructions::interrupts::are_enabled(),
        "time::busy_wait with interrupts disabled would never return"
    );
    let deadline = deadline_after(duration);
    while now() < deadline {
        x86_64::instructions::hlt();
    }
}

/// Counts a tick. For the timer's interrupt handler: it touches one atomic
/// and nothing else, so it never allocates, frees or takes a lock. Sleepers
/// are woken from task context, by [`wake_due`].
pub fn tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Sleeping tasks, by (deadline in nanoseconds of uptime, sleep id), with
/// their wakers. Only task
/// context touches it (the executor and the sleeps themselves), so an
/// ordinary lock will do and it may grow without bound.
static SLEEPERS: Mutex<BTreeMap<(u64, u64), Waker>> = Mutex::new(BTreeMap::new());
/// The earliest deadline in SLEEPERS (u64::MAX: none), readable without the
/// lock by an executor deciding whether to halt.
static NEXT_DEADLINE: AtomicU64 = AtomicU64::new(u64::MAX);

/// Whether a sleeper is due, so the executor must not halt before waking it.
pub fn sleeper_due() -> bool {
    NEXT_DEADLINE.load(Ordering::Acquire) <= now()
}

/// Wakes every sleeper whose deadline has passed. The executor calls this
/// each round, in task context.
pub fn wake_due() {
    let now = now();
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
        deadline: deadline_after(duration),
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
        if now() >= self.deadline {
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
    fn counts_become_time_at_the_counters_frequency() {
        assert_eq!(counts_to_duration(100_000_000, 100_000_000), Duration::from_secs(1));
        assert_eq!(counts_to_duration(3_579_545 * 3, 3_579_545), Duration::from_secs(3));
        assert_eq!(counts_to_duration(1000, 3_579_545), Duration::from_nanos(279_365), "rounded down");
        let tsc = 2_893_412_000;
        assert_eq!(counts_to_duration(tsc * 3600 * 24 * 365, tsc).as_secs(), 3600 * 24 * 365);
        assert_eq!(counts_to_duration(1, 1_000_000_000), Duration::from_nanos(1));
    }

    #[test]
    fn mul_div_is_exact_whether_or_not_the_product_fits_64_bits() {
        assert_eq!(mul_div(7, 1_000_000, 3), 2_333_333);
        assert_eq!(mul_div(0, u64::MAX, 1), 0);
        assert_eq!(mul_div(u64::MAX, 1_000_000_000, 1_000_000_000), u64::MAX);
        assert_eq!(mul_div(1 << 40, 1 << 40, 1 << 50), 1 << 30);
        assert_eq!(mul_div(2_893_411_999, NS_PER_S, 2_893_412_000), 999_999_999);
    }

    #[test]
    fn a_narrow_counter_widens_across_wrap_arounds() {
        let mut pm = Widened::new(24);
        assert_eq!(pm.update(0xff_fff0), 0xff_fff0);
        assert_eq!(pm.update(0x00_0010), 0x100_0010, "wrapped once");
        assert_eq!(pm.update(0x00_0010), 0x100_0010, "no time passed");
        assert_eq!(pm.update(0xff_ffff_0000_0020), 0x100_0020, "high bits of a wider read are ignored");
        let mut wide = Widened::new(64);
        assert_eq!(wide.update(5), 5);
        assert_eq!(wide.update(u64::MAX), u64::MAX);
    }
}
