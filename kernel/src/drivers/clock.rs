//! The kernel's clock and timer, chosen from what the machine has and
//! calibrated: no device here, the choice between the devices.
//!
//! - The reference that calibrates the others: the HPET, else the ACPI PM
//!   timer, else the PIT (channel 2, polled).
//! - The clock, a free-running counter: the TSC when CPUID says it is
//!   invariant, calibrated against the reference; else the HPET's counter,
//!   else the PM timer; else the timer's ticks. `clock=tsc|hpet|pmtimer|ticks`
//!   on the command line forces one.
//! - The timer, which ticks at 1000 Hz and wakes sleepers: the local APIC
//!   timer when the local APIC delivers interrupts (TSC-deadline mode when
//!   the CPU has it and the TSC is the clock, else periodic, calibrated
//!   against the reference); else, or with `timer=pit`, the PIT's channel 0.
//!
//! Each choice is logged with its reason, the calibration with its reference
//! and the frequencies it measured.
//!
//! Calibration is quick, as the boot waits for it: 2 ms against the HPET or
//! the PM timer, each end a reading of the counters bracketed by two of the
//! reference (and taken again if something, an SMI or the host, stretched
//! it). That is exact to a fraction of a percent, plenty for the timer's
//! ticks; [`refine`] later measures the TSC over the first second, which
//! makes it exact enough to be the clock.

use super::acpi::Acpi;
use super::{hpet, lapic, pit, pm_timer};
use crate::arch::cpu::{self, Features};
use crate::boot::BootInfo;
use crate::time;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Once;

/// Timer interrupts per second.
const TICK_HZ: u64 = 1000;
/// The longest a bracketed reading of the counters may take, in
/// microseconds: more means it was interrupted, and it is taken again.
const MAX_READING_US: u64 = 20;
/// Readings taken at most to find one that short.
const READING_TRIES: u32 = 100;
/// The most the second measurement may differ from the boot's, in
/// millionths (5%): the boot's 2 ms between readings bracketed within 20 us
/// is at most 1% off (the log says by how much), so more means the second
/// interval was misread (a counter wrapped unseen).
const MAX_REFINEMENT_PPM: u64 = 50_000;
/// Readings of a reference that never changes before it counts as stopped.
const STALLED_READS: u32 = 100_000;
const FS_PER_S: u128 = 1_000_000_000_000_000;

/// What calibrates the TSC and the local APIC timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reference {
    Hpet { hz: u64 },
    PmTimer,
    Pit,
}

impl Reference {
    fn hz(self) -> u64 {
        match self {
            Self::Hpet { hz } => hz,
            Self::PmTimer => pm_timer::HZ,
            Self::Pit => pit::INPUT_HZ,
        }
    }

    fn read(self) -> u64 {
        match self {
            Self::Hpet { .. } => hpet::counter(),
            Self::PmTimer => pm_timer::counter(),
            Self::Pit => pit::reference_count(),
        }
    }

    /// How long boot calibration measures, in milliseconds: the PIT, the
    /// coarsest reference and one that cannot be read again a second later
    /// (its count wraps every 55 ms), counts about 12,000 times in 10 ms.
    fn window_ms(self) -> u64 {
        match self {
            Self::Pit => 10,
            _ => 2,
        }
    }

    /// Whether the reference can measure the TSC again much later: its
    /// count widens to 64 bits reliably for at least a few seconds.
    fn can_refine(self) -> bool {
        self != Self::Pit
    }
}

/// The counters read at one moment: the reference's count is the middle of
/// the two readings that bracket the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reading {
    reference: u64,
    tsc: u64,
    lapic: u32,
    /// Reference counts between the two bracketing readings.
    span: u64,
}

impl Reading {
    /// The tightest of a few bracketed readings, stopping at the first within
    /// [`MAX_READING_US`].
    fn take(reference: Reference, with_lapic: bool) -> Reading {
        let short = (reference.hz() * MAX_READING_US / 1_000_000).max(1);
        let mut best: Option<Reading> = None;
        for _ in 0..READING_TRIES {
            let before = reference.read();
            let tsc = cpu::read_tsc();
            let lapic = if with_lapic { lapic::timer_count() } else { 0 };
            let after = reference.read();
            let span = after.wrapping_sub(before);
            let reading = Reading { reference: before + span / 2, tsc, lapic, span };
            if best.is_none_or(|best| span < best.span) {
                best = Some(reading);
            }
            if span <= short {
                break;
            }
        }
        best.expect("at least one reading")
    }
}

