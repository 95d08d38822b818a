//! One boot of one ISO in QEMU, with a deadline, judged from its exit code
//! (isa-debug-exit) or from a line on its serial output.

use crate::seconds_since;
use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

/// QEMU's exit code when a test kernel writes `Exit::Success` (0x10) to
/// isa-debug-exit: `(0x10 << 1) | 1`.
const EXIT_SUCCESS: i32 = 33;
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
    fn banner(self) -> &'static str {
        match self {
            Self::Bios => "firmware: BIOS",
            Self::Uefi => "firmware: UEFI",
        }
    }

    /// Generous: a healthy boot takes about 1 s (BIOS) or 5 s (UEFI) under
    /// TCG, so only a hang runs into these.
    fn deadline(self) -> Duration {
        match self {
            Self::Bios => Duration::from_secs(30),
            Self::Uefi => Duration::from_secs(60),
        }
    }
}

/// How the image is attached: as a CD (El Torito) or as a USB stick, which is
/// how the same image boots a real machine once written to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    Cd,
    UsbStick,
}

impl Medium {
    pub fn name(self) -> &'static str {
        match self {
            Self::Cd => "cd",
            Self::UsbStick => "usb",
        }
    }
}

/// What makes a boot a pass.
pub enum Expect {
    /// The test kernel exits through isa-debug-exit with success.
    ExitSuccess,
    /// This line appears on serial (the kernel then runs on; QEMU is stopped).
    SerialLine(&'static str),
}

pub struct Boot {
    pub name: String,
    pub iso: PathBuf,
    pub firmware: Firmware,
    pub medium: Medium,
    pub expect: Expect,
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
        if serial.contains(boot.firmware.banner()) {
            Ok(summary)
        } else {
            Err(format!(
                "the boot banner does not say \"{}\"",
                boot.firmware.banner()
            ))
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
    Outcome {
        passed,
        summary,
        seconds: seconds_since(start),
        log,
    }
}

type Watched = (Result<String, String>, String, String);

fn boot_and_watch(boot: &Boot, settings: &Settings, vars: &Path) -> Result<Watched, String> {
    let mut command = Command::new("qemu-system-x86_64");
    command
        .args(["-m", "256M", "-accel", &settings.accel])
        .args([
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            "stdio",
            "-no-reboot",
        ])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    match boot.medium {
        Medium::Cd => command.args(["-boot", "d", "-cdrom"]).arg(&boot.iso),
        Medium::UsbStick => command
            .args(["-device", "qemu-xhci", "-device", "usb-storage,drive=stick"])
            .arg("-drive")
            .arg(format!(
                "if=none,id=stick,format=raw,snapshot=on,file={}",
                boot.iso.display()
            )),
    };
    if boot.firmware == Firmware::Uefi {
        fs::copy(&settings.ovmf_vars, vars)
            .map_err(|error| format!("copying {}: {error}", settings.ovmf_vars.display()))?;
        command
            .arg("-drive")
            .arg(pflash(0, &settings.ovmf_code, true))
            .arg("-drive")
            .arg(pflash(1, vars, false));
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("could not start qemu-system-x86_64: {error}"))?;
    let serial = Capture::start(child.stdout.take().expect("piped"));
    let errors = Capture::start(child.stderr.take().expect("piped"));

    let deadline = boot.firmware.deadline();
    let start = Instant::now();
    let verdict = loop {
        if let Expect::SerialLine(line) = boot.expect
            && serial.contains(line)
        {
            stop(&mut child);
            break Ok(format!("saw \"{line}\""));
        }
        match child.try_wait() {
            Ok(Some(status)) => break judge_exit(status, &boot.expect),
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
    Ok((verdict, strip_escapes(&serial.finish()), errors.finish()))
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

/// Whether `limine bios-install` has put Limine's boot sector (OEM name
/// "LIMINE") into the image's MBR, without which BIOS cannot boot it as a disk.
pub fn bios_installed(iso: &Path) -> bool {
    let mut sector = [0u8; 11];
    fs::File::open(iso)
        .and_then(|mut file| file.read_exact(&mut sector))
        .is_ok()
        && &sector[3..9] == b"LIMINE"
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn pflash(unit: u8, file: &Path, readonly: bool) -> String {
    let readonly = if readonly { ",readonly=on" } else { "" };
    format!(
        "if=pflash,format=raw,unit={unit}{readonly},file={}",
        file.display()
    )
}

/// A per-boot copy of the UEFI variable store: OVMF writes to it, and
/// parallel boots must not share one.
fn scratch_vars_path(boot: &Boot) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "ember-ovmf-vars-{}-{}-{n}.fd",
        std::process::id(),
        boot.name
    ))
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
                sink.lock()
                    .expect("capture lock")
                    .extend_from_slice(&buffer[..n]);
            }
        });
        Self { bytes, reader }
    }

    fn contains(&self, line: &str) -> bool {
        let bytes = self.bytes.lock().expect("capture lock");
        String::from_utf8_lossy(&bytes).contains(line)
    }

    fn finish(self) -> String {
        let _ = self.reader.join();
        let bytes = self.bytes.lock().expect("capture lock");
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Removes the ANSI control sequences that OVMF and Limine write to serial,
/// and carriage returns, so that logs read as plain lines.
fn strip_escapes(text: &str) -> String {
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
    fn exit_codes_map_to_verdicts() {
        use std::os::unix::process::ExitStatusExt;
        let status = |code: i32| ExitStatus::from_raw(code << 8);
        assert!(judge_exit(status(EXIT_SUCCESS), &Expect::ExitSuccess).is_ok());
        assert!(judge_exit(status(EXIT_FAILURE), &Expect::ExitSuccess).is_err());
        assert!(judge_exit(status(0), &Expect::ExitSuccess).is_err());
        assert!(judge_exit(status(EXIT_SUCCESS), &Expect::SerialLine("x")).is_err());
    }
}
