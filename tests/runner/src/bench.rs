//! `make bench`'s boot figures: how long QEMU takes from its start to the
//! real kernel's shell prompt, against how long it takes to run a reference
//! kernel that exits in its first instruction (`tests/kernels/boot_reference.rs`),
//! booted from the same ISO layout with the same `limine.conf`, firmware and
//! QEMU command line. Both images come from the Makefile's `image` recipe,
//! so the reference is packed too (see `kernel/pack`; its packed file is
//! smaller than its stripped ELF file). The two boot in turn, and the
//! machines take turns, over several rounds of one run; each boot is timed
//! to Limine's `Loading kernel` line and to its end, and the medians are
//! compared (see [`Estimate`]).

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
        "  CD, {}); boots taken in turn, the machines in turn ({ROUNDS} rounds, UEFI in one of {UEFI_EVERY}).",
        settings.accel
    );
    println!("  Each time is the median time to Limine's `Loading kernel` line over all of a machine's");
    println!("  boots, the same work for both kernels (each one's own median in parentheses), plus the");
    println!("  median time from that line to the end; the last column compares medians of whole boots.");
    println!(
        "  {:<10} {:>5} {:>23} {:>10} {:>10} {:>7} {:>11} {:>15} {:>11}",
        "firmware",
        "boots",
        "to Limine",
        "reference",
        "kernel",
        "ratio",
        "kernel adds",
        "middle half",
        "whole boots"
    );
    // Per machine: the reference's and the kernel's boots, or why it stopped.
    let mut series: Vec<(Vec<Timed>, Vec<Timed>, Option<String>)> =
        MACHINES.map(|_| Default::default()).into();
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
        let Some(estimate) = Estimate::new(references, kernels) else { continue };
        println!(
            "  {name:<10} {:>5} {:>21} s {:>8.3} s {:>8.3} s {:>6.3}x {:>8.0} ms {:>12} ms {:>10.3}x  (goal <= {GOAL}x{})",
            references.len(),
            format!(
                "{:.3} ({:.3}, {:.3})",
                estimate.to_limine, estimate.to_limine_each.0, estimate.to_limine_each.1
            ),
            estimate.reference,
            estimate.kernel,
            estimate.ratio(),
            estimate.kernel_adds * 1000.0,
            format!("{:.0} to {:.0}", estimate.middle_half.0 * 1000.0, estimate.middle_half.1 * 1000.0),
            estimate.whole_boots_ratio,
            if estimate.ratio() <= GOAL { "" } else { ": missed" }
        );
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// The text Limine prints on serial as it starts reading the kernel's file.
/// Everything before it (QEMU's start, the firmware, Limine inflating its
/// own second stage, reading its configuration) is the same work for both
/// kernels, from the same ISO layout.
const LIMINE_LOADING: &str = "limine: Loading kernel";

/// Whether serial output holds [`LIMINE_LOADING`]: under OVMF each
/// character comes with its own cursor escape.
fn shows_limine_loading(serial: &[u8]) -> bool {
    qemu::strip_escapes(&String::from_utf8_lossy(serial)).contains(LIMINE_LOADING)
}

/// One boot: seconds from QEMU's start to Limine's [`LIMINE_LOADING`]
/// line, and to the boot's end.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Timed {
    to_limine: f64,
    total: f64,
}

/// One machine's figures, in seconds.
///
/// Under emulation the time to Limine's line is most of a BIOS boot
/// (about 0.9 s of 1, of which about 0.6 s is Limine inflating its second
/// stage) and nearly all of a UEFI one, and on a shared build machine it is
/// also where single boots scatter most: by up to 0.5 s, while the part
/// after it scatters by tens of ms. That part is the same for both kernels,
/// so its median is taken over every boot of the machine, and each kernel's
/// median of what follows is added to it: the same quantity as the ratio of
/// whole boots' medians, measured with a fraction of the noise.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Estimate {
    /// Median time to Limine's line, over both kernels' boots.
    to_limine: f64,
    /// The same over the reference's boots and over the kernel's: they
    /// differ only by the noise, or the shared phase is not shared.
    to_limine_each: (f64, f64),
    /// `to_limine` plus the reference's median time from the line to its exit.
    reference: f64,
    /// `to_limine` plus the kernel's median time from the line to the prompt.
    kernel: f64,
    /// Median of the pairs' differences after Limine's line (each kernel
    /// boot against the reference boot just before it).
    kernel_adds: f64,
    /// The 25th and 75th percentiles of those differences.
    middle_half: (f64, f64),
    /// The ratio of the medians of whole boots, for comparison.
    whole_boots_ratio: f64,
}

