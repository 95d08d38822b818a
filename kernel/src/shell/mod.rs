//! The interactive shell: a prompt on the console, the line editor, and the
//! commands. Keys come from the keyboard and the serial line alike.

pub mod command;
pub mod line;

use crate::console::Scroll;
use crate::task::executor;
use crate::task::input::{KEYS, Key};
use crate::{boot, console, mem, print, println};
use crate::{drivers, time};
use command::{Command, Error, HELP};
use core::fmt::{self, Write};
use line::{LineEditor, Outcome};

/// The longest line typed (less on a narrow console).
const MAX_LINE: usize = 200;
const PROMPT: &str = "> ";

/// Text to every console.
struct Consoles;

impl Write for Consoles {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        print!("{s}");
        Ok(())
    }
}

/// Reads lines and runs them, forever.
pub async fn task() {
    let width = console::with_grid(|grid| grid.cols()).unwrap_or(80);
    let mut editor = LineEditor::new(PROMPT, MAX_LINE.min(width.saturating_sub(PROMPT.len() + 1)));
    println!("\nEmber shell. Type 'help' for the commands.");
    let _ = editor.start(&mut Consoles);
    loop {
        let key = KEYS.next().await;
        // Shift with Page Up/Down or Up/Down moves through the scrollback;
        // any other key brings the view back to the bottom.
        let scroll = match key {
            Key::ShiftPageUp => Scroll::Pages(1),
            Key::ShiftPageDown => Scroll::Pages(-1),
            Key::ShiftUp => Scroll::Lines(1),
            Key::ShiftDown => Scroll::Lines(-1),
            _ => Scroll::Bottom,
        };
        console::scroll_view(scroll);
        if scroll != Scroll::Bottom {
            continue;
        }
        match editor.key(key, &mut Consoles) {
            Ok(Outcome::Line(line)) => {
                run(command::parse(&line)).await;
                let _ = editor.start(&mut Consoles);
            }
            Ok(Outcome::Cancelled) => {
                let _ = editor.start(&mut Consoles);
            }
            Ok(Outcome::Editing) | Err(_) => {}
        }
    }
}

async fn run(command: Command<'_>) {
    match command {
        Command::Nothing => {}
        Command::Help => {
            for (usage, what) in HELP {
                println!("  {usage:<12} {what}");
            }
        }
        Command::Clear => print!("\x1b[2J\x1b[H"),
        Command::Echo(text) => println!("{text}"),
        Command::Uptime => {
            let uptime = time::uptime();
            println!(
                "up {}.{:03} s ({} timer ticks, the idle CPU halted {} times)",
                uptime.as_secs(),
                uptime.subsec_millis(),
                time::ticks(),
                executor::idle_halts()
            );
        }
        Command::Date => println!("{} (CMOS clock, usually UTC)", drivers::rtc::now()),
        Command::Mem => {
            print!("{}", mem::stats());
            if let Some(scrollback) = console::scrollback_stats() {
                println!(
                    "console      scrollback of {} lines ({} kept), {} KiB of boot memory",
                    scrollback.capacity,
                    scrollback.used,
                    scrollback.bytes / 1024
                );
            }
        }
        Command::BootInfo => bootinfo(),
        Command::Acpi => match drivers::acpi::info() {
            Some(acpi) => print!("{acpi}"),
            None => println!("no ACPI tables (see the boot log for why)"),
        },
        Command::Pci => pci(),
        Command::Colors => colors(),
        Command::Sleep(duration) => {
            time::sleep(duration).await;
            println!("slept {} s", duration.as_secs());
        }
        Command::Seq(count) => {
            for n in 1..=count {
                println!("{n}");
            }
        }
        Command::Reboot => {
            println!("rebooting");
            // The reset comes before the executor's next round.
            console::stop_coalescing();
            drivers::reboot()
        }
        Command::Poweroff => {
            println!("powering off");
            // What power_off logs must be out before the machine is.
            console::stop_coalescing();
            let why = drivers::acpi::power_off();
            console::coalesce_output();
            println!("poweroff failed: {why}");
        }
        Command::Panic => panic!("panic requested from the shell"),
        Command::Error(Error::Unknown(name)) => println!("{name}: unknown command (try 'help')"),
        Command::Error(Error::Usage(message)) => println!("{message}"),
    }
}

fn bootinfo() {
    let info = boot::info();
    let (name, version) = info.bootloader().unwrap_or(("unknown bootloader", "?"));
    println!("bootloader   {name} {version}, protocol base revision {}", boot::BASE_REVISION);
    println!("firmware     {}", info.firmware);
    println!("HHDM offset  {:#x}", info.hhdm_offset);
    println!(
        "memory       {} MiB usable, {} map entries",
        info.usable_bytes() >> 20,
        info.memory_map().len()
    );
    match &info.framebuffer {
        Some(fb) => println!("framebuffer  {}x{}, pitch {}, {} bpp", fb.width, fb.height, fb.pitch, fb.bpp),
        None => println!("framebuffer  none"),
    }
    match info.rsdp {
        Some(rsdp) => println!("ACPI RSDP    {rsdp:#x} ('acpi' lists the tables)"),
        None => println!("ACPI RSDP    none"),
    }
    match info.cmdline() {
        "" => println!("command line none"),
        cmdline => println!("command line {cmdline}"),
    }
}

fn colors() {
    for (row, base) in [(0, 30), (1, 90)] {
        for i in 0..8 {
            print!("\x1b[{}m {:>2} \x1b[0m", base + i + 10, row * 8 + i);
        }
        println!();
    }
    for i in 16..232u16 {
        print!("\x1b[48;5;{i}m \x1b[0m");
        if (i - 16) % 36 == 35 {
            println!();
        }
    }
    for i in 232..=255u16 {
        print!("\x1b[48;5;{i}m  \x1b[0m");
    }
    println!();
}

/// One line per PCI function, then one per BAR.
fn pci() {
    for function in drivers::pci::functions() {
        println!(
            "{} {:04x}:{:04x} class {:06x} {}",
            function.address,
            function.id.vendor,
            function.id.device,
            function.class,
            function.class_name()
        );
        for (index, bar) in function.bars().iter() {
            println!("    BAR{index}: {bar}");
        }
    }
}
