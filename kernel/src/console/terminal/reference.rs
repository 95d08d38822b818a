//! Ember's terminal against a reference: alacritty's terminal
//! (`alacritty_terminal`), fed the same bytes, must end with the same cells
//! (character, colours, bold) and the same cursor. Where alacritty differs
//! from xterm, whose behaviour Ember follows, the comparison is replaced by
//! xterm's screen written out in the test, and the random streams steer clear
//! of that case (each such place says why).
//!
//! Every stream is also fed to Ember in pieces and must end as fed whole:
//! byte by byte, and split in two at every byte boundary. All of it takes
//! about 8 s on one core of the build machine, nearly all of that the splits.

use crate::console::color::{DEFAULT_BG, DEFAULT_FG, PALETTE, Rgb, xterm_256};
use crate::console::grid::{Cell, Grid, Span};
use crate::console::terminal::Terminal;
use crate::testing::Rng;
use alacritty_terminal::event::VoidListener;
use alacritty_terminal::index::{Column, Line};
use alacritty_terminal::term::cell::Flags;
use alacritty_terminal::term::test::TermSize;
use alacritty_terminal::term::{Config, Term};
use alacritty_terminal::vte::ansi::{Color, NamedColor, Processor};

/// Random streams compared with the reference.
const RANDOM_STREAMS: u64 = 4_000;

/// Ember's terminal taking bytes as xterm does (no ONLCR), with an
/// alternate screen, over storage that lives as long as the test.
fn ember(cols: usize, rows: usize) -> Terminal<'static> {
    let cells = |n: usize| -> &'static mut [Cell] { Box::leak(vec![Cell::BLANK; n].into_boxed_slice()) };
    let spans = Box::leak(vec![Span::EMPTY; rows].into_boxed_slice());
    let grid = Grid::new(cols, rows, cells(cols * rows), spans).with_alternate(cells(cols * rows));
    let mut terminal = Terminal::new(grid);
    terminal.set_onlcr(false);
    terminal
}

/// What such a terminal shows after `feed`; its storage is freed after.
fn screen_after(cols: usize, rows: usize, feed: impl FnOnce(&mut Terminal)) -> Screen {
    let (mut cells, mut alternate) = (vec![Cell::BLANK; cols * rows], vec![Cell::BLANK; cols * rows]);
    let mut spans = vec![Span::EMPTY; rows];
    let grid = Grid::new(cols, rows, &mut cells, &mut spans).with_alternate(&mut alternate);
    let mut terminal = Terminal::new(grid);
    terminal.set_onlcr(false);
    feed(&mut terminal);
    Screen::of(&terminal)
}

/// What a screen shows: every cell, then the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Screen {
    cols: usize,
    cells: Vec<Cell>,
    cursor: (usize, usize),
}

impl Screen {
    fn of(terminal: &Terminal) -> Screen {
        let grid = terminal.grid();
        let cells = (0..grid.rows()).flat_map(|row| grid.row_cells(row).to_vec()).collect();
        Screen { cols: grid.cols(), cells, cursor: grid.cursor() }
    }

    fn text(&self) -> Vec<String> {
        self.cells
            .chunks(self.cols)
            .map(|row| row.iter().map(|c| c.ch).collect::<String>().trim_end().to_string())
            .collect()
    }
}

/// Alacritty's screen in Ember's terms: spacers and the tab placeholder are
/// blanks, colours resolve through Ember's palette, and bold brightens as
/// Ember draws it (the default foreground and SGR 30-37 only, which
/// alacritty leaves to its renderer), then inverse swaps.
fn reference(cols: usize, rows: usize, bytes: &[u8]) -> Screen {
    let config = Config { scrolling_history: 0, ..Config::default() };
    let mut term = Term::new(config, &TermSize::new(cols, rows), VoidListener);
    let mut parser: Processor = Processor::new();
    parser.advance(&mut term, bytes);
    let grid = term.grid();
    let mut cells = Vec::with_capacity(cols * rows);
    for row in 0..rows {
        for col in 0..cols {
            let cell = &grid[Line(row as i32)][Column(col)];
            let bold = cell.flags.contains(Flags::BOLD);
            let spacer = Flags::WIDE_CHAR_SPACER | Flags::LEADING_WIDE_CHAR_SPACER;
            let ch = if cell.flags.intersects(spacer) || cell.c == '\t' { ' ' } else { cell.c };
            let (fg, bg) = (rgb(cell.fg, bold), rgb(cell.bg, false));
            let (fg, bg) = if cell.flags.contains(Flags::INVERSE) { (bg, fg) } else { (fg, bg) };
            cells.push(Cell { ch, fg, bg, bold });
        }
    }
    let point = grid.cursor.point;
    Screen { cols, cells, cursor: (point.line.0 as usize, point.column.0) }
}