/// The boot calibration's first reading, which [`refine`] measures from.
static BOOT_READING: Once<(Reference, Reading)> = Once::new();
/// Whether the TSC is the clock, so that [`refine`] corrects it too.
static TSC_IS_CLOCK: AtomicBool = AtomicBool::new(false);

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Self::Hpet { .. } => "the HPET",
            Self::PmTimer => "the ACPI PM timer",
            Self::Pit => "the PIT",
        })
    }
}

/// The counter the clock reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    Tsc { hz: u64 },
    Hpet { hz: u64 },
    PmTimer,
    Ticks,
}

/// What ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    TscDeadline { tsc_hz: u64 },
    Periodic { lapic_hz: u64 },
    Pit,
}

/// What calibration measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rates {
    tsc_hz: u64,
    lapic_hz: Option<u64>,
}

/// What the machine offers for time, found before choosing.
struct Sources {
    features: Features,
    hpet_hz: Option<u64>,
    pm_timer: bool,
    rates: Option<Rates>,
}

/// Finds the reference, calibrates the TSC (and the local APIC timer when
/// `local_apic` delivers interrupts) against it, then sets up the clock and
/// starts the timer.
pub fn init(info: &BootInfo, acpi: Option<&Acpi>, local_apic: bool) {
    let hpet_hz = acpi
        .and_then(|acpi| acpi.hpet.as_ref())
        .and_then(|hpet| hpet::init(hpet).map_err(|error| log::warn!("HPET: not used: {error}")).ok());
    let pm_timer = acpi.and_then(|acpi| acpi.fadt.as_ref()).is_some_and(pm_timer::init);
    let reference = match (hpet_hz, pm_timer) {
        (Some(hz), _) => Some(Reference::Hpet { hz }),
        (None, true) => Some(Reference::PmTimer),
        (None, false) if pit::start_reference() => Some(Reference::Pit),
        (None, false) => None,
    };
    let rates = match reference {
        Some(reference) => calibrate(reference, local_apic),
        None => {
            log::error!("time: no HPET, no ACPI PM timer and no counting PIT: nothing to calibrate against");
            None
        }
    };
    if let Some(rates) = rates {
        time::set_tsc_hz(rates.tsc_hz);
    }
    let sources = Sources { features: cpu::features(), hpet_hz, pm_timer, rates };
    let clock = choose_clock(info.option("clock"), &sources);
    match clock {
        Clock::Tsc { hz } => {
            TSC_IS_CLOCK.store(true, Ordering::Relaxed);
            time::set_counter(cpu::read_tsc, hz)
        }
        Clock::Hpet { hz } => time::set_counter(hpet::counter, hz),
        Clock::PmTimer => time::set_counter(pm_timer::counter, pm_timer::HZ),
        Clock::Ticks => {}
    }
    start_timer(choose_timer(info.option("timer"), local_apic, clock, &sources));
}

/// Measures the TSC, and the local APIC timer if `with_lapic`, over the
/// reference's [`Reference::window_ms`]. `None` (logged) if the reference
/// does not count.
fn calibrate(reference: Reference, with_lapic: bool) -> Option<Rates> {
    if with_lapic {
        lapic::start_counting();
    }
    let window_ms = reference.window_ms();
    let window = reference.hz() * window_ms / 1000;
    let start = Reading::take(reference, with_lapic);
    let (mut last, mut unchanged) = (start.reference, 0);
    loop {
        let now = reference.read();
        if now.wrapping_sub(start.reference) >= window {
            break;
        }
        unchanged = if now == last { unchanged + 1 } else { 0 };
        if unchanged > STALLED_READS {
            log::error!("time: {reference} does not count; nothing calibrated");
            return None;
        }
        last = now;
    }
    let end = Reading::take(reference, with_lapic);
    if reference.can_refine() {
        BOOT_READING.call_once(|| (reference, start));
    }
    let reference_counts = end.reference.wrapping_sub(start.reference);
    let rates = Rates {
        tsc_hz: frequency(end.tsc.wrapping_sub(start.tsc), reference_counts, reference.hz()),
        lapic_hz: with_lapic.then(|| {
            frequency(u64::from(start.lapic.wrapping_sub(end.lapic)), reference_counts, reference.hz())
        }),
    };
    let within = Percent(uncertainty(&start, &end));
    match rates.lapic_hz {
        Some(lapic_hz) => log::info!(
            "time: calibrated against {reference} ({}) for {window_ms} ms: TSC {}, local APIC timer {} (within {within})",
            Mhz(reference.hz()),
            Mhz(rates.tsc_hz),
            Mhz(lapic_hz)
        ),
        None => log::info!(
            "time: calibrated against {reference} ({}) for {window_ms} ms: TSC {} (within {within})",
            Mhz(reference.hz()),
            Mhz(rates.tsc_hz)
        ),
    }
    Some(rates)
}

