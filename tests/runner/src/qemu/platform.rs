//! Whole-machine checks of the real kernel on QEMU's models of modern and
//! old PCs: no PIT, no PIT and no HPET, no 8259, the legacy path, several
//! CPUs, no ACPI. One boot per machine runs every check in turn: the boot
//! log names the interrupt and time sources expected; the uptime the kernel
//! reports advances with the host's wall clock (within 10% over at least
//! 2 s); `sleep 1` returns and the next command runs; a line typed on the
//! PS/2 keyboard and one sent over serial reach the shell; and `poweroff`
//! ends QEMU (or `reboot` resets it).

use super::{
    Boot, Capture, Expect, Firmware, Qmp, SHELL_READY, Via, qcodes, stop, strip_escapes, type_command,
};
use crate::build;
use serde_json::{Value, json};
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, ChildStdin},
    thread,
    time::{Duration, Instant},
};

/// How far the kernel's uptime may drift from the host's wall clock.
const CLOCK_TOLERANCE: f64 = 0.10;
/// The shortest wall-clock interval the uptime is compared over.
const CLOCK_WINDOW: Duration = Duration::from_millis(2200);
/// How long one step may wait for the kernel's answer.
const STEP_DEADLINE: Duration = Duration::from_secs(15);

/// The log line of the TSC's second measurement, a second into the boot.
const TSC_REFINED: &str = "time: the TSC measured over";

/// A machine to boot and what to check on it.
pub struct Machine {
    /// The kernel command line (a `limine.conf` entry of its own).
    cmdline: &'static str,
    qemu_args: &'static [&'static str],
    /// Lines the boot log must hold.
    log_lines: &'static [&'static str],
    /// CPUs besides the boot CPU that must stay parked.
    parked_cpus: usize,
    /// Whether the TSC is measured again a second into the boot (not when
    /// the PIT, which cannot be read that much later, calibrated it).
    refines_tsc: bool,
    end: End,
}

/// How the machine is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// `poweroff`: QEMU reports a guest shutdown and exits.
    PowerOff,
    /// `reboot` through the FADT's reset register: QEMU (under -no-reboot)
    /// reports a guest reset and exits.
    Reset,
    /// `poweroff` must be refused with this reason.
    PowerOffRefused(&'static str),
}

const MACHINES: [(&str, Machine); 6] = [
    (
        "machine_q35_no_pit",
        Machine {
            cmdline: "",
            qemu_args: &["-M", "q35,pit=off"],
            log_lines: &[
                "interrupts through the I/O APIC + local xAPIC",
                "time: calibrated against the HPET",
                "time: the clock is the HPET's counter",
                "time: the local APIC timer ticks at 1000 Hz, periodic",
            ],
            parked_cpus: 0,
            refines_tsc: true,
            end: End::PowerOff,
        },
    ),
    (
        "machine_q35_no_pit_no_hpet",
        Machine {
            cmdline: "",
            qemu_args: &["-M", "q35,pit=off,hpet=off"],
            log_lines: &[
                "interrupts through the I/O APIC + local xAPIC",
                "time: calibrated against the ACPI PM timer",
                "time: the clock is the ACPI PM timer",
                "time: the local APIC timer ticks at 1000 Hz, periodic",
            ],
            parked_cpus: 0,
            refines_tsc: true,
            end: End::PowerOff,
        },
    ),
    (
        "machine_q35_no_pic_tsc",
        Machine {
            cmdline: "clock=tsc",
            qemu_args: &["-M", "q35,pic=off"],
            log_lines: &[
                "interrupts through the I/O APIC + local xAPIC",
                "time: calibrated against the HPET",
                "time: the clock is the TSC",
                "time: the local APIC timer ticks at 1000 Hz, periodic",
            ],
            parked_cpus: 0,
            refines_tsc: true,
            end: End::PowerOff,
        },
    ),
    (
        "machine_pc_legacy",
        Machine {
            cmdline: "irq=legacy",
            qemu_args: &["-M", "pc"],
            log_lines: &[
                "interrupts through the 8259 PICs: irq=legacy on the command line",
                "time: the PIT ticks at 1000 Hz on ISA IRQ 0",
                "interrupts through the 8259 PIC",
            ],
            parked_cpus: 0,
            refines_tsc: true,
            end: End::PowerOff,
        },
    ),
    (
        "machine_q35_smp4_pit_gsi2",
        Machine {
            cmdline: "timer=pit",
            qemu_args: &["-M", "q35", "-smp", "4"],
            log_lines: &[
                "4 CPUs in the MADT: this one runs the kernel, the other 3 stay parked",
                "ISA IRQs routed 0->2,",
                "time: the PIT ticks at 1000 Hz on ISA IRQ 0",
                "interrupts through the I/O APIC + local xAPIC",
            ],
            parked_cpus: 3,
            refines_tsc: true,
            end: End::Reset,
        },
    ),
    (
        "machine_pc_no_acpi",
        Machine {
            cmdline: "clock=tsc",
            qemu_args: &["-M", "pc,acpi=off"],
            log_lines: &[
                "interrupts through the 8259 PICs: no ACPI tables: the bootloader found no RSDP",
                "time: calibrated against the PIT",
                "time: the clock is the TSC",
            ],
            parked_cpus: 0,
            refines_tsc: false,
            end: End::PowerOffRefused("poweroff failed: there are no ACPI tables"),
        },
    ),
];

