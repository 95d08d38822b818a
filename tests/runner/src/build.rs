//! The cargo and make side: host unit tests, test-kernel binaries, their ISOs.

use crate::seconds_since;
use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Instant,
};

const KERNEL_TARGET: &str = "x86_64-unknown-none";
const TEST_ISO_DIR: &str = "target/ember/tests";

pub struct HostTests {
    pub passed: usize,
    pub failed: usize,
    /// Cargo built and ran everything (a build error leaves both counts 0).
    pub ok: bool,
    pub seconds: f64,
    pub log: String,
}

/// Runs `cargo test` on the host for the hardware-independent code.
pub fn host_unit_tests() -> HostTests {
    let start = Instant::now();
    let output = Command::new("cargo")
        .args(["test", "-q", "-p", "kernel", "-p", "test-runner"])
        .stdin(Stdio::null())
        .output();
    let (ok, log) = match output {
        Ok(output) => (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        ),
        Err(error) => (false, format!("could not run cargo: {error}")),
    };
    let (passed, failed) = count_results(&log);
    HostTests {
        passed,
        failed,
        ok,
        seconds: seconds_since(start),
        log,
    }
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
}

/// Builds the test kernels under `tests/kernels` and lists their binaries.
pub fn test_kernels() -> Result<Vec<TestKernel>, String> {
    let output = Command::new("cargo")
        .args([
            "test",
            "-p",
            "test-kernels",
            "--no-run",
            "--target",
            KERNEL_TARGET,
        ])
        .args(["--message-format", "json-render-diagnostics"])
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("could not run cargo: {error}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let mut kernels = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_test = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|kind| kind == "test"));
        if let (Some(name), Some(elf), true) = (
            message["target"]["name"].as_str(),
            message["executable"].as_str(),
            is_test,
        ) {
            kernels.push(TestKernel {
                name: name.to_string(),
                elf: PathBuf::from(elf),
            });
        }
    }
    if kernels.is_empty() {
        return Err("cargo built no test kernels".into());
    }
    kernels.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(kernels)
}

/// Wraps a test kernel into a bootable ISO with the Makefile's `image` recipe,
/// the same one that builds the real kernel's ISO.
pub fn iso_for(kernel: &TestKernel) -> Result<PathBuf, String> {
    let iso = PathBuf::from(TEST_ISO_DIR).join(format!("{}.iso", kernel.name));
    std::fs::create_dir_all(TEST_ISO_DIR).map_err(|error| format!("{TEST_ISO_DIR}: {error}"))?;
    let output = Command::new("make")
        .arg("-s")
        .arg("image")
        .arg(format!("KERNEL_ELF={}", kernel.elf.display()))
        .arg(format!("ISO={}", iso.display()))
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("could not run make: {error}"))?;
    if output.status.success() {
        Ok(iso)
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::count_results;

    #[test]
    fn sums_every_result_line() {
        let log = "running 3 tests\n...\n\
            test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\
            test result: FAILED. 5 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n";
        assert_eq!(count_results(log), (8, 2));
    }

    #[test]
    fn a_log_without_results_counts_nothing() {
        assert_eq!(
            count_results("error[E0425]: cannot find value `x`\n"),
            (0, 0)
        );
    }
}
