//! The text grid: what every screen console shows, kept in RAM. It knows
//! cells, the cursor, wrapping, the scroll region, tab stops and the
//! alternate screen, and records what changed since the last
//! [`Grid::take_damage`] so that a renderer redraws only that.
//!
//! Wide characters (East Asian Wide, emoji) take two cells: the character,
//! then a blank "spacer". A cell is a spacer exactly when the cell before it
//! holds a wide character, so every operation that could split the pair
//! blanks the other half too; that keeps [`Cell`] as small as the renderers'
//! caches want it.

use super::color::{DEFAULT_BG, DEFAULT_FG, Rgb};
use core::mem::MaybeUninit;
use unicode_width::UnicodeWidthChar;

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

/// How many cells `ch` takes: 2 for wide characters, 0 for combining marks
/// and other zero-width characters (and for C1 controls, which have no
/// glyph), 1 for the rest.
fn char_width(ch: char) -> usize {
    if (ch as u32) < 0x7f { 1 } else { ch.width().unwrap_or(0) }
}

/// Whether `ch` takes two cells. Nothing below U+1100 does, which keeps the
/// check cheap for the text consoles mostly show.
fn is_wide(ch: char) -> bool {
    ch as u32 >= 0x1100 && ch.width() == Some(2)
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

/// Columns with settable tab stops; past them a stop stays at every eighth
/// column. A fixed array keeps the grid free of the heap, and no screen the
/// renderers support is this wide.
pub const TAB_COLUMNS: usize = 2048;

/// One bit per column; set where a tab stop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TabStops([u64; TAB_COLUMNS / 64]);

impl TabStops {
    /// A stop every eight columns, from column 0, as terminals start.
    const DEFAULT: TabStops = TabStops([0x0101_0101_0101_0101; TAB_COLUMNS / 64]);

    fn is_set(&self, col: usize) -> bool {
        match self.0.get(col / 64) {
            Some(word) => word & 1 << (col % 64) != 0,
            None => col.is_multiple_of(8),
        }
    }

    fn set(&mut self, col: usize, on: bool) {
        if let Some(word) = self.0.get_mut(col / 64) {
            if on {
                *word |= 1 << (col % 64);
            } else {
                *word &= !(1 << (col % 64));
            }
        }
    }
}

/// Lines that scrolled off the top of the primary screen, kept so that the
/// view can be moved back over them: a ring of whole rows in caller-provided
/// storage, the oldest overwritten first.
struct History<'a> {
    /// Rows are written as they scroll off; only the last `len` pushed are
    /// read.
    cells: &'a mut [MaybeUninit<Cell>],
    /// Rows the storage holds.
    capacity: usize,
    /// Rows kept so far (at most `capacity`).
    len: usize,
    /// The ring slot the next row goes to.
    next: usize,
}

impl History<'_> {
    fn push(&mut self, row: &[Cell]) {
        if self.capacity == 0 {
            return;
        }
        let cols = row.len();
        self.cells[self.next * cols..(self.next + 1) * cols].write_copy_of_slice(row);
        self.next = (self.next + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
    }

    /// The row `back` rows before the screen's first (1 is the newest, at
    /// most `len`).
    fn row(&self, back: usize, cols: usize) -> &[Cell] {
        assert!((1..=self.len).contains(&back), "history row {back} of {}", self.len);
        let slot = (self.next + self.capacity - back) % self.capacity;
        // SAFETY: the slot is one of the last `len` that `push` wrote, each
        // a whole row of `cols` cells.
        unsafe { self.cells[slot * cols..(slot + 1) * cols].assume_init_ref() }
    }
}

/// Which part of a line or of the screen an erase covers (the parameter of
/// ED and EL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erase {
    /// From the cursor to the end, the cursor's cell included.
    ToEnd,
    /// From the start to the cursor, the cursor's cell included.
    ToCursor,
    All,
}