impl Estimate {
    fn new(references: &[Timed], kernels: &[Timed]) -> Option<Estimate> {
        let times = |boots: &[Timed], time: fn(&Timed) -> f64| boots.iter().map(time).collect::<Vec<f64>>();
        let median = |boots: &[Timed], time: fn(&Timed) -> f64| quantile(&times(boots, time), 0.5);
        let [to_limine, after, total]: [fn(&Timed) -> f64; 3] =
            [|boot| boot.to_limine, |boot| boot.total - boot.to_limine, |boot| boot.total];
        let extra: Vec<f64> = references
            .iter()
            .zip(kernels)
            .map(|(reference, kernel)| after(kernel) - after(reference))
            .collect();
        let shared = quantile(&[times(references, to_limine), times(kernels, to_limine)].concat(), 0.5)?;
        Some(Estimate {
            to_limine: shared,
            to_limine_each: (median(references, to_limine)?, median(kernels, to_limine)?),
            reference: shared + median(references, after)?,
            kernel: shared + median(kernels, after)?,
            kernel_adds: quantile(&extra, 0.5)?,
            middle_half: (quantile(&extra, 0.25)?, quantile(&extra, 0.75)?),
            whole_boots_ratio: median(kernels, total)? / median(references, total)?,
        })
    }

    /// What the goal is judged on.
    fn ratio(&self) -> f64 {
        self.kernel / self.reference
    }
}

/// Seconds from starting QEMU on `image` to `end`: the moment the serial
/// bytes that complete the text arrive, or QEMU's output closing as it exits.
fn time_boot(
    image: &Path,
    firmware: Firmware,
    machine: Machine,
    end: End,
    settings: &Settings,
) -> Result<Timed, String> {
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
        let mut to_limine = None;
        let deadline = start + firmware.deadline();
        let outcome = loop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break Err("timed out".to_string());
            };
            match chunks.recv_timeout(left.min(Duration::from_secs(1))) {
                Ok((at, chunk)) if chunk.is_empty() => break Ok(at),
                Ok((at, chunk)) => {
                    serial.extend_from_slice(&chunk);
                    if to_limine.is_none() && shows_limine_loading(&serial) {
                        to_limine = Some(at);
                    }
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
            _ => {
                let seconds = |at: Instant| at.duration_since(start).as_secs_f64();
                let to_limine = to_limine.ok_or_else(|| {
                    format!(
                        "Limine's \"{LIMINE_LOADING}\" never appeared on serial; serial ends:\n{}",
                        tail(&serial)
                    )
                })?;
                Ok(Timed { to_limine: seconds(to_limine), total: seconds(at) })
            }
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
    use super::{Estimate, Timed, quantile, shows_limine_loading};

    fn boots(times: &[(f64, f64)]) -> Vec<Timed> {
        times.iter().map(|&(to_limine, total)| Timed { to_limine, total }).collect()
    }

    #[test]
    fn the_shared_phase_is_pooled_and_each_kernel_adds_its_own_part() {
        // The shared phase scatters by 0.5 s; after it the reference takes
        // 0.05 s and the kernel 0.1 s. By whole boots the kernel looks
        // faster, because its boots happened to meet a quicker spell.
        let references = boots(&[(1.3, 1.35), (0.9, 0.95), (1.4, 1.45)]);
        let kernels = boots(&[(0.8, 0.9), (1.0, 1.1), (0.9, 1.0)]);
        let estimate = Estimate::new(&references, &kernels).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(estimate.to_limine, 0.95), "{estimate:?}");
        assert!(
            close(estimate.to_limine_each.0, 1.3) && close(estimate.to_limine_each.1, 0.9),
            "{estimate:?}"
        );
        assert!(close(estimate.reference, 1.0), "{estimate:?}");
        assert!(close(estimate.kernel, 1.05), "{estimate:?}");
        assert!(close(estimate.ratio(), 1.05), "{estimate:?}");
        assert!(close(estimate.kernel_adds, 0.05), "{estimate:?}");
        assert!(close(estimate.whole_boots_ratio, 1.0 / 1.35), "{estimate:?}");
        assert_eq!(Estimate::new(&[], &[]), None);
    }

    #[test]
    fn limines_line_is_found_through_ovmfs_cursor_escapes() {
        assert!(shows_limine_loading(b"limine: Loading kernel `boot():/boot/kernel`...\r\n"));
        let ovmf =
            "limine: Loading kernel".chars().enumerate().fold(String::new(), |mut out, (column, ch)| {
                out.push_str(&format!("\x1b[01;{:02}H{ch}", column + 1));
                out
            });
        assert!(shows_limine_loading(format!("\x1b[2J{ovmf}").as_bytes()));
        assert!(!shows_limine_loading(b"limine: Loading"));
    }

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
