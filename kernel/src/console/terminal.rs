//! A terminal on a [`Grid`]: bytes in, UTF-8 text and ANSI escape sequences
//! applied. Parsing is `vte`'s (the parser behind Alacritty), so malformed or
//! unknown sequences are consumed instead of printed as garbage.

use super::color::{self, DEFAULT_BG, DEFAULT_FG, Rgb};
use super::grid::{Cell, Grid};
use vte::{Params, Parser, Perform};

/// The attributes new text is written with (SGR state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pen {
    fg: Rgb,
    bg: Rgb,
    bold: bool,
    inverse: bool,
}

impl Pen {
    const DEFAULT: Pen = Pen { fg: DEFAULT_FG, bg: DEFAULT_BG, bold: false, inverse: false };

    fn cell(&self, ch: char) -> Cell {
        let fg = if self.bold { color::brighten(self.fg) } else { self.fg };
        let (fg, bg) = if self.inverse { (self.bg, fg) } else { (fg, self.bg) };
        Cell { ch, fg, bg, bold: self.bold }
    }
}

pub struct Terminal<'a> {
    grid: Grid<'a>,
    parser: Parser,
    pen: Pen,
}

impl<'a> Terminal<'a> {
    pub fn new(grid: Grid<'a>) -> Self {
        Self { grid, parser: Parser::new(), pen: Pen::DEFAULT }
    }

    pub fn grid(&self) -> &Grid<'a> {
        &self.grid
    }

    pub fn grid_mut(&mut self) -> &mut Grid<'a> {
        &mut self.grid
    }

    /// Feeds bytes; a sequence split across calls is carried over.
    pub fn write(&mut self, bytes: &[u8]) {
        let mut performer = Performer { grid: &mut self.grid, pen: &mut self.pen };
        self.parser.advance(&mut performer, bytes);
    }

    /// Forgets any half-parsed sequence and the current attributes, so that
    /// what follows (a panic report) is shown as written.
    pub fn reset_state(&mut self) {
        self.parser = Parser::new();
        self.pen = Pen::DEFAULT;
    }
}

struct Performer<'g, 'a> {
    grid: &'g mut Grid<'a>,
    pen: &'g mut Pen,
}

impl Perform for Performer<'_, '_> {
    fn print(&mut self, ch: char) {
        self.grid.put(self.pen.cell(ch));
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\n' | 0x0b | 0x0c => self.grid.newline(),
            b'\r' => self.grid.carriage_return(),
            b'\t' => self.grid.tab(),
            0x08 => self.grid.backspace(),
            _ => {}
        }
    }

    fn csi_dispatch(&mut self, params: &Params, intermediates: &[u8], ignore: bool, action: char) {
        // Private sequences (`ESC [ ? ...`) and overlong ones are not ours.
        if ignore || !intermediates.is_empty() {
            return;
        }
        let count = |i: usize| nth(params, i).max(1) as isize;
        let (row, col) = self.grid.cursor();
        let (rows, cols, bg) = (self.grid.rows(), self.grid.cols(), self.pen.bg);
        match action {
            'm' => sgr(self.pen, params),
            'H' | 'f' => self.grid.set_cursor(count(0) as usize - 1, count(1) as usize - 1),
            'A' => self.grid.move_cursor(-count(0), 0),
            'B' => self.grid.move_cursor(count(0), 0),
            'C' => self.grid.move_cursor(0, count(0)),
            'D' => self.grid.move_cursor(0, -count(0)),
            'J' => match nth(params, 0) {
                0 => {
                    self.grid.erase(row, col, cols, bg);
                    self.grid.erase_rows(row + 1, rows, bg);
                }
                1 => {
                    self.grid.erase_rows(0, row, bg);
                    self.grid.erase(row, 0, col + 1, bg);
                }
                2 | 3 => self.grid.erase_rows(0, rows, bg),
                _ => {}
            },
            'K' => match nth(params, 0) {
                0 => self.grid.erase(row, col, cols, bg),
                1 => self.grid.erase(row, 0, col + 1, bg),
                2 => self.grid.erase(row, 0, cols, bg),
                _ => {}
            },
            _ => {}
        }
    }
}

/// Parameter `i` (its first value), 0 when absent.
fn nth(params: &Params, i: usize) -> u16 {
    params.iter().nth(i).and_then(|group| group.first().copied()).unwrap_or(0)
}

/// Select Graphic Rendition: `ESC [ ... m`.
fn sgr(pen: &mut Pen, params: &Params) {
    let mut groups = params.iter();
    if params.is_empty() {
        *pen = Pen::DEFAULT;
        return;
    }
    while let Some(group) = groups.next() {
        match group[0] {
            0 => *pen = Pen::DEFAULT,
            1 => pen.bold = true,
            22 => pen.bold = false,
            7 => pen.inverse = true,
            27 => pen.inverse = false,
            n @ 30..=37 => pen.fg = color::PALETTE[(n - 30) as usize],
            n @ 90..=97 => pen.fg = color::PALETTE[(n - 90 + 8) as usize],
            39 => pen.fg = DEFAULT_FG,
            n @ 40..=47 => pen.bg = color::PALETTE[(n - 40) as usize],
            n @ 100..=107 => pen.bg = color::PALETTE[(n - 100 + 8) as usize],
            49 => pen.bg = DEFAULT_BG,
            n @ (38 | 48) => {
                let color = if group.len() > 1 {
                    extended_color(&group[1..])
                } else {
                    extended_color_from(&mut groups)
                };
                if let Some(color) = color {
                    if n == 38 { pen.fg = color } else { pen.bg = color }
                }
            }
            _ => {}
        }
    }
}