fn rgb(color: Color, bright: bool) -> Rgb {
    match color {
        Color::Named(NamedColor::Foreground) if bright => PALETTE[15],
        Color::Named(NamedColor::Foreground) => DEFAULT_FG,
        Color::Named(NamedColor::Background) => DEFAULT_BG,
        Color::Named(named) if (named as usize) < 8 && bright => PALETTE[named as usize + 8],
        Color::Named(named) if (named as usize) < 16 => PALETTE[named as usize],
        Color::Named(named) => panic!("unexpected colour {named:?}"),
        Color::Indexed(index) => xterm_256(index),
        Color::Spec(c) => Rgb::new(c.r, c.g, c.b),
    }
}

fn feed_whole(cols: usize, rows: usize, bytes: &[u8]) -> Screen {
    screen_after(cols, rows, |terminal| terminal.write(bytes))
}

/// Panics with both screens and the stream when they differ.
fn assert_same(what: &str, bytes: &[u8], ours: &Screen, theirs: &Screen) {
    if ours != theirs {
        let at = ours.cells.iter().zip(&theirs.cells).position(|(a, b)| a != b);
        let detail = at.map(|i| {
            let (row, col) = (i / ours.cols, i % ours.cols);
            format!("first difference at ({row},{col}): {:?} vs {:?}", ours.cells[i], theirs.cells[i])
        });
        panic!(
            "{what}: {}\nstream: {:?}\nours:   {:?} cursor {:?}\ntheirs: {:?} cursor {:?}\n{}",
            bytes.len(),
            String::from_utf8_lossy(bytes),
            ours.text(),
            ours.cursor,
            theirs.text(),
            theirs.cursor,
            detail.unwrap_or_default()
        );
    }
}

/// Feeding `bytes` byte by byte, and in two parts at every boundary, ends as
/// feeding them whole.
fn assert_split_invariant(cols: usize, rows: usize, bytes: &[u8], whole: &Screen) {
    let bytewise = screen_after(cols, rows, |terminal| {
        for byte in bytes {
            terminal.write(core::slice::from_ref(byte));
        }
    });
    assert_same("byte by byte", bytes, &bytewise, whole);
    for at in 1..bytes.len() {
        let split = screen_after(cols, rows, |terminal| {
            terminal.write(&bytes[..at]);
            terminal.write(&bytes[at..]);
        });
        assert_same(&format!("split at {at}"), bytes, &split, whole);
    }
}

/// Ember and the reference agree on `bytes`, however they are split.
fn check(what: &str, cols: usize, rows: usize, bytes: &[u8]) {
    let ours = feed_whole(cols, rows, bytes);
    assert_same(what, bytes, &ours, &reference(cols, rows, bytes));
    assert_split_invariant(cols, rows, bytes, &ours);
}

/// Ember shows `rows` (each trimmed at the end) with the cursor at `cursor`
/// after `bytes`, however they are split: xterm's screen, where alacritty's
/// differs.
fn expect(cols: usize, bytes: &[u8], rows: &[&str], cursor: (usize, usize)) -> Screen {
    let ours = feed_whole(cols, rows.len(), bytes);
    assert_eq!(ours.text(), rows, "stream {:?}", String::from_utf8_lossy(bytes));
    assert_eq!(ours.cursor, cursor, "cursor after {:?}", String::from_utf8_lossy(bytes));
    assert_split_invariant(cols, rows.len(), bytes, &ours);
    ours
}

