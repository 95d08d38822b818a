//! The VGA text console: a [`Grid`] shown through the 80x25 character buffer
//! ([`vga::TextBuffer`]), for BIOS machines without a framebuffer or booted
//! with `console=vga`.
//!
//! The kernel loads its own font: the same Noto glyphs as the framebuffer
//! console, reduced to 8x16 bitmaps, laid out as Latin-1 (codes 0x20-0x7e and
//! 0xa0-0xff are those characters; 0x7f is the replacement glyph), so text
//! maps to codes without a code-page table. Codes from 0x80 on hold the
//! line-drawing characters of DEC Special Graphics ([`charset::DRAWN`]).

use super::charset;
use super::color::{self, PALETTE};
use super::font::Glyphs;
use super::grid::{Cell, Grid};
use crate::drivers::vga::{self, TextBuffer};

/// The code shown for characters outside the font.
const REPLACEMENT: u8 = 0x7f;

/// VGA attribute colour `i` is ANSI colour `VGA_TO_ANSI[i]` (VGA counts blue
/// first, ANSI red first).
const VGA_TO_ANSI: [u8; 8] = [0, 4, 2, 6, 1, 5, 3, 7];

/// The font code for `ch`.
pub fn code(ch: char) -> u8 {
    match ch as u32 {
        c @ (0x20..=0x7e | 0xa0..=0xff) => c as u8,
        _ => charset::DRAWN.iter().position(|&drawn| drawn == ch).map_or(REPLACEMENT, |i| 0x80 + i as u8),
    }
}

fn vga_color(rgb: color::Rgb) -> u8 {
    let ansi = color::nearest_ansi(rgb);
    let base = VGA_TO_ANSI.iter().position(|&a| a == ansi % 8).unwrap_or(7) as u8;
    base | (ansi & 8)
}

/// The 16-bit buffer entry for a cell: code in the low byte, attribute
/// (background in the high nibble, foreground in the low) in the high byte.
pub fn entry(cell: Cell) -> u16 {
    let attribute = vga_color(cell.fg) | vga_color(cell.bg) << 4;
    (attribute as u16) << 8 | code(cell.ch) as u16
}

/// The font for [`code`]'s layout, from the framebuffer console's glyphs in
/// its smallest size, `glyphs`: each 7-pixel-wide anti-aliased row becomes
/// the top 7 bits of a byte.
pub fn font(glyphs: &mut Glyphs) -> [[u8; 16]; 256] {
    const INK: u8 = 96;
    let pack = |pixels: &[u8]| {
        pixels
            .iter()
            .take(8)
            .enumerate()
            .filter(|&(_, &alpha)| alpha >= INK)
            .fold(0, |bits, (x, _)| bits | 0x80 >> x)
    };
    let mut font = [[0u8; 16]; 256];
    for (code, bitmap) in font.iter_mut().enumerate() {
        let ch = match code as u8 {
            REPLACEMENT => '\u{fffd}',
            c @ (0x20..=0x7e | 0xa0..=0xff) => c as char,
            c => {
                if let Some(&ch) = charset::DRAWN.get(usize::from(c.wrapping_sub(0x80))) {
                    let mut alpha = [0u8; 8 * 16];
                    charset::draw(ch, 8, &mut alpha);
                    for (row, pixels) in bitmap.iter_mut().zip(alpha.chunks_exact(8)) {
                        *row = pack(pixels);
                    }
                }
                continue;
            }
        };
        let width = glyphs.font().width();
        for (row, pixels) in bitmap.iter_mut().zip(glyphs.glyph(ch, false).chunks_exact(width)) {
            *row = pack(pixels);
        }
    }
    font
}

/// The palette in VGA attribute order, 8 bits per channel.
pub fn palette() -> [[u8; 3]; 16] {
    core::array::from_fn(|i| {
        let rgb = PALETTE[(VGA_TO_ANSI[i % 8] + (i as u8 & 8)) as usize];
        [rgb.r, rgb.g, rgb.b]
    })
}

/// The grid, shown in the text buffer.
pub struct VgaText {
    buffer: TextBuffer,
}

impl VgaText {
    pub fn new(buffer: TextBuffer) -> Self {
        Self { buffer }
    }

    /// Writes the grid's changes into the buffer and moves the cursor.
    pub fn update(&mut self, grid: &mut Grid) {
        if grid.scrolled() > 0 {
            grid.damage_all();
        }
        for (row, span) in grid.damaged_rows() {
            for col in span.start as usize..(span.end as usize).min(vga::COLS) {
                self.buffer.write(row, col, entry(grid.shown_cell(row, col)));
            }
        }
        grid.take_damage();
        // Scrolled back, the cursor moves down with its row, or past the
        // screen's end (which hides it) when its row is out of view.
        let (row, col) = grid.cursor();
        self.buffer.set_cursor((row + grid.view()).min(vga::ROWS), col);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::color::{DEFAULT_BG, DEFAULT_FG};
    use crate::console::font::Font;

    #[test]
    fn latin1_maps_to_itself_and_the_rest_to_the_replacement() {
        assert_eq!(code('A'), b'A');
        assert_eq!(code('é'), 0xe9);
        assert_eq!(code('\u{4e2d}'), REPLACEMENT);
        assert_eq!(code('\u{7}'), REPLACEMENT);
        assert_eq!(code('◆'), 0x80);
        assert_eq!(code('│'), 0x90);
    }

    #[test]
    fn attributes_use_vga_colour_order() {
        let cell = Cell { ch: 'x', fg: PALETTE[1], bg: PALETTE[4], bold: false };
        // ANSI red is VGA 4, ANSI blue is VGA 1.
        assert_eq!(entry(cell), 0x1478);
        let bright = Cell { ch: 'x', fg: PALETTE[11], bg: DEFAULT_BG, bold: true };
        assert_eq!(entry(bright) >> 8, 0x0e);
        assert_eq!(entry(Cell { ch: ' ', fg: DEFAULT_FG, bg: DEFAULT_BG, bold: false }), 0x0720);
    }

    #[test]
    fn font_has_ink_where_the_glyphs_do() {
        let mut memory = vec![0; Font::SMALLEST.glyphs_bytes()];
        let font = font(&mut Font::SMALLEST.glyphs(&mut memory));
        assert!(font[b'A' as usize].iter().any(|&row| row != 0));
        assert!(font[REPLACEMENT as usize].iter().any(|&row| row != 0));
        assert!(font[b' ' as usize].iter().all(|&row| row == 0));
        assert!(font[0x9f].iter().all(|&row| row == 0));
        // Text glyphs are 7 pixels wide: the eighth column stays clear. Line
        // drawing reaches it, to join up.
        assert!(font[..0x80].iter().chain(&font[0xa0..]).flatten().all(|&row| row & 1 == 0));
        let horizontal = font[code('─') as usize];
        assert_eq!(horizontal[8], 0xff);
    }

    #[test]
    fn palette_is_in_attribute_order() {
        let palette = palette();
        assert_eq!(palette[1], [0x00, 0x00, 0xaa]);
        assert_eq!(palette[4], [0xaa, 0x00, 0x00]);
        assert_eq!(palette[6], [0xaa, 0x55, 0x00]);
        assert_eq!(palette[15], [0xff, 0xff, 0xff]);
    }
}
