//! The framebuffer console's renderer: draws a [`Grid`] with the anti-aliased
//! Noto Sans Mono glyphs into a back buffer in RAM and copies to the screen
//! only the rows that changed.
//!
//! Video memory is never read: on real machines reading it is slow (it is
//! uncached or write-combined). It is only written, in address order: whole
//! pixel rows, or the changed run of cells in a row, a pixel row at a time.
//! The back buffer is the shadow that scrolling reads from. Scrolling either
//! redraws only the cells whose text changed (log lines look alike) or
//! moves the picture in RAM, which costs nothing because the back buffer's
//! text area is a ring of pixel rows, and copies it out once.
//!
//! Until something scrolls, nothing needs the shadow: cells are drawn
//! straight to the screen, each pixel row of a run of cells in address
//! order, and the back buffer is left alone. The first scroll after a clear
//! (or after the renderer starts) draws every cell into the back buffer and
//! goes on from there. So a boot whose log fits on the screen never touches
//! the back buffer's 4 MiB (at 1280x800), which under a hypervisor is
//! memory backed when first touched. After that, a band (the pixel rows of
//! one text row) is filled with the clear colour when first drawn in.
//!
//! A framebuffer is checked ([`Mode::new`]) before anything is drawn on it:
//! whatever geometry the firmware reports, the renderer never divides by
//! zero or writes outside the screen.

use super::color::{DEFAULT_BG, Rgb, blend};
use super::font::{Font, Glyphs};
use super::grid::{Cell, Grid, Span};
use crate::boot::ColorMask;
use core::fmt;

/// How the framebuffer stores a pixel: its size and where each channel sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelFormat {
    bytes_per_pixel: usize,
    red: ColorMask,
    green: ColorMask,
    blue: ColorMask,
}

/// A pixel layout this renderer does not draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsupportedFormat {
    pub bpp: u16,
}

impl fmt::Display for UnsupportedFormat {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "unsupported pixel format ({} bits per pixel, or colour masks empty, overlapping or outside the pixel)",
            self.bpp
        )
    }
}

impl PixelFormat {
    /// Accepts 16, 24 and 32 bpp with channel masks that fit in the pixel
    /// and do not overlap.
    pub fn new(
        bpp: u16,
        red: ColorMask,
        green: ColorMask,
        blue: ColorMask,
    ) -> Result<Self, UnsupportedFormat> {
        let fits = |m: ColorMask| m.size > 0 && m.size as u16 + m.shift as u16 <= bpp;
        let bits = |m: ColorMask| ((1u64 << m.size.min(32)) - 1) << m.shift.min(32);
        let apart =
            bits(red) & bits(green) == 0 && bits(red) & bits(blue) == 0 && bits(green) & bits(blue) == 0;
        if matches!(bpp, 16 | 24 | 32) && fits(red) && fits(green) && fits(blue) && apart {
            Ok(Self { bytes_per_pixel: bpp as usize / 8, red, green, blue })
        } else {
            Err(UnsupportedFormat { bpp })
        }
    }

    pub fn bytes_per_pixel(&self) -> usize {
        self.bytes_per_pixel
    }

    /// The pixel value for `color`, to be stored little-endian.
    pub fn encode(&self, color: Rgb) -> u32 {
        let channel = |value: u8, mask: ColorMask| {
            let value = value as u32;
            let scaled = if mask.size >= 8 { value << (mask.size - 8) } else { value >> (8 - mask.size) };
            scaled << mask.shift
        };
        channel(color.r, self.red) | channel(color.g, self.green) | channel(color.b, self.blue)
    }
}

/// A framebuffer the renderer can draw on: its geometry and pixel format,
/// checked once by [`Mode::new`] so that nothing later needs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub width: usize,
    pub height: usize,
    /// Bytes from one pixel row to the next.
    pub pitch: usize,
    pub format: PixelFormat,
}

/// Why a framebuffer cannot be drawn on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    Format(UnsupportedFormat),
    /// Not even one character cell of the smallest font fits.
    TooSmall {
        width: u32,
        height: u32,
    },
    /// Larger than any display: a wrong report rather than a screen.
    TooLarge {
        width: u32,
        height: u32,
    },
    /// Rows overlap: the pitch is shorter than a row of pixels.
    Pitch {
        pitch: u32,
        row_bytes: usize,
    },
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            Unusable::Format(format) => format.fmt(f),
            Unusable::TooSmall { width, height } => write!(
                f,
                "{width}x{height} is smaller than one {}x{} character cell",
                Font::SMALLEST.width(),
                Font::SMALLEST.height()
            ),
            Unusable::TooLarge { width, height } => {
                write!(f, "{width}x{height} is beyond any display (at most {MAX_SIDE} pixels a side)")
            }
            Unusable::Pitch { pitch, row_bytes } => {
                write!(f, "pitch {pitch} is shorter than a row of pixels ({row_bytes} bytes)")
            }
        }
    }
}

/// The longest side a mode may have: beyond any real display, and small
/// enough that column numbers fit the grid's 16-bit spans.
pub const MAX_SIDE: u32 = 16384;

impl Mode {
    /// Checks a framebuffer as the bootloader described it.
    pub fn new(
        (width, height, pitch): (u32, u32, u32),
        bpp: u16,
        (red, green, blue): (ColorMask, ColorMask, ColorMask),
    ) -> Result<Mode, Unusable> {
        let format = PixelFormat::new(bpp, red, green, blue).map_err(Unusable::Format)?;
        if width > MAX_SIDE || height > MAX_SIDE {
            return Err(Unusable::TooLarge { width, height });
        }
        let (width_px, height_px) = (width as usize, height as usize);
        if !Font::SMALLEST.fits(width_px, height_px) {
            return Err(Unusable::TooSmall { width, height });
        }
        let row_bytes = width_px * format.bytes_per_pixel;
        if (pitch as usize) < row_bytes {
            return Err(Unusable::Pitch { pitch, row_bytes });
        }
        Ok(Mode { width: width_px, height: height_px, pitch: pitch as usize, format })
    }