/// One stream per feature, on a 10x6 screen, compared with alacritty.
const FEATURES: &[(&str, &str)] = &[
    ("CHA", "abcdef\x1b[3Gx\x1b[Gy\x1b[99Gz"),
    ("HPA", "abcdef\x1b[4`x\x1b[`y"),
    ("VPA", "a\x1b[4dx\x1b[dy\x1b[99dz"),
    ("CNL", "abc\x1b[2Ex\x1b[Ey\x1b[99Ez"),
    ("CPL", "\x1b[5;5Habc\x1b[2Fx\x1b[Fy\x1b[99Fz"),
    ("HPR", "ab\x1b[3ax\x1b[ay\x1b[99az"),
    ("VPR", "ab\x1b[2ex\x1b[ey\x1b[99ez"),
    ("ECH", "abcdefghij\x1b[1;3H\x1b[3X\x1b[2;1Habc\x1b[2;2H\x1b[X\x1b[3;1Habcdef\x1b[3;4H\x1b[99X"),
    ("ICH", "abcdefghij\x1b[1;3H\x1b[2@\x1b[2;1Habcdefghij\x1b[2;9H\x1b[5@\x1b[3;1Habc\x1b[3;1H\x1b[@"),
    ("DCH", "abcdefghij\x1b[1;3H\x1b[2P\x1b[2;1Habcdefghij\x1b[2;9H\x1b[2P\x1b[3;1Habc\x1b[3;1H\x1b[P"),
    ("IL", "1\r\n2\r\n3\r\n4\r\n5\r\n6\x1b[3;4H\x1b[2L\x1b[6;1H\x1b[L\x1b[1;1H\x1b[99Lx"),
    ("DL", "1\r\n2\r\n3\r\n4\r\n5\r\n6\x1b[2;4H\x1b[2M\x1b[6;1H\x1b[M\x1b[3;1H\x1b[99Mx"),
    ("SU", "1\r\n2\r\n3\r\n4\r\n5\r\n6\x1b[3;3H\x1b[2Sx\x1b[Sy"),
    ("SD", "1\r\n2\r\n3\r\n4\r\n5\r\n6\x1b[3;3H\x1b[2Tx\x1b[Ty\x1b[0T"),
    ("REP", "a\x1b[3b\x1b[2;1H\x1b[31mb\x1b[0m\x1b[12b\r\n\x1b[b"),
    ("RI at the top", "1\r\n2\r\n3\x1b[H\x1bMx\x1b[3;1H\x1bMy"),
    ("IND", "ab\x1bDc\x1b[6;1Hz\x1bD\x1bDw"),
    ("NEL", "ab\x1bEc\x1b[6;3Hz\x1bEw"),
    (
        "DECSTBM",
        "1\r\n2\r\n3\r\n4\r\n5\r\n6\x1b[2;4rx\x1b[4;1H\n\ny\x1bM\x1b[2;1H\x1bM\x1bMz\x1b[6;1H\n\x1b[r\x1b[6;1H\nw",
    ),
    ("DECSTBM out of order and full", "1\r\n2\x1b[5;3rx\x1b[2;2H\x1b[1;6ry\x1b[2;1rz"),
    ("DECSC/DECRC", "ab\x1b[31;1m\x1b(0\x1b7\x1b[4;4H\x1b[0m\x1b(Bcd\x1b8qq\x1b[3;3H\x1b8x"),
    ("SCOSC/SCORC", "\x1b[3;5H\x1b[44m\x1b[s\x1b[H\x1b[0mab\x1b[ucd"),
    ("DECRC without DECSC", "\x1b[35;1mab\x1b8cd"),
    ("DECSC saves a pending wrap", "\x1b[1;7Habcd\x1b7\x1b[3;3Hx\x1b8y"),
    ("?1049", "main\x1b[?1049h\x1b[44malt\x1b[3;3Hx\x1b[?1049lz"),
    (
        "?1049 keeps separate saved cursors",
        "\x1b[2;2H\x1b7\x1b[?1049h\x1b[4;4H\x1b7\x1b[Hx\x1b8y\x1b[?1049l\x1b8z",
    ),
    ("RIS", "\x1b[2;4r\x1b[?7l\x1b[4h\x1b(0\x1b[41;1mabc\x1b[3g\x1b[?1049h\x1bcq\tx\x1b[6;1H\n\ny"),
    ("DECALN", "ab\x1b[42m\x1b#8\x1b[r\x1b[3;3Hx"),
    ("DEC special graphics", "\x1b(0lqqk\r\nx  x\r\nmqqj\x1b(Bq"),
    ("SO/SI", "\x1b)0a\x0elqk`a~\x0fq\x1b)B\x0eq\x0f"),
    ("G0 graphics then ASCII", "\x1b(0jklmnqtuvwx\x1b(Bjkl"),
    ("IRM", "abcdef\x1b[1;2H\x1b[4hXY\x1b[4lZ\x1b[2;1Habcdefghij\x1b[2;5H\x1b[4hQ"),
    ("tab stops", "\ta\x1b[1;4H\x1bH\x1b[H\tb\x1b[1;9H\x1b[g\x1b[H\t\tc\x1b[3g\x1b[2;1H\td"),
    ("CHT", "\x1b[2Ia\x1b[Ib\x1b[9Ic"),
    ("CBT", "\x1b[1;10H\x1b[Za\x1b[2Zb\x1b[9Zc"),
    ("DECAWM off", "\x1b[?7labcdefghijklm\r\n\x1b[?7habcdefghijklm"),
    ("VT and FF", "ab\x0bc\x0cd"),
    ("BS with a pending wrap", "abcdefghij\x08x\r\nabcdefghij\x08\x08y"),
    ("ED 1 on a later row", "aaaaaaaaaa\r\nbbbbbbbbbb\r\ncccccccccc\r\ndddd\x1b[4;3H\x1b[1J"),
    ("ED 0 and 2", "aaaaaaaaaa\r\nbbbbbbbbbb\r\ncccc\x1b[2;4H\x1b[J\x1b[1;1Hx\x1b[3J\x1b[2J"),
    (
        "erase and scroll with the current background",
        "ab\x1b[44m\x1b[K\r\n\x1b[41mx\x1b[2X\x1b[45m\x1b[2L\x1b[46m\x1b[S\x1b[42m\x1b[6;1H\n\x1b[43m\x1b[1;5H\x1b[2@\x1b[2P\x1b[7m\x1b[J",
    ),
    ("wide characters", "a中b文\r\n😀x\x1b[2;10H中\x1b[1;3Hq\x1b[1;6Hr"),
    ("wide character at the right edge", "abcdefghi中\r\n\x1b[3;10H😀z"),
    ("combining and zero-width characters", "e\u{301}x\u{200b}y\u{200d}\u{fe0f}z\x1b[1;10Ha\u{301}"),
    ("NUL and DEL are ignored", "a\0b\x7fc\x1b[\x002Cd"),
    (
        "bold with the default foreground",
        "\x1b[1mab\x1b[22mc\x1b[1;7md\x1b[31me\x1b[38;5;1mf\x1b[38;2;1;2;3mg",
    ),
    ("256 colours", "\x1b[38;5;196ma\x1b[48;5;21mb\x1b[38;5;300mc\x1b[38:5:46md\x1b[48;5;256;1me"),
    ("truecolour", "\x1b[38;2;10;20;30ma\x1b[48:2::1:2:3mb\x1b[38:2:4:5:6mc"),
    ("16 colours and inverse", "\x1b[31;42ma\x1b[7mb\x1b[27;91;103mc\x1b[39;49md\x1b[7m\x1b[K"),
    ("unknown and private sequences", "a\x1b[?25lb\x1b[5qc\x1b]0;title\x07d\x1bP1$r\x1b\\e\x1b[>1u\x1b[?1u"),
];

