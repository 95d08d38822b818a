//! The `log` facade's backend: every record goes to serial as
//! `[LEVEL] module: message`, the form the test runner and a human both scan.

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Logger;

static LOGGER: Logger = Logger;

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= Level::Trace
    }

    fn log(&self, record: &Record) {
        super::serial::write_fmt(format_args!(
            "[{:<5}] {}: {}\n",
            record.level(),
            record.target(),
            record.args()
        ));
    }

    fn flush(&self) {}
}

/// Installs the logger. A second call (a test kernel reusing boot code) is
/// harmless: the first logger stays.
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}
