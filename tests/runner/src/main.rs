//! `make test`: runs the host unit tests, builds every test kernel, boots each
//! one (and the real kernel) in QEMU under BIOS and UEFI, prints one line per
//! boot and ends with `N passed, N failed`.

mod build;
mod qemu;

use qemu::{Boot, Expect, Firmware, Medium, Outcome, SHELL_READY, Step, Via};
use serde_json::json;
use std::{
    collections::VecDeque,
    env,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{Arc, Mutex, mpsc},
    thread,
    time::Instant,
};

/// What the real kernel prints when it has finished booting.
const IDLE_LINE: &str = "boot complete, entering the idle loop";
/// What it prints when `console=vga` is asked for under UEFI.
const VGA_REFUSED_LINE: &str = "console=vga refused: UEFI firmware has no VGA text mode";

struct Options {
    /// The real kernel's ISO and ELF.
    iso: PathBuf,
    kernel: PathBuf,
    qemu: qemu::Settings,
    filter: Option<String>,
    jobs: usize,
    /// Where `make screenshot` saves the picture; no tests then.
    screenshot: Option<PathBuf>,
}

fn main() -> ExitCode {
    let options = match parse_args(env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("test-runner: {message}");
            eprintln!(
                "usage: test-runner --iso ISO --kernel ELF --ovmf-code FILE --ovmf-vars FILE \
                 [--accel tcg|kvm] [--filter TEXT] [--jobs N] [--screenshot PNG]"
            );
            return ExitCode::from(2);
        }
    };
    let mut tally = Tally::default();
    if let Some(file) = options.screenshot.clone() {
        run_boots(vec![screenshot_boot(&options.iso, file)], &options, &mut tally);
        return if tally.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }

    let host = build::host_unit_tests();
    tally.add_host(&host);

    let mut boots = Vec::new();
    match build::test_kernels() {
        Ok(kernels) => {
            for kernel in kernels {
                match build::iso_for(&kernel.name, &kernel.elf, Path::new("limine.conf")) {
                    Ok(iso) => boots.extend(kernel.settings.firmwares.iter().map(|&firmware| Boot {
                        name: kernel.name.clone(),
                        iso: iso.clone(),
                        firmware,
                        medium: Medium::Cd,
                        qemu_args: kernel.settings.qemu_args_for(firmware),
                        expect: if kernel.settings.expect_serial.is_empty() {
                            Expect::ExitSuccess
                        } else {
                            Expect::SerialLines(kernel.settings.expect_serial.clone())
                        },
                    })),
                    Err(log) => tally.fail(&format!("image  {}", kernel.name), &log),
                }
            }
        }
        Err(log) => tally.fail("build  test kernels", &log),
    }
    // The second limine.conf entry, console=vga, on the adapters whose way
    // back to text mode the kernel knows (std = Bochs DISPI, and Cirrus).
    match build::vga_entry_conf().and_then(|conf| build::iso_for("ember-vga", &options.kernel, &conf)) {
        Ok(iso) => {
            boots.extend(["std", "cirrus"].map(|adapter| Boot {
                name: format!("vga_text_mode_{adapter}"),
                iso: iso.clone(),
                firmware: Firmware::Bios,
                medium: Medium::Cd,
                qemu_args: vec!["-vga".into(), adapter.into()],
                expect: Expect::VgaTextLine(IDLE_LINE),
            }));
            boots.push(Boot {
                name: "vga_text_mode_refused".into(),
                iso,
                firmware: Firmware::Uefi,
                medium: Medium::Cd,
                qemu_args: Vec::new(),
                expect: Expect::SerialLines(vec![VGA_REFUSED_LINE.into()]),
            });
        }
        Err(log) => tally.fail("image  ember-vga", &log),
    }
    // Typing into the shell, on the keyboard and on the serial line.
    for firmware in Firmware::ALL {
        for (via, name, command, output) in [
            (Via::Keyboard, "shell_via_keyboard", "echo Typed ON the Keyboard", "Typed ON the Keyboard"),
            (Via::Serial, "shell_via_serial", "echo sent over serial", "sent over serial"),
        ] {
            boots.push(Boot {
                name: name.into(),
                iso: options.iso.clone(),
                firmware,
                medium: Medium::Cd,
                qemu_args: Vec::new(),
                expect: Expect::Shell { via, command, output },
            });
        }
    }
    boots.extend(scripted_boots(&options.iso));
    let mut product = vec![(Firmware::Bios, Medium::Cd), (Firmware::Uefi, Medium::Cd)];
    product.push((Firmware::Uefi, Medium::UsbStick));
    if qemu::bios_installed(&options.iso) {
        product.push((Firmware::Bios, Medium::UsbStick));
    } else {
        println!(
            "note: {} is not bios-installed, so BIOS boot from USB is not tested",
            options.iso.display()
        );
    }
    boots.extend(product.into_iter().map(|(firmware, medium)| Boot {
        name: "kernel_reaches_idle".into(),
        iso: options.iso.clone(),
        firmware,
        medium,
        qemu_args: Vec::new(),
        expect: Expect::SerialLines(vec![IDLE_LINE.into()]),
    }));
    if let Some(filter) = &options.filter {
        boots.retain(|boot| boot.name.contains(filter.as_str()));
    }
    // Longest first (UEFI boots spend seconds in the firmware), so that the
    // parallel slots finish together.
    boots.sort_by_key(|boot| boot.firmware != Firmware::Uefi);

    run_boots(boots, &options, &mut tally);
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if tally.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The picture in the README: the real kernel on BIOS after `help`,
/// `colors` and `mem`, saved once `mem` has printed its last line.
fn screenshot_boot(iso: &Path, file: PathBuf) -> Boot {
    Boot {
        name: "screenshot".into(),
        iso: iso.to_path_buf(),
        firmware: Firmware::Bios,
        medium: Medium::Cd,
        qemu_args: Vec::new(),
        expect: Expect::Script(vec![
            Step::Serial(SHELL_READY),
            Step::Type(Via::Serial, "help"),
            Step::Type(Via::Serial, "colors"),
            Step::Type(Via::Serial, "mem"),
            Step::Serial("console      scrollback"),
            Step::Serial("\n> "),
            Step::Screendump(file),
        ]),
    }
}