#[test]
fn every_feature_matches_the_reference() {
    for (what, stream) in FEATURES {
        check(what, 10, 6, stream.as_bytes());
    }
}

// The streams below are where alacritty differs from xterm; Ember shows what
// xterm shows.

#[test]
fn origin_mode_addresses_the_scroll_region() {
    // Alacritty adds the region's top to CUU/CHA's absolute rows in origin
    // mode, so its cursor jumps down.
    let screen = expect(
        6,
        b"\x1b[2;4r\x1b[?6hA\x1b[3;2HB\x1b[9;9HC\x1b[2GD\x1b[AE\x1b[?6lF",
        &["F", "A", "  E", " D   C", "", ""],
        (0, 1),
    );
    assert_eq!(screen.cells[6].ch, 'A', "home is the region's top left");
    // DECSC saves origin mode; DECRC restores it (alacritty keeps it as it is).
    expect(6, b"\x1b[3;5r\x1b[?6h\x1b7\x1b[?6l\x1b[H\x1b8\x1b[HX", &["", "", "X", "", "", ""], (2, 1));
}

#[test]
fn cursor_up_and_down_stop_at_the_margins() {
    // Alacritty ignores the scroll region for CUU, CUD, CNL and CPL.
    // From below the region CUU stops at its top too; from above, CUD at
    // its bottom.
    expect(
        4,
        b"\x1b[2;4r\x1b[3;1H\x1b[9Aa\x1b[9Bb\x1b[5;1H\x1b[9Ac\x1b[1;2H\x1b[9Bd",
        &["", "c", "", " d", "", ""],
        (3, 2),
    );
    expect(4, b"\x1b[2;4r\x1b[3;2H\x1b[9Fa\x1b[9Eb", &["", "a", "", "b", "", ""], (3, 1));
}