    /// Bytes of video memory the mode spans: `height` rows of `pitch` bytes.
    pub fn bytes(&self) -> usize {
        self.pitch * self.height
    }
}

/// The RAM a renderer works in, each part at least as large as
/// [`Renderer::needs`] says.
pub struct Memory<'a> {
    /// The picture, `width * height` pixels in the screen's format.
    pub back: &'a mut [u8],
    /// The cells as they are on screen, one per character cell.
    pub shown: &'a mut [Cell],
    /// Per text row, the columns drawn since the last flush.
    pub dirty: &'a mut [Span],
    /// The glyph cache's keys, one per slot.
    pub cached: &'a mut [Cell],
    /// The glyph cache's pixels, one rendered cell per slot.
    pub glyphs: &'a mut [u8],
}

/// Sizes of the parts of [`Memory`], in elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub back: usize,
    pub cells: usize,
    pub rows: usize,
    pub cache_slots: usize,
    pub glyphs: usize,
}

/// Rendered cells kept: enough for the characters and colour pairs of busy
/// screens, 224 KiB at 32 bpp.
const CACHE_WAYS: usize = 4;
const CACHE_SETS: usize = 128;
const CACHE_SLOTS: usize = CACHE_SETS * CACHE_WAYS;

/// Drawing a cell (from the glyph cache, mostly) costs about this many times
/// copying its pixels out; it weighs redrawing against moving the picture.
const DRAW_COST: usize = 3;

/// The most text rows a screen can have: the smallest font on the tallest
/// mode.
const MAX_ROWS: usize = MAX_SIDE as usize / Font::SMALLEST.height();

/// One bit per back buffer band.
#[derive(Clone, Copy)]
struct Bands([u64; MAX_ROWS.div_ceil(64)]);

impl Bands {
    const ALL: Bands = Bands([u64::MAX; MAX_ROWS.div_ceil(64)]);

    fn contains(&self, band: usize) -> bool {
        self.0[band / 64] & 1 << (band % 64) != 0
    }

    fn remove(&mut self, band: usize) {
        self.0[band / 64] &= !(1 << (band % 64));
    }
}

/// Encoded pixel values for the 256 intensities of one colour pair.
struct Shades {
    fg: Rgb,
    bg: Rgb,
    values: [u32; 256],
}

/// Never equal to a real cell: marks a screen position or cache slot unused.
const UNKNOWN: Cell = Cell { ch: '\0', fg: Rgb::new(1, 2, 3), bg: Rgb::new(3, 2, 1), bold: true };

pub struct Renderer<'a> {
    format: PixelFormat,
    font: Font,
    /// The font's glyphs, which cache misses render from.
    ink: Glyphs<'a>,
    height: usize,
    /// Bytes of one pixel row in the back buffer.
    stride: usize,
    /// Bytes of one pixel row on the screen.
    pitch: usize,
    cols: usize,
    /// Bytes of one rendered cell.
    cell_bytes: usize,
    memory: Memory<'a>,
    /// The visible framebuffer: only ever written.
    screen: &'a mut [u8],
    /// The colour pair last rendered into the glyph cache.
    shades: Shades,
    /// Where the cursor was drawn by the last update.
    cursor: Option<(usize, usize)>,
    /// The way a cache miss replaces next (round robin).
    victim: usize,
    /// The back buffer row where the text area's first pixel row is.
    top: usize,
    /// Back buffer bands not drawn in since the last clear: their memory
    /// holds nothing yet and stands for `cleared` everywhere.
    stale: Bands,
    /// Whether cells go straight to the screen: nothing has scrolled since
    /// the last clear, so the back buffer is not in use yet.
    direct: bool,
    /// The encoded colour the screen was last cleared to.
    cleared: u32,
}

impl<'a> Renderer<'a> {
    /// The memory a renderer for `mode` in `font` works in.
    pub fn needs(mode: Mode, font: Font) -> Needs {
        let (cols, rows) = font.grid(mode.width, mode.height);
        Needs {
            back: mode.width * mode.height * mode.format.bytes_per_pixel,
            cells: cols * rows,
            rows,
            cache_slots: CACHE_SLOTS,
            glyphs: CACHE_SLOTS * font.width() * font.height() * mode.format.bytes_per_pixel,
        }
    }

    /// A renderer drawing `mode`'s screen, `screen` (at least
    /// [`Mode::bytes`] long), in the font of `ink`, which must fit on it
    /// ([`Font::fits`]); `memory` must be as large as [`Renderer::needs`]
    /// says.
    pub fn new(mode: Mode, ink: Glyphs<'a>, memory: Memory<'a>, screen: &'a mut [u8]) -> Self {
        let font = ink.font();
        let needs = Self::needs(mode, font);
        assert!(font.fits(mode.width, mode.height), "a font larger than the screen");
        assert!(
            memory.back.len() >= needs.back
                && memory.shown.len() >= needs.cells
                && memory.dirty.len() >= needs.rows
                && memory.cached.len() >= needs.cache_slots
                && memory.glyphs.len() >= needs.glyphs,
            "renderer memory too small"
        );
        assert!(screen.len() >= mode.bytes(), "video memory smaller than the mode");
        let Memory { back, shown, dirty, cached, glyphs } = memory;
        let memory = Memory {
            back: &mut back[..needs.back],
            shown: &mut shown[..needs.cells],
            dirty: &mut dirty[..needs.rows],
            cached: &mut cached[..needs.cache_slots],
            glyphs: &mut glyphs[..needs.glyphs],
        };
        memory.shown.fill(UNKNOWN);
        memory.dirty.fill(Span::EMPTY);
        memory.cached.fill(UNKNOWN);
        let bpp = mode.format.bytes_per_pixel;
        let mut renderer = Self {
            format: mode.format,
            font,
            ink,
            height: mode.height,
            stride: mode.width * bpp,
            pitch: mode.pitch,
            cols: needs.cells / needs.rows,
            cell_bytes: font.width() * font.height() * bpp,
            memory,
            screen: &mut screen[..mode.bytes()],
            shades: Shades { fg: UNKNOWN.fg, bg: UNKNOWN.bg, values: [0; 256] },
            cursor: None,
            victim: 0,
            top: 0,
            stale: Bands::ALL,
            direct: true,
            cleared: mode.format.encode(DEFAULT_BG),
        };
        renderer.set_shades(UNKNOWN.fg, UNKNOWN.bg);
        renderer
    }

