//! One boot of one ISO in QEMU, with a deadline, judged from its exit code
//! (isa-debug-exit) or from a line on its serial output.

pub mod platform;

use crate::seconds_since;
use look::color::{DEFAULT_BG, DEFAULT_FG, blend};
use look::font::Font;
use serde_json::{Value, json};
use std::{
    fs,
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

/// QEMU's exit code when a test kernel writes `Exit::Success` (0x10) to
/// isa-debug-exit: `(0x10 << 1) | 1`.
pub const EXIT_SUCCESS: i32 = 33;
/// Likewise for `Exit::Failure` (0x11).
const EXIT_FAILURE: i32 = 35;

pub struct Settings {
    pub accel: String,
    pub ovmf_code: PathBuf,
    pub ovmf_vars: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    Uefi,
}

impl Firmware {
    pub const ALL: [Firmware; 2] = [Firmware::Bios, Firmware::Uefi];

    pub fn name(self) -> &'static str {
        match self {
            Self::Bios => "bios",
            Self::Uefi => "uefi",
        }
    }

    /// How the kernel's boot banner names this firmware.
    pub fn banner(self) -> &'static str {
        match self {
            Self::Bios => "firmware: BIOS",
            Self::Uefi => "firmware: UEFI",
        }
    }

    /// Generous: a healthy boot takes about 1 s (BIOS) or 5 s (UEFI) under
    /// TCG, the console stress test (`many_lines`) about 20 s more, and up
    /// to twice that when the two cores are shared with other work, so only
    /// a hang runs into these.
    pub fn deadline(self) -> Duration {
        match self {
            Self::Bios => Duration::from_secs(60),
            Self::Uefi => Duration::from_secs(90),
        }
    }
}

/// How the image is attached: as a CD (El Torito), as a hard disk (IDE, or
/// AHCI on q35), or as a USB stick, which is how an image boots a real
/// machine once written to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    Cd,
    Disk,
    UsbStick,
}

impl Medium {
    pub fn name(self) -> &'static str {
        match self {
            Self::Cd => "cd",
            Self::Disk => "disk",
            Self::UsbStick => "usb",
        }
    }
}

/// QEMU's machine model: the default `pc` (i440FX, IDE) or `q35` (ICH9,
/// AHCI, PCI Express), which is closer to today's PCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    Pc,
    Q35,
}

impl Machine {
    pub const ALL: [Machine; 2] = [Machine::Pc, Machine::Q35];

    pub fn name(self) -> &'static str {
        match self {
            Self::Pc => "pc",
            Self::Q35 => "q35",
        }
    }
}

