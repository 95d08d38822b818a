//! The whole text path against a reference: bytes through the terminal and
//! grid, the renderer's pixels compared, cell by cell, with each cell's
//! glyph blended straight from the font. The renderer's caches, batches and
//! scroll tricks must never show anything else.
//!
//! `FUZZ_ITERS` sets the number of random strings (default 400,000); the
//! seed is fixed, so a failure repeats.

use super::color::blend;
use super::font::{Font, Glyphs};
use super::framebuffer::tests::{leaked_glyphs, leaked_memory};
use super::framebuffer::{Mode, PixelFormat, Renderer};
use super::grid::{Cell, Grid, tests::grid};
use super::terminal::Terminal;
use crate::boot::ColorMask;
use crate::testing::Rng;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiplicative hasher: the reference cache is looked up for every cell
/// of every screen, where SipHash's cost would dominate the test.
#[derive(Default)]
struct QuickHasher(u64);

impl Hasher for QuickHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.mix(byte as u64);
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.mix(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl QuickHasher {
    fn mix(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type Expected = HashMap<Cell, Vec<u8>, BuildHasherDefault<QuickHasher>>;

fn fuzz_iterations() -> u64 {
    std::env::var("FUZZ_ITERS").ok().and_then(|n| n.parse().ok()).unwrap_or(400_000)
}

/// A renderer drawing into a framebuffer in RAM, the terminal feeding it,
/// and the expected pixels of every cell seen so far.
struct Screen {
    renderer: Renderer<'static>,
    terminal: Terminal<'static>,
    /// The framebuffer the renderer owns, read back only between updates.
    front: *const u8,
    front_len: usize,
    pitch: usize,
    format: PixelFormat,
    glyphs: Glyphs<'static>,
    expected: Expected,
}

impl Screen {
    fn new(cols: usize, rows: usize) -> Self {
        Self::in_font(Font::SMALLEST, cols, rows)
    }

    fn in_font(font: Font, cols: usize, rows: usize) -> Self {
        let format = PixelFormat::new(
            32,
            ColorMask { size: 8, shift: 16 },
            ColorMask { size: 8, shift: 8 },
            ColorMask { size: 8, shift: 0 },
        )
        .unwrap();
        let (width, height) = (cols * font.width(), rows * font.height());
        let pitch = width * 4 + 32;
        let mode = Mode { width, height, pitch, format };
        let front = Box::leak(vec![0u8; mode.bytes()].into_boxed_slice());
        let (view, front_len) = (front.as_ptr(), front.len());
        let renderer = Renderer::new(mode, leaked_glyphs(font), leaked_memory(mode, font), front);
        Self {
            renderer,
            terminal: Terminal::new(grid(cols, rows)),
            front: view,
            front_len,
            pitch,
            format,
            glyphs: leaked_glyphs(font),
            expected: Expected::default(),
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.terminal.write(bytes);
        self.renderer.update(self.terminal.grid_mut());
    }

    /// Compares every cell on screen with the font's rendering of the grid.
    fn assert_matches_grid(&mut self, context: &dyn Fn() -> String) {
        if self.expected.len() > 50_000 {
            self.expected.clear();
        }
        // SAFETY: the leaked framebuffer lives for good, and the renderer
        // does not write it while this reads (between updates).
        let front = unsafe { std::slice::from_raw_parts(self.front, self.front_len) };
        let grid: &Grid = self.terminal.grid();
        let (cursor, format, glyphs) = (grid.cursor(), self.format, &mut self.glyphs);
        let font = glyphs.font();
        for row in 0..grid.rows() {
            for col in 0..grid.cols() {
                let mut cell = grid.cell(row, col);
                if (row, col) == cursor {
                    (cell.fg, cell.bg) = (cell.bg, cell.fg);
                }
                let expected = self.expected.entry(cell).or_insert_with(|| reference(glyphs, cell, format));
                let line = font.width() * 4;
                for y in 0..font.height() {
                    let at = (row * font.height() + y) * self.pitch + col * line;
                    if front[at..at + line] != expected[y * line..(y + 1) * line] {
                        panic!(
                            "cell ({row},{col}) should show {cell:?}, pixel row {y} differs; {}",
                            context()
                        );
                    }
                }
            }
        }
    }
}

/// The cell's pixels, straight from its ink.
fn reference(glyphs: &mut Glyphs, cell: Cell, format: PixelFormat) -> Vec<u8> {
    let ink = glyphs.ink(cell.ch, cell.bold);
    ink.pixels()
        .iter()
        .flat_map(|&alpha| format.encode(blend(cell.fg, cell.bg, alpha)).to_le_bytes())
        .collect()
}

fn random_color(random: &mut Rng) -> String {
    match random.below(4) {
        0 => format!("{}", 30 + random.below(8) + 60 * random.below(2)),
        1 => format!("{}", 40 + random.below(8) + 60 * random.below(2)),
        2 => format!("{};5;{}", [38, 48][random.below(2)], random.below(256)),
        // Few channel values: colour pairs repeat, as on real screens, so
        // the glyph cache both hits and evicts.
        _ => format!(
            "{};2;{};{};{}",
            [38, 48][random.below(2)],
            random.below(4) * 85,
            random.below(4) * 85,
            random.below(4) * 85
        ),
    }
}

#[test]
fn random_coloured_screens_match_the_reference() {
    let mut random = Rng(0x9e37_79b9_7f4a_7c15);
    // Most rounds in the size most screens get; every size shares the
    // drawing code, and the larger ones cost more to compare.
    for font in Font::ALL {
        let rounds = if font == Font::SMALLEST { 1_000 } else { 250 };
        random_coloured_screens(&mut random, font, rounds);
    }
}

fn random_coloured_screens(random: &mut Rng, font: Font, rounds: usize) {
    let mut screen = Screen::in_font(font, 64, 16);
    for round in 0..rounds {
        let mut text = String::new();
        for _ in 0..64 {
            text.push_str(&format!("\x1b[{}m", random_color(random)));
            if random.below(8) == 0 {
                text.push_str("\x1b[1m");
            }
            text.push(char::from(b'!' + random.below(94) as u8));
        }
        text.push_str("\x1b[0m");
        if random.below(4) == 0 {
            text.push('\n');
        }
        screen.write(text.as_bytes());
        screen.assert_matches_grid(&|| format!("{font}, round {round}"));
    }
}

/// Printable ASCII, UTF-8 (Latin-1, CJK, emoji, replacement), controls, and
/// escape sequences, valid and broken, mixed at random.
fn random_bytes(random: &mut Rng, out: &mut Vec<u8>) {
    const PIECES: &[&str] = &[
        "é",
        "ß",
        "中",
        "😀",
        "\u{fffd}",
        "\n",
        "\r",
        "\t",
        "\x08",
        "\x07",
        "\x1b",
        "\x1b[",
        "\x1b]0;t\x07",
    ];
    const FINALS: &[u8] = b"ABCDEFGHJKLMPSTXZ@`abcdefhlmnqrsu";
    for _ in 0..1 + random.below(16) {
        match random.below(10) {
            0..=3 => out.push(b' ' + random.below(95) as u8),
            4 => out.extend_from_slice(random.pick(PIECES).as_bytes()),
            5 => out.push(random.below(256) as u8),
            6 => out.extend_from_slice(format!("\x1b[{}m", random_color(random)).as_bytes()),
            7 => {
                out.extend_from_slice(b"\x1b[");
                if random.below(3) == 0 {
                    out.push(b'?');
                }
                for i in 0..random.below(4) {
                    if i > 0 {
                        out.push(b';');
                    }
                    out.extend_from_slice(random.below(300).to_string().as_bytes());
                }
                out.push(*random.pick(FINALS));
            }
            8 => out.extend_from_slice(b"\x1b[0m"),
            _ => out.extend_from_slice(format!("\x1b[{};{}H", random.below(8), random.below(12)).as_bytes()),
        }
    }
}

#[test]
fn random_byte_strings_never_panic_and_always_match_the_reference() {
    let mut random = Rng(0x2545_f491_4f6c_dd1d);
    let mut screen = Screen::new(8, 3);
    let mut bytes = Vec::new();
    for iteration in 0..fuzz_iterations() {
        bytes.clear();
        random_bytes(&mut random, &mut bytes);
        screen.write(&bytes);
        screen.assert_matches_grid(&|| format!("iteration {iteration}, after {bytes:?}"));
    }
}

#[test]
fn the_reference_notices_a_wrong_pixel() {
    let mut screen = Screen::new(4, 2);
    screen.write(b"ab");
    // SAFETY: as in `assert_matches_grid`; a copy is what gets corrupted.
    let copy = unsafe { std::slice::from_raw_parts(screen.front, screen.front_len) }.to_vec();
    let wrong = Box::leak(copy.into_boxed_slice());
    wrong[screen.pitch * 3 + 5] ^= 0xff;
    screen.front = wrong.as_ptr();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        screen.assert_matches_grid(&String::new);
    }));
    assert!(caught.is_err());
}