/// The real kernel surviving what a machine can throw at it, one boot each:
/// an NMI and then a machine check (injected through the monitor), garbage
/// on the serial line, and a reboot that must reset the machine.
fn scripted_boots(iso: &Path) -> Vec<Boot> {
    let boot = |name: &str, steps| Boot {
        name: name.into(),
        iso: iso.to_path_buf(),
        firmware: Firmware::Bios,
        medium: Medium::Cd,
        qemu_args: Vec::new(),
        expect: Expect::Script(steps),
    };
    vec![
        boot(
            "nmi_then_machine_check",
            vec![
                Step::Serial(SHELL_READY),
                Step::Monitor(json!({"execute": "inject-nmi"})),
                Step::Serial("non-maskable interrupt (NMI, vector 2) at RIP"),
                Step::Type(Via::Serial, "echo alive after the NMI"),
                Step::Serial("\nalive after the NMI\n"),
                Step::Monitor(json!({"execute": "human-monitor-command",
                    "arguments": {"command-line": "mce 0 1 0xbc00000000000085 0x5 0x1234000 0x86"}})),
                Step::Serial("EXCEPTION: machine check (#MC) (vector 18)"),
                Step::Serial("bank 1: status 0xbc00000000000085, address 0x1234000, uncorrected"),
                Step::Serial("CPU halted."),
            ],
        ),
        boot(
            "serial_garbage_then_a_command",
            vec![
                Step::Serial(SHELL_READY),
                // Invalid UTF-8, a lone ESC, a cut-short character, and an
                // arrow key split across writes, inside an echo.
                Step::SerialBytes(b"echo \xffa\x1bb\x1b["),
                Step::SerialBytes(b"C\xc3z\r"),
                Step::Serial("\n\u{fffd}ab\u{fffd}z\n"),
            ],
        ),
        // 200 numbered lines, then Shift+PgUp three times: with the screen's
        // 50 rows, line 10 is in view only scrolled back; any key returns.
        boot(
            "scrollback",
            vec![
                Step::Serial(SHELL_READY),
                Step::Type(Via::Serial, "seq 200"),
                Step::Serial("\n200\n"),
                Step::Keys(&["shift", "pgup"]),
                Step::Keys(&["shift", "pgup"]),
                Step::Keys(&["shift", "pgup"]),
                Step::Screen("10 "),
                Step::Keys(&["end"]),
                Step::Screen("200 "),
                Step::Screen("> "),
            ],
        ),
        boot(
            "reboot_resets_the_machine",
            vec![
                Step::Serial(SHELL_READY),
                Step::Type(Via::Serial, "reboot"),
                Step::Serial("rebooting"),
                Step::Exit,
            ],
        ),
    ]
}

