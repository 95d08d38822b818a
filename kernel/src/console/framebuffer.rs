//! The framebuffer console's renderer: draws a [`Grid`] with the anti-aliased
//! Noto Sans Mono glyphs into a back buffer in RAM and copies to the screen
//! only the rows that changed.
//!
//! Video memory is never read: on real machines reading it is slow (it is
//! uncached or write-combined), so scrolling moves pixels in the back buffer
//! and then copies them out once.

use super::color::Rgb;
use super::grid::{Grid, Span};
use crate::boot::ColorMask;
use core::fmt;
use noto_sans_mono_bitmap::{
    FontWeight, RasterHeight, RasterizedChar, get_raster, get_raster_width,
};

const HEIGHT: RasterHeight = RasterHeight::Size16;
/// Cell size in pixels.
pub const CELL_WIDTH: usize = get_raster_width(FontWeight::Regular, HEIGHT);
pub const CELL_HEIGHT: usize = HEIGHT.val();

/// The glyph for `ch`, or the replacement character's when the font lacks it.
pub fn glyph(ch: char, bold: bool) -> RasterizedChar {
    let weight = if bold {
        FontWeight::Bold
    } else {
        FontWeight::Regular
    };
    get_raster(ch, weight, HEIGHT)
        .or_else(|| get_raster('\u{fffd}', weight, HEIGHT))
        .expect("the font has U+FFFD")
}

/// `alpha` of the way from `bg` to `fg`, per channel: how an anti-aliased
/// glyph pixel of that intensity looks.
pub fn blend(fg: Rgb, bg: Rgb, alpha: u8) -> Rgb {
    let mix = |f: u8, b: u8| {
        ((f as u32 * alpha as u32 + b as u32 * (255 - alpha as u32) + 127) / 255) as u8
    };
    Rgb::new(mix(fg.r, bg.r), mix(fg.g, bg.g), mix(fg.b, bg.b))
}

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
            "unsupported pixel format ({} bits per pixel, or colour masks outside the pixel)",
            self.bpp
        )
    }
}

impl PixelFormat {
    /// Accepts 16, 24 and 32 bpp with channel masks that fit in the pixel.
    pub fn new(
        bpp: u16,
        red: ColorMask,
        green: ColorMask,
        blue: ColorMask,
    ) -> Result<Self, UnsupportedFormat> {
        let fits = |m: ColorMask| m.size > 0 && m.size as u16 + m.shift as u16 <= bpp;
        if matches!(bpp, 16 | 24 | 32) && fits(red) && fits(green) && fits(blue) {
            Ok(Self {
                bytes_per_pixel: bpp as usize / 8,
                red,
                green,
                blue,
            })
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
            let scaled = if mask.size >= 8 {
                value << (mask.size - 8)
            } else {
                value >> (8 - mask.size)
            };
            scaled << mask.shift
        };
        channel(color.r, self.red) | channel(color.g, self.green) | channel(color.b, self.blue)
    }
}

/// The visible framebuffer: write-only memory of `height` rows of `pitch`
/// bytes.
pub struct Screen<'a> {
    pub bytes: &'a mut [u8],
    pub pitch: usize,
}

/// Encoded pixel values for the 256 intensities of one colour pair.
struct Shades {
    fg: Rgb,
    bg: Rgb,
    values: [u32; 256],
}

/// Colour pairs in use; a screen seldom has more at once.
const SHADE_SLOTS: usize = 8;

pub struct Renderer<'a> {
    format: PixelFormat,
    width: usize,
    height: usize,
    back: &'a mut [u8],
    stride: usize,
    screen: Screen<'a>,
    shades: [Shades; SHADE_SLOTS],
    next_slot: usize,
    /// Where the cursor was last drawn.
    cursor: Option<(usize, usize)>,
}

impl<'a> Renderer<'a> {
    /// Bytes of back buffer needed for a `width` x `height` screen.
    pub fn back_buffer_len(format: PixelFormat, width: usize, height: usize) -> usize {
        width * height * format.bytes_per_pixel
    }

    /// Text grid size for a `width` x `height` screen.
    pub fn grid_size(width: usize, height: usize) -> (usize, usize) {
        (width / CELL_WIDTH, height / CELL_HEIGHT)
    }