/// One boot per machine, each with its command line in an ISO of its own.
pub fn boots(kernel: &Path) -> Result<Vec<Boot>, String> {
    let conf = fs::read_to_string("limine.conf").map_err(|error| format!("limine.conf: {error}"))?;
    MACHINES
        .into_iter()
        .map(|(name, machine)| {
            let iso = build::iso_for(name, kernel, &conf_with_cmdline(name, &conf, machine.cmdline)?)?;
            Ok(Boot {
                qemu_args: machine.qemu_args.iter().map(|arg| arg.to_string()).collect(),
                ..Boot::new(name, &iso, Firmware::Bios, Expect::Machine(machine))
            })
        })
        .collect()
}

/// `limine.conf` whose first entry passes `cmdline`.
pub fn conf_with_cmdline(name: &str, conf: &str, cmdline: &str) -> Result<PathBuf, String> {
    conf_with_options(name, conf, &[("cmdline", cmdline)])
}

/// `limine.conf` whose first entry has these options (`key: value` lines),
/// such as `cmdline` or `resolution`.
pub fn conf_with_options(name: &str, conf: &str, options: &[(&str, &str)]) -> Result<PathBuf, String> {
    let path = PathBuf::from(build::TEST_ISO_DIR).join(format!("limine-{name}.conf"));
    let first_entry_end =
        conf.find("kernel_path:").and_then(|at| conf[at..].find('\n').map(|end| at + end + 1));
    let Some(at) = first_entry_end else { return Err("limine.conf has no kernel_path".into()) };
    let lines: String = options.iter().map(|(key, value)| format!("    {key}: {value}\n")).collect();
    let text = format!("{}{lines}{}", &conf[..at], &conf[at..]);
    fs::create_dir_all(build::TEST_ISO_DIR).map_err(|error| format!("{}: {error}", build::TEST_ISO_DIR))?;
    fs::write(&path, text).map_err(|error| format!("{}: {error}", path.display()))?;
    Ok(path)
}

/// The running machine: QEMU, its serial output and input, its QMP socket.
pub(super) struct Session<'a> {
    pub(super) child: &'a mut Child,
    pub(super) serial: &'a Capture,
    pub(super) stdin: Option<&'a mut ChildStdin>,
    pub(super) qmp_socket: &'a Path,
    pub(super) firmware: Firmware,
}

/// Runs every check of `machine` in order; the first failure ends the boot.
pub(super) fn check(machine: &Machine, session: &mut Session) -> Result<String, String> {
    let result = run_checks(machine, session);
    stop(session.child);
    result
}

