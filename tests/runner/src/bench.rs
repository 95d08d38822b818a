//! `make bench`'s boot figures: how long QEMU takes from its start to the
//! real kernel's shell prompt, against how long it takes to run a reference
//! kernel that exits in its first instruction (`tests/kernels/boot_reference.rs`),
//! booted from the same ISO layout with the same `limine.conf`, firmware and
//! QEMU command line. Both images come from the Makefile's `image` recipe,
//! so the reference is packed too (see `kernel/pack`; its packed file is
//! smaller than its stripped ELF file). The two boot in turn, and the
//! machines take turns, over several rounds of one run; the medians are
//! compared.

use crate::qemu::{self, Boot, EXIT_SUCCESS, Expect, Firmware, Machine, SHELL_READY, Settings};
use std::{
    fs,
    io::Read,
    path::Path,
    process::ExitCode,
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

/// The kernel's boot may take at most this many times the reference's.
const GOAL: f64 = 1.1;

/// The machines timed: QEMU's default PC under both firmwares, and the q35
/// under BIOS, whose SeaBIOS reads the CD through AHCI by DMA where the PC's
/// IDE takes the kernel image word by word (about 0.09 ms per KiB here).
const MACHINES: [(Firmware, Machine); 3] =
    [(Firmware::Bios, Machine::Pc), (Firmware::Bios, Machine::Q35), (Firmware::Uefi, Machine::Pc)];

/// Rounds of the benchmark. In each, every BIOS machine boots the reference
/// and then the kernel; UEFI boots (about 5 s each) do so in one round of
/// [`UEFI_EVERY`].
const ROUNDS: usize = 25;
const UEFI_EVERY: usize = 5;

/// The machines take turns round by round, so each one's boots spread over
/// the whole run. The build machine's load comes in spells that change what
/// a boot costs, the kernel's extra work included: timed one machine after
/// the other, 15 rounds each, one run's PC came out at 1.05x and the q35
/// right after it at 1.13x.
fn boots_in_round(firmware: Firmware, round: usize) -> bool {
    match firmware {
        Firmware::Bios => true,
        Firmware::Uefi => round.is_multiple_of(UEFI_EVERY),
    }
}

/// Where a timed boot ends.
#[derive(Debug, Clone, Copy)]
enum End {
    /// QEMU exits with the test kernels' success code.
    Exit,
    /// This text appears on serial.
    Serial(&'static str),
}

pub fn run(iso: &Path, settings: &Settings) -> ExitCode {
    let reference = match crate::build::boot_reference()
        .and_then(|elf| crate::build::iso_for("boot_reference", &elf, Path::new("limine.conf")))
    {
        Ok(iso) => iso,
        Err(log) => {
            eprintln!("boot benchmark: could not build the reference kernel:\n{log}");
            return ExitCode::FAILURE;
        }
    };
    println!("boot benchmark: QEMU start to the shell prompt, against a kernel that exits at its first");
    println!("  instruction (same ISO layout, limine.conf, firmware and QEMU command line; the ISO as a");
    println!(
        "  CD, {}); medians of boots taken in turn, the machines in turn ({ROUNDS} rounds, UEFI in one of {UEFI_EVERY})",
        settings.accel
    );
    println!(
        "  {:<10} {:>7} {:>14} {:>14} {:>8} {:>13} {:>17}",
        "firmware", "boots", "reference", "kernel", "ratio", "paired extra", "middle half"
    );
    // Per machine: the reference's and the kernel's times, or why it stopped.
    let mut series: Vec<(Vec<f64>, Vec<f64>, Option<String>)> = MACHINES.map(|_| Default::default()).into();
    for round in 0..ROUNDS {
        for ((firmware, machine), (references, kernels, failure)) in MACHINES.into_iter().zip(&mut series) {
            if failure.is_some() || !boots_in_round(firmware, round) {
                continue;
            }
            let timed = time_boot(&reference, firmware, machine, End::Exit, settings).and_then(|reference| {
                time_boot(iso, firmware, machine, End::Serial(SHELL_READY), settings)
                    .map(|kernel| (reference, kernel))
            });
            match timed {
                Ok((reference, kernel)) => {
                    references.push(reference);
                    kernels.push(kernel);
                }
                Err(error) => *failure = Some(error),
            }
        }
    }
    let mut failed = false;
    for ((firmware, machine), (references, kernels, failure)) in MACHINES.into_iter().zip(&series) {
        let name = format!("{} {}", firmware.name(), machine.name());
        if let Some(error) = failure {
            println!("  {name:<10} failed: {error}");
            failed = true;
            continue;
        }
        // Each kernel boot follows its reference boot; the median of the
        // pairs' differences says in milliseconds what the kernel adds, and
        // their middle half (25th to 75th percentile) how much single boots
        // scatter around it. The goal is judged on the medians' ratio. On a
        // shared machine single boots of either kernel are slowed or not on
        // their own, so the figures move from run to run.
        let extra: Vec<f64> =
            references.iter().zip(kernels).map(|(reference, kernel)| kernel - reference).collect();
        if let (Some(reference), Some(kernel), Some(median_extra), Some(low), Some(high)) = (
            quantile(references, 0.5),
            quantile(kernels, 0.5),
            quantile(&extra, 0.5),
            quantile(&extra, 0.25),
            quantile(&extra, 0.75),
        ) {
            let ratio = kernel / reference;
            println!(
                "  {name:<10} {:>7} {:>12.3} s {:>12.3} s {:>7.2}x {:>10.0} ms {:>9} ms  (goal <= {GOAL}x{})",
                references.len(),
                reference,
                kernel,
                ratio,
                median_extra * 1000.0,
                format!("{:.0} to {:.0}", low * 1000.0, high * 1000.0),
                if ratio <= GOAL { "" } else { ": missed" }
            );
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// Seconds from starting QEMU on `image` to `end`: the moment the serial
/// bytes that complete the text arrive, or QEMU's output closing as it exits.
fn time_boot(
    image: &Path,
    firmware: Firmware,
    machine: Machine,
    end: End,
    settings: &Settings,
) -> Result<f64, String> {
    let boot = Boot { machine, ..Boot::new("boot_bench", image, firmware, Expect::ExitSuccess) };
    let vars = qemu::scratch_vars_path(&boot);
    let result = (|| {
        let mut command = qemu::command(&boot, settings, &vars)?;
        command.stderr(std::process::Stdio::null());
        let start = Instant::now();
        let mut child = command.spawn().map_err(|error| format!("could not start QEMU: {error}"))?;
        let mut stdout = child.stdout.take().expect("piped");
        let (sender, chunks) = mpsc::channel();
        let reader = thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            loop {
                let n = stdout.read(&mut buffer).unwrap_or(0);
                if sender.send((Instant::now(), buffer[..n].to_vec())).is_err() || n == 0 {
                    break;
                }
            }
        });
        let mut serial = Vec::new();
        let deadline = start + firmware.deadline();
        let outcome = loop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break Err("timed out".to_string());
            };
            match chunks.recv_timeout(left.min(Duration::from_secs(1))) {
                Ok((at, chunk)) if chunk.is_empty() => break Ok(at),
                Ok((at, chunk)) => {
                    serial.extend_from_slice(&chunk);
                    if let End::Serial(text) = end
                        && String::from_utf8_lossy(&serial).contains(text)
                    {
                        break Ok(at);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break Ok(Instant::now()),
            }
        };
        let _ = child.kill();
        let status = child.wait().map_err(|error| format!("waiting for QEMU: {error}"))?;
        let _ = reader.join();
        let serial = String::from_utf8_lossy(&serial).into_owned();
        let at = outcome.map_err(|error| format!("{error}; serial ends:\n{}", tail(&serial)))?;
        match end {
            End::Exit if status.code() != Some(EXIT_SUCCESS) => Err(format!(
                "the reference kernel did not exit through isa-debug-exit ({status}); serial ends:\n{}",
                tail(&serial)
            )),
            End::Serial(text) if !serial.contains(firmware.banner()) => {
                Err(format!("QEMU exited before \"{text}\"; serial ends:\n{}", tail(&serial)))
            }
            _ => Ok(at.duration_since(start).as_secs_f64()),
        }
    })();
    let _ = fs::remove_file(&vars);
    result
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// The value a fraction `q` of the way through `values` sorted, between
/// the two nearest ones: `q = 0.5` is the median (the mean of the two middle
/// values for an even count).
fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let position = (sorted.len().checked_sub(1)? as f64) * q;
    let (below, above) = (position.floor() as usize, position.ceil() as usize);
    Some(sorted[below] + (sorted[above] - sorted[below]) * (position - below as f64))
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn the_median_ignores_outliers() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[3.0], 0.5), Some(3.0));
        assert_eq!(quantile(&[0.9, 5.0, 0.8], 0.5), Some(0.9));
        assert_eq!(quantile(&[1.0, 4.0, 2.0, 3.0], 0.5), Some(2.5));
    }

    #[test]
    fn quartiles_lie_between_the_nearest_values() {
        let values = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quantile(&values, 0.25), Some(2.0));
        assert_eq!(quantile(&values, 0.75), Some(4.0));
        assert_eq!(quantile(&[1.0, 2.0], 0.25), Some(1.25));
        assert_eq!(quantile(&values, 0.0), Some(1.0));
        assert_eq!(quantile(&values, 1.0), Some(5.0));
    }
}