    /// `back` must hold [`Renderer::back_buffer_len`] bytes; `screen` at least
    /// `height` rows of `pitch` bytes.
    pub fn new(
        format: PixelFormat,
        width: usize,
        height: usize,
        back: &'a mut [u8],
        screen: Screen<'a>,
    ) -> Self {
        let stride = width * format.bytes_per_pixel;
        assert!(back.len() >= stride * height, "back buffer too small");
        assert!(
            screen.pitch >= stride && screen.bytes.len() >= screen.pitch * (height - 1) + stride
        );
        let empty = || Shades {
            fg: Rgb::new(1, 1, 1),
            bg: Rgb::new(1, 1, 1),
            values: [0; 256],
        };
        let mut renderer = Self {
            format,
            width,
            height,
            back,
            stride,
            screen,
            shades: core::array::from_fn(|_| empty()),
            next_slot: 0,
            cursor: None,
        };
        for slot in 0..SHADE_SLOTS {
            renderer.fill_shades(slot, Rgb::new(0, 0, 0), Rgb::new(0, 0, 0));
        }
        renderer
    }

    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// Brings the screen up to date with `grid` and forgets the grid's damage.
    pub fn update(&mut self, grid: &mut Grid) {
        let rows = grid.rows();
        let scrolled = grid.scrolled();
        let text_height = rows * CELL_HEIGHT;
        let old_cursor = self
            .cursor
            .take()
            .and_then(|(row, col)| Some((row.checked_sub(scrolled)?, col)));
        if scrolled >= rows {
            grid.damage_all();
        } else if scrolled > 0 {
            let shift = scrolled * CELL_HEIGHT * self.stride;
            self.back.copy_within(shift..text_height * self.stride, 0);
        }
        let full_flush = scrolled > 0;
        for (row, span) in grid.damaged_rows() {
            self.draw_span(grid, row, span);
            if !full_flush {
                self.flush_span(row, span);
            }
        }
        let cursor = grid.cursor();
        if let Some((row, col)) = old_cursor.filter(|&old| old != cursor) {
            let span = Span {
                start: col as u16,
                end: col as u16 + 1,
            };
            self.draw_span(grid, row, span);
            self.flush_span(row, span);
        }
        self.draw_cell(grid, cursor.0, cursor.1, true);
        self.cursor = Some(cursor);
        grid.take_damage();
        if full_flush {
            self.flush_rows(0, text_height);
        } else {
            let span = Span {
                start: cursor.1 as u16,
                end: cursor.1 as u16 + 1,
            };
            self.flush_span(cursor.0, span);
        }
    }

    fn draw_span(&mut self, grid: &Grid, row: usize, span: Span) {
        for col in span.start as usize..(span.end as usize).min(grid.cols()) {
            self.draw_cell(grid, row, col, false);
        }
    }

    /// Draws one cell into the back buffer; the cursor cell is drawn inverted.
    fn draw_cell(&mut self, grid: &Grid, row: usize, col: usize, inverted: bool) {
        let cell = grid.cell(row, col);
        let (fg, bg) = if inverted {
            (cell.bg, cell.fg)
        } else {
            (cell.fg, cell.bg)
        };
        let slot = self.shades_for(fg, bg);
        let glyph = glyph(cell.ch, cell.bold);
        let bpp = self.format.bytes_per_pixel;
        let x = col * CELL_WIDTH * bpp;
        let values = &self.shades[slot].values;
        for (y, intensities) in glyph.pixels().chunks_exact(glyph.width()).enumerate() {
            let start = (row * CELL_HEIGHT + y) * self.stride + x;
            let line = &mut self.back[start..start + CELL_WIDTH * bpp];
            match bpp {
                4 => {
                    for (pixel, &alpha) in line.chunks_exact_mut(4).zip(intensities) {
                        pixel.copy_from_slice(&values[alpha as usize].to_le_bytes());
                    }
                }
                3 => {
                    for (pixel, &alpha) in line.chunks_exact_mut(3).zip(intensities) {
                        pixel.copy_from_slice(&values[alpha as usize].to_le_bytes()[..3]);
                    }
                }
                _ => {
                    for (pixel, &alpha) in line.chunks_exact_mut(2).zip(intensities) {
                        pixel.copy_from_slice(&values[alpha as usize].to_le_bytes()[..2]);
                    }
                }
            }
        }
    }

    /// The shade table slot for a colour pair, computing it on a miss.
    fn shades_for(&mut self, fg: Rgb, bg: Rgb) -> usize {
        if let Some(slot) = self.shades.iter().position(|s| s.fg == fg && s.bg == bg) {
            return slot;
        }
        let slot = self.next_slot;
        self.next_slot = (slot + 1) % SHADE_SLOTS;
        self.fill_shades(slot, fg, bg);
        slot
    }

    fn fill_shades(&mut self, slot: usize, fg: Rgb, bg: Rgb) {
        let format = self.format;
        let shades = &mut self.shades[slot];
        shades.fg = fg;
        shades.bg = bg;
        for (alpha, value) in shades.values.iter_mut().enumerate() {
            *value = format.encode(blend(fg, bg, alpha as u8));
        }
    }

    /// Copies the changed columns of one text row to the screen.
    fn flush_span(&mut self, row: usize, span: Span) {
        let bpp = self.format.bytes_per_pixel;
        let start = span.start as usize * CELL_WIDTH * bpp;
        let end = (span.end as usize * CELL_WIDTH * bpp).min(self.stride);
        for y in row * CELL_HEIGHT..(row + 1) * CELL_HEIGHT {
            let from = y * self.stride;
            let to = y * self.screen.pitch;
            self.screen.bytes[to + start..to + end]
                .copy_from_slice(&self.back[from + start..from + end]);
        }
    }