#[test]
fn alternate_screens_47_and_1047() {
    // Alacritty knows only ?1049. ?47 switches without clearing or saving;
    // ?1047 clears the alternate screen when leaving it.
    expect(5, b"main\x1b[?47hx\x1b[?47ly\x1b[?47h", &["    x", "", ""], (1, 1));
    expect(5, b"ab\x1b[?1047hcd\x1b[?1047l\x1b[?47h", &["", "", ""], (0, 4));
    expect(5, b"ab\x1b[?47hcd\x1b[?47l", &["ab", "", ""], (0, 4));
}

#[test]
fn leaving_1049_restores_the_cursor_even_when_not_entered() {
    // xterm's ?1049l always restores the saved cursor (DECRC); alacritty
    // only acts when the alternate screen is shown.
    expect(5, b"\x1b[2;3H\x1b7\x1b[H\x1b[?1049lx", &["", "  x", ""], (1, 3));
}

#[test]
fn line_feed_new_line_mode() {
    // Alacritty's LF, VT and FF ignore LNM.
    expect(6, b"\x1b[20hab\ncd\x0bef\x0cg\x1b[20lh\ni", &["ab", "cd", "ef", "gh", "  i"], (4, 3));
}

#[test]
fn a_pending_wrap_is_cancelled_by_line_feed_reverse_index_and_erase() {
    // Alacritty keeps a pending wrap across LF, IND, RI, ED, EL, ECH, ICH,
    // DCH, IL and DL (and skips EL 0 with one), so its next character wraps.
    // xterm's cursor stays in the last column.
    expect(4, b"abcd\nx", &["abcd", "   x"], (1, 3));
    expect(4, b"\x1b[2;1Habcd\x1bMx", &["   x", "abcd"], (0, 3));
    expect(4, b"abcd\x1b[Kx", &["abcx", ""], (0, 3));
    expect(4, b"abcd\x1b[@x", &["abcx", ""], (0, 3));
    expect(4, b"abcd\x1b[Px", &["abcx", ""], (0, 3));
    expect(4, b"abcd\x1b[Lx", &["   x", "abcd"], (0, 3));
    expect(4, b"abcd\x1b[Jx", &["abcx", ""], (0, 3));
    // HT leaves it pending; alacritty wraps at once.
    expect(4, b"abcd\t\rx", &["xbcd", ""], (0, 1));
}

#[test]
fn delete_characters_past_the_line_end_spares_what_is_left_of_the_cursor() {
    // Alacritty blanks `count` cells from the right end even when fewer are
    // right of the cursor.
    expect(6, b"abcdef\x1b[1;5H\x1b[5P", &["abcd", ""], (0, 4));
}

#[test]
fn erase_above_on_the_second_row_erases_the_first() {
    // Alacritty erases the rows above only from the third row on.
    expect(4, b"abcd\r\nefgh\x1b[2;2H\x1b[1J", &["", "  gh"], (1, 1));
}

#[test]
fn screen_alignment_resets_the_margins_and_homes_the_cursor() {
    // Alacritty fills with E but keeps the region and the cursor.
    expect(3, b"\x1b[2;3r\x1b[3;3H\x1b#8x\x1b[3;1H\n", &["EEE", "EEE", ""], (2, 0));
    expect(3, b"\x1b[2;3r\x1b[3;3H\x1b#8x", &["xEE", "EEE", "EEE"], (0, 1));
}

#[test]
fn truecolour_values_past_255_are_ignored_with_their_parameters() {
    // Alacritty stops reading at the bad value and takes the rest as SGR
    // parameters: here 1 (bold) and 2 (dim).
    let screen = expect(4, b"\x1b[38;2;300;1;2ma", &["a"], (0, 1));
    assert_eq!((screen.cells[0].fg, screen.cells[0].bold), (DEFAULT_FG, false));
}

