//! The text grid: what every screen console shows, kept in RAM. It knows
//! cells, the cursor, wrapping and scrolling, and records what changed since
//! the last [`Grid::take_damage`] so that a renderer redraws only that.

use super::color::{DEFAULT_BG, DEFAULT_FG, Rgb};

/// One character cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cell {
    pub ch: char,
    pub fg: Rgb,
    pub bg: Rgb,
    pub bold: bool,
}

impl Cell {
    pub const BLANK: Cell = Cell { ch: ' ', fg: DEFAULT_FG, bg: DEFAULT_BG, bold: false };

    /// A space in the given background, as erasing leaves it.
    pub const fn blank(bg: Rgb) -> Cell {
        Cell { ch: ' ', fg: DEFAULT_FG, bg, bold: false }
    }
}

/// Columns `start..end` of a row changed (empty when `start >= end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u16,
    pub end: u16,
}

impl Span {
    pub const EMPTY: Span = Span { start: u16::MAX, end: 0 };

    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    fn add(&mut self, start: usize, end: usize) {
        self.start = self.start.min(start as u16);
        self.end = self.end.max(end as u16);
    }
}

/// What changed since the last [`Grid::take_damage`]: first the whole screen
/// moved up by `scrolled` rows (the renderer can move pixels instead of
/// redrawing them), then the spans in [`Grid::damaged_rows`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    pub scrolled: usize,
}

/// A grid of `cols` x `rows` cells over caller-provided storage, so that it
/// needs no heap and works from the first line of boot.
pub struct Grid<'a> {
    cols: usize,
    rows: usize,
    cells: &'a mut [Cell],
    spans: &'a mut [Span],
    row: usize,
    col: usize,
    /// Set after writing the last column: the next character wraps first, so
    /// that a full line followed by a newline does not leave an empty line.
    wrap_pending: bool,
    scrolled: usize,
}

impl<'a> Grid<'a> {
    /// `cells` must hold `cols * rows` cells and `spans` one per row.
    pub fn new(cols: usize, rows: usize, cells: &'a mut [Cell], spans: &'a mut [Span]) -> Self {
        assert!(cols > 0 && rows > 0 && cols <= u16::MAX as usize, "grid {cols}x{rows}");
        let cells = &mut cells[..cols * rows];
        let spans = &mut spans[..rows];
        cells.fill(Cell::BLANK);
        spans.fill(Span { start: 0, end: cols as u16 });
        Self { cols, rows, cells, spans, row: 0, col: 0, wrap_pending: false, scrolled: 0 }
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Cursor position as (row, column).
    pub fn cursor(&self) -> (usize, usize) {
        (self.row, self.col)
    }

    pub fn cell(&self, row: usize, col: usize) -> Cell {
        self.cells[row * self.cols + col]
    }

    pub fn row_cells(&self, row: usize) -> &[Cell] {
        &self.cells[row * self.cols..(row + 1) * self.cols]
    }

    /// Writes a printable character at the cursor and advances it.
    pub fn put(&mut self, cell: Cell) {
        if self.wrap_pending {
            self.wrap_pending = false;
            self.col = 0;
            self.line_feed();
        }
        let (row, col) = (self.row, self.col);
        self.cells[row * self.cols + col] = cell;
        self.spans[row].add(col, col + 1);
        if col + 1 == self.cols {
            self.wrap_pending = true;
        } else {
            self.col += 1;
        }
    }

    /// Moves to the start of the next line, scrolling at the bottom.
    pub fn newline(&mut self) {
        self.col = 0;
        self.line_feed();
    }

    pub fn carriage_return(&mut self) {
        self.col = 0;
        self.wrap_pending = false;
    }

    /// Moves the cursor one column left (not past the line start); erasing is
    /// the writer's business (`"\x08 \x08"`).
    pub fn backspace(&mut self) {
        if self.wrap_pending {
            self.wrap_pending = false;
        } else {
            self.col = self.col.saturating_sub(1);
        }
    }

    /// Advances to the next tab stop (every 8 columns), never wrapping.
    pub fn tab(&mut self) {
        if !self.wrap_pending {
            self.col = ((self.col / 8 + 1) * 8).min(self.cols - 1);
        }
    }

    /// Places the cursor, clamped to the grid.
    pub fn set_cursor(&mut self, row: usize, col: usize) {
        self.row = row.min(self.rows - 1);
        self.col = col.min(self.cols - 1);
        self.wrap_pending = false;
    }

    /// Moves the cursor by a signed amount, clamped to the grid.
    pub fn move_cursor(&mut self, rows: isize, cols: isize) {
        let row = self.row.saturating_add_signed(rows);
        let col = self.col.saturating_add_signed(cols);
        self.set_cursor(row, col);
    }

    /// Erases columns `start..end` of `row` to blanks in `bg`.
    pub fn erase(&mut self, row: usize, start: usize, end: usize, bg: Rgb) {
        let end = end.min(self.cols);
        if start < end {
            self.cells[row * self.cols + start..row * self.cols + end].fill(Cell::blank(bg));
            self.spans[row].add(start, end);
        }
    }

    /// Erases whole rows `start..end`.
    pub fn erase_rows(&mut self, start: usize, end: usize, bg: Rgb) {
        for row in start..end.min(self.rows) {
            self.erase(row, 0, self.cols, bg);
        }
    }

    /// Scrolls everything up one row; the new bottom row is blank.
    fn scroll_up(&mut self) {
        self.cells.copy_within(self.cols.., 0);
        self.spans.copy_within(1.., 0);
        let last = self.rows - 1;
        self.cells[last * self.cols..].fill(Cell::BLANK);
        self.spans[last] = Span { start: 0, end: self.cols as u16 };
        self.scrolled += 1;
    }

    fn line_feed(&mut self) {
        self.wrap_pending = false;
        if self.row + 1 == self.rows {
            self.scroll_up();
        } else {
            self.row += 1;
        }
    }

    /// Marks the whole grid for redrawing (after a console switch, say).
    pub fn damage_all(&mut self) {
        self.spans.fill(Span { start: 0, end: self.cols as u16 });
    }

    /// The changed span of each row since the last [`Grid::take_damage`].
    pub fn damaged_rows(&self) -> impl Iterator<Item = (usize, Span)> + '_ {
        self.spans.iter().enumerate().filter(|(_, span)| !span.is_empty()).map(|(row, span)| (row, *span))
    }