fn run_checks(machine: &Machine, session: &mut Session) -> Result<String, String> {
    let deadline = Instant::now() + session.firmware.deadline();
    session.wait_for(deadline, "the shell", |text| text.contains(SHELL_READY))?;
    let log = session.text();
    if let Some(missing) = machine.log_lines.iter().find(|line| !log.contains(*line)) {
        return Err(format!("the boot log lacks \"{missing}\""));
    }
    if machine.parked_cpus > 0 {
        check_parked(session.qmp_socket, machine.parked_cpus)?;
    }
    let (first_uptime, first_seen) = session.uptime()?;
    let slept = Instant::now();
    session.run_serial("sleep 1", "slept 1 s")?;
    let slept = slept.elapsed();
    if !(Duration::from_millis(900)..Duration::from_secs(3)).contains(&slept) {
        return Err(format!("sleep 1 took {:.2} s of wall-clock time", slept.as_secs_f64()));
    }
    session.run_serial("echo after the sleep", "after the sleep")?;
    session.run_keyboard("echo typed on the ps2 keyboard", "typed on the ps2 keyboard")?;
    session.run_serial("echo sent over serial", "sent over serial")?;
    thread::sleep(CLOCK_WINDOW.saturating_sub(first_seen.elapsed()));
    let (second_uptime, second_seen) = session.uptime()?;
    let kernel = second_uptime - first_uptime;
    let host = (second_seen - first_seen).as_secs_f64();
    let ratio = kernel / host;
    if (ratio - 1.0).abs() > CLOCK_TOLERANCE {
        return Err(format!("the uptime advanced {kernel:.3} s in {host:.3} s of wall-clock time"));
    }
    // The window above spans the second measurement: under clock=tsc the
    // clock went on at the refined rate without a jump.
    if session.text().contains(TSC_REFINED) != machine.refines_tsc {
        return Err(format!(
            "the boot log {} \"{TSC_REFINED}\"",
            if machine.refines_tsc { "lacks" } else { "should not hold" }
        ));
    }
    let ending = session.end(machine.end)?;
    Ok(format!(
        "uptime +{kernel:.3} s in {host:.3} s wall; sleep 1 in {:.2} s; keyboard and serial; {ending}",
        slept.as_secs_f64()
    ))
}

impl Session<'_> {
    fn text(&self) -> String {
        strip_escapes(&self.serial.text())
    }

    /// Waits until the serial output after `from` bytes satisfies `done`.
    fn wait_for_after(
        &mut self,
        from: usize,
        deadline: Instant,
        what: &str,
        done: impl Fn(&str) -> bool,
    ) -> Result<(), String> {
        loop {
            let text = self.text();
            if done(text.get(from..).unwrap_or("")) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("QEMU exited ({status}) while waiting for {what}"));
            }
            if Instant::now() > deadline {
                return Err(format!("timed out waiting for {what}"));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_for(&mut self, deadline: Instant, what: &str, done: impl Fn(&str) -> bool) -> Result<(), String> {
        self.wait_for_after(0, deadline, what, done)
    }

    fn send_serial(&mut self, line: &str) -> Result<(), String> {
        type_command(Via::Serial, line, self.qmp_socket, self.stdin.as_deref_mut())
    }

    /// Sends `command` over serial and waits for `output` as a line.
    fn run_serial(&mut self, command: &str, output: &str) -> Result<(), String> {
        let from = self.text().len();
        self.send_serial(command)?;
        let line = format!("\n{output}\n");
        self.wait_for_after(from, Instant::now() + STEP_DEADLINE, &format!("\"{output}\""), |text| {
            text.contains(&line)
        })
    }

    /// Types `command` on the PS/2 keyboard and waits for `output` as a line.
    fn run_keyboard(&mut self, command: &str, output: &str) -> Result<(), String> {
        if let Some(ch) = command.chars().find(|&ch| qcodes(ch).is_none()) {
            return Err(format!("cannot type {ch:?} on the keyboard"));
        }
        let from = self.text().len();
        type_command(Via::Keyboard, command, self.qmp_socket, None)?;
        let line = format!("\n{output}\n");
        self.wait_for_after(
            from,
            Instant::now() + STEP_DEADLINE,
            &format!("\"{output}\" typed on the keyboard"),
            |text| text.contains(&line),
        )
    }

    /// Asks `uptime`; returns the seconds it reports and when the answer
    /// was seen.
    fn uptime(&mut self) -> Result<(f64, Instant), String> {
        let from = self.text().len();
        self.send_serial("uptime")?;
        self.wait_for_after(from, Instant::now() + STEP_DEADLINE, "the uptime", |text| {
            uptime_seconds(text).is_some()
        })?;
        let seen = Instant::now();
        let text = self.text();
        Ok((uptime_seconds(&text[from..]).expect("just seen"), seen))
    }

    fn end(&mut self, end: End) -> Result<String, String> {
        if let End::PowerOffRefused(reason) = end {
            self.run_serial("poweroff", reason)?;
            return Ok(format!("\"{reason}\""));
        }
        let mut monitor = Qmp::connect(self.qmp_socket)?;
        // What the kernel logs on the way: the mechanism the FADT names.
        let (command, reason, logged) = match end {
            End::Reset => ("reboot", "guest-reset", "to the FADT's reset register"),
            _ => ("poweroff", "guest-shutdown", "poweroff: SLP_TYP"),
        };
        self.send_serial(command)?;
        let event = wait_for_shutdown(&mut monitor)?;
        if event != reason {
            return Err(format!("QEMU reports a shutdown for \"{event}\", not \"{reason}\""));
        }
        let deadline = Instant::now() + STEP_DEADLINE;
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            if Instant::now() > deadline {
                return Err(format!("QEMU did not exit after {reason}"));
            }
            thread::sleep(Duration::from_millis(10));
        }
        let text = self.text();
        if text.contains(logged) && !text.contains("did not reset") {
            Ok(format!("{command}: QEMU saw {reason}"))
        } else {
            Err(format!("QEMU saw {reason}, but the log does not show \"{logged}\" doing it"))
        }
    }
}