#[test]
fn sgr_21_is_not_bold_off() {
    // xterm takes SGR 21 as double underline; alacritty as bold off.
    let screen = expect(4, b"\x1b[1;21ma", &["a"], (0, 1));
    assert!(screen.cells[0].bold);
}

#[test]
fn saved_cursor_keeps_the_shift_state() {
    // xterm's DECSC saves which set is shifted in (SO/SI); alacritty does
    // not, so after DECRC it keeps G0.
    expect(4, b"\x1b)0\x0e\x1b7\x0f\x1b8q", &["─"], (0, 1));
}

#[test]
fn a_split_wide_character_is_erased_whole() {
    // Alacritty erases, inserts and deletes cells without regard to wide
    // characters, leaving half of one; xterm erases the rest of it.
    expect(6, b"a\xe4\xb8\xad\xe6\x96\x87\x1b[1;3H\x1b[K", &["a"], (0, 2));
    expect(6, b"a\xe4\xb8\xad\xe6\x96\x87\x1b[1;5H\x1b[1K", &[""], (0, 4));
    expect(6, b"a\xe4\xb8\xad\xe6\x96\x87\x1b[1;3H\x1b[X", &["a  文"], (0, 2));
    expect(6, b"a\xe4\xb8\xad\xe6\x96\x87\x1b[1;3H\x1b[@", &["a   文"], (0, 2));
    expect(6, b"a\xe4\xb8\xad\xe6\x96\x87\x1b[1;3H\x1b[P", &["a 文"], (0, 2));
    expect(6, b"ab\xe4\xb8\xad\xe6\x96\x87\x1b[1;1H\x1b[@", &[" ab中"], (0, 0));
}

#[test]
fn erased_and_scrolled_in_cells_take_the_current_background() {
    let screen = expect(3, b"\x1b[44mab\x1b[K", &["ab", "", ""], (0, 2));
    assert_eq!(screen.cells[2], Cell::blank(PALETTE[4]));
    let screen = expect(3, b"\x1b[44m\n\n\n", &["", "", ""], (2, 0));
    assert!(screen.cells[6..].iter().all(|&cell| cell == Cell::blank(PALETTE[4])));
    let screen = expect(3, b"ab\x1b[41m\x1b[L", &["", "ab", ""], (0, 2));
    assert!(screen.cells[..3].iter().all(|&cell| cell == Cell::blank(PALETTE[1])));
}

/// Which sequences a random stream uses. Wide characters go only into
/// streams without colours or any erase, insert or delete within a line:
/// alacritty leaves half a wide character where such an operation splits
/// one, and keeps the old colours on the other half of one that is
/// overwritten (both checked above against xterm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Narrow,
    Wide,
}

/// What the generator remembers of its own stream.
struct Generator {
    rng: Rng,
    family: Family,
    cols: usize,
    rows: usize,
    /// Ember fed the stream so far: the generator asks it where the cursor
    /// is, whether a wrap is pending and which screen is shown.
    ember: Terminal<'static>,
    /// Whether column 0's tab stop is gone: alacritty's CBT then stops
    /// where it is, xterm's goes to column 0.
    first_stop_cleared: bool,
    /// Whether a character was printed since the start or the last RIS:
    /// alacritty's REP repeats one from before a RIS, xterm's does not.
    printed: bool,
    /// What [`Generator::settle`] put before the token being made (Ember
    /// has it already).
    prefix: String,
}

const NARROW_TEXT: &[&str] =
    &["é", "ß", "Ω", "✓", "€", "±", "\u{301}", "\u{200b}", "\u{85}", "\x7f", "\0", "\x07"];
const WIDE_TEXT: &[&str] = &["中", "文", "字", "😀", "🎉", "\u{301}", "\u{200d}", "\u{fe0f}", "é"];

impl Generator {
    fn new(seed: u64) -> Self {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let cols = 4 + rng.below(17);
        let rows = 2 + rng.below(7);
        let family = if seed.is_multiple_of(4) { Family::Wide } else { Family::Narrow };
        Generator {
            rng,
            family,
            cols,
            rows,
            ember: ember(cols, rows),
            first_stop_cleared: false,
            printed: false,
            prefix: String::new(),
        }
    }