/// What makes a boot a pass.
pub enum Expect {
    /// The test kernel exits through isa-debug-exit with success.
    ExitSuccess,
    /// These lines appear on serial, in this order (the kernel then runs on
    /// or halts; QEMU is stopped).
    SerialLines(Vec<String>),
    /// The line appears on serial, and then the screen, read through QEMU's
    /// monitor (QMP), is a 720x400 VGA text screen whose text buffer at
    /// 0xb8000 holds the line.
    VgaTextLine(&'static str),
    /// Once the shell is up, `command` is typed (through `via`), and its
    /// `output` must appear as a line on serial after the shell's greeting
    /// and, drawn with the font, on the screen.
    Shell { via: Via, command: &'static str, output: &'static str },
    /// Steps taken in order, each once the one before it is done.
    Script(Vec<Step>),
    /// The checks of a whole machine ([`platform`]), in turn.
    Machine(platform::Machine),
    /// The boot stops before the kernel starts, with this line on serial.
    StopsBeforeKernel(&'static str),
}

/// One step of a scripted boot.
pub enum Step {
    /// Wait for this line on serial, after what earlier steps waited for.
    Serial(&'static str),
    /// Type this command and Enter.
    Type(Via, &'static str),
    /// Type this text as it is, without Enter: the start of a line that
    /// another keyboard finishes.
    TypeText(Via, &'static str),
    /// Send these bytes on the serial line, exactly.
    SerialBytes(&'static [u8]),
    /// Send this command to QEMU's monitor (QMP).
    Monitor(Value),
    /// Press these keys together on the PS/2 keyboard (QEMU's key names).
    Keys(&'static [&'static str]),
    /// Wait until a text row of the screen starts with this text, drawn in
    /// the default colours (what keys do shows on the screen alone), in the
    /// font the kernel chooses for the screen's size by itself.
    Screen(&'static str),
    /// Wait until this text is anywhere on the screen, in the default
    /// colours (a log line's message, after its coloured level).
    ScreenText(&'static str),
    /// The same as `Screen`, in the font of this size (set with `font=`).
    ScreenInFont(usize, &'static str),
    /// Save the screen as a PNG file here.
    Screendump(PathBuf),
    /// Wait for QEMU to exit by itself: with `-no-reboot`, a reset ends it.
    Exit,
}

/// How the runner types into the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Key presses (QMP `send-key`) on the keyboard bound to no console:
    /// the one QEMU activated last among those, the PS/2 keyboard when it
    /// is the only one.
    Keyboard,
    /// Key presses (QMP `input-send-event`) on the keyboard bound to the
    /// console of this display device (a `usb-kbd` given `display=` its
    /// id), which `send-key` then leaves alone: two keyboards can type in
    /// turn without unplugging either.
    KeyboardOn(&'static str),
    /// Bytes on the serial line (QEMU's standard input).
    Serial,
}

/// What the shell prints when it is ready.
pub const SHELL_READY: &str = "Type 'help' for the commands.";
/// The kernel's first log line.
const KERNEL_STARTED: &str = "kernel started";

pub struct Boot {
    pub name: String,
    /// A bootable image: an ISO or the raw disk image.
    pub image: PathBuf,
    pub firmware: Firmware,
    pub medium: Medium,
    pub machine: Machine,
    /// Guest memory, in QEMU's notation (`256M`, `4G`).
    pub memory: &'static str,
    /// Extra QEMU arguments (`-vga cirrus`, say).
    pub qemu_args: Vec<String>,
    /// Whether the machine has COM1 (on the runner's standard input and
    /// output). Without it the boot banner is looked for on the screen.
    pub serial: bool,
    pub expect: Expect,
}

impl Boot {
    /// `image` booted as a CD on QEMU's default machine with 256 MiB; other
    /// settings go in with struct update syntax.
    pub fn new(name: impl Into<String>, image: &Path, firmware: Firmware, expect: Expect) -> Self {
        Self {
            name: name.into(),
            image: image.to_path_buf(),
            firmware,
            medium: Medium::Cd,
            machine: Machine::Pc,
            memory: "256M",
            qemu_args: Vec::new(),
            serial: true,
            expect,
        }
    }
}

pub struct Outcome {
    pub passed: bool,
    pub summary: String,
    pub seconds: f64,
    /// Serial output (escape sequences removed) and QEMU's own errors.
    pub log: String,
}

pub fn run(boot: &Boot, settings: &Settings) -> Outcome {
    let start = Instant::now();
    let vars = scratch_vars_path(boot);
    let result = boot_and_watch(boot, settings, &vars);
    let _ = fs::remove_file(&vars);
    let (verdict, serial, qemu_errors) = match result {
        Ok(watched) => watched,
        Err(error) => (Err(error), String::new(), String::new()),
    };
    let verdict = verdict.and_then(|summary| {
        // A boot stopped before the kernel has no kernel banner to check.
        let kernel_runs = !matches!(boot.expect, Expect::StopsBeforeKernel(_));
        if !boot.serial || !kernel_runs || serial.contains(boot.firmware.banner()) {
            Ok(summary)
        } else {
            Err(format!("the boot banner does not say \"{}\"", boot.firmware.banner()))
        }
    });
    let mut log = serial;
    if !qemu_errors.trim().is_empty() {
        log.push_str("\n--- QEMU ---\n");
        log.push_str(&qemu_errors);
    }
    let (passed, summary) = match verdict {
        Ok(summary) => (true, summary),
        Err(summary) => (false, summary),
    };
    Outcome { passed, summary, seconds: seconds_since(start), log }
}

type Watched = (Result<String, String>, String, String);

/// The QEMU command line of `boot`, with standard input and output piped
/// (serial is standard input and output), for the tests and the boot
/// benchmark alike. UEFI boots use `vars` as their variable store.
pub fn command(boot: &Boot, settings: &Settings, vars: &Path) -> Result<Command, String> {
    let mut command = Command::new("qemu-system-x86_64");
    command
        // No network card: the firmware would load its boot ROM for nothing
        // (a second and more per UEFI boot under emulation).
        .args(["-m", boot.memory, "-accel", &settings.accel, "-nic", "none"])
        .args(["-display", "none", "-monitor", "none", "-no-reboot"])
        .args(["-serial", if boot.serial { "stdio" } else { "none" }])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    if boot.machine == Machine::Q35 {
        command.args(["-machine", "q35"]);
    }
    // snapshot=on: the image is never written, and boots may share it.
    let drive = |attach: &str| format!("{attach},format=raw,snapshot=on,file={}", boot.image.display());
    match boot.medium {
        Medium::Cd => command.args(["-boot", "d", "-cdrom"]).arg(&boot.image),
        Medium::Disk => command.arg("-drive").arg(drive("if=ide,index=0,media=disk")),
        Medium::UsbStick => command
            .args(["-device", "qemu-xhci", "-device", "usb-storage,drive=stick"])
            .arg("-drive")
            .arg(drive("if=none,id=stick")),
    };
    // After the medium: a boot's own devices may plug into its controller.
    command.args(&boot.qemu_args);
    if boot.firmware == Firmware::Uefi {
        fs::copy(&settings.ovmf_vars, vars)
            .map_err(|error| format!("copying {}: {error}", settings.ovmf_vars.display()))?;
        command
            .arg("-drive")
            .arg(pflash(0, &settings.ovmf_code, true))
            .arg("-drive")
            .arg(pflash(1, vars, false));
    }
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    Ok(command)
}

fn boot_and_watch(boot: &Boot, settings: &Settings, vars: &Path) -> Result<Watched, String> {
    let mut command = command(boot, settings, vars)?;
    let qmp_socket = std::env::temp_dir().join(format!("ember-qmp-{}-{}.sock", std::process::id(), unique()));
    if let Expect::VgaTextLine(_) | Expect::Shell { .. } | Expect::Script(_) | Expect::Machine(_) =
        boot.expect
    {
        command.arg("-qmp").arg(format!("unix:{},server=on,wait=off", qmp_socket.display()));
    }
    let mut child =
        command.spawn().map_err(|error| format!("could not start qemu-system-x86_64: {error}"))?;
    let serial = Capture::start(child.stdout.take().expect("piped"));
    let errors = Capture::start(child.stderr.take().expect("piped"));

    let deadline = boot.firmware.deadline();
    let start = Instant::now();
    let mut stdin = child.stdin.take();
    let mut typed = false;
    let mut script = Script::default();
    let mut last_panic_check = Instant::now();
    let verdict = loop {
        if let Expect::Machine(machine) = &boot.expect {
            let firmware = boot.firmware;
            let stdin = stdin.as_mut();
            let mut session = platform::Session {
                child: &mut child,
                serial: &serial,
                stdin,
                qmp_socket: &qmp_socket,
                firmware,
            };
            break platform::check(machine, &mut session);
        }
        if let Expect::Shell { via, command, output } = boot.expect {
            if !typed && serial.contains(SHELL_READY) && serial.contains(boot.firmware.banner()) {
                typed = true;
                if let Err(error) = type_command(via, command, &qmp_socket, stdin.as_mut()) {
                    stop(&mut child);
                    break Err(error);
                }
            }
            let text = strip_escapes(&serial.text());
            let line = format!("\n{output}\n");
            // The kernel draws a line on screen before it sends it to serial,
            // so once serial has it the screen can be read.
            if typed && find_in_order(&text, &[SHELL_READY, line.as_str()]).is_some() {
                let checked = check_screen_line(&qmp_socket, output, None)
                    .map(|shown| format!("on serial, and {shown}"));
                stop(&mut child);
                break checked;
            }
        }
        // OVMF's console sends each character with its own cursor escape,
        // so Limine's messages are readable only once those are removed;
        // that is done a few times a second, not on every poll.
        if last_panic_check.elapsed() > Duration::from_millis(250) {
            last_panic_check = Instant::now();
            if let Some(panic) = limine_panic(&strip_escapes(&serial.text())) {
                stop(&mut child);
                break Err(panic);
            }
        }
        if let Expect::SerialLines(lines) = &boot.expect
            && serial.contains(boot.firmware.banner())
            && find_in_order(&serial.text(), lines).is_some()
        {
            stop(&mut child);
            break Ok(format!("saw \"{}\"", lines.last().map_or("", String::as_str)));
        }
        if let Expect::StopsBeforeKernel(line) = boot.expect
            && serial.contains(line)
        {
            // Long enough for a kernel that started anyway to log it.
            thread::sleep(Duration::from_millis(500));
            stop(&mut child);
            break if serial.contains(KERNEL_STARTED) {
                Err(format!("\"{line}\" on serial, but the kernel started anyway"))
            } else {
                Ok(format!("saw \"{line}\", and the kernel did not start"))
            };
        }
        if let Expect::Script(steps) = &boot.expect {
            match script.advance(steps, &serial, &mut child, &qmp_socket, stdin.as_mut()) {
                Ok(true) => {
                    stop(&mut child);
                    break Ok(script.summary);
                }
                Ok(false) => {}
                Err(error) => {
                    stop(&mut child);
                    break Err(error);
                }
            }
        }
        if let Expect::VgaTextLine(line) = boot.expect
            && serial.contains(line)
        {
            // Logged lines reach the screen before serial: it is drawn.
            let checked = check_vga_text(&qmp_socket, line);
            stop(&mut child);
            let _ = fs::remove_file(&qmp_socket);
            break checked;
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                // A script may have been waiting for just this exit.
                if let Expect::Script(steps) = &boot.expect
                    && let Ok(true) = script.advance(steps, &serial, &mut child, &qmp_socket, stdin.as_mut())
                {
                    break Ok(script.summary);
                }
                break judge_exit(status, &boot.expect);
            }
            Ok(None) if start.elapsed() > deadline => {
                stop(&mut child);
                break Err(format!("timed out after {} s (hung)", deadline.as_secs()));
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(error) => {
                stop(&mut child);
                break Err(format!("waiting for QEMU: {error}"));
            }
        }
    };
    drop(stdin);
    let _ = fs::remove_file(&qmp_socket);
    Ok((verdict, strip_escapes(&serial.finish()), errors.finish()))
}

/// Where the last of `lines` ends, if each appears after the one before it.
fn find_in_order<S: AsRef<str>>(text: &str, lines: &[S]) -> Option<usize> {
    lines.iter().try_fold(0, |from, line| {
        let line = line.as_ref();
        text[from..].find(line).map(|at| from + at + line.len())
    })
}

/// How far a scripted boot has come.
#[derive(Default)]
struct Script {
    /// Steps done.
    step: usize,
    /// Serial text consumed by the `Serial` steps done.
    consumed: usize,
    summary: String,
    /// When a `ScreenText` step last read the screen.
    last_look: Option<Instant>,
}

impl Script {
    /// Takes the steps that can be taken now. Ok(true) once all are done.
    fn advance(
        &mut self,
        steps: &[Step],
        serial: &Capture,
        child: &mut Child,
        socket: &Path,
        mut stdin: Option<&mut ChildStdin>,
    ) -> Result<bool, String> {
        while let Some(step) = steps.get(self.step) {
            match step {
                Step::Serial(line) => {
                    let text = strip_escapes(&serial.text());
                    let Some(at) = text.get(self.consumed..).and_then(|rest| rest.find(line)) else {
                        return Ok(false);
                    };
                    self.consumed += at + line.len();
                    self.summary = format!("saw {:?}", line.trim());
                }
                Step::Type(via, command) => type_command(*via, command, socket, stdin.as_deref_mut())?,
                Step::TypeText(via, text) => type_text(*via, text, socket, stdin.as_deref_mut())?,
                Step::SerialBytes(bytes) => {
                    let stdin = stdin.as_deref_mut().ok_or("no standard input to QEMU")?;
                    stdin
                        .write_all(bytes)
                        .and_then(|()| stdin.flush())
                        .map_err(|error| format!("writing to the serial line: {error}"))?;
                }
                Step::Monitor(command) => {
                    Qmp::connect(socket)?.execute(command.clone())?;
                }
                Step::Keys(keys) => {
                    Qmp::connect(socket)?.execute(key_press(None, keys))?;
                    // QEMU releases the keys after 100 ms; the next press
                    // waits for that, or the two would merge.
                    thread::sleep(Duration::from_millis(150));
                }
                Step::Screendump(file) => {
                    Qmp::connect(socket)?.execute(
                        json!({"execute": "screendump", "arguments": {"filename": file, "format": "png"}}),
                    )?;
                    self.summary = format!("screen saved as {}", file.display());
                }
                Step::Screen(text) => match check_screen_line(socket, text, None) {
                    Ok(summary) => self.summary = summary,
                    Err(_) => return Ok(false),
                },
                Step::ScreenText(text) => {
                    // A screendump takes a while: look a few times a second.
                    if self.last_look.is_some_and(|at| at.elapsed() < Duration::from_millis(250)) {
                        return Ok(false);
                    }
                    self.last_look = Some(Instant::now());
                    match find_on_screen(socket, text)? {
                        Some((row, col)) => {
                            self.summary = format!("\"{text}\" on screen (row {row}, column {col})");
                            self.last_look = None;
                        }
                        None => return Ok(false),
                    }
                }
                Step::ScreenInFont(size, text) => {
                    let font = Font::ALL.into_iter().find(|font| font.height() == *size);
                    let font = font.ok_or_else(|| format!("no {size} px font"))?;
                    match check_screen_line(socket, text, Some(font)) {
                        Ok(summary) => self.summary = summary,
                        Err(_) => return Ok(false),
                    }
                }
                Step::Exit => match child.try_wait() {
                    Ok(Some(status)) if status.code() == Some(0) => {
                        self.summary = "QEMU exited (reset)".into()
                    }
                    Ok(Some(status)) => return Err(format!("QEMU exited with {status}")),
                    Ok(None) => return Ok(false),
                    Err(error) => return Err(format!("waiting for QEMU: {error}")),
                },
            }
            self.step += 1;
        }
        Ok(true)
    }
}

/// What Limine prints last when it panics, after `PANIC: ` and the reason
/// (the kernel never prints it).
const LIMINE_HALTED: &str = "System halted.";

/// Limine's panic message, once it has halted: the boot cannot go on, so
/// there is no point in waiting for the deadline.
fn limine_panic(serial: &str) -> Option<String> {
    if !serial.contains(LIMINE_HALTED) {
        return None;
    }
    let (_, after) = serial.split_once("PANIC: ")?;
    let reason = after.lines().next().unwrap_or("");
    let reason = reason.split("Stacktrace:").next().unwrap_or(reason).trim();
    Some(format!("Limine panicked: {reason}"))
}

fn judge_exit(status: ExitStatus, expect: &Expect) -> Result<String, String> {
    match (status.code(), expect) {
        (Some(EXIT_SUCCESS), Expect::ExitSuccess) => Ok("test kernel reported success".into()),
        (Some(EXIT_FAILURE), _) => Err("test kernel reported failure".into()),
        (Some(0), _) => Err("QEMU exited by itself (the machine reset or powered off)".into()),
        (Some(code), _) => Err(format!("QEMU exited with code {code}")),
        (None, _) => Err("QEMU was killed by a signal".into()),
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn pflash(unit: u8, file: &Path, readonly: bool) -> String {
    let readonly = if readonly { ",readonly=on" } else { "" };
    format!("if=pflash,format=raw,unit={unit}{readonly},file={}", file.display())
}

/// A number not used before in this run, for scratch file names.
fn unique() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Physical address and size of the VGA text buffer (80x25 entries).
const VGA_TEXT: (u64, usize) = (0xb8000, 80 * 25 * 2);

/// Reads the screen through QMP: `screendump` must be a 720x400 image (the
/// 80x25 text mode with 9x16 cells) and the text buffer must hold `line`.
fn check_vga_text(socket: &Path, line: &str) -> Result<String, String> {
    let n = unique();
    let png = std::env::temp_dir().join(format!("ember-screen-{}-{n}.png", std::process::id()));
    let memory = std::env::temp_dir().join(format!("ember-b8000-{}-{n}.bin", std::process::id()));
    let result = (|| {
        let mut monitor = Qmp::connect(socket)?;
        monitor.execute(json!({"execute": "screendump", "arguments": {"filename": png, "format": "png"}}))?;
        monitor.execute(json!({"execute": "pmemsave",
            "arguments": {"val": VGA_TEXT.0, "size": VGA_TEXT.1, "filename": memory}}))?;
        let image = fs::read(&png).map_err(|error| format!("reading the screendump: {error}"))?;
        let (width, height) = png_size(&image).ok_or("the screendump is not a PNG")?;
        if (width, height) != (720, 400) {
            return Err(format!("the screen is {width}x{height}, not the 720x400 of VGA text mode"));
        }
        let buffer = fs::read(&memory).map_err(|error| format!("reading the text buffer: {error}"))?;
        let text = text_rows(&buffer);
        if text.iter().any(|row| row.contains(line)) {
            Ok(format!("720x400 text screen, 0xb8000 holds \"{line}\""))
        } else {
            Err(format!("0xb8000 does not hold \"{line}\"; it reads:\n{}", text.join("\n")))
        }
    })();
    let _ = fs::remove_file(&png);
    let _ = fs::remove_file(&memory);
    result
}

/// Types `command` and Enter, as key presses or as serial bytes.
fn type_command(
    via: Via,
    command: &str,
    socket: &Path,
    stdin: Option<&mut ChildStdin>,
) -> Result<(), String> {
    type_text(via, &format!("{command}\n"), socket, stdin)
}

/// Types `text` as it is (a newline is Enter), as key presses or as serial
/// bytes.
fn type_text(via: Via, text: &str, socket: &Path, stdin: Option<&mut ChildStdin>) -> Result<(), String> {
    let console = match via {
        Via::Serial => {
            let stdin = stdin.ok_or("no standard input to QEMU")?;
            return stdin
                .write_all(text.replace('\n', "\r").as_bytes())
                .and_then(|()| stdin.flush())
                .map_err(|error| format!("writing to the serial line: {error}"));
        }
        Via::Keyboard => None,
        Via::KeyboardOn(device) => Some(device),
    };
    let mut monitor = Qmp::connect(socket)?;
    for ch in text.chars() {
        let keys = qcodes(ch).ok_or_else(|| format!("cannot type {text:?} on the keyboard"))?;
        monitor.execute(key_press(console, &keys))?;
        // Key presses closer together than the guest reads them would be
        // merged by QEMU's keyboard queue.
        thread::sleep(Duration::from_millis(30));
    }
    Ok(())
}

/// The QMP command that presses `keys` together and releases them, on the
/// keyboard bound to the console of display device `console`, or with none,
/// on the keyboard bound to no console. `send-key` releases the keys
/// itself, 100 ms later; `input-send-event` is given the releases, in the
/// reverse order, after the presses.
fn key_press<K: AsRef<str>>(console: Option<&str>, keys: &[K]) -> Value {
    let qcode = |key: &K| json!({"type": "qcode", "data": key.as_ref()});
    match console {
        Some(device) => {
            let presses = keys.iter().map(|key| (true, key));
            let releases = keys.iter().rev().map(|key| (false, key));
            let events: Vec<Value> = presses
                .chain(releases)
                .map(|(down, key)| json!({"type": "key", "data": {"down": down, "key": qcode(key)}}))
                .collect();
            json!({"execute": "input-send-event", "arguments": {"device": device, "events": events}})
        }
        None => {
            json!({"execute": "send-key", "arguments": {"keys": keys.iter().map(qcode).collect::<Vec<_>>()}})
        }
    }
}

/// QEMU's names for the keys pressed together to type `ch` on a US
/// keyboard (letters, digits, space, minus, Enter).
fn qcodes(ch: char) -> Option<Vec<String>> {
    Some(match ch {
        'a'..='z' | '0'..='9' => vec![ch.to_string()],
        'A'..='Z' => vec!["shift".into(), ch.to_ascii_lowercase().to_string()],
        ' ' => vec!["spc".into()],
        '-' => vec!["minus".into()],
        '\n' => vec!["ret".into()],
        _ => return None,
    })
}

/// Reads the screen through QMP and looks for a text row that starts with
/// `line`, drawn exactly as the font (`font`, or the size the kernel picks
/// for the screen by itself) and the console's default colours would draw
/// it.
fn check_screen_line(socket: &Path, line: &str, font: Option<Font>) -> Result<String, String> {
    let screen = Screen::dump(socket)?;
    let font = font.unwrap_or_else(|| Font::for_screen(screen.width, screen.height));
    let rows = screen.height / font.height();
    match (0..rows).find(|&row| screen.shows(font, row, line)) {
        Some(row) => Ok(format!(
            "\"{line}\" on the {}x{} screen (text row {row}, {} px font)",
            screen.width,
            screen.height,
            font.height()
        )),
        None => Err(format!(
            "\"{line}\" is on serial but not drawn on the {}x{} screen",
            screen.width, screen.height
        )),
    }
}

/// Reads the screen through QMP and looks for `text` anywhere on it, drawn
/// in the console's default colours: its text row and column.
fn find_on_screen(socket: &Path, text: &str) -> Result<Option<(usize, usize)>, String> {
    let screen = Screen::dump(socket)?;
    let font = Font::for_screen(screen.width, screen.height);
    let (rows, cols) = (screen.height / font.height(), screen.width / font.width());
    let width = text.chars().count();
    Ok((0..rows).find_map(|row| {
        (0..=cols.saturating_sub(width))
            .find(|&col| screen.shows_at(font, row, col, text))
            .map(|col| (row, col))
    }))
}

/// A screendump as RGB pixels.
struct Screen {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Screen {
    /// The screen now, through QMP's `screendump`.
    fn dump(socket: &Path) -> Result<Self, String> {
        let png = std::env::temp_dir().join(format!("ember-screen-{}-{}.png", std::process::id(), unique()));
        let result = (|| {
            let mut monitor = Qmp::connect(socket)?;
            monitor
                .execute(json!({"execute": "screendump", "arguments": {"filename": png, "format": "png"}}))?;
            Screen::decode(&fs::read(&png).map_err(|error| format!("reading the screendump: {error}"))?)
        })();
        let _ = fs::remove_file(&png);
        result
    }

    fn decode(image: &[u8]) -> Result<Self, String> {
        let mut reader =
            png::Decoder::new(image).read_info().map_err(|error| format!("screendump: {error}"))?;
        let mut rgb = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut rgb).map_err(|error| format!("screendump: {error}"))?;
        if frame.color_type != png::ColorType::Rgb || frame.bit_depth != png::BitDepth::Eight {
            return Err(format!("screendump is {:?} {:?}, not 8-bit RGB", frame.color_type, frame.bit_depth));
        }
        rgb.truncate(frame.buffer_size());
        Ok(Self { width: frame.width as usize, height: frame.height as usize, rgb })
    }

    /// Whether text row `row` starts with `text` in `font` and the default
    /// colours.
    fn shows(&self, font: Font, row: usize, text: &str) -> bool {
        self.shows_at(font, row, 0, text)
    }

    /// Whether `text` is drawn from text row `row`, column `start` on, in
    /// `font` and the default colours.
    fn shows_at(&self, font: Font, row: usize, start: usize, text: &str) -> bool {
        let mut memory = vec![0; font.glyphs_bytes()];
        let mut glyphs = font.glyphs(&mut memory);
        (start..).zip(text.chars()).all(|(col, ch)| {
            let glyph = glyphs.glyph(ch, false);
            (0..font.height()).all(|y| {
                (0..font.width()).all(|x| {
                    let (px, py) = (col * font.width() + x, row * font.height() + y);
                    let expected = blend(DEFAULT_FG, DEFAULT_BG, glyph[y * font.width() + x]);
                    let at = (py * self.width + px) * 3;
                    px < self.width
                        && self.rgb.get(at..at + 3) == Some(&[expected.r, expected.g, expected.b][..])
                })
            })
        })
    }
}

/// Width and height from a PNG's header.
fn png_size(image: &[u8]) -> Option<(u32, u32)> {
    if image.len() < 24 || &image[..8] != b"\x89PNG\r\n\x1a\n" || &image[12..16] != b"IHDR" {
        return None;
    }
    let be = |at: usize| u32::from_be_bytes(image[at..at + 4].try_into().expect("4 bytes"));
    Some((be(16), be(20)))
}

/// The characters of an 80-column text buffer (code, attribute pairs), row
/// by row, as Latin-1.
fn text_rows(buffer: &[u8]) -> Vec<String> {
    buffer.chunks(160).map(|row| row.iter().step_by(2).map(|&code| code as char).collect()).collect()
}

/// A QEMU Machine Protocol connection.
struct Qmp {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Qmp {
    /// Connects (QEMU may still be creating the socket) and leaves the
    /// negotiation mode.
    fn connect(socket: &Path) -> Result<Self, String> {
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(stream) => break stream,
                Err(error) if start.elapsed() > Duration::from_secs(5) => {
                    return Err(format!("connecting to QMP at {}: {error}", socket.display()));
                }
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|error| error.to_string())?;
        let reader = BufReader::new(stream.try_clone().map_err(|error| error.to_string())?);
        let mut qmp = Self { writer: stream, reader };
        qmp.read_message()?;
        qmp.execute(json!({"execute": "qmp_capabilities"}))?;
        Ok(qmp)
    }

    /// Sends a command and waits for its answer, skipping events.
    fn execute(&mut self, command: Value) -> Result<Value, String> {
        writeln!(self.writer, "{command}").map_err(|error| format!("QMP: {error}"))?;
        loop {
            let message = self.read_message()?;
            if let Some(error) = message.get("error") {
                return Err(format!("QMP {}: {error}", command["execute"]));
            }
            if let Some(answer) = message.get("return") {
                return Ok(answer.clone());
            }
        }
    }

    fn read_message(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        self.reader.read_line(&mut line).map_err(|error| format!("QMP: {error}"))?;
        serde_json::from_str(&line).map_err(|error| format!("QMP sent {line:?}: {error}"))
    }
}

/// A per-boot copy of the UEFI variable store: OVMF writes to it, and
/// parallel boots must not share one.
pub fn scratch_vars_path(boot: &Boot) -> PathBuf {
    let n = unique();
    std::env::temp_dir().join(format!("ember-ovmf-vars-{}-{}-{n}.fd", std::process::id(), boot.name))
}

/// Collects a pipe's bytes on a thread, readable while QEMU runs.
struct Capture {
    bytes: Arc<Mutex<Vec<u8>>>,
    reader: thread::JoinHandle<()>,
}

impl Capture {
    fn start(mut pipe: impl Read + Send + 'static) -> Self {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&bytes);
        let reader = thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                sink.lock().expect("capture lock").extend_from_slice(&buffer[..n]);
            }
        });
        Self { bytes, reader }
    }

    fn contains(&self, line: &str) -> bool {
        self.text().contains(line)
    }

    fn text(&self) -> String {
        let bytes = self.bytes.lock().expect("capture lock");
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn finish(self) -> String {
        let _ = self.reader.join();
        let bytes = self.bytes.lock().expect("capture lock");
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Removes the ANSI control sequences that OVMF and Limine write to serial,
/// and carriage returns, so that logs read as plain lines.
pub fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                while let Some(&next) = chars.peek() {
                    chars.next();
                    if next.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            '\r' => {}
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_carriage_returns_are_removed() {
        let raw = "\x1b[2J\x1b[01;01HBdsDxe: loading\r\n\x1b[=3h[INFO ] boot: ok\x1b[0m\r\n";
        assert_eq!(strip_escapes(raw), "BdsDxe: loading\n[INFO ] boot: ok\n");
    }

    #[test]
    fn a_limine_panic_is_recognised_once_limine_halts() {
        let serial = "BdsDxe: starting Boot0001\nPANIC: High memory allocator: Out of memoryStacktrace:  \
            [0x22f6b2d] <panic+0x9d>  [0x22ea0a7] <uefi_entry+0xf7>End of trace. System halted.";
        assert_eq!(
            limine_panic(serial).as_deref(),
            Some("Limine panicked: High memory allocator: Out of memory")
        );
        assert_eq!(limine_panic("PANIC: still printing the stack trace"), None);
        assert_eq!(limine_panic("KERNEL PANIC at src/main.rs:1: x\nCPU halted."), None);
    }

    #[test]
    fn capitals_are_typed_with_shift() {
        assert_eq!(qcodes('a'), Some(vec!["a".to_string()]));
        assert_eq!(qcodes('Q'), Some(vec!["shift".to_string(), "q".to_string()]));
        assert_eq!(qcodes('\n'), Some(vec!["ret".to_string()]));
        assert_eq!(qcodes('!'), None);
    }

    #[test]
    fn keys_on_a_console_are_released_in_reverse_after_the_presses() {
        let event = |down: bool, key: &str| json!({"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": key}}});
        assert_eq!(
            key_press(Some("screen"), &["shift", "q"]),
            json!({"execute": "input-send-event", "arguments": {"device": "screen", "events": [
                event(true, "shift"), event(true, "q"), event(false, "q"), event(false, "shift")]}})
        );
        assert_eq!(
            key_press(None, &["shift", "q"]),
            json!({"execute": "send-key", "arguments": {"keys": [
                {"type": "qcode", "data": "shift"}, {"type": "qcode", "data": "q"}]}})
        );
    }

    #[test]
    fn text_is_found_where_it_is_drawn_and_only_there() {
        let font = Font::ALL[0];
        let (width, height) = (10 * font.width(), 2 * font.height());
        let mut rgb = [DEFAULT_BG.r, DEFAULT_BG.g, DEFAULT_BG.b].repeat(width * height);
        let mut memory = vec![0; font.glyphs_bytes()];
        let mut glyphs = font.glyphs(&mut memory);
        for (col, ch) in (3..).zip("hi".chars()) {
            let glyph = glyphs.glyph(ch, false);
            for y in 0..font.height() {
                for x in 0..font.width() {
                    let colour = blend(DEFAULT_FG, DEFAULT_BG, glyph[y * font.width() + x]);
                    let at = ((font.height() + y) * width + col * font.width() + x) * 3;
                    rgb[at..at + 3].copy_from_slice(&[colour.r, colour.g, colour.b]);
                }
            }
        }
        let screen = Screen { width, height, rgb };
        assert!(screen.shows_at(font, 1, 3, "hi"));
        assert!(!screen.shows_at(font, 1, 2, "hi"));
        assert!(!screen.shows_at(font, 0, 3, "hi"));
        assert!(!screen.shows_at(font, 1, 9, "hi"), "text running off the screen is not there");
    }

    #[test]
    fn png_size_comes_from_the_header() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend(720u32.to_be_bytes());
        png.extend(400u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((720, 400)));
        assert_eq!(png_size(b"GIF89a and more bytes than that"), None);
    }

    #[test]
    fn text_rows_take_every_other_byte() {
        let mut buffer = vec![0u8; 320];
        buffer[0] = b'h';
        buffer[1] = 0x07;
        buffer[2] = b'i';
        buffer[160] = b'x';
        let rows = text_rows(&buffer);
        assert!(rows[0].starts_with("hi"));
        assert!(rows[1].starts_with('x'));
    }

    #[test]
    fn exit_codes_map_to_verdicts() {
        use std::os::unix::process::ExitStatusExt;
        let status = |code: i32| ExitStatus::from_raw(code << 8);
        assert!(judge_exit(status(EXIT_SUCCESS), &Expect::ExitSuccess).is_ok());
        assert!(judge_exit(status(EXIT_FAILURE), &Expect::ExitSuccess).is_err());
        assert!(judge_exit(status(0), &Expect::ExitSuccess).is_err());
        assert!(judge_exit(status(EXIT_SUCCESS), &Expect::SerialLines(vec!["x".into()])).is_err());
    }
}