/// Boots in parallel (QEMU under TCG keeps one core busy per boot) and prints
/// each result as it arrives.
fn run_boots(boots: Vec<Boot>, options: &Options, tally: &mut Tally) {
    let count = boots.len();
    let queue = Arc::new(Mutex::new(VecDeque::from(boots)));
    let (results, received) = mpsc::channel();
    thread::scope(|scope| {
        for _ in 0..options.jobs.min(count.max(1)) {
            let queue = Arc::clone(&queue);
            let results = results.clone();
            let settings = &options.qemu;
            scope.spawn(move || {
                while let Some(boot) = queue.lock().expect("queue lock").pop_front() {
                    let outcome = qemu::run(&boot, settings);
                    if results.send((boot, outcome)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(results);
        for (boot, outcome) in received {
            tally.add_boot(&boot, &outcome);
        }
    });
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn add_host(&mut self, host: &build::HostTests) {
        let status = if host.failed == 0 && host.ok { "PASS" } else { "FAIL" };
        println!(
            "{status}  host      unit tests              {:>3} passed, {} failed  {:>5.1}s",
            host.passed, host.failed, host.seconds
        );
        self.passed += host.passed;
        self.failed += host.failed;
        if !host.ok {
            if host.failed == 0 {
                self.failed += 1;
            }
            print_tail(&host.log);
        }
    }

    fn add_boot(&mut self, boot: &Boot, outcome: &Outcome) {
        let status = if outcome.passed { "PASS" } else { "FAIL" };
        println!(
            "{status}  {:<4} {:<3}  {:<27} {:>5.1}s  {}",
            boot.firmware.name(),
            boot.medium.name(),
            boot.name,
            outcome.seconds,
            outcome.summary
        );
        if outcome.passed {
            self.passed += 1;
        } else {
            self.failed += 1;
            print_tail(&outcome.log);
        }
    }

    fn fail(&mut self, what: &str, log: &str) {
        println!("FAIL  {what}");
        self.failed += 1;
        print_tail(log);
    }
}

/// The end of a failure's log, indented under its result line.
fn print_tail(log: &str) {
    const LINES: usize = 30;
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.len().saturating_sub(LINES);
    if start > 0 {
        println!("      ... ({start} earlier lines)");
    }
    for line in &lines[start..] {
        println!("      | {line}");
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let (mut iso, mut kernel, mut code, mut vars) = (None, None, None, None);
    let mut accel = "tcg".to_string();
    let mut filter = None;
    let mut screenshot = None;
    let mut jobs = thread::available_parallelism().map_or(1, |n| n.get());
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--iso" => iso = Some(PathBuf::from(value()?)),
            "--kernel" => kernel = Some(PathBuf::from(value()?)),
            "--ovmf-code" => code = Some(PathBuf::from(value()?)),
            "--ovmf-vars" => vars = Some(PathBuf::from(value()?)),
            "--accel" => accel = value()?,
            "--filter" => filter = Some(value()?).filter(|f| !f.is_empty()),
            "--screenshot" => screenshot = Some(PathBuf::from(value()?)),
            "--jobs" => {
                jobs = value()?.parse().map_err(|_| "--jobs takes a positive number")?;
                jobs = jobs.max(1);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Options {
        iso: iso.ok_or("--iso is required")?,
        kernel: kernel.ok_or("--kernel is required")?,
        qemu: qemu::Settings {
            accel,
            ovmf_code: code.ok_or("--ovmf-code is required")?,
            ovmf_vars: vars.ok_or("--ovmf-vars is required")?,
        },
        filter,
        jobs,
        screenshot,
    })
}

/// Seconds since `start`, for the result lines.
fn seconds_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}
