//! A terminal on a [`Grid`]: bytes in, UTF-8 text and escape sequences
//! applied with xterm's semantics, so that full-screen programs and tools on
//! the serial line draw as they would in xterm. Parsing is `vte`'s (the
//! parser behind Alacritty), so malformed or unknown sequences are consumed
//! instead of printed as garbage.
//!
//! docs/console.md lists the sequences understood; the host tests in
//! `terminal/reference.rs` check them against alacritty's terminal, and
//! against xterm's behaviour where alacritty differs.

use super::charset::Charset;
use super::color::{self, DEFAULT_BG, DEFAULT_FG, PALETTE, Rgb};
use super::grid::{Cell, Erase, Grid};
use vte::{Params, Parser, Perform};

/// A colour as SGR set it. The kind is kept because bold brightens only the
/// default foreground and the eight colours of SGR 30-37: xterm leaves
/// colours from the 256-colour table and truecolour as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ink {
    Default,
    /// One of the 16 colours of SGR 30-37, 90-97 (40-47, 100-107).
    Ansi(u8),
    Rgb(Rgb),
}

/// The attributes new text is written with (SGR state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pen {
    fg: Ink,
    bg: Ink,
    bold: bool,
    inverse: bool,
}

impl Pen {
    const DEFAULT: Pen = Pen { fg: Ink::Default, bg: Ink::Default, bold: false, inverse: false };

    /// Bold text is drawn bright, the default foreground included: the VGA
    /// text console has no bold font, and the Linux console does the same.
    fn cell(&self, ch: char) -> Cell {
        let fg = match self.fg {
            Ink::Default if self.bold => color::brighten(DEFAULT_FG),
            Ink::Default => DEFAULT_FG,
            Ink::Ansi(i) if self.bold => color::brighten(PALETTE[i as usize]),
            Ink::Ansi(i) => PALETTE[i as usize],
            Ink::Rgb(rgb) => rgb,
        };
        let bg = self.background();
        let (fg, bg) = if self.inverse { (bg, fg) } else { (fg, bg) };
        Cell { ch, fg, bg, bold: self.bold }
    }

    /// The background erasing leaves: the SGR one, even in inverse video.
    fn background(&self) -> Rgb {
        match self.bg {
            Ink::Default => DEFAULT_BG,
            Ink::Ansi(i) => PALETTE[i as usize],
            Ink::Rgb(rgb) => rgb,
        }
    }
}

/// What DECSC saves and DECRC restores (xterm's set: position, pending
/// wrap, attributes, character sets and origin mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SavedCursor {
    row: usize,
    col: usize,
    wrap_pending: bool,
    pen: Pen,
    charsets: [Charset; 4],
    shift: usize,
    origin: bool,
}

impl SavedCursor {
    /// What DECRC restores when nothing was saved: home, default attributes
    /// and character sets, as in xterm.
    const DEFAULT: SavedCursor = SavedCursor {
        row: 0,
        col: 0,
        wrap_pending: false,
        pen: Pen::DEFAULT,
        charsets: [Charset::Ascii; 4],
        shift: 0,
        origin: false,
    };
}

/// The terminal's state beyond the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    pen: Pen,
    /// The pen's cell, made when the pen changes rather than for every
    /// character (see [`Grid::put_char`]).
    template: Cell,
    /// G0-G3.
    charsets: [Charset; 4],
    /// Which of G0-G3 is shifted in (SO selects G1, SI G0).
    shift: usize,
    /// DECOM: cursor addressing relative to the scroll region.
    origin: bool,
    /// LNM: line feeds also return the carriage.
    newline_mode: bool,
    /// DECSC's slots, one per screen as in xterm: the primary and the
    /// alternate one.
    saved: [SavedCursor; 2],
    /// The last printed character, which REP repeats.
    last: Option<char>,
}

impl State {
    const DEFAULT: State = State {
        pen: Pen::DEFAULT,
        template: Cell::BLANK,
        charsets: [Charset::Ascii; 4],
        shift: 0,
        origin: false,
        newline_mode: false,
        saved: [SavedCursor::DEFAULT; 2],
        last: None,
    };
}