/// The seconds of the first `up S.mmm s` line in `text`.
fn uptime_seconds(text: &str) -> Option<f64> {
    text.lines().find_map(|line| line.trim().strip_prefix("up ")?.split_once(" s (")?.0.parse().ok())
}

/// Waits for QMP's SHUTDOWN event and returns its reason.
fn wait_for_shutdown(monitor: &mut Qmp) -> Result<String, String> {
    loop {
        let message: Value = monitor.read_message()?;
        if message["event"] == "SHUTDOWN" {
            return Ok(message["data"]["reason"].as_str().unwrap_or("").to_string());
        }
    }
}

/// Every CPU but the first must be halted outside the kernel: Limine was not
/// asked to start them, and the kernel does not.
fn check_parked(socket: &Path, parked: usize) -> Result<(), String> {
    let mut monitor = Qmp::connect(socket)?;
    let answer = monitor.execute(
        json!({"execute": "human-monitor-command", "arguments": {"command-line": "info registers -a"}}),
    )?;
    let dump = answer.as_str().unwrap_or("");
    let cpus = parked_cpus(dump);
    if cpus.len() != parked + 1 {
        return Err(format!("QEMU shows {} CPUs, not {}", cpus.len(), parked + 1));
    }
    match cpus.iter().skip(1).find(|cpu| !cpu.halted || cpu.in_kernel) {
        Some(cpu) => Err(format!(
            "CPU {} is not parked (halted {}, in the kernel {})",
            cpu.index, cpu.halted, cpu.in_kernel
        )),
        None => Ok(()),
    }
}

/// What QEMU's register dump says of a CPU.
#[derive(Debug, PartialEq, Eq)]
struct CpuState {
    index: usize,
    halted: bool,
    /// Its instruction pointer is in the kernel's higher half.
    in_kernel: bool,
}

/// Parses `info registers -a`: a `CPU#n` line starts each CPU's registers,
/// with `RIP=` in 64-bit mode and `EIP=` in the others.
fn parked_cpus(dump: &str) -> Vec<CpuState> {
    dump.split("CPU#")
        .skip(1)
        .filter_map(|section| {
            let index = section.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()?;
            let pointer = section.split("RIP=").nth(1).or_else(|| section.split("EIP=").nth(1))?;
            Some(CpuState {
                index,
                halted: section.contains("HLT=1"),
                in_kernel: pointer.starts_with("ffffffff8"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uptime_line_is_read() {
        assert_eq!(uptime_seconds("> uptime\nup 3.250 s (3251 timer ticks)\n> "), Some(3.25));
        assert_eq!(uptime_seconds("> uptime\n"), None);
    }

    #[test]
    fn the_cmdline_goes_into_the_first_entry() {
        let conf = "timeout: 0\n\n/Ember\n    protocol: limine\n    kernel_path: boot():/boot/kernel\n\n/Other\n    kernel_path: x\n";
        let path = conf_with_cmdline("unit-test", conf, "irq=legacy").unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let _ = fs::remove_file(path);
        assert!(
            text.contains("kernel_path: boot():/boot/kernel\n    cmdline: irq=legacy\n\n/Other"),
            "{text}"
        );
    }

    #[test]
    fn register_dumps_show_which_cpus_are_parked() {
        let dump = "CPU#0\nRAX=0 RBX=0\nRIP=ffffffff80012345 RFL=00000202\nCPL=0 II=0 A20=1 SMM=0 HLT=1\n\
                    CPU#1\nEIP=000fd09a EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=1\n\
                    CPU#2\nRIP=ffffffff80000010 RFL=00000002\nCPL=0 II=0 A20=1 SMM=0 HLT=0\n";
        assert_eq!(
            parked_cpus(dump),
            vec![
                CpuState { index: 0, halted: true, in_kernel: true },
                CpuState { index: 1, halted: true, in_kernel: false },
                CpuState { index: 2, halted: false, in_kernel: true },
            ]
        );
    }
}
