//! The shell's commands, parsed from a line.

use core::time::Duration;

#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    Help,
    Clear,
    Echo(&'a str),
    Uptime,
    Date,
    Mem,
    BootInfo,
    Acpi,
    Pci,
    Colors,
    Sleep(Duration),
    Seq(u32),
    Reboot,
    Poweroff,
    Panic,
    /// An empty line.
    Nothing,
    /// What went wrong, in one line.
    Error(Error<'a>),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Error<'a> {
    Unknown(&'a str),
    Usage(&'static str),
}

/// The commands and what they do, for `help`.
pub const HELP: &[(&str, &str)] = &[
    ("help", "list the commands"),
    ("clear", "clear the screen"),
    ("echo TEXT", "print TEXT"),
    ("uptime", "time since boot"),
    ("date", "the date and time of the CMOS clock"),
    ("mem", "frame and heap statistics"),
    ("bootinfo", "what the bootloader handed over"),
    ("acpi", "what the firmware's ACPI tables describe"),
    ("pci", "the PCI devices: address, vendor:device, class, BARs"),
    ("colors", "the ANSI colour palette"),
    ("sleep N", "wait N seconds (other tasks keep running)"),
    ("seq N", "print the numbers 1 to N, one a line"),
    ("reboot", "restart the machine"),
    ("poweroff", "switch the machine off (ACPI)"),
    ("panic", "panic, to see the panic screen"),
];

/// The most lines `seq` prints.
const MAX_SEQ: u32 = 100_000;

/// The longest `sleep` accepted.
const MAX_SLEEP_SECONDS: u64 = 3600;

pub fn parse(line: &str) -> Command<'_> {
    let line = line.trim();
    let (name, rest) = line.split_once(char::is_whitespace).map_or((line, ""), |(n, r)| (n, r.trim()));
    let no_arguments =
        |command| if rest.is_empty() { command } else { Command::Error(Error::Usage("takes no arguments")) };
    match name {
        "" => Command::Nothing,
        "help" => no_arguments(Command::Help),
        "clear" => no_arguments(Command::Clear),
        "echo" => Command::Echo(rest),
        "uptime" => no_arguments(Command::Uptime),
        "date" => no_arguments(Command::Date),
        "mem" => no_arguments(Command::Mem),
        "bootinfo" => no_arguments(Command::BootInfo),
        "acpi" => no_arguments(Command::Acpi),
        "pci" => no_arguments(Command::Pci),
        "colors" | "colours" => no_arguments(Command::Colors),
        "reboot" => no_arguments(Command::Reboot),
        "poweroff" => no_arguments(Command::Poweroff),
        "panic" => no_arguments(Command::Panic),
        "sleep" => match rest.parse::<u64>() {
            Ok(seconds) if seconds <= MAX_SLEEP_SECONDS => Command::Sleep(Duration::from_secs(seconds)),
            _ => Command::Error(Error::Usage("usage: sleep SECONDS (0 to 3600)")),
        },
        "seq" => match rest.parse::<u32>() {
            Ok(count) if count <= MAX_SEQ => Command::Seq(count),
            _ => Command::Error(Error::Usage("usage: seq N (0 to 100000)")),
        },
        other => Command::Error(Error::Unknown(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_arguments() {
        assert_eq!(parse("help"), Command::Help);
        assert_eq!(parse("  echo   hello  world "), Command::Echo("hello  world"));
        assert_eq!(parse("echo"), Command::Echo(""));
        assert_eq!(parse("sleep 3"), Command::Sleep(Duration::from_secs(3)));
        assert_eq!(parse(""), Command::Nothing);
        assert_eq!(parse("   "), Command::Nothing);
        assert_eq!(parse("colours"), Command::Colors);
        assert_eq!(parse("date"), Command::Date);
        assert_eq!(parse("poweroff"), Command::Poweroff);
        assert_eq!(parse("acpi"), Command::Acpi);
        assert_eq!(parse("pci"), Command::Pci);
    }

    #[test]
    fn mistakes_get_a_one_line_error() {
        assert_eq!(parse("frobnicate now"), Command::Error(Error::Unknown("frobnicate")));
        assert!(matches!(parse("sleep"), Command::Error(Error::Usage(_))));
        assert!(matches!(parse("sleep -1"), Command::Error(Error::Usage(_))));
        assert!(matches!(parse("sleep 99999"), Command::Error(Error::Usage(_))));
        assert_eq!(parse("seq 200"), Command::Seq(200));
        assert!(matches!(parse("seq"), Command::Error(Error::Usage(_))));
        assert!(matches!(parse("seq 100001"), Command::Error(Error::Usage(_))));
        assert!(matches!(parse("mem now"), Command::Error(Error::Usage(_))));
    }
}