    /// Returns how far the screen scrolled and forgets all damage; read
    /// [`Grid::damaged_rows`] first.
    pub fn take_damage(&mut self) -> Damage {
        let damage = Damage { scrolled: core::mem::take(&mut self.scrolled) };
        self.spans.fill(Span::EMPTY);
        damage
    }

    /// Lines of pending scrolling, without taking them.
    pub fn scrolled(&self) -> usize {
        self.scrolled
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A grid over leaked storage, for tests.
    pub fn grid(cols: usize, rows: usize) -> Grid<'static> {
        let cells = Box::leak(vec![Cell::BLANK; cols * rows].into_boxed_slice());
        let spans = Box::leak(vec![Span::EMPTY; rows].into_boxed_slice());
        Grid::new(cols, rows, cells, spans)
    }

    pub fn text(grid: &Grid, row: usize) -> String {
        grid.row_cells(row).iter().map(|c| c.ch).collect::<String>().trim_end().to_string()
    }

    fn write(grid: &mut Grid, s: &str) {
        for ch in s.chars() {
            match ch {
                '\n' => grid.newline(),
                '\t' => grid.tab(),
                _ => grid.put(Cell { ch, ..Cell::BLANK }),
            }
        }
    }

    #[test]
    fn text_wraps_at_the_right_edge() {
        let mut g = grid(4, 3);
        write(&mut g, "abcdef");
        assert_eq!(text(&g, 0), "abcd");
        assert_eq!(text(&g, 1), "ef");
        assert_eq!(g.cursor(), (1, 2));
    }

    #[test]
    fn a_full_line_then_newline_leaves_no_blank_line() {
        let mut g = grid(4, 3);
        write(&mut g, "abcd\nef");
        assert_eq!(text(&g, 1), "ef");
    }

    #[test]
    fn scrolling_moves_rows_up_and_counts() {
        let mut g = grid(4, 2);
        g.take_damage();
        write(&mut g, "1\n2\n3\n4");
        assert_eq!(text(&g, 0), "3");
        assert_eq!(text(&g, 1), "4");
        assert_eq!(g.take_damage().scrolled, 2);
        assert_eq!(g.take_damage().scrolled, 0);
    }

    #[test]
    fn damage_tracks_changed_columns_per_row() {
        let mut g = grid(10, 3);
        g.take_damage();
        g.set_cursor(1, 3);
        write(&mut g, "xy");
        let damaged: Vec<_> = g.damaged_rows().collect();
        assert_eq!(damaged, vec![(1, Span { start: 3, end: 5 })]);
        g.take_damage();
        assert_eq!(g.damaged_rows().count(), 0);
    }

    #[test]
    fn tabs_stop_every_eight_columns_and_clamp() {
        let mut g = grid(20, 2);
        write(&mut g, "a\tb\tc\t");
        assert_eq!(g.cell(0, 8).ch, 'b');
        assert_eq!(g.cell(0, 16).ch, 'c');
        assert_eq!(g.cursor(), (0, 19));
    }

    #[test]
    fn backspace_and_carriage_return_stay_on_the_line() {
        let mut g = grid(10, 2);
        write(&mut g, "abc");
        g.backspace();
        g.put(Cell { ch: 'X', ..Cell::BLANK });
        assert_eq!(text(&g, 0), "abX");
        g.carriage_return();
        g.put(Cell { ch: 'Y', ..Cell::BLANK });
        assert_eq!(text(&g, 0), "YbX");
        g.carriage_return();
        g.backspace();
        assert_eq!(g.cursor(), (0, 0));
    }

    #[test]
    fn cursor_moves_are_clamped() {
        let mut g = grid(10, 5);
        g.move_cursor(-3, -3);
        assert_eq!(g.cursor(), (0, 0));
        g.move_cursor(100, 100);
        assert_eq!(g.cursor(), (4, 9));
        g.set_cursor(2, 2);
        assert_eq!(g.cursor(), (2, 2));
    }
}