pub struct Terminal<'a> {
    grid: Grid<'a>,
    parser: Parser,
    state: State,
    /// Whether a line feed also returns the carriage (ONLCR).
    onlcr: bool,
    /// The start of a UTF-8 character that the last write ended in. When
    /// vte 0.15 completes a character across writes, it drops the next one
    /// if a third begins unfinished within the four bytes it looks at, so
    /// the terminal completes characters itself and hands vte whole ones.
    held: [u8; 4],
    held_len: usize,
}

impl<'a> Terminal<'a> {
    /// A terminal that returns the carriage on line feeds, as the kernel's
    /// text needs (see [`Terminal::set_onlcr`]).
    pub fn new(grid: Grid<'a>) -> Self {
        Self { grid, parser: Parser::new(), state: State::DEFAULT, onlcr: true, held: [0; 4], held_len: 0 }
    }

    /// Whether a line feed also returns the carriage. Programs, the kernel
    /// included, end lines with a bare LF and leave the CR to a tty's output
    /// processing (ONLCR), which Ember has no other place for. Off, the
    /// terminal takes bytes exactly as xterm does, where only LNM adds the
    /// carriage return.
    pub fn set_onlcr(&mut self, on: bool) {
        self.onlcr = on;
    }

    pub fn grid(&self) -> &Grid<'a> {
        &self.grid
    }

    pub fn grid_mut(&mut self) -> &mut Grid<'a> {
        &mut self.grid
    }

    /// Feeds bytes; a sequence or character split across calls is carried
    /// over.
    pub fn write(&mut self, bytes: &[u8]) {
        let mut bytes = bytes;
        if self.held_len > 0 {
            let mut complete = false;
            while let Some((&byte, rest)) = bytes.split_first() {
                self.held[self.held_len] = byte;
                match core::str::from_utf8(&self.held[..=self.held_len]) {
                    Ok(_) => complete = true,
                    Err(error) if error.error_len().is_none() => {}
                    // `byte` does not continue the character: vte shows the
                    // start as invalid, as it would have in one piece.
                    Err(_) => break,
                }
                self.held_len += 1;
                bytes = rest;
                if complete {
                    break;
                }
            }
            if !complete && bytes.is_empty() {
                return;
            }
            let (held, len) = (self.held, core::mem::take(&mut self.held_len));
            self.advance(&held[..len]);
        }
        let (now, later) = bytes.split_at(bytes.len() - unfinished_utf8(bytes));
        self.advance(now);
        self.held[..later.len()].copy_from_slice(later);
        self.held_len = later.len();
    }

    fn advance(&mut self, bytes: &[u8]) {
        let mut performer = Performer { grid: &mut self.grid, state: &mut self.state, onlcr: self.onlcr };
        self.parser.advance(&mut performer, bytes);
    }

    /// Forgets any half-parsed sequence, the current attributes and
    /// character sets, and leaves insert mode, so that what follows (a panic
    /// report) is shown as written.
    pub fn reset_state(&mut self) {
        self.parser = Parser::new();
        self.held_len = 0;
        self.state.pen = Pen::DEFAULT;
        self.state.template = Cell::BLANK;
        self.state.charsets = [Charset::Ascii; 4];
        self.state.shift = 0;
        self.grid.set_background(DEFAULT_BG);
        self.grid.set_insert(false);
        self.grid.set_autowrap(true);
    }
}

struct Performer<'g, 'a> {
    grid: &'g mut Grid<'a>,
    state: &'g mut State,
    onlcr: bool,
}

impl Performer<'_, '_> {
    /// Moves to `row`, `col`, the row counted from the scroll region's top
    /// and kept inside it in origin mode (CUP and friends).
    fn goto(&mut self, row: usize, col: usize) {
        let (top, bottom) = self.grid.scroll_region();
        if self.state.origin {
            self.grid.set_cursor(row.saturating_add(top).min(bottom), col);
        } else {
            self.grid.set_cursor(row, col);
        }
    }

    /// The cursor's row as [`Performer::goto`] counts it.
    fn row(&self) -> usize {
        let row = self.grid.cursor().0;
        if self.state.origin { row.saturating_sub(self.grid.scroll_region().0) } else { row }
    }

    fn set_pen(&mut self, pen: Pen) {
        self.state.pen = pen;
        self.state.template = pen.cell(' ');
        self.grid.set_background(pen.background());
    }