    /// The screen size and the stream, token by token.
    fn stream(mut self) -> (usize, usize, Vec<String>) {
        let mut tokens = Vec::new();
        for _ in 0..8 + self.rng.below(60) {
            let body = self.token();
            self.ember.write(body.as_bytes());
            tokens.push(core::mem::take(&mut self.prefix) + &body);
        }
        (self.cols, self.rows, tokens)
    }

    fn number(&mut self, max: usize) -> String {
        match self.rng.below(6) {
            0 => String::new(),
            1 => "0".into(),
            _ => (1 + self.rng.below(max)).to_string(),
        }
    }

    fn text(&mut self) -> String {
        self.printed = true;
        let run = 1 + self.rng.below(8);
        (0..run)
            .map(|_| match self.rng.below(4) {
                0 if self.family == Family::Wide => self.rng.pick(WIDE_TEXT).to_string(),
                0 => self.rng.pick(NARROW_TEXT).to_string(),
                _ => char::from(b'!' + self.rng.below(94) as u8).to_string(),
            })
            .collect()
    }

    /// Cancels a pending wrap where alacritty would keep it (see
    /// `a_pending_wrap_is_cancelled_by_line_feed_reverse_index_and_erase`)
    /// with a prefix to the token, which Ember gets at once so that the
    /// rest of the token sees where it leaves the cursor.
    fn settle(&mut self) {
        if self.ember.grid().wrap_pending() {
            let prefix = *self.rng.pick(&["\r", "\x08", "\x1b[C"]);
            self.ember.write(prefix.as_bytes());
            self.prefix.push_str(prefix);
        }
    }