    /// Brings the screen up to date with `grid` and forgets the grid's damage.
    ///
    /// After a scroll it chooses the cheaper way: redraw the cells that now
    /// differ from what is shown (few, for log-like text whose lines look
    /// alike), or move the picture up in the back buffer's ring, redraw what
    /// still differs and copy the whole screen out (bounded, for anything
    /// else).
    pub fn update(&mut self, grid: &mut Grid) {
        let (cols, rows) = (grid.cols(), grid.rows());
        assert_eq!(cols * rows, self.memory.shown.len(), "grid and renderer sizes differ");
        let cell_height = self.font.height();
        let scrolled = grid.scrolled().min(rows);
        if scrolled > 0 && self.direct {
            // The screen's picture exists only on the screen, which is never
            // read: every cell is drawn again, into the back buffer.
            self.direct = false;
            self.memory.shown.fill(UNKNOWN);
        }
        let moved = scrolled > 0 && self.moving_is_cheaper(grid, scrolled);
        if moved {
            // The text area is a ring of pixel rows: moving it is a new top.
            self.top = (self.top + scrolled * cell_height) % (rows * cell_height);
            self.memory.shown.copy_within(scrolled * cols.., 0);
            self.memory.shown[(rows - scrolled) * cols..].fill(UNKNOWN);
        }
        // Each row drawn in place goes out at once, while its pixels are
        // still in the CPU's cache.
        if scrolled > 0 {
            for row in 0..rows {
                self.draw_changes(grid, row, Span { start: 0, end: cols as u16 });
                if !moved {
                    self.flush_row(row);
                }
            }
        } else {
            for (row, span) in grid.damaged_rows() {
                self.draw_changes(grid, row, span);
                self.flush_row(row);
            }
            // The cursor's old and new cells, which damage does not cover.
            let (row, col) = grid.cursor();
            self.draw_changes(grid, row, Span { start: col as u16, end: col as u16 + 1 });
            if let Some((row, col)) = self.cursor.filter(|&old| old != (row, col)) {
                self.draw_changes(grid, row, Span { start: col as u16, end: col as u16 + 1 });
            }
        }
        self.cursor = Some(grid.cursor());
        grid.take_damage();
        if moved {
            self.memory.dirty.fill(Span::EMPTY);
            self.flush_rows(0, rows * cell_height);
        } else {
            self.flush_dirty();
        }
    }

    /// Whether moving the picture (a new top for the ring, then copying the
    /// whole screen out, plus drawing what still differs) writes less than
    /// drawing and copying out the cells that differ where they are.
    /// Every fourth row is compared: an estimate is all the choice needs.
    fn moving_is_cheaper(&self, grid: &Grid, scrolled: usize) -> bool {
        const SAMPLE: usize = 4;
        let cols = grid.cols();
        let (mut in_place, mut after_move) = (0, 0);
        for row in (0..grid.rows()).step_by(SAMPLE) {
            for col in 0..cols {
                let cell = effective(grid, row, col);
                in_place += usize::from(self.memory.shown[row * cols + col] != cell);
                let below = (row + scrolled) * cols + col;
                after_move += usize::from(self.memory.shown.get(below).is_none_or(|&shown| shown != cell));
            }
        }
        let screen_bytes = grid.rows() * self.font.height() * self.stride;
        let (in_place, after_move) = (in_place * SAMPLE, after_move * SAMPLE);
        2 * screen_bytes + after_move * DRAW_COST * self.cell_bytes
            < in_place * (DRAW_COST + 1) * self.cell_bytes
    }

    /// Draws the cells of `span` in `row` that differ from what is shown:
    /// first finds each one's glyph-cache slot, then copies them pixel row by
    /// pixel row, so that the back buffer (or the screen) is written in
    /// address order. A cache miss that would evict a slot the batch still
    /// has to copy copies the batch first.
    fn draw_changes(&mut self, grid: &Grid, row: usize, span: Span) {
        const BATCH: usize = 64;
        let end = (span.end as usize).min(grid.cols());
        let mut batch = [(0u16, 0u16); BATCH];
        let mut count = 0;
        for col in span.start as usize..end {
            let cell = effective(grid, row, col);
            if self.memory.shown[row * self.cols + col] == cell {
                continue;
            }
            self.memory.shown[row * self.cols + col] = cell;
            let slot = match self.cached_slot(cell) {
                Ok(slot) => slot,
                Err(victim) => {
                    if batch[..count].iter().any(|&(_, slot)| slot as usize == victim) {
                        self.copy_batch(row, &batch[..count]);
                        count = 0;
                    }
                    self.render_into(victim, cell);
                    victim
                }
            };
            if count == BATCH {
                self.copy_batch(row, &batch[..count]);
                count = 0;
            }
            batch[count] = (col as u16, slot as u16);
            count += 1;
            if !self.direct {
                let dirty = &mut self.memory.dirty[row];
                dirty.start = dirty.start.min(col as u16);
                dirty.end = dirty.end.max(col as u16 + 1);
            }
        }
        self.copy_batch(row, &batch[..count]);
    }

