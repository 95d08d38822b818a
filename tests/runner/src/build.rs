//! The cargo and make side: host unit tests, test-kernel binaries, their ISOs.

use crate::{qemu::Firmware, seconds_since};
use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::Instant,
};

const KERNEL_TARGET: &str = "x86_64-unknown-none";
pub const TEST_ISO_DIR: &str = "target/ember/tests";
/// The unpacker `make` builds beside the kernel (see the Makefile).
const UNPACKER: &str = "target/x86_64-unknown-none/release/unpack";

pub struct HostTests {
    pub passed: usize,
    pub failed: usize,
    /// Cargo built and ran everything (a build error leaves both counts 0).
    pub ok: bool,
    pub seconds: f64,
    pub log: String,
}

/// `cargo test` on the host for the hardware-independent code.
fn host_test_command() -> Command {
    let mut command = Command::new("cargo");
    command
        .args(["test", "-q", "-p", "kernel", "-p", "look", "-p", "pack", "-p", "unpack", "-p", "test-runner"])
        .stdin(Stdio::null());
    command
}

/// Builds the host unit tests without running them: `make test` does this
/// in the background while it builds the kernel, whose last steps keep one
/// core busy and leave the other idle, so that the tests need only running
/// when the boots start.
pub fn build_host_unit_tests() -> ExitCode {
    match host_test_command().arg("--no-run").status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// Runs the host unit tests.
pub fn host_unit_tests() -> HostTests {
    let start = Instant::now();
    let output = host_test_command().output();
    let (ok, log) = match output {
        Ok(output) => (
            output.status.success(),
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
        ),
        Err(error) => (false, format!("could not run cargo: {error}")),
    };
    let (passed, failed) = count_results(&log);
    HostTests { passed, failed, ok, seconds: seconds_since(start), log }
}

/// Sums the `test result: ... N passed; M failed; ...` lines of cargo test.
fn count_results(log: &str) -> (usize, usize) {
    let mut totals = (0, 0);
    for line in log.lines().filter(|line| line.starts_with("test result:")) {
        for part in line.split([';', '.']) {
            let mut words = part.split_whitespace();
            if let (Some(number), Some(word)) = (words.next(), words.next()) {
                match (number.parse::<usize>(), word) {
                    (Ok(n), "passed") => totals.0 += n,
                    (Ok(n), "failed") => totals.1 += n,
                    _ => {}
                }
            }
        }
    }
    totals
}

pub struct TestKernel {
    pub name: String,
    pub elf: PathBuf,
    pub settings: Settings,
}

/// How a test kernel wants to be booted, from `// runner:` lines in its
/// source: `// runner: firmware=both` (or `uefi`; default `bios`: most test
/// kernels test nothing the firmware changes, and a UEFI boot costs seconds),
/// `// runner: qemu-args=...` (extra QEMU arguments, split at spaces),
/// `// runner: bios-qemu-args=...` (the same, for BIOS boots only),
/// `// runner: cmdline=...` (the kernel command line of its boot entry) and
/// `// runner: expect-serial=...` (a line that must appear on serial; with
/// any of these the kernel passes by printing them all, not by exiting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub firmwares: Vec<Firmware>,
    pub qemu_args: Vec<String>,
    pub bios_qemu_args: Vec<String>,
    pub cmdline: Option<String>,
    pub expect_serial: Vec<String>,
}

impl Settings {
    /// The extra QEMU arguments for a boot under `firmware`.
    pub fn qemu_args_for(&self, firmware: Firmware) -> Vec<String> {
        let mut args = self.qemu_args.clone();
        if firmware == Firmware::Bios {
            args.extend(self.bios_qemu_args.iter().cloned());
        }
        args
    }
}