/// How far off a frequency measured between two readings can be, in
/// millionths: half of each bracket, over the interval.
fn uncertainty(start: &Reading, end: &Reading) -> u64 {
    let interval = end.reference.wrapping_sub(start.reference).max(1);
    (start.span + end.span) / 2 * 1_000_000 / interval
}

/// Measures the TSC again, over everything since boot calibration began (a
/// second or so when the executor calls it), and makes that its frequency:
/// for the log's timestamps and, when the TSC is the clock, for the clock,
/// which continues from where it is. Nothing happens when the reference
/// cannot be read this much later (the PIT), or the interval looks wrong (a
/// 24-bit PM timer read too late wraps around unseen).
pub fn refine() {
    let Some(&(reference, start)) = BOOT_READING.get() else { return };
    let Some(boot_hz) = time::tsc_hz() else { return };
    let end = Reading::take(reference, false);
    let reference_counts = end.reference.wrapping_sub(start.reference);
    let tsc_hz = frequency(end.tsc.wrapping_sub(start.tsc), reference_counts, reference.hz());
    let change = tsc_hz.abs_diff(boot_hz) * 1_000_000 / boot_hz;
    if change > MAX_REFINEMENT_PPM {
        log::warn!(
            "time: the TSC measured {} against {reference} since boot, but {} at boot; keeping that",
            Mhz(tsc_hz),
            Mhz(boot_hz)
        );
        return;
    }
    time::set_tsc_hz(tsc_hz);
    if TSC_IS_CLOCK.load(Ordering::Relaxed) {
        time::set_counter_hz(tsc_hz);
    }
    log::info!(
        "time: the TSC measured over {} ms against {reference}: {} (within {}; boot calibration was {} off)",
        reference_counts * 1000 / reference.hz(),
        Mhz(tsc_hz),
        Percent(uncertainty(&start, &end)),
        Percent(change)
    );
}

/// The frequency of a counter that advanced `counted` while the reference,
/// at `reference_hz`, advanced `reference_counts`.
fn frequency(counted: u64, reference_counts: u64, reference_hz: u64) -> u64 {
    (counted as u128 * reference_hz as u128 / reference_counts.max(1) as u128) as u64
}

/// The count of a timer at `hz` closest to one tick at [`TICK_HZ`].
fn ticks_count(hz: u64) -> u64 {
    (hz + TICK_HZ / 2) / TICK_HZ
}

/// The exact period of `count` cycles at `hz`, in femtoseconds.
fn period_fs(count: u64, hz: u64) -> u64 {
    (count as u128 * FS_PER_S / hz.max(1) as u128) as u64
}

/// The clock `forced` asks for if the machine has it, else the best one.
fn choose_clock(forced: Option<&str>, sources: &Sources) -> Clock {
    let tsc = sources.rates.map(|rates| Clock::Tsc { hz: rates.tsc_hz });
    let hpet = sources.hpet_hz.map(|hz| Clock::Hpet { hz });
    let pm_timer = sources.pm_timer.then_some(Clock::PmTimer);
    let chosen = match forced {
        None => None,
        Some("tsc") => {
            if tsc.is_some() && !sources.features.invariant_tsc {
                log::warn!("time: clock=tsc: the TSC is the clock although CPUID does not call it invariant");
            }
            tsc
        }
        Some("hpet") => hpet,
        Some("pmtimer") => pm_timer,
        Some("ticks") => Some(Clock::Ticks),
        Some(other) => {
            log::warn!("time: ignoring clock={other} (expected tsc, hpet, pmtimer or ticks)");
            return choose_clock(None, sources);
        }
    };
    if let (Some(name), None) = (forced, chosen) {
        log::warn!("time: clock={name} is not available here; choosing as usual");
    }
    let (clock, why) = match (chosen, tsc) {
        (Some(clock), _) => (clock, "as the command line asks"),
        (None, Some(tsc)) if sources.features.invariant_tsc => (tsc, "it is invariant"),
        (None, _) => {
            let fallback = hpet.or(pm_timer).unwrap_or(Clock::Ticks);
            let why = match (sources.features.invariant_tsc, fallback) {
                (true, Clock::Ticks) => "the TSC could not be calibrated, and there is no HPET or PM timer",
                (false, Clock::Ticks) => "the TSC is not invariant, and there is no HPET or PM timer",
                (true, _) => "the TSC could not be calibrated",
                (false, _) => "the TSC is not invariant",
            };
            (fallback, why)
        }
    };
    match clock {
        Clock::Tsc { hz } => log::info!("time: the clock is the TSC at {} ({why})", Mhz(hz)),
        Clock::Hpet { hz } => log::info!("time: the clock is the HPET's counter at {} ({why})", Mhz(hz)),
        Clock::PmTimer => log::info!("time: the clock is the ACPI PM timer at {} ({why})", Mhz(pm_timer::HZ)),
        Clock::Ticks => log::info!("time: the clock counts the timer's ticks ({why})"),
    }
    clock
}