    fn slot(&self) -> usize {
        usize::from(self.grid.is_alternate())
    }

    fn save_cursor(&mut self) {
        let (row, col) = self.grid.cursor();
        let slot = self.slot();
        let state = &mut *self.state;
        state.saved[slot] = SavedCursor {
            row,
            col,
            wrap_pending: self.grid.wrap_pending(),
            pen: state.pen,
            charsets: state.charsets,
            shift: state.shift,
            origin: state.origin,
        };
    }

    /// Restores what [`Performer::save_cursor`] saved on this screen. In
    /// origin mode the row is kept above the bottom margin, as in xterm.
    fn restore_cursor(&mut self) {
        let saved = self.state.saved[self.slot()];
        self.set_pen(saved.pen);
        self.state.charsets = saved.charsets;
        self.state.shift = saved.shift;
        self.state.origin = saved.origin;
        let row = if saved.origin { saved.row.min(self.grid.scroll_region().1) } else { saved.row };
        self.grid.restore_cursor(row, saved.col, saved.wrap_pending);
    }

    /// Full reset (RIS).
    fn reset(&mut self) {
        self.grid.reset();
        *self.state = State::DEFAULT;
    }

    /// LF, VT and FF.
    fn line_feed(&mut self, byte: u8) {
        self.grid.line_feed();
        if self.state.newline_mode || (self.onlcr && byte == b'\n') {
            self.grid.carriage_return();
        }
    }

    /// SM/RM: `ESC [ Pn h` and `ESC [ Pn l`.
    fn set_mode(&mut self, mode: u16, on: bool) {
        match mode {
            4 => self.grid.set_insert(on),
            20 => self.state.newline_mode = on,
            _ => {}
        }
    }

    /// DECSET/DECRST: `ESC [ ? Pn h` and `ESC [ ? Pn l`.
    fn set_private_mode(&mut self, mode: u16, on: bool) {
        match mode {
            6 => {
                self.state.origin = on;
                self.goto(0, 0);
            }
            7 => self.grid.set_autowrap(on),
            // The alternate screen, as is.
            47 => self.grid.show_alternate(on),
            // The alternate screen, cleared when left.
            1047 => {
                if !on && self.grid.is_alternate() {
                    self.grid.erase_display(Erase::All);
                }
                self.grid.show_alternate(on);
            }
            // The alternate screen, cleared when entered, with the cursor
            // saved on entry and restored on exit. A grid without one keeps
            // what it shows.
            1049 if on => {
                self.save_cursor();
                self.grid.show_alternate(true);
                if self.grid.is_alternate() {
                    self.grid.erase_display(Erase::All);
                }
            }
            1049 => {
                self.grid.show_alternate(false);
                self.restore_cursor();
            }
            _ => {}
        }
    }

    fn csi(&mut self, params: &Params, action: char) {
        let count = |i: usize| usize::from(nth(params, i).max(1));
        let (_, col) = self.grid.cursor();
        match action {
            'm' => {
                let mut pen = self.state.pen;
                sgr(&mut pen, params);
                self.set_pen(pen);
            }
            'H' | 'f' => self.goto(count(0) - 1, count(1) - 1),
            'A' => self.grid.cursor_up(count(0)),
            'B' => self.grid.cursor_down(count(0)),
            'C' => self.grid.cursor_forward(count(0)),
            'D' => self.grid.cursor_back(count(0)),
            'E' => {
                self.grid.cursor_down(count(0));
                self.grid.carriage_return();
            }
            'F' => {
                self.grid.cursor_up(count(0));
                self.grid.carriage_return();
            }
            'G' | '`' => self.goto(self.row(), count(0) - 1),
            'a' => self.goto(self.row(), col.saturating_add(count(0))),
            'd' => self.goto(count(0) - 1, col),
            'e' => self.goto(self.row().saturating_add(count(0)), col),
            'I' => self.grid.tab_forward(count(0)),
            'Z' => self.grid.tab_backward(count(0)),
            'J' => {
                if let Some(part) = erase_part(nth(params, 0)) {
                    self.grid.erase_display(part);
                }
            }
            'K' => {
                if let Some(part) = erase_part(nth(params, 0)) {
                    self.grid.erase_line(part);
                }
            }
            '@' => self.grid.insert_blanks(count(0)),
            'P' => self.grid.delete_chars(count(0)),
            'X' => self.grid.erase_chars(count(0)),
            'L' => self.grid.insert_lines(count(0)),
            'M' => self.grid.delete_lines(count(0)),
            'S' => self.grid.scroll_up(count(0)),
            'T' => self.grid.scroll_down(count(0)),
            'b' => {
                if let Some(ch) = self.state.last {
                    for _ in 0..count(0) {
                        self.print(ch);
                    }
                }
            }
            'g' => match nth(params, 0) {
                0 => self.grid.clear_tab_stop(),
                3 => self.grid.clear_tab_stops(),
                _ => {}
            },
            'h' | 'l' => {
                for group in params.iter() {
                    self.set_mode(group[0], action == 'h');
                }
            }
            'r' => {
                let rows = self.grid.rows();
                let top = count(0);
                let bottom = match usize::from(nth(params, 1)) {
                    0 => rows,
                    bottom => bottom.min(rows),
                };
                if top < bottom {
                    self.grid.set_scroll_region(top - 1, bottom - 1);
                    self.goto(0, 0);
                }
            }
            's' => self.save_cursor(),
            'u' => self.restore_cursor(),
            _ => {}
        }
    }
}