    fn copy_batch(&mut self, row: usize, cells: &[(u16, u16)]) {
        if cells.is_empty() {
            return;
        }
        if !self.direct {
            self.freshen(self.back_row(row * self.font.height()) / self.font.height());
        }
        // A cell row length known at compile time lets each copy be inlined:
        // one instance per font width and pixel size.
        const W16: usize = Font::ALL[0].width();
        const W20: usize = Font::ALL[1].width();
        const W24: usize = Font::ALL[2].width();
        const W32: usize = Font::ALL[3].width();
        const W40: usize = Font::ALL[4].width();
        const W48: usize = Font::ALL[5].width();
        macro_rules! dispatch {
            ($($width:ident),*) => {
                match (self.font.width(), self.format.bytes_per_pixel) {
                    $(
                        ($width, 4) => self.copy_cells::<{ $width * 4 }>(row, cells),
                        ($width, 3) => self.copy_cells::<{ $width * 3 }>(row, cells),
                        ($width, 2) => self.copy_cells::<{ $width * 2 }>(row, cells),
                    )*
                    _ => unreachable!(
                        "fonts are {W16}, {W20}, {W24}, {W32}, {W40} or {W48} pixels wide, pixels 2 to 4 bytes"
                    ),
                }
            };
        }
        dispatch!(W16, W20, W24, W32, W40, W48)
    }

    /// Copies rendered cells `(column, cache slot)` of text row `row` from the
    /// glyph cache into the back buffer, or the screen while drawing is
    /// direct; `LINE` is one pixel row of a cell.
    fn copy_cells<const LINE: usize>(&mut self, row: usize, cells: &[(u16, u16)]) {
        let cell_height = self.font.height();
        // A cell's pixel rows never straddle the ring's end: the top moves in
        // whole cells.
        let (target, first, step) = if self.direct {
            (&mut *self.screen, row * cell_height * self.pitch, self.pitch)
        } else {
            let first = self.back_row(row * cell_height) * self.stride;
            (&mut *self.memory.back, first, self.stride)
        };
        for y in 0..cell_height {
            let line_start = first + y * step;
            for &(col, slot) in cells {
                let from = slot as usize * self.cell_bytes + y * LINE;
                let to = line_start + col as usize * LINE;
                let source: &[u8; LINE] =
                    self.memory.glyphs[from..from + LINE].try_into().expect("LINE bytes");
                let target: &mut [u8; LINE] = (&mut target[to..to + LINE]).try_into().expect("LINE bytes");
                *target = *source;
            }
        }
    }

    /// The cache slot holding `cell` rendered, or on a miss the slot it is
    /// to be rendered into. The cache is 4-way set-associative: a cell can
    /// live in any of the four slots of its set, so a few colliding cells do
    /// not evict each other; a miss replaces the set's ways round robin.
    fn cached_slot(&self, cell: Cell) -> Result<usize, usize> {
        let color = |c: Rgb| (c.r as u64) << 16 | (c.g as u64) << 8 | c.b as u64;
        let key = cell.ch as u64 | (cell.bold as u64) << 21 | color(cell.fg) << 22 | color(cell.bg) << 46;
        // Fibonacci hashing: the top bits of the product mix every key bit.
        let set = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - CACHE_SETS.trailing_zeros())) as usize;
        let mut ways = set * CACHE_WAYS..(set + 1) * CACHE_WAYS;
        match ways.find(|&slot| self.memory.cached[slot] == cell) {
            Some(slot) => Ok(slot),
            None => Err(set * CACHE_WAYS + (self.victim + 1) % CACHE_WAYS),
        }
    }

    /// Renders `cell` into the slot a miss named, which it replaces.
    fn render_into(&mut self, slot: usize, cell: Cell) {
        self.victim = slot % CACHE_WAYS;
        self.memory.cached[slot] = cell;
        if (self.shades.fg, self.shades.bg) != (cell.fg, cell.bg) {
            self.set_shades(cell.fg, cell.bg);
        }
        let ink = self.ink.ink(cell.ch, cell.bold);
        let target = &mut self.memory.glyphs[slot * self.cell_bytes..(slot + 1) * self.cell_bytes];
        match self.format.bytes_per_pixel {
            4 => shade::<4>(target, ink.pixels(), &self.shades.values),
            3 => shade::<3>(target, ink.pixels(), &self.shades.values),
            _ => shade::<2>(target, ink.pixels(), &self.shades.values),
        }
    }

    fn set_shades(&mut self, fg: Rgb, bg: Rgb) {
        let format = self.format;
        self.shades.fg = fg;
        self.shades.bg = bg;
        for (alpha, value) in self.shades.values.iter_mut().enumerate() {
            *value = format.encode(blend(fg, bg, alpha as u8));
        }
    }

    /// Fills back buffer band `band` with the clear colour if it is stale,
    /// before anything is drawn in it.
    fn freshen(&mut self, band: usize) {
        if !self.stale.contains(band) {
            return;
        }
        self.stale.remove(band);
        let bytes = self.font.height() * self.stride;
        fill_row(
            &mut self.memory.back[band * bytes..(band + 1) * bytes],
            self.format.bytes_per_pixel,
            self.cleared,
        );
    }

    /// Copies the drawn columns of every row to the screen.
    fn flush_dirty(&mut self) {
        for row in 0..self.memory.dirty.len() {
            self.flush_row(row);
        }
    }

    /// Copies the drawn columns of text row `row` to the screen.
    fn flush_row(&mut self, row: usize) {
        let span = core::mem::replace(&mut self.memory.dirty[row], Span::EMPTY);
        if span.is_empty() {
            return;
        }
        let line = self.font.width() * self.format.bytes_per_pixel;
        let (start, end) = (span.start as usize * line, span.end as usize * line);
        let cell_height = self.font.height();
        for y in row * cell_height..(row + 1) * cell_height {
            let (from, to) = (self.back_row(y) * self.stride, y * self.pitch);
            self.screen[to + start..to + end].copy_from_slice(&self.memory.back[from + start..from + end]);
        }
    }

    /// Copies pixel rows `start..end` of the text area to the screen (a
    /// stale band's as the clear colour).
    fn flush_rows(&mut self, start: usize, end: usize) {
        let cell_height = self.font.height();
        for y in start..end.min(self.height) {
            let (from, to) = (self.back_row(y) * self.stride, y * self.pitch);
            let target = &mut self.screen[to..to + self.stride];
            if self.stale.contains(from / self.stride / cell_height) {
                fill_row(target, self.format.bytes_per_pixel, self.cleared);
            } else {
                target.copy_from_slice(&self.memory.back[from..from + self.stride]);
            }
        }
    }

    /// Fills the whole screen, margins included, with `color`.
    pub fn clear(&mut self, color: Rgb) {
        self.cleared = self.format.encode(color);
        self.stale = Bands::ALL;
        self.top = 0;
        self.direct = true;
        self.memory.dirty.fill(Span::EMPTY);
        for row in self.screen.chunks_mut(self.pitch) {
            fill_row(&mut row[..self.stride], self.format.bytes_per_pixel, self.cleared);
        }
        // Every cell now shows a blank on `color`, so the first present
        // draws only what differs from that, not the whole screen again.
        self.memory.shown.fill(Cell { bg: color, ..Cell::BLANK });
        self.cursor = None;
    }

    /// The font the renderer draws in.
    pub fn font(&self) -> Font {
        self.font
    }

    /// The back buffer row holding screen pixel row `y`.
    fn back_row(&self, y: usize) -> usize {
        let text_height = self.memory.dirty.len() * self.font.height();
        if y < text_height { (self.top + y) % text_height } else { y }
    }
}