    fn sgr(&mut self) -> String {
        let mut params = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            let param = match self.rng.below(12) {
                0 => "0".to_string(),
                1 => self.rng.pick(&["1", "2", "3", "4", "7", "8", "9", "22", "23", "24", "27"]).to_string(),
                2 | 3 => (30 + self.rng.below(10)).to_string(),
                4 => (40 + self.rng.below(10)).to_string(),
                5 => (90 + self.rng.below(8)).to_string(),
                6 => (100 + self.rng.below(8)).to_string(),
                7 => format!("{};5;{}", self.rng.pick(&[38, 48]), self.rng.below(300)),
                8 => {
                    let (r, g, b) = (self.rng.below(256), self.rng.below(256), self.rng.below(256));
                    format!("{};2;{r};{g};{b}", self.rng.pick(&[38, 48]))
                }
                9 => format!("{}:5:{}", self.rng.pick(&[38, 48]), self.rng.below(256)),
                10 => format!("{}:2::{}:{}:{}", self.rng.pick(&[38, 48]), self.rng.below(256), 7, 200),
                _ => String::new(),
            };
            params.push(param);
        }
        format!("\x1b[{}m", params.join(";"))
    }

    fn token(&mut self) -> String {
        let (cols, rows) = (self.cols, self.rows);
        let (row, col) = self.ember.grid().cursor();
        let (top, bottom) = self.ember.grid().scroll_region();
        let full_region = top == 0 && bottom == rows - 1;
        let wide = self.family == Family::Wide;
        match self.rng.below(40) {
            0..=9 => self.text(),
            10 => self.rng.pick(&["\r", "\x08", "\x08\x08"]).to_string(),
            11 => {
                self.settle();
                self.rng.pick(&["\n", "\x0b", "\x0c", "\x1bD", "\x1bM", "\t", "\x1bE"]).to_string()
            }
            12 => format!("\x1b[{};{}H", self.number(rows + 2), self.number(cols + 2)),
            13 => {
                let action = self.rng.pick(&['C', 'D', 'G', '`', 'a', 'd', 'e']);
                format!("\x1b[{}{action}", self.number(cols + 2))
            }
            // CUU, CUD, CNL and CPL: see cursor_up_and_down_stop_at_the_margins.
            14 if full_region => {
                let action = self.rng.pick(&['A', 'B', 'E', 'F']);
                format!("\x1b[{}{action}", self.number(rows + 2))
            }
            15 => format!("\x1b[{}{}", self.number(rows + 1), self.rng.pick(&['S', 'T'])),
            16 => {
                self.settle();
                format!("\x1b[{}{}", self.number(rows + 1), self.rng.pick(&['L', 'M']))
            }
            17 if !wide => {
                self.settle();
                format!("\x1b[{}{}", self.number(cols + 2), self.rng.pick(&['@', 'X']))
            }
            // DCH: see delete_characters_past_the_line_end_spares_what_is_left_of_the_cursor.
            18 if !wide => {
                self.settle();
                let col = self.ember.grid().cursor().1;
                format!("\x1b[{}P", 1 + self.rng.below(cols - col))
            }
            // ED 1 on the second row: see erase_above_on_the_second_row_erases_the_first.
            19 if !wide => {
                self.settle();
                let parts: &[&str] = if row == 1 { &["", "0", "2", "3"] } else { &["", "0", "1", "2", "3"] };
                format!("\x1b[{}{}", self.rng.pick(parts), self.rng.pick(&['J', 'K']))
            }
            19 => {
                self.settle();
                format!("\x1b[2{}", self.rng.pick(&['J', 'K']))
            }
            20 if !wide => self.sgr(),
            21 => {
                let top = self.rng.below(rows + 1);
                let bottom = self.rng.below(rows + 1);
                let choice = self.rng.below(3);
                match choice {
                    0 => "\x1b[r".into(),
                    1 => format!("\x1b[{top}r"),
                    _ => format!("\x1b[{top};{bottom}r"),
                }
            }
            22 => self.rng.pick(&["\x1b7", "\x1b8", "\x1b[s", "\x1b[u"]).to_string(),
            23 if !self.ember.grid().is_alternate() => {
                self.settle();
                "\x1b[?1049h".into()
            }
            23 => "\x1b[?1049l".into(),
            24 => self.rng.pick(&["\x1b(0", "\x1b(B", "\x1b)0", "\x1b)B"]).to_string(),
            25 => {
                let run = self.text();
                format!("\x0e{run}\x0f")
            }
            26 if !wide => self.rng.pick(&["\x1b[4h", "\x1b[4l", "\x1b[?7l", "\x1b[?7h"]).to_string(),
            27 => {
                if col == 0 {
                    self.first_stop_cleared = false;
                }
                "\x1bH".into()
            }
            28 => {
                let all = self.rng.below(3) == 0;
                if all || col == 0 {
                    self.first_stop_cleared = true;
                }
                if all { "\x1b[3g".into() } else { self.rng.pick(&["\x1b[g", "\x1b[0g"]).to_string() }
            }
            29 => format!("\x1b[{}I", self.number(4)),
            // CBT: see Generator::first_stop_cleared.
            30 if !self.first_stop_cleared => {
                self.settle();
                format!("\x1b[{}Z", self.number(4))
            }
            // REP: see Generator::printed.
            31 if self.printed => format!("\x1b[{}b", self.number(cols + 2)),
            32 if self.rng.below(4) == 0 => {
                self.printed = false;
                self.first_stop_cleared = false;
                "\x1bc".into()
            }
            // DECALN, then DECSTBM to reset the margins and home the cursor,
            // which alacritty's DECALN does not: see
            // screen_alignment_resets_the_margins_and_homes_the_cursor.
            33 => "\x1b#8\x1b[r".into(),
            34 => self
                .rng
                .pick(&["\x1b]0;title\x07", "\x1b[?25l", "\x1b[5q", "\x1bP1$r\x1b\\", "\x1b[>4;1m"])
                .to_string(),
            _ => self.text(),
        }
    }
}

#[test]
fn random_streams_match_the_reference() {
    for seed in 0..RANDOM_STREAMS {
        let (cols, rows, tokens) = Generator::new(seed).stream();
        let bytes = tokens.concat().into_bytes();
        let ours = feed_whole(cols, rows, &bytes);
        if ours != reference(cols, rows, &bytes) {
            // Name the first token after which the screens differ.
            let diverges = (1..=tokens.len())
                .find(|&n| {
                    let prefix = tokens[..n].concat().into_bytes();
                    feed_whole(cols, rows, &prefix) != reference(cols, rows, &prefix)
                })
                .map_or(0, |n| n - 1);
            let prefix = tokens[..=diverges].concat().into_bytes();
            let what = format!("seed {seed}, {cols}x{rows}, token {diverges} {:?}", tokens[diverges]);
            assert_same(&what, &prefix, &feed_whole(cols, rows, &prefix), &reference(cols, rows, &prefix));
        }
        assert_split_invariant(cols, rows, &bytes, &ours);
    }
}