fn settings(source: &str) -> Result<Settings, String> {
    let mut settings = Settings {
        firmwares: vec![Firmware::Bios],
        qemu_args: Vec::new(),
        bios_qemu_args: Vec::new(),
        cmdline: None,
        expect_serial: Vec::new(),
    };
    for line in source.lines() {
        let Some(directive) = line.trim().strip_prefix("// runner:") else {
            continue;
        };
        match directive.trim().split_once('=') {
            Some(("firmware", "bios")) => settings.firmwares = vec![Firmware::Bios],
            Some(("firmware", "both")) => settings.firmwares = Firmware::ALL.to_vec(),
            Some(("firmware", "uefi")) => settings.firmwares = vec![Firmware::Uefi],
            Some(("qemu-args", args)) => settings.qemu_args.extend(args.split_whitespace().map(String::from)),
            Some(("bios-qemu-args", args)) => {
                settings.bios_qemu_args.extend(args.split_whitespace().map(String::from))
            }
            Some(("expect-serial", line)) => settings.expect_serial.push(line.to_string()),
            Some(("cmdline", cmdline)) => settings.cmdline = Some(cmdline.to_string()),
            _ => return Err(format!("unknown runner directive `{}`", line.trim())),
        }
    }
    Ok(settings)
}

fn settings_of(path: &Path) -> Result<Settings, String> {
    let source = fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
    settings(&source).map_err(|error| format!("{}: {error}", path.display()))
}