/// A grid of `cols` x `rows` cells over caller-provided storage, so that it
/// needs no heap and works from the first line of boot.
pub struct Grid<'a> {
    cols: usize,
    rows: usize,
    cells: &'a mut [Cell],
    /// The screen not shown: the alternate screen while the primary one is
    /// shown and the other way round. Empty when no storage was given.
    hidden: &'a mut [Cell],
    alternate: bool,
    spans: &'a mut [Span],
    row: usize,
    col: usize,
    /// Set after writing the last column: the next character wraps first, so
    /// that a full line followed by a newline does not leave an empty line.
    /// Only ever set with the cursor in the last column.
    wrap_pending: bool,
    /// The scroll region, first and last row (DECSTBM).
    top: usize,
    bottom: usize,
    tabs: TabStops,
    /// DECAWM: whether text wraps at the right edge.
    autowrap: bool,
    /// IRM: whether text pushes the rest of the line right.
    insert: bool,
    /// What erasing, inserting and scrolling leave: a blank in the
    /// terminal's current background (xterm's "background colour erase").
    blank: Cell,
    scrolled: usize,
    history: History<'a>,
    /// How many rows the view is moved back into the history; 0 shows the
    /// screen as it is.
    view: usize,
}

impl<'a> Grid<'a> {
    /// `cells` must hold `cols * rows` cells and `spans` one per row.
    pub fn new(cols: usize, rows: usize, cells: &'a mut [Cell], spans: &'a mut [Span]) -> Self {
        assert!(cols > 0 && rows > 0 && cols <= u16::MAX as usize, "grid {cols}x{rows}");
        let cells = &mut cells[..cols * rows];
        let spans = &mut spans[..rows];
        cells.fill(Cell::BLANK);
        spans.fill(Span { start: 0, end: cols as u16 });
        Self {
            cols,
            rows,
            cells,
            hidden: &mut [],
            alternate: false,
            spans,
            row: 0,
            col: 0,
            wrap_pending: false,
            top: 0,
            bottom: rows - 1,
            tabs: TabStops::DEFAULT,
            autowrap: true,
            insert: false,
            blank: Cell::BLANK,
            scrolled: 0,
            history: History { cells: &mut [], capacity: 0, len: 0, next: 0 },
            view: 0,
        }
    }

    /// Gives the grid `cols * rows` cells for the alternate screen, which
    /// full-screen programs switch to so that what was on screen comes back
    /// when they exit. Without it, switching screens changes nothing.
    pub fn with_alternate(mut self, cells: &'a mut [Cell]) -> Self {
        let cells = &mut cells[..self.cols * self.rows];
        cells.fill(Cell::BLANK);
        self.hidden = cells;
        self
    }

    /// Gives the grid storage for a scrollback of `cells.len() / cols`
    /// rows: what scrolls off the top of the whole primary screen is kept
    /// there, and [`Grid::scroll_view`] shows it again.
    pub fn with_history(mut self, cells: &'a mut [MaybeUninit<Cell>]) -> Self {
        let capacity = cells.len() / self.cols;
        self.history = History { cells: &mut cells[..capacity * self.cols], capacity, len: 0, next: 0 };
        self
    }

    /// Rows the scrollback holds at most, and holds now.
    pub fn history_lines(&self) -> (usize, usize) {
        (self.history.capacity, self.history.len)
    }

    /// How many rows back into the scrollback the view is (0: the live
    /// screen).
    pub fn view(&self) -> usize {
        self.view
    }

    /// Moves the view `lines` rows back into the scrollback (forward when
    /// negative), clamped to what it holds; the screen is redrawn when the
    /// view moved.
    pub fn scroll_view(&mut self, lines: isize) {
        let view = self.view.saturating_add_signed(lines).min(self.history.len);
        if view != self.view {
            self.view = view;
            self.damage_all();
        }
    }

    /// The cell shown at `row`, `col`: the screen's own when the view is at
    /// the bottom, otherwise a scrollback row or a screen row moved down,
    /// with a marker in the top right corner that says how far back the
    /// view is.
    #[inline]
    pub fn shown_cell(&self, row: usize, col: usize) -> Cell {
        if self.view == 0 { self.cells[row * self.cols + col] } else { self.viewed_cell(row, col) }
    }

