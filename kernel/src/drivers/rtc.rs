//! The CMOS real-time clock: the date and time the firmware keeps, read
//! through the CMOS index and data ports. A clock independent of the timer
//! interrupts, so it also shows whether those keep time.

use core::fmt;
use x86_64::instructions::port::Port;

const INDEX: u16 = 0x70;
const DATA: u16 = 0x71;
/// Set in the index port to keep NMIs masked while the CMOS is addressed.
const NMI_DISABLE: u8 = 0x80;
const SECONDS: u8 = 0x00;
const MINUTES: u8 = 0x02;
const HOURS: u8 = 0x04;
const DAY: u8 = 0x07;
const MONTH: u8 = 0x08;
const YEAR: u8 = 0x09;
const STATUS_A: u8 = 0x0a;
const STATUS_B: u8 = 0x0b;
/// Status A: an update of the time registers is in progress.
const UPDATING: u8 = 0x80;
/// Status B: values are binary (else BCD); hours are 24-hour (else 12).
const BINARY: u8 = 0x04;
const HOURS_24: u8 = 0x02;
/// In 12-hour mode, the hours register's PM flag.
const PM: u8 = 0x80;

/// A calendar date and time of day, as the RTC keeps it (normally UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

fn read(register: u8) -> u8 {
    // SAFETY: selecting a CMOS register and reading it has no other effect;
    // NMIs stay masked meanwhile, as the CMOS wants.
    unsafe {
        Port::<u8>::new(INDEX).write(NMI_DISABLE | register);
        Port::<u8>::new(DATA).read()
    }
}

/// The raw time registers, read between two updates.
fn registers() -> [u8; 6] {
    let snapshot = || {
        while read(STATUS_A) & UPDATING != 0 {
            core::hint::spin_loop();
        }
        [SECONDS, MINUTES, HOURS, DAY, MONTH, YEAR].map(read)
    };
    let mut last = snapshot();
    loop {
        let again = snapshot();
        if again == last {
            return again;
        }
        last = again;
    }
}

/// The current date and time.
pub fn now() -> DateTime {
    decode(registers(), read(STATUS_B))
}

fn decode([second, minute, hour, day, month, year]: [u8; 6], status_b: u8) -> DateTime {
    let value = |raw: u8| if status_b & BINARY != 0 { raw } else { (raw >> 4) * 10 + (raw & 0x0f) };
    let mut hours = value(hour & !PM);
    if status_b & HOURS_24 == 0 {
        hours %= 12;
        if hour & PM != 0 {
            hours += 12;
        }
    }
    DateTime {
        year: 2000 + value(year) as u16,
        month: value(month),
        day: value(day),
        hour: hours,
        minute: value(minute),
        second: value(second),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_and_binary_registers_decode_alike() {
        let bcd = decode([0x59, 0x30, 0x23, 0x31, 0x12, 0x26], HOURS_24);
        let binary = decode([59, 30, 23, 31, 12, 26], HOURS_24 | BINARY);
        assert_eq!(bcd, binary);
        assert_eq!(bcd.to_string(), "2026-12-31 23:30:59");
    }

    #[test]
    fn twelve_hour_clocks_are_made_24_hour() {
        assert_eq!(decode([0, 0, 0x12, 1, 1, 0], 0).hour, 0, "12 AM is midnight");
        assert_eq!(decode([0, 0, PM | 0x12, 1, 1, 0], 0).hour, 12, "12 PM is noon");
        assert_eq!(decode([0, 0, PM | 0x03, 1, 1, 0], 0).hour, 15);
    }
}