/// The timer: the local APIC's when it delivers interrupts and could be
/// calibrated, unless `timer=pit`; the PIT otherwise.
fn choose_timer(forced: Option<&str>, local_apic: bool, clock: Clock, sources: &Sources) -> Timer {
    match forced {
        None | Some("lapic") | Some("pit") => {}
        Some(other) => log::warn!("time: ignoring timer={other} (expected lapic or pit)"),
    }
    if !local_apic {
        if forced == Some("lapic") {
            log::warn!("time: timer=lapic: the 8259s deliver interrupts, so the PIT ticks");
        }
        return Timer::Pit;
    }
    if forced == Some("pit") {
        return Timer::Pit;
    }
    match (clock, sources.rates.and_then(|rates| rates.lapic_hz)) {
        (Clock::Tsc { hz }, _) if sources.features.tsc_deadline => Timer::TscDeadline { tsc_hz: hz },
        (_, Some(lapic_hz)) => Timer::Periodic { lapic_hz },
        (_, None) => {
            log::warn!("time: the local APIC timer could not be calibrated; the PIT ticks instead");
            Timer::Pit
        }
    }
}

fn start_timer(timer: Timer) {
    let started = match timer {
        Timer::TscDeadline { tsc_hz } => {
            let count = ticks_count(tsc_hz);
            time::start(period_fs(count, tsc_hz));
            lapic::start_tsc_deadline(count).map(|()| {
                log::info!("time: the local APIC timer ticks at {TICK_HZ} Hz in TSC-deadline mode ({count} TSC cycles)")
            })
        }
        Timer::Periodic { lapic_hz } => {
            let count = ticks_count(lapic_hz);
            time::start(period_fs(count, lapic_hz));
            lapic::start_periodic(u32::try_from(count).unwrap_or(u32::MAX)).map(|()| {
                log::info!("time: the local APIC timer ticks at {TICK_HZ} Hz, periodic ({count} counts)")
            })
        }
        Timer::Pit if !pit::start_reference() => {
            log::error!("time: the PIT does not count: there is no timer, and sleeps never end");
            return;
        }
        Timer::Pit => pit::init().map(|()| log::info!("time: the PIT ticks at {} Hz on ISA IRQ 0", pit::HZ)),
    };
    if let Err(error) = started {
        log::error!("time: the timer could not start: {error}");
    }
}

/// A fraction in millionths, as a percentage.
struct Percent(u64);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}.{:04}%", self.0 / 10_000, self.0 % 10_000)
    }
}

/// A frequency in MHz with three decimals.
struct Mhz(u64);