impl Perform for Performer<'_, '_> {
    #[inline]
    fn print(&mut self, ch: char) {
        let shown = self.state.charsets[self.state.shift].map(ch);
        self.grid.put_char(shown, &self.state.template);
        self.state.last = Some(ch);
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\n' | 0x0b | 0x0c => self.line_feed(byte),
            b'\r' => self.grid.carriage_return(),
            b'\t' => self.grid.tab(),
            0x08 => self.grid.backspace(),
            0x0e => self.state.shift = 1,
            0x0f => self.state.shift = 0,
            // NUL, BEL and the other controls draw nothing.
            _ => {}
        }
    }

    fn esc_dispatch(&mut self, intermediates: &[u8], _ignore: bool, byte: u8) {
        match (intermediates, byte) {
            ([], b'D') => self.grid.line_feed(),
            ([], b'E') => {
                self.grid.line_feed();
                self.grid.carriage_return();
            }
            ([], b'H') => self.grid.set_tab_stop(),
            ([], b'M') => self.grid.reverse_index(),
            ([], b'7') => self.save_cursor(),
            ([], b'8') => self.restore_cursor(),
            ([], b'c') => self.reset(),
            ([b'#'], b'8') => self.grid.fill('E'),
            ([g @ b'('..=b'+'], b'0' | b'B') => {
                self.state.charsets[usize::from(g - b'(')] =
                    if byte == b'0' { Charset::DecGraphics } else { Charset::Ascii };
            }
            _ => {}
        }
    }

    fn csi_dispatch(&mut self, params: &Params, intermediates: &[u8], ignore: bool, action: char) {
        // Overlong sequences and other private ones are not ours.
        match (intermediates, ignore) {
            ([], false) => self.csi(params, action),
            ([b'?'], false) if matches!(action, 'h' | 'l') => {
                for group in params.iter() {
                    self.set_private_mode(group[0], action == 'h');
                }
            }
            _ => {}
        }
    }
}

/// How many bytes at the end of `bytes` start a UTF-8 character without
/// finishing it (0 when they finish one, or could never be one).
fn unfinished_utf8(bytes: &[u8]) -> usize {
    let start = bytes.len().saturating_sub(3);
    match bytes[start..].iter().rposition(|&byte| byte & 0xc0 != 0x80) {
        Some(at) => match core::str::from_utf8(&bytes[start + at..]) {
            Err(error) if error.valid_up_to() == 0 && error.error_len().is_none() => bytes.len() - start - at,
            _ => 0,
        },
        None => 0,
    }
}

/// Parameter `i` (its first value), 0 when absent.
fn nth(params: &Params, i: usize) -> u16 {
    params.iter().nth(i).and_then(|group| group.first().copied()).unwrap_or(0)
}

