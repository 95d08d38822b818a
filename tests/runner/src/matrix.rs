//! `make test-matrix`: the real kernel booted from every medium, on both
//! firmwares, both machine models and a small and a large memory, ending
//! with a table of what reached the shell.

use crate::qemu::{Boot, Expect, Firmware, Machine, Medium, Outcome};
use std::path::Path;

/// The memory sizes tried: about the least a PC ever had for this kernel,
/// and enough that RAM reaches past the 32-bit PCI hole.
pub const MEMORY: [&str; 2] = ["64M", "4G"];

/// One column of the table: an image and how it is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub image: Image,
    pub medium: Medium,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Image {
    Iso,
    Hdd,
}

impl Image {
    fn name(self) -> &'static str {
        match self {
            Self::Iso => "ISO",
            Self::Hdd => "HDD",
        }
    }
}

impl Column {
    /// The ISO on every medium; the disk image as a disk and a USB stick
    /// (it has no El Torito catalogue, so it is no CD).
    pub const ALL: [Column; 5] = [
        Column { image: Image::Iso, medium: Medium::Cd },
        Column { image: Image::Iso, medium: Medium::Disk },
        Column { image: Image::Iso, medium: Medium::UsbStick },
        Column { image: Image::Hdd, medium: Medium::Disk },
        Column { image: Image::Hdd, medium: Medium::UsbStick },
    ];

    fn heading(self) -> String {
        format!("{} {}", self.image.name(), self.medium.name())
    }
}

/// One row of the table: firmware, machine model and memory size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub firmware: Firmware,
    pub machine: Machine,
    pub memory: &'static str,
}

impl Row {
    pub fn all() -> Vec<Row> {
        let mut rows = Vec::new();
        for firmware in Firmware::ALL {
            for machine in Machine::ALL {
                for memory in MEMORY {
                    rows.push(Row { firmware, machine, memory });
                }
            }
        }
        rows
    }
}

/// Every boot of the matrix; its name says its row and column, which
/// `Table::record` reads back.
pub fn boots(iso: &Path, hdd: &Path, expect: impl Fn() -> Expect) -> Vec<Boot> {
    let mut boots = Vec::new();
    for row in Row::all() {
        for column in Column::ALL {
            let image = match column.image {
                Image::Iso => iso,
                Image::Hdd => hdd,
            };
            boots.push(Boot {
                medium: column.medium,
                machine: row.machine,
                memory: row.memory,
                ..Boot::new(boot_name(row, column), image, row.firmware, expect())
            });
        }
    }
    boots
}

fn boot_name(row: Row, column: Column) -> String {
    format!("{} {} {} {}", column.image.name(), row.machine.name(), row.memory, column.medium.name())
}

/// The results so far, by row and column.
pub struct Table {
    rows: Vec<Row>,
    cells: Vec<Vec<Option<Cell>>>,
}

#[derive(Debug, Clone)]
struct Cell {
    passed: bool,
    summary: String,
}

impl Default for Table {
    fn default() -> Self {
        let rows = Row::all();
        let cells = vec![vec![None; Column::ALL.len()]; rows.len()];
        Self { rows, cells }
    }
}

impl Table {
    pub fn record(&mut self, boot: &Boot, outcome: &Outcome) {
        for (r, row) in self.rows.iter().enumerate() {
            for (c, column) in Column::ALL.iter().enumerate() {
                if row.firmware == boot.firmware && boot.name == boot_name(*row, *column) {
                    self.cells[r][c] =
                        Some(Cell { passed: outcome.passed, summary: outcome.summary.clone() });
                }
            }
        }
    }

    /// A Markdown table, "yes" where the kernel reached the shell, "no (n)"
    /// where it did not, with note n saying why below the table.
    pub fn render(&self) -> String {
        let mut out = String::from("| firmware | machine | memory |");
        for column in Column::ALL {
            out.push_str(&format!(" {} |", column.heading()));
        }
        out.push_str("\n| --- | --- | --- |");
        out.push_str(&" --- |".repeat(Column::ALL.len()));
        out.push('\n');
        let mut notes: Vec<String> = Vec::new();
        for (row, cells) in self.rows.iter().zip(&self.cells) {
            let firmware = match row.firmware {
                Firmware::Bios => "BIOS",
                Firmware::Uefi => "UEFI",
            };
            out.push_str(&format!("| {firmware} | {} | {} |", row.machine.name(), row.memory));
            for cell in cells {
                let text = match cell {
                    None => "not run".to_string(),
                    Some(Cell { passed: true, .. }) => "yes".to_string(),
                    Some(Cell { passed: false, summary }) => {
                        let n = match notes.iter().position(|note| note == summary) {
                            Some(at) => at + 1,
                            None => {
                                notes.push(summary.clone());
                                notes.len()
                            }
                        };
                        format!("**no** ({n})")
                    }
                };
                out.push_str(&format!(" {text} |"));
            }
            out.push('\n');
        }
        for (n, note) in notes.iter().enumerate() {
            out.push_str(&format!("\n({}) {note}", n + 1));
        }
        if !notes.is_empty() {
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(passed: bool, summary: &str) -> Outcome {
        Outcome { passed, summary: summary.into(), seconds: 1.0, log: String::new() }
    }

    #[test]
    fn the_matrix_is_every_combination() {
        let boots = boots(Path::new("a.iso"), Path::new("a.hdd"), || Expect::SerialLines(vec![]));
        assert_eq!(boots.len(), 2 * 2 * 2 * Column::ALL.len());
        let names: std::collections::HashSet<_> =
            boots.iter().map(|boot| (boot.firmware.name(), boot.name.clone())).collect();
        assert_eq!(names.len(), boots.len());
        assert!(boots.iter().all(|boot| boot.image.ends_with(if boot.name.starts_with("HDD") {
            "a.hdd"
        } else {
            "a.iso"
        })));
    }

    #[test]
    fn the_table_shows_each_result_in_its_cell_with_shared_notes() {
        let boots = boots(Path::new("a.iso"), Path::new("a.hdd"), || Expect::SerialLines(vec![]));
        let mut table = Table::default();
        for boot in &boots {
            let failed = boot.memory == "64M" && boot.firmware == Firmware::Uefi;
            table.record(boot, &outcome(!failed, "timed out after 60 s (hung)"));
        }
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "| firmware | machine | memory | ISO cd | ISO disk | ISO usb | HDD disk | HDD usb |"
        );
        assert_eq!(lines[2], "| BIOS | pc | 64M | yes | yes | yes | yes | yes |");
        assert!(lines.contains(
            &"| UEFI | q35 | 64M | **no** (1) | **no** (1) | **no** (1) | **no** (1) | **no** (1) |"
        ));
        assert!(lines.contains(&"| UEFI | q35 | 4G | yes | yes | yes | yes | yes |"));
        assert_eq!(lines.last(), Some(&"(1) timed out after 60 s (hung)"));
    }

    #[test]
    fn a_cell_without_a_result_says_so() {
        let text = Table::default().render();
        assert!(
            text.lines().nth(2).unwrap().ends_with("| not run | not run | not run | not run | not run |")
        );
    }
}