/// Pixels of `BPP` bytes, each the shade of its intensity in `ink`.
fn shade<const BPP: usize>(target: &mut [u8], ink: &[u8], shades: &[u32; 256]) {
    for (pixel, &alpha) in target.chunks_exact_mut(BPP).zip(ink) {
        let pixel: &mut [u8; BPP] = pixel.try_into().expect("BPP bytes");
        *pixel = shades[alpha as usize].to_le_bytes()[..BPP].try_into().expect("BPP bytes");
    }
}

/// Fills `row` (whole pixels of `bpp` bytes) with pixels of `value`, 96
/// bytes a step: four times three 8-byte words, which hold a whole number
/// of pixels of any size and stay in registers. Under emulation every
/// instruction counts, and a 4 MiB clear is tens of thousands of steps: a
/// store per pixel took three to four times the instructions, and 24-byte
/// steps reloading the pattern from memory about twice.
fn fill_row(row: &mut [u8], bpp: usize, value: u32) {
    let pixel = value.to_le_bytes();
    let word = |index: usize| core::array::from_fn(|byte| pixel[(index * 8 + byte) % bpp]);
    let (a, b, c): ([u8; 8], [u8; 8], [u8; 8]) = (word(0), word(1), word(2));
    let (steps, rest) = row.as_chunks_mut::<96>();
    for step in steps {
        let (words, _) = step.as_chunks_mut::<8>();
        [words[0], words[1], words[2], words[3], words[4], words[5]] = [a, b, c, a, b, c];
        [words[6], words[7], words[8], words[9], words[10], words[11]] = [a, b, c, a, b, c];
    }
    for (index, byte) in rest.iter_mut().enumerate() {
        *byte = pixel[index % bpp];
    }
}