/// The part of the line or screen ED and EL erase; ED 3 (the scrollback,
/// which Ember does not keep) and unknown values erase nothing.
fn erase_part(param: u16) -> Option<Erase> {
    match param {
        0 => Some(Erase::ToEnd),
        1 => Some(Erase::ToCursor),
        2 => Some(Erase::All),
        _ => None,
    }
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
            n @ 30..=37 => pen.fg = Ink::Ansi((n - 30) as u8),
            n @ 90..=97 => pen.fg = Ink::Ansi((n - 90 + 8) as u8),
            39 => pen.fg = Ink::Default,
            n @ 40..=47 => pen.bg = Ink::Ansi((n - 40) as u8),
            n @ 100..=107 => pen.bg = Ink::Ansi((n - 100 + 8) as u8),
            49 => pen.bg = Ink::Default,
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

/// The colour of `5;n` or `2;r;g;b`, or none when a value is past 255: xterm
/// ignores such a colour rather than wrap its values around.
fn checked_color(kind: u16, values: &[u16]) -> Option<Ink> {
    let byte = |i: usize| values.get(i).and_then(|&v| u8::try_from(v).ok());
    match kind {
        5 => Some(Ink::Rgb(color::xterm_256(byte(0)?))),
        2 => Some(Ink::Rgb(Rgb::new(byte(0)?, byte(1)?, byte(2)?))),
        _ => None,
    }
}

/// `5:n` or `2:r:g:b` (also `2::r:g:b`, with a colour-space id) as subparameters.
fn extended_color(values: &[u16]) -> Option<Ink> {
    match values {
        [5, n, ..] => checked_color(5, &[*n]),
        [2, r, g, b] | [2, _, r, g, b, ..] => checked_color(2, &[*r, *g, *b]),
        _ => None,
    }
}

/// `;5;n` or `;2;r;g;b` as separate parameters, consumed from `groups`
/// (all of them, even when a value is out of range, as xterm does).
fn extended_color_from<'p>(groups: &mut impl Iterator<Item = &'p [u16]>) -> Option<Ink> {
    let kind = groups.next()?[0];
    let wanted = match kind {
        5 => 1,
        2 => 3,
        _ => return None,
    };
    let mut values = [0u16; 3];
    for value in &mut values[..wanted] {
        *value = groups.next()?[0];
    }
    checked_color(kind, &values[..wanted])
}

#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests {
    use super::*;
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
        t.write(b"\x1b[31ma\x1b[1mb\x1b[0;44mc\x1b[97md\x1b[39;49me\x1b[1mf");
        let g = t.grid();
        assert_eq!(g.cell(0, 0).fg, PALETTE[1]);
        assert_eq!((g.cell(0, 1).fg, g.cell(0, 1).bold), (PALETTE[9], true));
        assert_eq!((g.cell(0, 2).fg, g.cell(0, 2).bg), (DEFAULT_FG, PALETTE[4]));
        assert_eq!(g.cell(0, 3).fg, PALETTE[15]);
        assert_eq!((g.cell(0, 4).fg, g.cell(0, 4).bg), (DEFAULT_FG, DEFAULT_BG));
        assert_eq!(g.cell(0, 5).fg, PALETTE[15], "bold default foreground is bright");
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
    fn colours_past_255_are_ignored_and_their_values_consumed() {
        let mut t = term(10, 2);
        t.write(b"\x1b[31;38;5;256ma\x1b[0;38;2;300;1;1mb\x1b[0;38;5;1;1mc");
        let g = t.grid();
        assert_eq!((g.cell(0, 0).fg, g.cell(0, 0).bold), (PALETTE[1], false));
        assert_eq!((g.cell(0, 1).fg, g.cell(0, 1).bold), (DEFAULT_FG, false));
        // A 256-colour-table colour is not brightened by bold.
        assert_eq!((g.cell(0, 2).fg, g.cell(0, 2).bold), (PALETTE[1], true));
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
        t.write(b"a\x1b[?25lb\x1b[5qc\x1b]0;title\x07d\x1b[>1ue\x00\x7ff");
        assert_eq!(text(t.grid(), 0), "abcdef");
    }

    #[test]
    fn panic_output_is_shown_as_written_after_reset_state() {
        let mut t = term(10, 2);
        t.write(b"\x1b(0\x1b[4h\x1b[41mab\x1b[H");
        t.reset_state();
        t.write(b"qx");
        assert_eq!(text(t.grid(), 0), "qx");
        assert_eq!(t.grid().cell(0, 0).bg, DEFAULT_BG);
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
