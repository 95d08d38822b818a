//! The `log` facade's backend. Every record goes to serial as
//! `[TIME] [LEVEL] module: message`, the form the test runner and a human
//! both scan; records at or above the screen level also go to the screen,
//! with the level in colour (and no timestamp).
//!
//! TIME is read from the TSC, which counts from the CPU's reset (QEMU's
//! start, under emulation), so the first line shows what firmware and
//! bootloader took. Until the clock's calibration has measured the TSC it is
//! the raw count, `[tsc 1234567890]`; from then on seconds, `[   1.234567]`.

use crate::arch::cpu;
use crate::time;
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};
use log::{Level, LevelFilter, Log, Metadata, Record};

struct Logger;

static LOGGER: Logger = Logger;

/// The least severe level shown on screen, as `Level as usize`.
static SCREEN_LEVEL: AtomicUsize = AtomicUsize::new(Level::Info as usize);

impl Log for Logger {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }

    fn log(&self, record: &Record) {
        // The screen first, as `print` does.
        if record.level() as usize <= SCREEN_LEVEL.load(Ordering::Relaxed) {
            super::print_screen(format_args!(
                "\x1b[{}m{:<5}\x1b[0m {}: {}\n",
                level_color(record.level()),
                record.level(),
                record.target(),
                record.args()
            ));
        }
        let stamp = Stamp { tsc: cpu::read_tsc(), hz: time::tsc_hz() };
        super::print_serial(format_args!(
            "{stamp} [{:<5}] {}: {}\n",
            record.level(),
            record.target(),
            record.args()
        ));
    }

    fn flush(&self) {}
}

/// A log line's timestamp: a TSC reading, in seconds once its rate is known.
struct Stamp {
    tsc: u64,
    hz: Option<u64>,
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.hz {
            Some(hz) => {
                let micros = time::mul_div(self.tsc % hz, 1_000_000, hz);
                write!(f, "[{:>4}.{:06}]", self.tsc / hz, micros)
            }
            None => write!(f, "[tsc {}]", self.tsc),
        }
    }
}

/// SGR colour of each level's name on screen.
fn level_color(level: Level) -> &'static str {
    match level {
        Level::Error => "1;31",
        Level::Warn => "1;33",
        Level::Info => "32",
        Level::Debug => "36",
        Level::Trace => "90",
    }
}

/// Installs the logger. A second call (a test kernel reusing boot code) is
/// harmless: the first logger stays.
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Trace);
    }
}

/// Sets the screen level from `loglevel=` (error, warn, info, debug, trace).
pub fn set_screen_level(setting: Option<&str>) {
    let Some(setting) = setting else { return };
    match setting.parse::<Level>() {
        Ok(level) => SCREEN_LEVEL.store(level as usize, Ordering::Relaxed),
        Err(_) => {
            log::warn!("ignoring loglevel={setting} (expected error, warn, info, debug or trace)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Stamp;

    #[test]
    fn stamps_are_raw_until_calibrated_then_seconds() {
        assert_eq!(Stamp { tsc: 2_149_876_543, hz: None }.to_string(), "[tsc 2149876543]");
        let hz = Some(2_298_305_000);
        assert_eq!(Stamp { tsc: 2_149_876_543, hz }.to_string(), "[   0.935418]");
        assert_eq!(Stamp { tsc: 0, hz }.to_string(), "[   0.000000]");
        assert_eq!(Stamp { tsc: 2_298_305_000 * 12_345, hz }.to_string(), "[12345.000000]");
    }
}
