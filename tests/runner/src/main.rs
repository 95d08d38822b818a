//! `make test`: runs the host unit tests, builds every test kernel, boots each
//! one (and the real kernel) in QEMU under BIOS and UEFI, prints one line per
//! boot and ends with `N passed, N failed`. With `--matrix` (`make
//! test-matrix`) it boots only the real kernel, on every combination of
//! firmware, medium, machine model and memory size, and prints a table.
//! With `--bench-boot` (`make bench`) it times the kernel's boot instead;
//! with `--build-host-tests` it only builds the host unit tests.

mod bench;
mod build;
mod matrix;
mod qemu;

use qemu::{Boot, Expect, Firmware, Medium, Outcome, SHELL_READY, Step, Via};
use serde_json::json;
use std::{
    collections::VecDeque,
    env, fs,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{Mutex, mpsc},
    thread,
    time::Instant,
};

/// What the real kernel prints when it has finished booting.
const IDLE_LINE: &str = "boot complete, entering the idle loop";
/// What its shell prints when it is ready for commands.
const PROMPT_LINE: &str = "Type 'help' for the commands.";
/// What it prints when `console=vga` is asked for under UEFI.
const VGA_REFUSED_LINE: &str = "console=vga refused: UEFI firmware has no VGA text mode";
/// What the unpacker says about a damaged kernel file.
const DAMAGED_LINE: &str = "unpack: the compressed kernel's checksum does not match: the boot medium may be damaged (write it again). Halting.";

struct Options {
    /// The real kernel's ISO, disk image and ELF.
    iso: PathBuf,
    hdd: PathBuf,
    kernel: PathBuf,
    qemu: qemu::Settings,
    filter: Option<String>,
    jobs: usize,
    matrix: bool,
    bench_boot: bool,
    /// Where `make screenshot` saves the picture; no tests then.
    screenshot: Option<PathBuf>,
}