/// `5:n` or `2:r:g:b` (also `2::r:g:b`, with a colour-space id) as subparameters.
fn extended_color(values: &[u16]) -> Option<Rgb> {
    match values {
        [5, n, ..] => Some(color::xterm_256(*n as u8)),
        [2, r, g, b] | [2, _, r, g, b, ..] => Some(Rgb::new(*r as u8, *g as u8, *b as u8)),
        _ => None,
    }
}

/// `;5;n` or `;2;r;g;b` as separate parameters, consumed from `groups`.
fn extended_color_from<'p>(groups: &mut impl Iterator<Item = &'p [u16]>) -> Option<Rgb> {
    let mut next = || groups.next().map(|g| g[0]);
    match next()? {
        5 => Some(color::xterm_256(next()? as u8)),
        2 => {
            let (r, g, b) = (next()?, next()?, next()?);
            Some(Rgb::new(r as u8, g as u8, b as u8))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::color::PALETTE;
    use crate::console::grid::tests::{grid, text};

    fn term(cols: usize, rows: usize) -> Terminal<'static> {
        Terminal::new(grid(cols, rows))
    }

    #[test]
    fn plain_text_and_utf8() {
        let mut t = term(20, 3);
        t.write("héllo ✓".as_bytes());
        assert_eq!(text(t.grid(), 0), "héllo ✓");
    }

    #[test]
    fn utf8_split_across_writes_is_joined() {
        let mut t = term(10, 2);
        let bytes = "é".as_bytes();
        t.write(&bytes[..1]);
        t.write(&bytes[1..]);
        assert_eq!(text(t.grid(), 0), "é");
    }

    #[test]
    fn invalid_utf8_becomes_a_replacement_character() {
        let mut t = term(10, 2);
        t.write(b"a\xffb");
        assert_eq!(text(t.grid(), 0), "a\u{fffd}b");
    }

    #[test]
    fn sgr_sets_16_colours_bright_and_reset() {
        let mut t = term(10, 2);
        t.write(b"\x1b[31ma\x1b[1mb\x1b[0;44mc\x1b[97md\x1b[39;49me");
        let g = t.grid();
        assert_eq!(g.cell(0, 0).fg, PALETTE[1]);
        assert_eq!((g.cell(0, 1).fg, g.cell(0, 1).bold), (PALETTE[9], true));
        assert_eq!((g.cell(0, 2).fg, g.cell(0, 2).bg), (DEFAULT_FG, PALETTE[4]));
        assert_eq!(g.cell(0, 3).fg, PALETTE[15]);
        assert_eq!((g.cell(0, 4).fg, g.cell(0, 4).bg), (DEFAULT_FG, DEFAULT_BG));
    }

    #[test]
    fn sgr_256_and_truecolour_in_both_notations() {
        let mut t = term(10, 2);
        t.write(b"\x1b[38;5;196ma\x1b[48;2;1;2;3mb\x1b[38:2::10:20:30mc\x1b[38:5:21md");
        let g = t.grid();
        assert_eq!(g.cell(0, 0).fg, Rgb::new(255, 0, 0));
        assert_eq!(g.cell(0, 1).bg, Rgb::new(1, 2, 3));
        assert_eq!(g.cell(0, 2).fg, Rgb::new(10, 20, 30));
        assert_eq!(g.cell(0, 3).fg, color::xterm_256(21));
    }

    #[test]
    fn cursor_position_and_movement() {
        let mut t = term(10, 5);
        t.write(b"\x1b[3;4HX\x1b[2AY\x1b[BZ\x1b[5DW\x1b[9CV\x1b[HU");
        let g = t.grid();
        assert_eq!(g.cell(2, 3).ch, 'X');
        assert_eq!(g.cell(0, 4).ch, 'Y');
        assert_eq!(g.cell(1, 5).ch, 'Z');
        assert_eq!(g.cell(1, 1).ch, 'W');
        assert_eq!(g.cell(1, 9).ch, 'V');
        assert_eq!(g.cell(0, 0).ch, 'U');
    }

    #[test]
    fn erase_in_line_and_display() {
        let mut t = term(6, 3);
        t.write(b"aaaaaa\nbbbbbb\ncccccc");
        t.write(b"\x1b[2;3H\x1b[K");
        assert_eq!(text(t.grid(), 1), "bb");
        t.write(b"\x1b[1K");
        assert_eq!(text(t.grid(), 1), "");
        t.write(b"\x1b[1;3H\x1b[J");
        assert_eq!((text(t.grid(), 0).as_str(), text(t.grid(), 2).as_str()), ("aa", ""));
        t.write(b"\x1b[2J");
        assert_eq!(text(t.grid(), 0), "");
    }

    #[test]
    fn unknown_and_private_sequences_print_nothing() {
        let mut t = term(20, 2);
        t.write(b"a\x1b[?25lb\x1b[5qc\x1b]0;title\x07d\x1bMe");
        assert_eq!(text(t.grid(), 0), "abcde");
    }

    #[test]
    fn no_byte_sequence_panics() {
        // A deterministic xorshift stream over every byte value, with escape
        // introducers made common so that the parser visits all its states.
        let mut t = term(13, 7);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let byte = match state % 8 {
                0 => 0x1b,
                1 => b"[;:0123456789"[(state >> 8) as usize % 13],
                _ => (state >> 16) as u8,
            };
            t.write(&[byte]);
            let (row, col) = t.grid().cursor();
            assert!(row < 7 && col < 13);
        }
    }
}
