//! The `log` facade's backend. Every record goes to serial as
//! `[LEVEL] module: message`, the form the test runner and a human both scan;
//! records at or above the screen level also go to the screen, with the level
//! in colour.

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
        super::print_serial(format_args!("[{:<5}] {}: {}\n", record.level(), record.target(), record.args()));
    }

    fn flush(&self) {}
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
