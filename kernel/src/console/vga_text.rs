//! The VGA text console: a [`Grid`] shown through the 80x25 character buffer
//! ([`vga::TextBuffer`]), for BIOS machines without a framebuffer or booted
//! with `console=vga`.
//!
//! The kernel loads its own font: the same Noto glyphs as the framebuffer
//! console, reduced to 8x16 bitmaps, laid out as Latin-1 (codes 0x20-0x7e and
//! 0xa0-0xff are those characters; 0x7f is the replacement glyph), so text
//! maps to codes without a code-page table.

use super::color::{self, PALETTE};
use super::framebuffer::glyph;
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
        _ => REPLACEMENT,
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

/// The font for [`code`]'s layout, from the framebuffer console's glyphs:
/// each 7-pixel-wide anti-aliased row becomes the top 7 bits of a byte.
pub fn font() -> [[u8; 16]; 256] {
    const INK: u8 = 96;
    let mut font = [[0u8; 16]; 256];
    for (code, bitmap) in font.iter_mut().enumerate() {
        let ch = match code as u8 {
            REPLACEMENT => '\u{fffd}',
            c @ (0x20..=0x7e | 0xa0..=0xff) => c as char,
            _ => continue,
        };
        let glyph = glyph(ch, false);
        for (row, pixels) in glyph.pixels().chunks_exact(glyph.width()).enumerate().take(16) {
            bitmap[row] = pixels
                .iter()
                .take(8)
                .enumerate()
                .filter(|&(_, &alpha)| alpha >= INK)
                .fold(0, |bits, (x, _)| bits | 0x80 >> x);
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
                self.buffer.write(row, col, entry(grid.cell(row, col)));
            }
        }
        grid.take_damage();
        let (row, col) = grid.cursor();
        self.buffer.set_cursor(row, col);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::color::{DEFAULT_BG, DEFAULT_FG};

    #[test]
    fn latin1_maps_to_itself_and_the_rest_to_the_replacement() {
        assert_eq!(code('A'), b'A');
        assert_eq!(code('é'), 0xe9);
        assert_eq!(code('\u{4e2d}'), REPLACEMENT);
        assert_eq!(code('\u{7}'), REPLACEMENT);
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
        let font = font();
        assert!(font[b'A' as usize].iter().any(|&row| row != 0));
        assert!(font[REPLACEMENT as usize].iter().any(|&row| row != 0));
        assert!(font[b' ' as usize].iter().all(|&row| row == 0));
        assert!(font[0x80].iter().all(|&row| row == 0));
        // Glyphs are 7 pixels wide: the eighth column stays clear.
        assert!(font.iter().flatten().all(|&row| row & 1 == 0));
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