    /// Copies pixel rows `start..end` to the screen.
    fn flush_rows(&mut self, start: usize, end: usize) {
        for y in start..end.min(self.height) {
            let from = y * self.stride;
            let to = y * self.screen.pitch;
            self.screen.bytes[to..to + self.stride]
                .copy_from_slice(&self.back[from..from + self.stride]);
        }
    }

    /// Fills the whole screen, margins included, with `color`.
    pub fn clear(&mut self, color: Rgb) {
        let value = self.format.encode(color).to_le_bytes();
        let bpp = self.format.bytes_per_pixel;
        for pixel in self.back[..self.stride * self.height].chunks_exact_mut(bpp) {
            pixel.copy_from_slice(&value[..bpp]);
        }
        self.flush_rows(0, self.height);
        self.cursor = None;
    }

    pub fn width(&self) -> usize {
        self.width
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::color::{DEFAULT_BG, DEFAULT_FG, PALETTE};
    use crate::console::grid::tests::grid;
    use crate::console::terminal::Terminal;

    const XRGB: (ColorMask, ColorMask, ColorMask) = (
        ColorMask { size: 8, shift: 16 },
        ColorMask { size: 8, shift: 8 },
        ColorMask { size: 8, shift: 0 },
    );

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
    }

    impl Front {
        fn pixel(&self, x: usize, y: usize) -> u32 {
            let bpp = self.format.bytes_per_pixel();
            // SAFETY: tests read the leaked front buffer inside its bounds
            // while the renderer is not running.
            let bytes = unsafe {
                core::slice::from_raw_parts(self.bytes.add(y * self.pitch + x * bpp), bpp)
            };
            let mut value = [0u8; 4];
            value[..bpp].copy_from_slice(bytes);
            u32::from_le_bytes(value)
        }

        /// Every pixel of the cell is the glyph's intensity blended as the
        /// font says.
        fn assert_cell(&self, (row, col): (usize, usize), ch: char, fg: Rgb, bg: Rgb) {
            let glyph = glyph(ch, false);
            for y in 0..CELL_HEIGHT {
                for x in 0..CELL_WIDTH {
                    let alpha = glyph.pixels()[y * glyph.width() + x];
                    let expected = self.format.encode(blend(fg, bg, alpha));
                    let actual = self.pixel(col * CELL_WIDTH + x, row * CELL_HEIGHT + y);
                    assert_eq!(
                        actual, expected,
                        "cell ({row},{col}) '{ch}' pixel ({x},{y})"
                    );
                }
            }
        }
    }

    /// A renderer over leaked memory with a padded pitch, like real hardware.
    fn renderer(bpp: u16, width: usize, height: usize) -> (Renderer<'static>, Front) {
        let format = format(bpp);
        let pitch = width * format.bytes_per_pixel() + 64;
        let back = Box::leak(
            vec![0u8; Renderer::back_buffer_len(format, width, height)].into_boxed_slice(),
        );
        let front = Box::leak(vec![0u8; pitch * height].into_boxed_slice());
        let bytes = front.as_ptr();
        let renderer = Renderer::new(
            format,
            width,
            height,
            back,
            Screen {
                bytes: front,
                pitch,
            },
        );
        (
            renderer,
            Front {
                bytes,
                pitch,
                format,
            },
        )
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
    }

    #[test]
    fn blending_spans_background_to_foreground() {
        let (fg, bg) = (Rgb::new(200, 100, 0), Rgb::new(0, 50, 100));
        assert_eq!(blend(fg, bg, 0), bg);
        assert_eq!(blend(fg, bg, 255), fg);
        assert_eq!(blend(fg, bg, 128), Rgb::new(100, 75, 50));
    }

    #[test]
    fn glyphs_match_the_font_rasters_in_every_depth() {
        for bpp in [16, 24, 32] {
            let (mut r, front) = renderer(bpp, 100, 40);
            let (cols, rows) = Renderer::grid_size(100, 40);
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
    fn missing_characters_show_the_replacement_glyph() {
        assert_eq!(
            glyph('\u{4e2d}', false).pixels(),
            glyph('\u{fffd}', false).pixels()
        );
    }

    #[test]
    fn scrolling_moves_pixels_and_draws_the_new_line() {
        let (mut r, front) = renderer(32, 7 * 6, 16 * 3);
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
    fn only_changed_cells_are_copied_to_the_screen() {
        let (mut r, front) = renderer(32, 70, 32);
        let mut t = Terminal::new(grid(10, 2));
        r.update(t.grid_mut());
        // Scribble on the screen: an update must leave unchanged cells alone.
        // SAFETY: the leaked front buffer is in bounds and not in use.
        unsafe {
            (front.bytes as *mut u8)
                .add(front.pitch * 20 + 4 * 60)
                .write(0xab)
        };
        t.write(b"x");
        r.update(t.grid_mut());
        assert_eq!(front.pixel(60, 20) & 0xff, 0xab);
        front.assert_cell((0, 0), 'x', DEFAULT_FG, DEFAULT_BG);
    }
}