/// Builds the test kernels under `tests/kernels` and lists their binaries.
pub fn test_kernels() -> Result<Vec<TestKernel>, String> {
    let mut kernels = Vec::new();
    for message in cargo_for_kernels(&["test", "-p", "test-kernels", "--no-run"])? {
        let is_test =
            message["target"]["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|kind| kind == "test"));
        if let (Some(name), Some(elf), Some(source), true) = (
            message["target"]["name"].as_str(),
            message["executable"].as_str(),
            message["target"]["src_path"].as_str(),
            is_test,
        ) {
            let settings = settings_of(Path::new(source))?;
            kernels.push(TestKernel { name: name.to_string(), elf: PathBuf::from(elf), settings });
        }
    }
    if kernels.is_empty() {
        return Err("cargo built no test kernels".into());
    }
    kernels.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(kernels)
}

/// Builds the boot benchmark's reference kernel (`tests/kernels/boot_reference.rs`)
/// and returns its binary.
pub fn boot_reference() -> Result<PathBuf, String> {
    cargo_for_kernels(&["build", "-p", "test-kernels", "--bin", "boot_reference"])?
        .into_iter()
        .find(|message| message["target"]["name"] == "boot_reference")
        .and_then(|message| message["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo built no boot_reference binary".into())
}

/// Runs cargo with `args` for the kernel target and returns the messages it
/// printed (what it built, and where), or its errors.
fn cargo_for_kernels(args: &[&str]) -> Result<Vec<serde_json::Value>, String> {
    let output = Command::new("cargo")
        .args(args)
        .args(["--target", KERNEL_TARGET, "--message-format", "json-render-diagnostics"])
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("could not run cargo: {error}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

/// Wraps a kernel into a bootable ISO named `name` with the Makefile's
/// `image` recipe, the same one that builds the real kernel's ISO, and the
/// Limine configuration `conf`.
pub fn iso_for(name: &str, elf: &Path, conf: &Path) -> Result<PathBuf, String> {
    make_image(name, &[format!("KERNEL_ELF={}", elf.display()), format!("LIMINE_CONF={}", conf.display())])
}

/// The real kernel's ISO with one byte of its packed kernel's payload
/// changed, as a damaged medium would: the unpacker must say so, not start
/// a wrong kernel.
pub fn damaged_kernel_iso(kernel: &Path) -> Result<PathBuf, String> {
    let read = |path: &Path| {
        fs::read(path).map_err(|error| format!("{}: {error}", path.display())).and_then(|bytes| {
            pack::Elf::parse(&bytes).map_err(|error| format!("{}: {error}", path.display()))
        })
    };
    let mut packed = pack::pack(&read(kernel)?, &read(Path::new(UNPACKER))?)?;
    let (table, _) = pack::table_and_payload(&packed).ok_or("the packed kernel has no table")?;
    let payload = packed
        .segments
        .iter_mut()
        .find(|segment| segment.vaddr == table.payload)
        .ok_or("the packed kernel has no payload")?;
    let middle = payload.data.len() / 2;
    payload.data[middle] ^= 0x40;
    fs::create_dir_all(TEST_ISO_DIR).map_err(|error| format!("{TEST_ISO_DIR}: {error}"))?;
    let file = PathBuf::from(TEST_ISO_DIR).join("damaged_kernel");
    fs::write(&file, packed.to_bytes()).map_err(|error| format!("{}: {error}", file.display()))?;
    make_image("damaged_kernel", &[format!("KERNEL_FILE={}", file.display())])
}

/// Runs the Makefile's `image` recipe for the ISO `name`, with `settings`.
fn make_image(name: &str, settings: &[String]) -> Result<PathBuf, String> {
    let iso = PathBuf::from(TEST_ISO_DIR).join(format!("{name}.iso"));
    fs::create_dir_all(TEST_ISO_DIR).map_err(|error| format!("{TEST_ISO_DIR}: {error}"))?;
    let output = Command::new("make")
        .arg("-s")
        .arg("image")
        .args(settings)
        .arg(format!("ISO={}", iso.display()))
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("could not run make: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    check_bios_installed(&iso)?;
    Ok(iso)
}

/// Whether `limine bios-install` has put Limine's boot sector (OEM name
/// "LIMINE") into the image's MBR, without which BIOS cannot boot it as a disk.
fn bios_installed(image: &Path) -> bool {
    let mut sector = [0u8; 11];
    fs::File::open(image).and_then(|mut file| file.read_exact(&mut sector)).is_ok()
        && &sector[3..9] == b"LIMINE"
}

/// Every image the Makefile builds must be bios-installed.
pub fn check_bios_installed(image: &Path) -> Result<(), String> {
    if bios_installed(image) {
        Ok(())
    } else {
        Err(format!(
            "{} has no Limine boot sector: the Makefile did not run `limine bios-install` on it",
            image.display()
        ))
    }
}

/// `limine.conf` with its second entry (the VGA text console) as default.
pub fn vga_entry_conf() -> Result<PathBuf, String> {
    let conf = fs::read_to_string("limine.conf").map_err(|error| format!("limine.conf: {error}"))?;
    let path = PathBuf::from(TEST_ISO_DIR).join("limine-vga.conf");
    fs::create_dir_all(TEST_ISO_DIR).map_err(|error| format!("{TEST_ISO_DIR}: {error}"))?;
    fs::write(&path, format!("default_entry: 2\n{conf}"))
        .map_err(|error| format!("{}: {error}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_result_line() {
        let log = "running 3 tests\n...\n\
            test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\
            test result: FAILED. 5 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n";
        assert_eq!(count_results(log), (8, 2));
    }

    #[test]
    fn runner_directives_set_firmware_and_qemu_arguments() {
        let source = "//! doc\n// runner: firmware=uefi\n// runner: qemu-args=-vga none\nfn main() {}\n";
        let parsed = settings(source).unwrap();
        assert_eq!(parsed.firmwares, vec![Firmware::Uefi]);
        assert_eq!(parsed.qemu_args, vec!["-vga", "none"]);
        assert_eq!(settings("fn f() {}").unwrap().firmwares, vec![Firmware::Bios]);
        assert_eq!(settings("// runner: firmware=both").unwrap().firmwares, Firmware::ALL.to_vec());
        let big = settings("// runner: firmware=both\n// runner: bios-qemu-args=-m 8G\n").unwrap();
        assert_eq!(big.qemu_args_for(Firmware::Bios), vec!["-m", "8G"]);
        assert!(big.qemu_args_for(Firmware::Uefi).is_empty());
        assert_eq!(settings("// runner: cmdline=irq=legacy").unwrap().cmdline.as_deref(), Some("irq=legacy"));
        assert!(settings("// runner: firmwares=bios").is_err());
        let fault = settings("// runner: expect-serial=EXCEPTION: page fault (#PF)\n").unwrap();
        assert_eq!(fault.expect_serial, vec!["EXCEPTION: page fault (#PF)"]);
    }

    #[test]
    fn only_an_image_with_limines_boot_sector_is_bios_installed() {
        let dir = std::env::temp_dir().join(format!("ember-runner-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (installed, plain) = (dir.join("installed.img"), dir.join("plain.img"));
        let mut sector = vec![0u8; 512];
        fs::write(&plain, &sector).unwrap();
        sector[3..9].copy_from_slice(b"LIMINE");
        fs::write(&installed, &sector).unwrap();
        assert!(check_bios_installed(&installed).is_ok());
        assert!(check_bios_installed(&plain).unwrap_err().contains("bios-install"));
        assert!(check_bios_installed(&dir.join("missing.img")).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_log_without_results_counts_nothing() {
        assert_eq!(count_results("error[E0425]: cannot find value `x`\n"), (0, 0));
    }
}