fn main() -> ExitCode {
    if env::args().nth(1).as_deref() == Some("--build-host-tests") {
        return build::build_host_unit_tests();
    }
    let options = match parse_args(env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("test-runner: {message}");
            eprintln!(
                "usage: test-runner --iso ISO --hdd IMAGE --kernel ELF --ovmf-code FILE --ovmf-vars FILE \
                 [--accel tcg|kvm] [--filter TEXT] [--jobs N] [--matrix] [--bench-boot] [--screenshot PNG]"
            );
            return ExitCode::from(2);
        }
    };
    if options.matrix {
        return test_matrix(&options);
    }
    if options.bench_boot {
        return bench::run(&options.iso, &options.qemu);
    }
    let mut tally = Tally::default();
    if let Some(file) = options.screenshot.clone() {
        run_boots(vec![screenshot_boot(&options.iso, file)], &options, |boot, outcome| {
            tally.add_boot(boot, outcome)
        });
        return if tally.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }

    // The images: the test kernels' once they are compiled, while one more
    // thread builds the real kernel's own for particular boots.
    let (kernel_images, (vga_iso, damaged_iso, screens, machines)) = thread::scope(|scope| {
        let others = scope.spawn(|| {
            (
                build::vga_entry_conf().and_then(|conf| build::iso_for("ember-vga", &options.kernel, &conf)),
                build::damaged_kernel_iso(&options.kernel),
                screen_boots(&options.kernel),
                qemu::platform::boots(&options.kernel),
            )
        });
        let kernels = test_kernel_images(options.jobs);
        (kernels, others.join().expect("the thread building the real kernel's images panicked"))
    });

    let mut boots = Vec::new();
    match kernel_images {
        Ok(images) => {
            for (kernel, iso) in images {
                match iso {
                    Ok(iso) => boots.extend(kernel.settings.firmwares.iter().map(|&firmware| {
                        let expect = if kernel.settings.expect_serial.is_empty() {
                            Expect::ExitSuccess
                        } else {
                            Expect::SerialLines(kernel.settings.expect_serial.clone())
                        };
                        Boot {
                            qemu_args: kernel.settings.qemu_args_for(firmware),
                            ..Boot::new(&kernel.name, &iso, firmware, expect)
                        }
                    })),
                    Err(log) => tally.fail(&format!("image  {}", kernel.name), &log),
                }
            }
        }
        Err(log) => tally.fail("build  test kernels", &log),
    }
    // The second limine.conf entry, console=vga, on the adapters whose way
    // back to text mode the kernel knows (std = Bochs DISPI, and Cirrus).
    match vga_iso {
        Ok(iso) => {
            boots.extend(["std", "cirrus"].map(|adapter| Boot {
                qemu_args: vec!["-vga".into(), adapter.into()],
                ..Boot::new(
                    format!("vga_text_mode_{adapter}"),
                    &iso,
                    Firmware::Bios,
                    Expect::VgaTextLine(IDLE_LINE),
                )
            }));
            boots.push(Boot::new(
                "vga_text_mode_refused",
                &iso,
                Firmware::Uefi,
                Expect::SerialLines(vec![VGA_REFUSED_LINE.into()]),
            ));
        }
        Err(log) => tally.fail("image  ember-vga", &log),
    }
    match damaged_iso {
        Ok(iso) => boots.push(Boot::new(
            "damaged_kernel_image",
            &iso,
            Firmware::Bios,
            Expect::StopsBeforeKernel(DAMAGED_LINE),
        )),
        Err(log) => tally.fail("image  damaged_kernel", &log),
    }
    // Boot media: the real kernel from the ISO as a CD, a hard disk and a
    // USB stick, and from `make hdd`'s disk image as a hard disk, on both
    // firmwares. Two of them also type into the shell, on the keyboard and
    // on the serial line, which needs the boot to have completed anyway.
    for image in [&options.iso, &options.hdd] {
        if let Err(log) = build::check_bios_installed(image) {
            tally.fail(&format!("image  {}", image.display()), &log);
        }
    }
    for firmware in Firmware::ALL {
        let keyboard = Expect::Shell {
            via: Via::Keyboard,
            command: "echo Typed ON the Keyboard",
            output: "Typed ON the Keyboard",
        };
        let serial =
            Expect::Shell { via: Via::Serial, command: "echo sent over serial", output: "sent over serial" };
        let idle = || Expect::SerialLines(vec![IDLE_LINE.into()]);
        let media = match firmware {
            Firmware::Bios => vec![
                ("shell_via_keyboard", &options.iso, Medium::Cd, keyboard),
                ("kernel_reaches_idle", &options.iso, Medium::Disk, idle()),
                ("shell_via_serial", &options.iso, Medium::UsbStick, serial),
                ("hdd_reaches_idle", &options.hdd, Medium::Disk, idle()),
            ],
            // Each UEFI boot costs seconds in OVMF: the test kernels boot
            // the ISO as a CD, and the USB keyboard boot boots it as a stick
            // and types on serial.
            Firmware::Uefi => vec![
                ("shell_via_keyboard", &options.iso, Medium::Disk, keyboard),
                ("hdd_reaches_idle", &options.hdd, Medium::Disk, idle()),
            ],
        };
        for (name, image, medium, expect) in media {
            boots.push(Boot { medium, ..Boot::new(name, image, firmware, expect) });
        }
    }
    boots.extend(scripted_boots(&options.iso));
    match screens {
        Ok(screens) => boots.extend(screens),
        Err(log) => tally.fail("image  screens", &log),
    }
    boots.extend(usb_boots(&options.iso));
    // Modern and old PCs: interrupt paths, clocks, timers, power.
    match machines {
        Ok(machines) => boots.extend(machines),
        Err(log) => tally.fail("image  machines", &log),
    }
    if let Some(filter) = &options.filter {
        boots.retain(|boot| boot.name.contains(filter.as_str()));
    }
    // Longest first (UEFI boots spend seconds in the firmware), so that the
    // parallel slots finish together.
    boots.sort_by_key(|boot| boot.firmware != Firmware::Uefi);

    // The host tests run beside the boots: cargo is done with the test
    // kernels by now, and many boots spend their time waiting on the clock.
    let host = thread::spawn(build::host_unit_tests);
    run_boots(boots, &options, |boot, outcome| tally.add_boot(boot, outcome));
    match host.join() {
        Ok(host) => tally.add_host(&host),
        Err(_) => tally.fail("host   unit tests", "the thread running cargo test panicked"),
    }
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if tally.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// A test kernel with its ISO, or why it has none.
type TestKernelImage = (build::TestKernel, Result<PathBuf, String>);