    fn viewed_cell(&self, row: usize, col: usize) -> Cell {
        if row == 0 {
            let (marker, len) = self.marker();
            if let Some(at) = (col + len).checked_sub(self.cols) {
                return Cell { ch: marker[at] as char, fg: DEFAULT_BG, bg: DEFAULT_FG, bold: false };
            }
        }
        if row < self.view {
            self.history.row(self.view - row, self.cols)[col]
        } else {
            self.cells[(row - self.view) * self.cols + col]
        }
    }

    /// The scrolled view's marker, ` SCROLLBACK -N `, in ASCII, and its
    /// length (cut to the screen's width).
    fn marker(&self) -> ([u8; 32], usize) {
        let mut text = [0u8; 32];
        let prefix = b" SCROLLBACK -";
        text[..prefix.len()].copy_from_slice(prefix);
        let mut len = prefix.len();
        let digits = self.view.checked_ilog10().unwrap_or(0) as usize + 1;
        let mut value = self.view;
        for at in (len..len + digits).rev() {
            text[at] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        len += digits;
        text[len] = b' ';
        (text, (len + 1).min(self.cols))
    }

    /// Whether the cursor is to be drawn: only on the live screen.
    pub fn cursor_shown(&self) -> bool {
        self.view == 0
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

    /// Whether the next character goes to the start of the next line.
    pub fn wrap_pending(&self) -> bool {
        self.wrap_pending
    }

    /// The scroll region's first and last row.
    pub fn scroll_region(&self) -> (usize, usize) {
        (self.top, self.bottom)
    }

    /// Whether the alternate screen is shown.
    pub fn is_alternate(&self) -> bool {
        self.alternate
    }

    pub fn cell(&self, row: usize, col: usize) -> Cell {
        self.cells[row * self.cols + col]
    }

    pub fn row_cells(&self, row: usize) -> &[Cell] {
        &self.cells[row * self.cols..(row + 1) * self.cols]
    }

    pub fn set_autowrap(&mut self, on: bool) {
        self.autowrap = on;
    }

    pub fn set_insert(&mut self, on: bool) {
        self.insert = on;
    }

    /// Sets the background that erasing and scrolling leave behind.
    pub fn set_background(&mut self, bg: Rgb) {
        self.blank = Cell::blank(bg);
    }

    /// Whether `col` of `row` is the right half of a wide character.
    fn is_spacer(&self, row: usize, col: usize) -> bool {
        col > 0 && col < self.cols && is_wide(self.cells[row * self.cols + col - 1].ch)
    }

    fn damage(&mut self, row: usize, start: usize, end: usize) {
        self.spans[row].add(start, end);
    }

    fn damage_rows(&mut self, start: usize, end: usize) {
        self.spans[start..end].fill(Span { start: 0, end: self.cols as u16 });
    }

    /// Writes a printable character at the cursor and advances it; a wide
    /// character takes two cells, a zero-width one none (it is dropped: the
    /// fonts have no combining marks to draw over the previous cell).
    pub fn put(&mut self, cell: Cell) {
        self.put_char(cell.ch, &cell);
    }

    /// [`Grid::put`] of `ch` in `pen`'s colours and weight. Plain text is
    /// most of what a console shows, so its common case is small enough to
    /// inline, and copies `pen` whole: a cell built field by field just
    /// before its store stalls that store, doubling the cost of text.
    #[inline]
    pub fn put_char(&mut self, ch: char, pen: &Cell) {
        let (row, col) = (self.row, self.col);
        let at = row * self.cols + col;
        // ASCII in mid-line, not inserting, and not over the right half of
        // a wide character.
        if (ch as u32) < 0x7f
            && !self.wrap_pending
            && !self.insert
            && col + 1 < self.cols
            && (col == 0 || (self.cells[at - 1].ch as u32) < 0x1100)
        {
            self.cells[at] = *pen;
            self.cells[at].ch = ch;
            self.spans[row].add(col, col + 1);
            self.col = col + 1;
        } else {
            self.put_any(Cell { ch, ..*pen });
        }
    }

    /// [`Grid::put`] for every case.
    fn put_any(&mut self, cell: Cell) {
        let width = char_width(cell.ch);
        if width == 0 {
            return;
        }
        if self.wrap_pending {
            self.wrap_pending = false;
            if self.autowrap {
                self.wrap();
            }
        }
        if width == 2 && self.col + 1 >= self.cols {
            // A wide character that does not fit goes to the next line,
            // leaving a blank; without autowrap (or room) it is dropped.
            if !self.autowrap || self.cols < 2 {
                self.wrap_pending = true;
                return;
            }
            self.write(self.col, 1, Cell { ch: ' ', ..cell });
            self.wrap();
        }
        if self.insert {
            self.shift_right(self.col, width);
        }
        self.write(self.col, width, cell);
        if self.col + width >= self.cols {
            self.col = self.cols - 1;
            self.wrap_pending = true;
        } else {
            self.col += width;
        }
    }

    /// Writes `cell` (and its spacer when `width` is 2) at `col` of the
    /// cursor's row. A wide character whose right half is overwritten keeps
    /// only a blank in its own colours, as alacritty leaves it (xterm blanks
    /// it in the current background); a spacer whose wide character is
    /// overwritten is a blank already.
    fn write(&mut self, col: usize, width: usize, cell: Cell) {
        let row = self.row;
        let at = row * self.cols + col;
        let mut start = col;
        if self.is_spacer(row, col) {
            self.cells[at - 1].ch = ' ';
            start -= 1;
        }
        self.cells[at] = cell;
        if width == 2 {
            self.cells[at + 1] = Cell { ch: ' ', ..cell };
        }
        self.damage(row, start, col + width);
    }

    /// Moves to the start of the next line (autowrap).
    fn wrap(&mut self) {
        self.col = 0;
        self.line_feed();
    }

    /// Moves down a line, scrolling the region at its bottom margin (LF,
    /// IND). Below the region the cursor stops at the last row.
    pub fn line_feed(&mut self) {
        self.wrap_pending = false;
        if self.row == self.bottom {
            self.scroll_rows_up(self.top, self.bottom, 1);
        } else if self.row + 1 < self.rows {
            self.row += 1;
        }
    }

    /// Moves up a line, scrolling the region down at its top margin (RI).
    pub fn reverse_index(&mut self) {
        self.wrap_pending = false;
        if self.row == self.top {
            self.scroll_rows_down(self.top, self.bottom, 1);
        } else {
            self.row = self.row.saturating_sub(1);
        }
    }

    pub fn carriage_return(&mut self) {
        self.col = 0;
        self.wrap_pending = false;
    }

    /// Moves the cursor one column left (not past the line start). A pending
    /// wrap is dropped, so after a full line the cursor lands on the
    /// second-last column, as in xterm. Erasing is the writer's business
    /// (`"\x08 \x08"`).
    pub fn backspace(&mut self) {
        self.cursor_back(1);
    }

    /// Advances to the next tab stop (HT), never wrapping.
    pub fn tab(&mut self) {
        self.tab_forward(1);
    }

    /// Advances `count` tab stops (CHT), stopping at the last column; a
    /// pending wrap stays pending, as in xterm.
    pub fn tab_forward(&mut self, count: usize) {
        for _ in 0..count {
            if self.col + 1 >= self.cols {
                break;
            }
            self.col = (self.col + 1..self.cols).find(|&c| self.tabs.is_set(c)).unwrap_or(self.cols - 1);
        }
    }

    /// Goes back `count` tab stops (CBT), to column 0 when there are none.
    pub fn tab_backward(&mut self, count: usize) {
        for _ in 0..count {
            if self.col == 0 {
                break;
            }
            self.col = (0..self.col).rev().find(|&c| self.tabs.is_set(c)).unwrap_or(0);
            self.wrap_pending = false;
        }
    }

    /// Sets a tab stop at the cursor's column (HTS).
    pub fn set_tab_stop(&mut self) {
        self.tabs.set(self.col, true);
    }

    /// Clears the tab stop at the cursor's column (TBC 0).
    pub fn clear_tab_stop(&mut self) {
        self.tabs.set(self.col, false);
    }

    /// Clears every tab stop (TBC 3).
    pub fn clear_tab_stops(&mut self) {
        self.tabs = TabStops([0; TAB_COLUMNS / 64]);
    }

    /// Places the cursor, clamped to the grid.
    pub fn set_cursor(&mut self, row: usize, col: usize) {
        self.row = row.min(self.rows - 1);
        self.col = col.min(self.cols - 1);
        self.wrap_pending = false;
    }

    /// Places the cursor and sets whether a wrap is pending, as restoring a
    /// saved cursor (DECRC) does; a wrap is pending only in the last column.
    pub fn restore_cursor(&mut self, row: usize, col: usize, wrap_pending: bool) {
        self.set_cursor(row, col);
        self.wrap_pending = wrap_pending && self.col == self.cols - 1;
    }

    /// Moves the cursor up (CUU), stopping at the top margin when it starts
    /// inside the scroll region.
    pub fn cursor_up(&mut self, count: usize) {
        let limit = if self.row < self.top { 0 } else { self.top };
        self.row = self.row.saturating_sub(count).max(limit);
        self.wrap_pending = false;
    }

    /// Moves the cursor down (CUD), stopping at the bottom margin when it
    /// starts inside the scroll region.
    pub fn cursor_down(&mut self, count: usize) {
        let limit = if self.row > self.bottom { self.rows - 1 } else { self.bottom };
        self.row = self.row.saturating_add(count).min(limit);
        self.wrap_pending = false;
    }

    /// Moves the cursor right (CUF), stopping at the last column.
    pub fn cursor_forward(&mut self, count: usize) {
        self.col = self.col.saturating_add(count).min(self.cols - 1);
        self.wrap_pending = false;
    }

    /// Moves the cursor left (CUB), stopping at the first column.
    pub fn cursor_back(&mut self, count: usize) {
        self.col = self.col.saturating_sub(count);
        self.wrap_pending = false;
    }

    /// Sets the scroll region to rows `top..=bottom` (DECSTBM); the caller
    /// homes the cursor, which depends on origin mode.
    pub fn set_scroll_region(&mut self, top: usize, bottom: usize) {
        let bottom = bottom.min(self.rows - 1);
        if top < bottom {
            self.top = top;
            self.bottom = bottom;
        }
    }

    /// Erases columns `start..end` of `row` to blanks; a wide character cut
    /// by either end is erased whole, as in xterm.
    fn erase(&mut self, row: usize, start: usize, end: usize) {
        let mut start = start.min(self.cols);
        let mut end = end.min(self.cols);
        if start >= end {
            return;
        }
        if self.is_spacer(row, start) {
            start -= 1;
        }
        if self.is_spacer(row, end) {
            end += 1;
        }
        self.cells[row * self.cols + start..row * self.cols + end].fill(self.blank);
        self.damage(row, start, end);
    }

    /// Erases whole rows `start..end`.
    fn erase_rows(&mut self, start: usize, end: usize) {
        let end = end.min(self.rows);
        if start < end {
            self.cells[start * self.cols..end * self.cols].fill(self.blank);
            self.damage_rows(start, end);
        }
    }

    /// Erases part of the cursor's line (EL).
    pub fn erase_line(&mut self, part: Erase) {
        let (row, col) = (self.row, self.col);
        match part {
            Erase::ToEnd => self.erase(row, col, self.cols),
            Erase::ToCursor => self.erase(row, 0, col + 1),
            Erase::All => self.erase(row, 0, self.cols),
        }
        self.wrap_pending = false;
    }

    /// Erases part of the screen (ED): before or after the cursor, or all.
    pub fn erase_display(&mut self, part: Erase) {
        let row = self.row;
        match part {
            Erase::ToEnd => {
                self.erase_line(Erase::ToEnd);
                self.erase_rows(row + 1, self.rows);
            }
            Erase::ToCursor => {
                self.erase_rows(0, row);
                self.erase_line(Erase::ToCursor);
            }
            Erase::All => self.erase_rows(0, self.rows),
        }
        self.wrap_pending = false;
    }

    /// Erases `count` cells from the cursor on (ECH).
    pub fn erase_chars(&mut self, count: usize) {
        let (row, col) = (self.row, self.col);
        self.erase(row, col, col.saturating_add(count));
        self.wrap_pending = false;
    }

    /// Moves the cells from the cursor on `count` columns right, dropping
    /// what passes the right edge, and blanks the gap.
    fn shift_right(&mut self, col: usize, count: usize) {
        let row = self.row;
        let count = count.min(self.cols - col);
        // A wide character cut at the cursor, or pushed half off the edge,
        // is erased whole, as in xterm.
        let cut = self.is_spacer(row, col);
        let start = if cut { col - 1 } else { col };
        let line = &mut self.cells[row * self.cols..(row + 1) * self.cols];
        if cut {
            line[start..=col].fill(self.blank);
        }
        line.copy_within(col..self.cols - count, col + count);
        line[col..col + count].fill(self.blank);
        if is_wide(line[self.cols - 1].ch) {
            line[self.cols - 1] = self.blank;
        }
        self.damage(row, start, self.cols);
    }

    /// Inserts `count` blanks at the cursor (ICH).
    pub fn insert_blanks(&mut self, count: usize) {
        self.shift_right(self.col, count);
        self.wrap_pending = false;
    }

    /// Deletes `count` cells at the cursor, pulling the rest of the line left
    /// and blanking the right end (DCH).
    pub fn delete_chars(&mut self, count: usize) {
        let (row, col) = (self.row, self.col);
        let count = count.min(self.cols - col);
        // A wide character cut at either end of the deleted cells is erased
        // whole, as in xterm.
        let start = if self.is_spacer(row, col) { col - 1 } else { col };
        let cut_right = self.is_spacer(row, col + count);
        let line = &mut self.cells[row * self.cols..(row + 1) * self.cols];
        line[start..col].fill(self.blank);
        if cut_right {
            line[col + count] = self.blank;
        }
        line.copy_within(col + count.., col);
        line[self.cols - count..].fill(self.blank);
        self.damage(row, start, self.cols);
        self.wrap_pending = false;
    }

    /// Inserts `count` blank lines at the cursor's row, pushing the region's
    /// lower rows down (IL); nothing happens outside the region.
    pub fn insert_lines(&mut self, count: usize) {
        if (self.top..=self.bottom).contains(&self.row) {
            self.scroll_rows_down(self.row, self.bottom, count);
            self.wrap_pending = false;
        }
    }

    /// Deletes `count` lines at the cursor's row, pulling the region's lower
    /// rows up (DL); nothing happens outside the region.
    pub fn delete_lines(&mut self, count: usize) {
        if (self.top..=self.bottom).contains(&self.row) {
            self.scroll_rows_up(self.row, self.bottom, count);
            self.wrap_pending = false;
        }
    }

    /// Scrolls the region up `count` rows (SU); the cursor stays.
    pub fn scroll_up(&mut self, count: usize) {
        self.scroll_rows_up(self.top, self.bottom, count);
    }

    /// Scrolls the region down `count` rows (SD); the cursor stays.
    pub fn scroll_down(&mut self, count: usize) {
        self.scroll_rows_down(self.top, self.bottom, count);
    }

    /// Moves rows `top + count..=bottom` up to `top`, blanking the rows freed
    /// at the bottom. The whole screen scrolling is counted in
    /// [`Grid::scrolled`] so that renderers can move pixels; a smaller region
    /// is damaged row by row and redrawn.
    fn scroll_rows_up(&mut self, top: usize, bottom: usize, count: usize) {
        let count = count.min(bottom + 1 - top);
        let cols = self.cols;
        if top == 0 && bottom == self.rows - 1 && !self.alternate {
            for row in 0..count {
                self.history.push(&self.cells[row * cols..(row + 1) * cols]);
            }
        }
        self.cells.copy_within((top + count) * cols..(bottom + 1) * cols, top * cols);
        self.cells[(bottom + 1 - count) * cols..(bottom + 1) * cols].fill(self.blank);
        if top == 0 && bottom == self.rows - 1 {
            self.spans.copy_within(count.., 0);
            self.damage_rows(self.rows - count, self.rows);
            self.scrolled += count;
        } else {
            self.damage_rows(top, bottom + 1);
        }
    }

    /// Moves rows `top..=bottom - count` down by `count`, blanking the rows
    /// freed at the top.
    fn scroll_rows_down(&mut self, top: usize, bottom: usize, count: usize) {
        let count = count.min(bottom + 1 - top);
        let cols = self.cols;
        self.cells.copy_within(top * cols..(bottom + 1 - count) * cols, (top + count) * cols);
        self.cells[top * cols..(top + count) * cols].fill(self.blank);
        self.damage_rows(top, bottom + 1);
    }

    /// Shows the alternate screen (or the primary one again). Contents and
    /// the cursor stay as they are; clearing and saving the cursor are the
    /// terminal's business, and differ between the modes that switch.
    pub fn show_alternate(&mut self, alternate: bool) {
        if alternate != self.alternate && !self.hidden.is_empty() {
            core::mem::swap(&mut self.cells, &mut self.hidden);
            self.alternate = alternate;
            self.damage_all();
        }
    }

    /// Fills the screen with `ch` in the default colours (DECALN), resets
    /// the scroll region and homes the cursor.
    pub fn fill(&mut self, ch: char) {
        self.cells.fill(Cell { ch, ..Cell::BLANK });
        self.damage_all();
        self.top = 0;
        self.bottom = self.rows - 1;
        self.set_cursor(0, 0);
    }

    /// Back to the state of a new grid (RIS): both screens blank, the
    /// primary one shown, default tab stops, region and modes.
    pub fn reset(&mut self) {
        self.show_alternate(false);
        self.cells.fill(Cell::BLANK);
        self.hidden.fill(Cell::BLANK);
        self.damage_all();
        self.set_cursor(0, 0);
        self.top = 0;
        self.bottom = self.rows - 1;
        self.tabs = TabStops::DEFAULT;
        self.autowrap = true;
        self.insert = false;
        self.blank = Cell::BLANK;
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
    use crate::console::color::PALETTE;

    /// A grid over leaked storage, with an alternate screen, for tests.
    pub fn grid(cols: usize, rows: usize) -> Grid<'static> {
        let cells = Box::leak(vec![Cell::BLANK; cols * rows].into_boxed_slice());
        let alternate = Box::leak(vec![Cell::BLANK; cols * rows].into_boxed_slice());
        let spans = Box::leak(vec![Span::EMPTY; rows].into_boxed_slice());
        Grid::new(cols, rows, cells, spans).with_alternate(alternate)
    }

    pub fn text(grid: &Grid, row: usize) -> String {
        grid.row_cells(row).iter().map(|c| c.ch).collect::<String>().trim_end().to_string()
    }

    fn write(grid: &mut Grid, s: &str) {
        for ch in s.chars() {
            match ch {
                '\n' => {
                    grid.carriage_return();
                    grid.line_feed();
                }
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
    fn a_scroll_region_scrolls_only_its_rows_and_damages_only_them() {
        let mut g = grid(4, 5);
        write(&mut g, "0\n1\n2\n3\n4");
        g.set_scroll_region(1, 3);
        g.take_damage();
        g.set_cursor(3, 0);
        g.line_feed();
        let rows: Vec<_> = (0..5).map(|r| text(&g, r)).collect();
        assert_eq!(rows, ["0", "2", "3", "", "4"]);
        assert_eq!(g.scrolled(), 0, "the screen as a whole did not move");
        let damaged: Vec<_> = g.damaged_rows().map(|(row, _)| row).collect();
        assert_eq!(damaged, [1, 2, 3]);
    }

    #[test]
    fn scrolling_leaves_the_current_background() {
        let mut g = grid(3, 2);
        g.set_background(PALETTE[4]);
        write(&mut g, "a\nb\n");
        assert_eq!(g.cell(1, 0), Cell::blank(PALETTE[4]));
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
    fn tab_stops_can_be_set_and_cleared() {
        let mut g = grid(30, 1);
        g.set_cursor(0, 3);
        g.set_tab_stop();
        g.set_cursor(0, 8);
        g.clear_tab_stop();
        g.set_cursor(0, 0);
        g.tab();
        assert_eq!(g.cursor(), (0, 3));
        g.tab();
        assert_eq!(g.cursor(), (0, 16));
        g.tab_backward(2);
        assert_eq!(g.cursor(), (0, 0));
        g.clear_tab_stops();
        g.tab_forward(1);
        assert_eq!(g.cursor(), (0, 29));
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
        g.cursor_up(3);
        g.cursor_back(3);
        assert_eq!(g.cursor(), (0, 0));
        g.cursor_down(100);
        g.cursor_forward(100);
        assert_eq!(g.cursor(), (4, 9));
        g.set_cursor(2, 2);
        assert_eq!(g.cursor(), (2, 2));
    }

    #[test]
    fn wide_characters_take_two_cells_and_zero_width_ones_none() {
        let mut g = grid(6, 2);
        write(&mut g, "a中\u{301}b");
        assert_eq!(text(&g, 0), "a中 b");
        assert_eq!(g.cursor(), (0, 4));
    }

    #[test]
    fn a_wide_character_wraps_whole() {
        let mut g = grid(4, 2);
        write(&mut g, "abc中");
        assert_eq!(text(&g, 0), "abc");
        assert_eq!(text(&g, 1), "中");
        assert_eq!(g.cursor(), (1, 2));
    }

    #[test]
    fn overwriting_half_a_wide_character_blanks_the_other_half() {
        let mut g = grid(6, 1);
        write(&mut g, "中文");
        g.set_cursor(0, 1);
        write(&mut g, "x");
        g.set_cursor(0, 2);
        write(&mut g, "y");
        assert_eq!(text(&g, 0), " xy");
    }

    fn with_history(cols: usize, rows: usize, lines: usize) -> Grid<'static> {
        grid(cols, rows).with_history(Box::leak(Box::new_uninit_slice(cols * lines)))
    }

    fn shown(grid: &Grid, row: usize) -> String {
        (0..grid.cols()).map(|col| grid.shown_cell(row, col).ch).collect::<String>().trim_end().to_string()
    }

    #[test]
    fn lines_scrolled_off_are_kept_and_the_view_shows_them() {
        let mut g = with_history(20, 3, 10);
        write(&mut g, "1\n2\n3\n4\n5");
        assert_eq!(g.history_lines(), (10, 2));
        g.take_damage();
        g.scroll_view(1);
        assert_eq!(g.view(), 1);
        assert!(!g.cursor_shown());
        assert_eq!(g.damaged_rows().count(), 3, "moving the view redraws the screen");
        // The marker covers the top right corner, in inverted colours.
        assert_eq!(shown(&g, 0), "2     SCROLLBACK -1");
        assert_eq!(g.shown_cell(0, 19).bg, DEFAULT_FG);
        assert_eq!((shown(&g, 1), shown(&g, 2)), ("3".into(), "4".into()));
        g.scroll_view(100);
        assert_eq!(g.view(), 2, "clamped to what the history holds");
        assert_eq!((shown(&g, 1), shown(&g, 2)), ("2".into(), "3".into()));
        g.scroll_view(-100);
        assert_eq!((g.view(), shown(&g, 0)), (0, "3".into()));
        assert_eq!(text(&g, 0), "3", "the screen itself never changed");
    }

    #[test]
    fn the_history_keeps_the_newest_lines_and_ignores_the_alternate_screen() {
        let mut g = with_history(30, 2, 3);
        for n in 0..8 {
            write(&mut g, &format!("{n}\n"));
        }
        assert_eq!(g.history_lines(), (3, 3));
        g.scroll_view(3);
        let marker_free = |g: &Grid, row| g.shown_cell(row, 0).ch;
        assert_eq!([marker_free(&g, 0), marker_free(&g, 1)], ['4', '5']);
        g.scroll_view(-3);
        g.show_alternate(true);
        write(&mut g, "a\nb\nc\n");
        assert_eq!(g.history_lines(), (3, 3));
        g.show_alternate(false);
        g.scroll_view(1);
        assert_eq!(marker_free(&g, 0), '6');
    }

    #[test]
    fn without_storage_there_is_no_history() {
        let mut g = grid(4, 2);
        write(&mut g, "1\n2\n3\n");
        g.scroll_view(5);
        assert_eq!(g.view(), 0);
    }

    #[test]
    fn the_alternate_screen_keeps_the_primary_one() {
        let mut g = grid(4, 2);
        write(&mut g, "main");
        g.show_alternate(true);
        assert!(g.is_alternate());
        assert_eq!(text(&g, 0), "");
        write(&mut g, "\nalt");
        g.show_alternate(false);
        assert_eq!(text(&g, 0), "main");
        assert_eq!(text(&g, 1), "");
    }
}