/// The cell as it should look: what the grid's view shows there, inverted
/// under the cursor.
#[inline]
fn effective(grid: &Grid, row: usize, col: usize) -> Cell {
    let cell = grid.shown_cell(row, col);
    if grid.cursor() == (row, col) && grid.cursor_shown() {
        Cell { fg: cell.bg, bg: cell.fg, ..cell }
    } else {
        cell
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::console::color::{DEFAULT_BG, DEFAULT_FG, PALETTE};
    use crate::console::grid::tests::grid;
    use crate::console::terminal::Terminal;

    const XRGB: (ColorMask, ColorMask, ColorMask) =
        (ColorMask { size: 8, shift: 16 }, ColorMask { size: 8, shift: 8 }, ColorMask { size: 8, shift: 0 });

    fn format(bpp: u16) -> PixelFormat {
        match bpp {
            16 => PixelFormat::new(
                16,
                ColorMask { size: 5, shift: 11 },
                ColorMask { size: 6, shift: 5 },
                ColorMask { size: 5, shift: 0 },
            )
            .unwrap(),
            _ => PixelFormat::new(bpp, XRGB.0, XRGB.1, XRGB.2).unwrap(),
        }
    }

    /// The front buffer a test renderer draws into.
    struct Front {
        bytes: *const u8,
        pitch: usize,
        format: PixelFormat,
        font: Font,
        glyphs: Glyphs<'static>,
    }

    impl Front {
        fn pixel(&self, x: usize, y: usize) -> u32 {
            let bpp = self.format.bytes_per_pixel();
            // SAFETY: tests read the leaked front buffer inside its bounds
            // while the renderer is not running.
            let bytes = unsafe { core::slice::from_raw_parts(self.bytes.add(y * self.pitch + x * bpp), bpp) };
            let mut value = [0u8; 4];
            value[..bpp].copy_from_slice(bytes);
            u32::from_le_bytes(value)
        }

        /// Every pixel of the cell is the glyph's intensity blended as the
        /// font says.
        fn assert_cell(&mut self, (row, col): (usize, usize), ch: char, fg: Rgb, bg: Rgb) {
            let font = self.font;
            let glyph = self.glyphs.glyph(ch, false).to_vec();
            for y in 0..font.height() {
                for x in 0..font.width() {
                    let alpha = glyph[y * font.width() + x];
                    let expected = self.format.encode(blend(fg, bg, alpha));
                    let actual = self.pixel(col * font.width() + x, row * font.height() + y);
                    assert_eq!(actual, expected, "cell ({row},{col}) '{ch}' pixel ({x},{y})");
                }
            }
        }
    }

    /// `font`'s glyphs, unpacked into leaked memory.
    pub fn leaked_glyphs(font: Font) -> Glyphs<'static> {
        font.glyphs(Box::leak(vec![0; font.glyphs_bytes()].into_boxed_slice()))
    }

    /// Renderer memory from leaked vectors, for tests and benchmarks.
    pub fn leaked_memory(mode: Mode, font: Font) -> Memory<'static> {
        let needs = Renderer::needs(mode, font);
        Memory {
            back: Box::leak(vec![0; needs.back].into_boxed_slice()),
            shown: Box::leak(vec![Cell::BLANK; needs.cells].into_boxed_slice()),
            dirty: Box::leak(vec![Span::EMPTY; needs.rows].into_boxed_slice()),
            cached: Box::leak(vec![Cell::BLANK; needs.cache_slots].into_boxed_slice()),
            glyphs: Box::leak(vec![0; needs.glyphs].into_boxed_slice()),
        }
    }

    /// A renderer over leaked memory with a padded pitch, like real hardware.
    fn renderer(bpp: u16, width: usize, height: usize) -> (Renderer<'static>, Front) {
        renderer_in(Font::SMALLEST, bpp, width, height)
    }

    fn renderer_in(font: Font, bpp: u16, width: usize, height: usize) -> (Renderer<'static>, Front) {
        let format = format(bpp);
        let pitch = width * format.bytes_per_pixel() + 64;
        let mode = Mode { width, height, pitch, format };
        let front = Box::leak(vec![0u8; mode.bytes()].into_boxed_slice());
        let bytes = front.as_ptr();
        let renderer = Renderer::new(mode, leaked_glyphs(font), leaked_memory(mode, font), front);
        (renderer, Front { bytes, pitch, format, font, glyphs: leaked_glyphs(font) })
    }

    #[test]
    fn encodes_with_the_masks() {
        assert_eq!(format(32).encode(Rgb::new(0x12, 0x34, 0x56)), 0x123456);
        assert_eq!(format(16).encode(Rgb::new(0xff, 0, 0)), 0xf800);
        assert_eq!(format(16).encode(Rgb::new(0, 0xff, 0)), 0x07e0);
        let bgr = PixelFormat::new(32, XRGB.2, XRGB.1, XRGB.0).unwrap();
        assert_eq!(bgr.encode(Rgb::new(0x12, 0x34, 0x56)), 0x563412);
    }

    #[test]
    fn rejects_formats_it_cannot_draw() {
        assert!(PixelFormat::new(8, XRGB.0, XRGB.1, XRGB.2).is_err());
        assert!(PixelFormat::new(16, XRGB.0, XRGB.1, XRGB.2).is_err());
        let empty = ColorMask { size: 0, shift: 0 };
        assert!(PixelFormat::new(32, empty, XRGB.1, XRGB.2).is_err());
        let overlapping = ColorMask { size: 8, shift: 12 };
        assert!(PixelFormat::new(32, XRGB.0, overlapping, XRGB.2).is_err());
        let huge = ColorMask { size: 255, shift: 255 };
        assert!(PixelFormat::new(32, huge, XRGB.1, XRGB.2).is_err());
        assert!(PixelFormat::new(32, XRGB.0, XRGB.1, ColorMask { size: 8, shift: 250 }).is_err());
    }

    #[test]
    fn the_back_buffer_is_left_alone_until_something_scrolls() {
        let (width, height) = (7 * 10, 16 * 4);
        let (mut r, mut front) = renderer(32, width, height);
        r.memory.back.fill(0xa5);
        let untouched = |r: &Renderer, range: core::ops::Range<usize>| {
            r.memory.back[range].iter().all(|&byte| byte == 0xa5)
        };
        // Blank cells in the default colours look like this clear.
        r.clear(DEFAULT_BG);
        let mut t = Terminal::new(grid(10, 4));
        t.write(b"\x1b[3;1Hab");
        r.update(t.grid_mut());
        assert!(
            untouched(&r, 0..r.memory.back.len()),
            "drawn without a scroll, yet the back buffer was written"
        );
        front.assert_cell((2, 0), 'a', DEFAULT_FG, DEFAULT_BG);
        front.assert_cell((2, 1), 'b', DEFAULT_FG, DEFAULT_BG);
        let bg = front.format.encode(DEFAULT_BG);
        // Rows 0, 1 and 3 were never drawn: the screen still shows the
        // clear, margins included.
        for y in (0..32).chain(48..64) {
            assert!((0..width).all(|x| front.pixel(x, y) == bg), "pixel row {y}");
        }
        // The first scroll draws every row into the back buffer (its bands
        // filled first), then shows it: the text moved up a row.
        t.write(b"\n\ncd");
        r.update(t.grid_mut());
        let band = 16 * width * 4;
        assert!((0..4).all(|row| !untouched(&r, row * band..(row + 1) * band)), "a band was not drawn in");
        front.assert_cell((1, 0), 'a', DEFAULT_FG, DEFAULT_BG);
        front.assert_cell((1, 1), 'b', DEFAULT_FG, DEFAULT_BG);
        front.assert_cell((3, 0), 'c', DEFAULT_FG, DEFAULT_BG);
        front.assert_cell((3, 1), 'd', DEFAULT_FG, DEFAULT_BG);
        front.assert_cell((2, 0), ' ', DEFAULT_FG, DEFAULT_BG);
        // A clear draws straight to the screen again until the next scroll.
        r.memory.back.fill(0xa5);
        r.clear(DEFAULT_BG);
        t.write(b"\x1b[2J\x1b[Hef");
        r.update(t.grid_mut());
        assert!(untouched(&r, 0..r.memory.back.len()), "the back buffer was written after a clear");
        front.assert_cell((0, 0), 'e', DEFAULT_FG, DEFAULT_BG);
        front.assert_cell((0, 1), 'f', DEFAULT_FG, DEFAULT_BG);
    }

    #[test]
    fn fills_repeat_the_pixel_whatever_the_row_length() {
        for bpp in [2, 3, 4] {
            for pixels in 0..100 {
                let mut row = vec![0xa5; pixels * bpp];
                fill_row(&mut row, bpp, 0x0012_3456);
                let expected: Vec<u8> =
                    (0..pixels).flat_map(|_| 0x0012_3456u32.to_le_bytes()[..bpp].to_vec()).collect();
                assert_eq!(row, expected, "{pixels} pixels of {bpp} bytes");
            }
        }
    }

    #[test]
    fn a_cleared_screen_shows_blank_cells_and_margins_in_every_depth() {
        for bpp in [16, 24, 32] {
            let (mut r, mut front) = renderer(bpp, 100, 40);
            let (cols, rows) = Font::SMALLEST.grid(100, 40);
            r.clear(PALETTE[4]);
            let bg = front.format.encode(PALETTE[4]);
            assert!((0..40).all(|y| (0..100).all(|x| front.pixel(x, y) == bg)), "{bpp} bpp: not all cleared");
            // Blank cells in the default colours differ from what the clear
            // left, and are drawn; the cursor is drawn inverted.
            let mut t = Terminal::new(grid(cols, rows));
            r.update(t.grid_mut());
            front.assert_cell((rows - 1, cols - 1), ' ', DEFAULT_FG, DEFAULT_BG);
            front.assert_cell((0, 0), ' ', DEFAULT_BG, DEFAULT_FG);
            // Cleared in the default background, blank cells need no drawing
            // and look as if drawn.
            r.clear(DEFAULT_BG);
            r.update(t.grid_mut());
            front.assert_cell((rows - 1, cols - 1), ' ', DEFAULT_FG, DEFAULT_BG);
        }
    }

    #[test]
    fn glyphs_match_the_font_rasters_in_every_depth() {
        for bpp in [16, 24, 32] {
            let (mut r, mut front) = renderer(bpp, 100, 40);
            let (cols, rows) = Font::SMALLEST.grid(100, 40);
            let mut t = Terminal::new(grid(cols, rows));
            t.write("Ag\x1b[31;42mé\x1b[0m\nq".as_bytes());
            r.update(t.grid_mut());
            front.assert_cell((0, 0), 'A', DEFAULT_FG, DEFAULT_BG);
            front.assert_cell((0, 1), 'g', DEFAULT_FG, DEFAULT_BG);
            front.assert_cell((0, 2), 'é', PALETTE[1], PALETTE[2]);
            front.assert_cell((1, 0), 'q', DEFAULT_FG, DEFAULT_BG);
            // The cursor is drawn inverted after the last character.
            front.assert_cell((1, 1), ' ', DEFAULT_BG, DEFAULT_FG);
        }
    }

    #[test]
    fn line_drawing_is_drawn_edge_to_edge() {
        let (mut r, front) = renderer(32, 7 * 3, 16);
        let mut t = Terminal::new(grid(3, 1));
        t.write(b"\x1b(0qq");
        r.update(t.grid_mut());
        for x in 0..2 * front.font.width() {
            assert_eq!(front.pixel(x, front.font.height() / 2), front.format.encode(DEFAULT_FG), "x {x}");
            assert_eq!(front.pixel(x, 0), front.format.encode(DEFAULT_BG), "x {x}");
        }
    }

    #[test]
    fn scrolling_moves_pixels_and_draws_the_new_line() {
        let (mut r, mut front) = renderer(32, 7 * 6, 16 * 3);
        let mut t = Terminal::new(grid(6, 3));
        t.write(b"one\ntwo\nthree");
        r.update(t.grid_mut());
        t.write(b"\nfour\nfive");
        r.update(t.grid_mut());
        for (row, word) in ["three", "four", "five"].iter().enumerate() {
            for (col, ch) in word.chars().enumerate() {
                front.assert_cell((row, col), ch, DEFAULT_FG, DEFAULT_BG);
            }
        }
    }

    #[test]
    fn scrolling_lines_that_share_nothing_is_drawn_correctly() {
        // Every cell changes on each scroll, so the renderer moves the picture.
        let (mut r, mut front) = renderer(32, 7 * 8, 16 * 4);
        let mut t = Terminal::new(grid(8, 4));
        let lines = ["AAAAAAAA", "bbbbbbbb", "CCCCCCCC", "dddddddd", "EEEEEEEE", "ffffffff"];
        for (i, line) in lines.iter().enumerate() {
            t.write(line.as_bytes());
            if i + 1 < lines.len() {
                t.write(b"\n");
            }
            r.update(t.grid_mut());
        }
        for (row, line) in lines[2..].iter().enumerate() {
            for (col, ch) in line.chars().enumerate().take(7) {
                front.assert_cell((row, col), ch, DEFAULT_FG, DEFAULT_BG);
            }
        }
        // The cursor stays on the last column until the next character.
        front.assert_cell((3, 7), 'f', DEFAULT_BG, DEFAULT_FG);
    }

    #[test]
    fn a_scrolled_back_view_shows_the_history_and_no_cursor() {
        let (mut r, mut front) = renderer(32, 7 * 20, 16 * 2);
        let cells = Box::leak(Box::new_uninit_slice(20 * 10));
        let mut t = Terminal::new(grid(20, 2).with_history(cells));
        t.write(b"one\ntwo\nthree");
        r.update(t.grid_mut());
        t.grid_mut().scroll_view(1);
        r.update(t.grid_mut());
        for (col, ch) in "one".chars().enumerate() {
            front.assert_cell((0, col), ch, DEFAULT_FG, DEFAULT_BG);
        }
        for (col, ch) in "two".chars().enumerate() {
            front.assert_cell((1, col), ch, DEFAULT_FG, DEFAULT_BG);
        }
        // The marker, inverted, at the top right; no cursor after "two".
        front.assert_cell((0, 18), '1', DEFAULT_BG, DEFAULT_FG);
        front.assert_cell((1, 3), ' ', DEFAULT_FG, DEFAULT_BG);
        t.grid_mut().scroll_view(-1);
        r.update(t.grid_mut());
        front.assert_cell((0, 0), 't', DEFAULT_FG, DEFAULT_BG);
        front.assert_cell((0, 18), ' ', DEFAULT_FG, DEFAULT_BG);
        front.assert_cell((1, 5), ' ', DEFAULT_BG, DEFAULT_FG);
    }

    #[test]
    fn only_changed_cells_are_copied_to_the_screen() {
        let (mut r, mut front) = renderer(32, 70, 32);
        let mut t = Terminal::new(grid(10, 2));
        r.update(t.grid_mut());
        // Scribble on the screen: an update must leave unchanged cells alone.
        // SAFETY: the leaked front buffer is in bounds and not in use.
        unsafe { (front.bytes as *mut u8).add(front.pitch * 20 + 4 * 60).write(0xab) };
        t.write(b"x");
        r.update(t.grid_mut());
        assert_eq!(front.pixel(60, 20) & 0xff, 0xab);
        front.assert_cell((0, 0), 'x', DEFAULT_FG, DEFAULT_BG);
    }

    #[test]
    fn every_font_size_draws_its_glyphs() {
        for font in Font::ALL {
            for bpp in [16, 24, 32] {
                let (mut r, mut front) = renderer_in(font, bpp, font.width() * 5 + 3, font.height() * 2 + 1);
                let mut t = Terminal::new(grid(5, 2));
                t.write(b"Wg\n\x1b[31mq");
                r.update(t.grid_mut());
                front.assert_cell((0, 0), 'W', DEFAULT_FG, DEFAULT_BG);
                front.assert_cell((0, 1), 'g', DEFAULT_FG, DEFAULT_BG);
                front.assert_cell((1, 0), 'q', PALETTE[1], DEFAULT_BG);
            }
        }
    }

    const RGB565: (ColorMask, ColorMask, ColorMask) =
        (ColorMask { size: 5, shift: 11 }, ColorMask { size: 6, shift: 5 }, ColorMask { size: 5, shift: 0 });

    #[test]
    fn degenerate_framebuffers_are_refused_with_their_reason() {
        let mode = |width, height, pitch, bpp, masks| Mode::new((width, height, pitch), bpp, masks);
        assert_eq!(mode(0, 0, 0, 32, XRGB), Err(Unusable::TooSmall { width: 0, height: 0 }));
        assert_eq!(mode(0, 768, 4096, 32, XRGB), Err(Unusable::TooSmall { width: 0, height: 768 }));
        assert_eq!(mode(1024, 0, 4096, 32, XRGB), Err(Unusable::TooSmall { width: 1024, height: 0 }));
        assert_eq!(mode(6, 16, 24, 32, XRGB), Err(Unusable::TooSmall { width: 6, height: 16 }));
        assert_eq!(mode(7, 15, 28, 32, XRGB), Err(Unusable::TooSmall { width: 7, height: 15 }));
        assert_eq!(mode(1024, 768, 0, 32, XRGB), Err(Unusable::Pitch { pitch: 0, row_bytes: 4096 }));
        assert_eq!(mode(1024, 768, 3072, 32, XRGB), Err(Unusable::Pitch { pitch: 3072, row_bytes: 4096 }));
        assert_eq!(mode(1024, 768, 2047, 16, RGB565), Err(Unusable::Pitch { pitch: 2047, row_bytes: 2048 }));
        assert_eq!(
            mode(u32::MAX, u32::MAX, u32::MAX, 32, XRGB),
            Err(Unusable::TooLarge { width: u32::MAX, height: u32::MAX })
        );
        for bpp in [0, 1, 8, 15, 18, 30, 31, 33, 64, u16::MAX] {
            assert_eq!(mode(1024, 768, 8192, bpp, XRGB), Err(Unusable::Format(UnsupportedFormat { bpp })));
        }
        assert!(matches!(mode(1024, 768, 4096, 16, XRGB), Err(Unusable::Format(_))));
        let blue_on_red = (XRGB.0, XRGB.1, XRGB.0);
        assert!(matches!(mode(1024, 768, 4096, 32, blue_on_red), Err(Unusable::Format(_))));
        // Every reason reads as a sentence for the log.
        let reason = mode(1024, 768, 3072, 32, XRGB).unwrap_err().to_string();
        assert_eq!(reason, "pitch 3072 is shorter than a row of pixels (4096 bytes)");
    }

    #[test]
    fn the_smallest_and_oddest_usable_framebuffers_are_drawn_on() {
        // One cell, a pitch with no padding, odd sizes, 24 bpp's 3-byte
        // pixels, and the largest side: each draws and scrolls.
        let cases = [
            (7, 16, 28, 32, XRGB),
            (7, 16, 21, 24, XRGB),
            (7, 16, 14, 16, RGB565),
            (13, 31, 41, 24, XRGB),
            (641, 17, 641 * 2 + 1, 16, RGB565),
            (MAX_SIDE, 16, MAX_SIDE * 4, 32, XRGB),
        ];
        for (width, height, pitch, bpp, masks) in cases {
            let mode = Mode::new((width, height, pitch), bpp, masks).expect("usable");
            let font = Font::for_screen(mode.width, mode.height);
            let (cols, rows) = font.grid(mode.width, mode.height);
            let screen = Box::leak(vec![0u8; mode.bytes()].into_boxed_slice());
            let mut r = Renderer::new(mode, leaked_glyphs(font), leaked_memory(mode, font), screen);
            r.clear(DEFAULT_BG);
            let mut t = Terminal::new(grid(cols, rows));
            t.write(b"text that wraps and scrolls\n\x1b[7mmore\x1b[0m\n\n");
            r.update(t.grid_mut());
        }
    }
}