/// Compiles the test kernels and builds their ISOs, in the kernels' order.
/// An image takes about 0.3 s, most of it xorriso sleeping: it looks at its
/// writer every 0.1 s. So they are built three per core: 24 took 7.9 s two
/// at a time, 2.3 s six at a time.
fn test_kernel_images(jobs: usize) -> Result<Vec<TestKernelImage>, String> {
    let mut images = Vec::new();
    in_parallel(
        build::test_kernels()?.into_iter().enumerate().collect(),
        3 * jobs,
        |(_, kernel)| test_kernel_iso(kernel),
        |(index, kernel), iso| images.push((index, kernel, iso)),
    );
    images.sort_by_key(|&(index, ..)| index);
    Ok(images.into_iter().map(|(_, kernel, iso)| (kernel, iso)).collect())
}

/// A test kernel's ISO, with its command line in `limine.conf` if it has one.
fn test_kernel_iso(kernel: &build::TestKernel) -> Result<PathBuf, String> {
    let conf = match &kernel.settings.cmdline {
        Some(cmdline) => fs::read_to_string("limine.conf")
            .map_err(|error| format!("limine.conf: {error}"))
            .and_then(|conf| qemu::platform::conf_with_cmdline(&kernel.name, &conf, cmdline))?,
        None => PathBuf::from("limine.conf"),
    };
    build::iso_for(&kernel.name, &kernel.elf, &conf)
}

/// 200 numbered lines (`seq 200`, typed `via`), then Shift+PgUp three times
/// on the keyboard: with the screen's 50 rows, line 10 is in view only
/// scrolled back; End returns to the bottom and the prompt.
fn scroll_back(via: Via) -> Vec<Step> {
    vec![
        Step::Type(via, "seq 200"),
        Step::Serial("\n200\n"),
        Step::Keys(&["shift", "pgup"]),
        Step::Keys(&["shift", "pgup"]),
        Step::Keys(&["shift", "pgup"]),
        Step::Screen("10 "),
        Step::Keys(&["end"]),
        Step::Screen("200 "),
        Step::Screen("> "),
    ]
}

/// The picture in the README: the real kernel on BIOS after `help`,
/// `colors` and `mem`, saved once `mem` has printed its last line.
fn screenshot_boot(iso: &Path, file: PathBuf) -> Boot {
    Boot::new(
        "screenshot",
        iso,
        Firmware::Bios,
        Expect::Script(vec![
            Step::Serial(SHELL_READY),
            Step::Type(Via::Serial, "help"),
            Step::Type(Via::Serial, "colors"),
            Step::Type(Via::Serial, "mem"),
            Step::Serial("console      scrollback"),
            Step::Serial("\n> "),
            Step::Screendump(file),
        ]),
    )
}