impl fmt::Display for Mhz {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}.{:03} MHz", self.0 / 1_000_000, self.0 / 1000 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frequency_is_the_count_scaled_by_the_reference() {
        // 50 ms of QEMU's 100 MHz HPET against a 2.9 GHz TSC.
        assert_eq!(frequency(145_000_000, 5_000_000, 100_000_000), 2_900_000_000);
        // 50 ms of the PM timer (178977 counts) against a 62.5 MHz APIC timer.
        let lapic = frequency(3_124_986, 178_977, pm_timer::HZ);
        assert!(lapic.abs_diff(62_500_000) < 1_000, "{lapic}");
        // The PIT's 59659 counts against a 3.2 GHz TSC, no overflow.
        let tsc = frequency(160_000_000, 59_659, pit::INPUT_HZ);
        assert!(tsc.abs_diff(3_200_000_000) < 100_000, "{tsc}");
        assert_eq!(frequency(10, 0, 1), 10, "a reference that did not move does not divide by zero");
    }

    #[test]
    fn a_tick_is_the_nearest_whole_count_with_its_exact_period() {
        assert_eq!(ticks_count(62_500_000), 62_500);
        assert_eq!(ticks_count(1_000_000_499), 1_000_000);
        assert_eq!(ticks_count(1_000_000_500), 1_000_001);
        assert_eq!(period_fs(62_500, 62_500_000), 1_000_000_000_000);
        let count = ticks_count(2_893_412_345);
        let period = period_fs(count, 2_893_412_345);
        assert!(period.abs_diff(1_000_000_000_000) < 1_000_000, "{period} fs: within a nanosecond of 1 ms");
    }

    #[test]
    fn the_uncertainty_is_half_of_each_bracket_over_the_interval() {
        let reading = |reference, span| Reading { reference, tsc: 0, lapic: 0, span };
        // 2 ms of a 100 MHz HPET, each end bracketed by 2 us.
        assert_eq!(uncertainty(&reading(1_000, 200), &reading(201_000, 200)), 1000);
        assert_eq!(Percent(1000).to_string(), "0.1000%");
        assert_eq!(Percent(25).to_string(), "0.0025%");
    }

    #[test]
    fn frequencies_print_in_megahertz() {
        assert_eq!(Mhz(62_500_000).to_string(), "62.500 MHz");
        assert_eq!(Mhz(3_579_545).to_string(), "3.579 MHz");
        assert_eq!(Mhz(2_893_412_345).to_string(), "2893.412 MHz");
    }

    fn sources(invariant_tsc: bool, hpet: bool, pm_timer: bool) -> Sources {
        Sources {
            features: Features { x2apic: false, tsc_deadline: false, invariant_tsc, pat: true },
            hpet_hz: hpet.then_some(100_000_000),
            pm_timer,
            rates: Some(Rates { tsc_hz: 3_000_000_000, lapic_hz: Some(62_500_000) }),
        }
    }

    #[test]
    fn the_clock_is_the_invariant_tsc_else_hpet_else_pm_timer_else_ticks() {
        assert_eq!(choose_clock(None, &sources(true, true, true)), Clock::Tsc { hz: 3_000_000_000 });
        assert_eq!(choose_clock(None, &sources(false, true, true)), Clock::Hpet { hz: 100_000_000 });
        assert_eq!(choose_clock(None, &sources(false, false, true)), Clock::PmTimer);
        assert_eq!(choose_clock(None, &sources(false, false, false)), Clock::Ticks);
        let uncalibrated = Sources { rates: None, ..sources(true, false, true) };
        assert_eq!(choose_clock(None, &uncalibrated), Clock::PmTimer);
    }

    #[test]
    fn a_forced_clock_is_taken_when_present() {
        assert_eq!(choose_clock(Some("tsc"), &sources(false, true, true)), Clock::Tsc { hz: 3_000_000_000 });
        assert_eq!(choose_clock(Some("pmtimer"), &sources(true, true, true)), Clock::PmTimer);
        assert_eq!(choose_clock(Some("ticks"), &sources(true, true, true)), Clock::Ticks);
        assert_eq!(choose_clock(Some("hpet"), &sources(true, false, true)), Clock::Tsc { hz: 3_000_000_000 });
        assert_eq!(
            choose_clock(Some("sundial"), &sources(false, true, true)),
            Clock::Hpet { hz: 100_000_000 }
        );
    }

    #[test]
    fn the_timer_is_the_local_apics_unless_legacy_or_forced() {
        let tsc = Clock::Tsc { hz: 3_000_000_000 };
        let mut with_deadline = sources(true, true, true);
        with_deadline.features.tsc_deadline = true;
        assert_eq!(
            choose_timer(None, true, tsc, &with_deadline),
            Timer::TscDeadline { tsc_hz: 3_000_000_000 }
        );
        let hpet = Clock::Hpet { hz: 100_000_000 };
        assert_eq!(choose_timer(None, true, hpet, &with_deadline), Timer::Periodic { lapic_hz: 62_500_000 });
        assert_eq!(choose_timer(Some("pit"), true, tsc, &with_deadline), Timer::Pit);
        assert_eq!(choose_timer(Some("lapic"), false, tsc, &with_deadline), Timer::Pit);
        let uncalibrated = Sources { rates: None, ..sources(false, true, true) };
        assert_eq!(choose_timer(None, true, hpet, &uncalibrated), Timer::Pit);
    }
}
