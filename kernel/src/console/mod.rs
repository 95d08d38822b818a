//! Where the kernel's text goes: the serial line (COM1) and, through the `log`
//! facade, leveled records tagged with their module.

pub mod logger;
pub mod serial;

use core::fmt;

/// Brings up COM1 and routes `log` records to it. Call first thing at boot so
/// that every later message, including a failed boot check, is seen.
pub fn init() {
    serial::init();
    logger::init();
}

/// Formats to every console; the backend of [`print!`](crate::print).
pub fn print(args: fmt::Arguments) {
    serial::write_fmt(args);
}

/// Prints to the kernel's consoles.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::console::print(format_args!($($arg)*)));
}

/// Prints a line to the kernel's consoles.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::console::print(format_args!("{}\n", format_args!($($arg)*))));
}