/// The real kernel surviving what a machine can throw at it, one boot each:
/// an NMI and then a machine check (injected through the monitor), garbage
/// on the serial line, a reboot that must reset the machine, and no serial
/// port at all.
fn scripted_boots(iso: &Path) -> Vec<Boot> {
    let boot = |name: &str, steps| Boot::new(name, iso, Firmware::Bios, Expect::Script(steps));
    vec![
        // No COM1 (`-serial none`): the kernel says so on screen, boots to
        // its shell, and the shell answers the keyboard; all read from the
        // screen.
        Boot {
            serial: false,
            ..boot(
                "no_serial_port",
                vec![
                    Step::ScreenText("no serial port at COM1"),
                    Step::ScreenText("output goes to the screen only, and there is no serial input"),
                    Step::ScreenText("firmware: BIOS"),
                    Step::ScreenText(SHELL_READY),
                    Step::Type(Via::Keyboard, "echo typed Without serial"),
                    Step::Screen("typed Without serial"),
                ],
            )
        },
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
        boot("scrollback", [Step::Serial(SHELL_READY)].into_iter().chain(scroll_back(Via::Serial)).collect()),
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

/// The real kernel on the smallest and the largest screens it is made for,
/// each mode set through Limine's `resolution:` option: the log must name
/// the mode, the font and the grid, and the screen, read back, must show
/// the shell's text in that font. The small screen asks for a font size
/// (`font=20`); the 4K one asks for nonsense and must get the automatic
/// choice (40 px, the 20 px raster doubled) with a log line saying so.
fn screen_boots(kernel: &Path) -> Result<Vec<Boot>, String> {
    let conf = fs::read_to_string("limine.conf").map_err(|error| format!("limine.conf: {error}"))?;
    let small = qemu::platform::conf_with_options(
        "screen_640x480",
        &conf,
        &[("resolution", "640x480"), ("cmdline", "font=20")],
    )?;
    let large = qemu::platform::conf_with_options(
        "screen_3840x2160",
        &conf,
        &[("resolution", "3840x2160"), ("cmdline", "font=huge")],
    )?;
    Ok(vec![
        Boot::new(
            "screen_640x480_font_20",
            &build::iso_for("screen_640x480", kernel, &small)?,
            Firmware::Bios,
            Expect::Script(vec![
                Step::Serial(
                    "framebuffer 640x480, 32 bpp, pitch 2560: font 20 px (9x20 cells), 71x24 characters",
                ),
                Step::Serial(SHELL_READY),
                Step::Type(Via::Serial, "echo small screen"),
                Step::Serial("\nsmall screen\n"),
                Step::ScreenInFont(20, "small screen"),
            ]),
        ),
        Boot {
            qemu_args: ["-vga", "none", "-device", "VGA,xres=3840,yres=2160,vgamem_mb=64"]
                .map(String::from)
                .to_vec(),
            ..Boot::new(
                "screen_3840x2160",
                &build::iso_for("screen_3840x2160", kernel, &large)?,
                Firmware::Bios,
                Expect::Script(vec![
                    Step::Serial(
                        "font=huge is not a size of the font (16, 20, 24, 32, 40 or 48 pixels); \
                         using the automatic choice, 40 px (18x40 cells)",
                    ),
                    Step::Serial(
                        "framebuffer 3840x2160, 32 bpp, pitch 15360: font 40 px (18x40 cells), 213x54 characters",
                    ),
                    Step::Serial(SHELL_READY),
                    Step::Type(Via::Serial, "echo large screen"),
                    Step::Serial("\nlarge screen\n"),
                    Step::Screen("large screen"),
                ]),
            )
        },
    ])
}

/// USB keyboards on an xHCI, on machines without a PS/2 controller (as many
/// current PCs): behind a hub, plugged in and out after boot, next to
/// devices that are not keyboards (one on a USB 3 port), scrolling back; under UEFI after OVMF drove
/// the controller; and beside a PS/2 keyboard, both typing. QMP's `send-key`
/// types on the keyboard QEMU made active last, so on the hub each keyboard
/// types once the one before it is unplugged; beside the PS/2 keyboard the
/// USB one is bound to the screen's console and typed on there.
fn usb_boots(iso: &Path) -> Vec<Boot> {
    let args = |args: &[&str]| args.iter().map(|arg| arg.to_string()).collect::<Vec<_>>();
    let device_add = |id: &str, port: &str| {
        Step::Monitor(json!({"execute": "device_add",
            "arguments": {"driver": "usb-kbd", "id": id, "bus": "xhci.0", "port": port}}))
    };
    let device_del = |id: &str| Step::Monitor(json!({"execute": "device_del", "arguments": {"id": id}}));
    let stick = format!("if=none,id=stick,format=raw,snapshot=on,file={}", iso.display());
    let usb = Via::KeyboardOn("screen");
    let key = |key: &str| {
        Step::Monitor(json!({"execute": "send-key", "arguments": {"keys": [{"type": "qcode", "data": key}]}}))
    };
    vec![
        Boot {
            qemu_args: args(&[
                "-machine",
                "q35,i8042=off",
                "-device",
                "qemu-xhci,id=xhci",
                "-device",
                "usb-hub,bus=xhci.0,port=1",
                "-device",
                "usb-kbd,bus=xhci.0,port=1.1,id=k1",
                "-device",
                "usb-tablet,bus=xhci.0,port=3",
                // A USB 3 stick on a USB 3 port (QEMU numbers those first).
                "-drive",
                &stick,
                "-device",
                "usb-storage,bus=xhci.0,drive=stick,port=4",
            ]),
            ..Boot::new(
                "usb_keyboards_hub_hotplug",
                iso,
                Firmware::Bios,
                Expect::Script(
                    [
                        Step::Serial("port 4: device 46f4:0001 (class 00, interfaces 08/06/50) is neither"),
                        Step::Serial("with 8 ports"),
                        Step::Serial(": keyboard 1 (0627:0001), boot protocol"),
                        Step::Serial("interfaces 03/00/00) is neither a keyboard nor a hub; left alone"),
                        Step::Type(Via::Keyboard, "echo Typed behind a HUB"),
                        Step::Serial("\nTyped behind a HUB\n"),
                        // Held for a second, "a" repeats (the keyboard reports
                        // only changes: the repeats are the kernel's).
                        key("e"),
                        key("c"),
                        key("h"),
                        key("o"),
                        key("spc"),
                        Step::Monitor(json!({"execute": "send-key",
                        "arguments": {"keys": [{"type": "qcode", "data": "a"}], "hold-time": 1000}})),
                        key("ret"),
                        // The end of echo's output: a log line may come between
                        // the typed line and it.
                        Step::Serial("aaaa\n> "),
                        Step::Type(Via::Serial, "pci"),
                        Step::Serial("class 0c0330 USB xHCI controller\n    BAR0: mem64 0x"),
                    ]
                    .into_iter()
                    .chain(scroll_back(Via::Keyboard))
                    .chain([
                        device_add("k2", "2"),
                        Step::Serial(": keyboard 2 (0627:0001), boot protocol"),
                        device_del("k1"),
                        Step::Serial("keyboard 1 unplugged"),
                        Step::Type(Via::Keyboard, "echo plugged in after boot"),
                        Step::Serial("\nplugged in after boot\n"),
                        device_del("k2"),
                        Step::Serial("keyboard 2 unplugged"),
                        Step::Type(Via::Serial, "echo still running"),
                        Step::Serial("\nstill running\n"),
                    ])
                    .collect(),
                ),
            )
        },
        // Booted from the ISO as a USB stick on the same controller, which
        // is also this firmware's boot-media test of a stick.
        Boot {
            qemu_args: args(&["-machine", "q35,i8042=off", "-device", "usb-kbd"]),
            medium: Medium::UsbStick,
            ..Boot::new(
                "usb_keyboard_uefi",
                iso,
                Firmware::Uefi,
                Expect::Script(vec![
                    Step::Serial(": keyboard 1 (0627:0001), boot protocol"),
                    Step::Type(Via::Keyboard, "echo typed after OVMF"),
                    Step::Serial("\ntyped after OVMF\n"),
                    Step::Type(Via::Serial, "echo sent over serial"),
                    Step::Serial("\nsent over serial\n"),
                    Step::Screen("sent over serial"),
                ]),
            )
        },
        // Both keyboards type while both are present, into the one line
        // editor: a command each, then a line begun on one and ended on the
        // other, both ways. Caps Lock, on for the PS/2 keyboard only, shows
        // which keyboard typed what: its "ECHO ps2" prints PS2, while the
        // USB keyboard's letters stay small.
        Boot {
            qemu_args: args(&[
                "-vga",
                "none",
                "-device",
                "VGA,id=screen",
                "-device",
                "qemu-xhci,id=xhci",
                "-device",
                "usb-kbd,bus=xhci.0,display=screen",
            ]),
            ..Boot::new(
                "usb_and_ps2_keyboards",
                iso,
                Firmware::Bios,
                Expect::Script(vec![
                    Step::Serial(": keyboard 1 (0627:0001), boot protocol"),
                    Step::Keys(&["caps_lock"]),
                    Step::Type(Via::Keyboard, "ECHO ps2"),
                    Step::Serial("\nPS2\n"),
                    Step::Type(usb, "echo usb"),
                    Step::Serial("\nusb\n"),
                    Step::TypeText(Via::Keyboard, "ECHO ps2 "),
                    Step::Type(usb, "usb"),
                    Step::Serial("\nPS2 usb\n"),
                    Step::TypeText(usb, "echo usb "),
                    Step::Type(Via::Keyboard, "ps2"),
                    Step::Serial("\nusb PS2\n"),
                ]),
            )
        },
    ]
}

/// The real kernel, up to its shell, on every combination of firmware,
/// machine, memory and medium; prints each result, then the table.
fn test_matrix(options: &Options) -> ExitCode {
    let mut tally = Tally::default();
    let mut table = matrix::Table::default();
    for image in [&options.iso, &options.hdd] {
        if let Err(log) = build::check_bios_installed(image) {
            tally.fail(&format!("image  {}", image.display()), &log);
        }
    }
    let expect = || Expect::SerialLines(vec![IDLE_LINE.into(), PROMPT_LINE.into()]);
    let mut boots = matrix::boots(&options.iso, &options.hdd, expect);
    if let Some(filter) = &options.filter {
        boots.retain(|boot| boot.name.contains(filter.as_str()));
    }
    boots.sort_by_key(|boot| boot.firmware != Firmware::Uefi);
    run_boots(boots, options, |boot, outcome| {
        tally.add_boot(boot, outcome);
        table.record(boot, outcome);
    });
    println!("\nWhat reached the shell (\"{IDLE_LINE}\", then the prompt, on serial):\n");
    print!("{}", table.render());
    println!("\n{} passed, {} failed", tally.passed, tally.failed);
    if tally.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Boots in parallel (QEMU under TCG keeps one core busy per boot) and hands
/// each result to `report` as it arrives.
fn run_boots(boots: Vec<Boot>, options: &Options, mut report: impl FnMut(&Boot, &Outcome)) {
    in_parallel(
        boots,
        options.jobs,
        |boot| qemu::run(boot, &options.qemu),
        |boot, outcome| report(&boot, &outcome),
    );
}

/// Runs `work` on each item, `jobs` at a time, and hands each item with its
/// result to `done` as it finishes.
fn in_parallel<T: Send, R: Send>(
    items: Vec<T>,
    jobs: usize,
    work: impl Fn(&T) -> R + Sync,
    mut done: impl FnMut(T, R),
) {
    let count = items.len();
    let queue = Mutex::new(VecDeque::from(items));
    let (results, received) = mpsc::channel();
    thread::scope(|scope| {
        for _ in 0..jobs.min(count.max(1)) {
            let (queue, results, work) = (&queue, results.clone(), &work);
            scope.spawn(move || {
                loop {
                    // Take the next item in a statement of its own: a guard in
                    // the `while let` condition would stay locked for the whole
                    // item and run the items one after another.
                    let next = queue.lock().expect("queue lock").pop_front();
                    let Some(item) = next else { break };
                    let result = work(&item);
                    if results.send((item, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(results);
        for (item, result) in received {
            done(item, result);
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
            "{status}  {:<4} {:<4} {:<27} {:>5.1}s  {}",
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
    let (mut iso, mut hdd, mut kernel, mut code, mut vars) = (None, None, None, None, None);
    let mut accel = "tcg".to_string();
    let mut filter = None;
    let mut matrix = false;
    let mut bench_boot = false;
    let mut screenshot = None;
    let mut jobs = thread::available_parallelism().map_or(1, |n| n.get());
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--iso" => iso = Some(PathBuf::from(value()?)),
            "--hdd" => hdd = Some(PathBuf::from(value()?)),
            "--kernel" => kernel = Some(PathBuf::from(value()?)),
            "--ovmf-code" => code = Some(PathBuf::from(value()?)),
            "--ovmf-vars" => vars = Some(PathBuf::from(value()?)),
            "--accel" => accel = value()?,
            "--filter" => filter = Some(value()?).filter(|f| !f.is_empty()),
            "--matrix" => matrix = true,
            "--bench-boot" => bench_boot = true,
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
        hdd: hdd.ok_or("--hdd is required")?,
        kernel: kernel.ok_or("--kernel is required")?,
        qemu: qemu::Settings {
            accel,
            ovmf_code: code.ok_or("--ovmf-code is required")?,
            ovmf_vars: vars.ok_or("--ovmf-vars is required")?,
        },
        filter,
        jobs,
        matrix,
        bench_boot,
        screenshot,
    })
}

/// Seconds since `start`, for the result lines.
fn seconds_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}
