//! The framebuffer console's font: anti-aliased Noto Sans Mono in the four
//! raster heights `noto-sans-mono-bitmap` has (16, 20, 24 and 32 pixels),
//! the 20 and 24 pixel ones doubled (40 and 48 pixels) for screens the
//! largest raster leaves with too many columns, and which size a screen gets.
//!
//! A fixed size reads badly somewhere: the 16-pixel font gives a 640x480
//! screen 91 columns but a 3840x2160 one 548 tiny ones. So the size follows
//! the screen: the smallest that keeps the grid within [`MAX_COLUMNS`]
//! (small fonts show more text while the cells stay readable), or the
//! largest on screens wider than that. `font=<size>` on the command line
//! overrides the choice.
//!
//! The glyphs are linked raw (the build script lays them out): the image on
//! the boot medium is compressed as a whole (`kernel/pack`), fonts included,
//! and decoded before the kernel runs. [`Font::glyphs`] unpacks a size into
//! memory the caller provides, as [`Glyphs`], scaling the doubled ones up.
//! (Deflating each size apart made the file 7 KiB smaller, but inflating
//! took 3 ms of every boot under emulation, nearly all of it translating
//! the inflater's code, which runs once.)
//!
//! Each pixel's intensity is stored as one of 16 levels, two pixels a byte:
//! the rounding moves an edge pixel by at most 8 of 255, which no eye sees
//! in anti-aliasing, and halves the glyphs, which the bootloader reads on
//! every boot (about 3 ms on a BIOS PC).

use crate::charset;
use core::fmt;

mod rasters {
    include!(concat!(env!("OUT_DIR"), "/font.rs"));
}
use rasters::{FONT_CELLS, FONT_CHARS, FONT_RASTERS};

/// The most columns a screen gets from the automatic choice, if the font's
/// largest size allows it: a wider grid means cells too small to read.
pub const MAX_COLUMNS: usize = 240;

/// Pixels in the largest cell (the 48-pixel font's 22x48).
pub const MAX_CELL_PIXELS: usize =
    Font::ALL[Font::ALL.len() - 1].width() * Font::ALL[Font::ALL.len() - 1].height();

/// Each size, smallest first: the raster it is drawn from (an index in
/// `FONT_CELLS`) and how many times larger than that raster it is drawn.
const SIZES: [(usize, usize); 6] = [(0, 1), (1, 1), (2, 1), (3, 1), (1, 2), (2, 2)];

/// One size of the font: its index in `SIZES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Font(usize);

/// A `font=` value that names no size of the font.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSize<'a>(pub &'a str);

impl fmt::Display for UnknownSize<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "font={} is not a size of the font (16, 20, 24, 32, 40 or 48 pixels)", self.0)
    }
}

/// Why a `font=` value was not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused<'a> {
    Unknown(UnknownSize<'a>),
    /// Not one cell of this size fits on the screen.
    TooLarge {
        font: Font,
        width: usize,
        height: usize,
    },
}

impl fmt::Display for Refused<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Refused::Unknown(unknown) => unknown.fmt(f),
            Refused::TooLarge { font, width, height } => {
                write!(f, "font={} does not fit on a {width}x{height} screen", font.height())
            }
        }
    }
}

/// The font for a `width` x `height` screen: the one `option` (the
/// `font=` value) names, or the automatic choice, with the reason when the
/// option was refused.
pub fn choose(option: Option<&str>, width: usize, height: usize) -> (Font, Option<Refused<'_>>) {
    let automatic = Font::for_screen(width, height);
    match option.map(Font::parse) {
        None => (automatic, None),
        Some(Ok(font)) if font.fits(width, height) => (font, None),
        Some(Ok(font)) => (automatic, Some(Refused::TooLarge { font, width, height })),
        Some(Err(unknown)) => (automatic, Some(Refused::Unknown(unknown))),
    }
}

impl Font {
    /// Every size, smallest first.
    pub const ALL: [Font; 6] = [Font(0), Font(1), Font(2), Font(3), Font(4), Font(5)];
    /// The 16-pixel font, whose glyphs the VGA text console's font is made of.
    pub const SMALLEST: Font = Font::ALL[0];

    /// The size a `font=` value names, in pixels of height.
    pub fn parse(value: &str) -> Result<Font, UnknownSize<'_>> {
        value
            .trim_end_matches("px")
            .parse::<usize>()
            .ok()
            .and_then(|size| Self::ALL.into_iter().find(|font| font.height() == size))
            .ok_or(UnknownSize(value))
    }

    /// The size for a `width` x `height` screen (see the module's notes),
    /// among those of which a cell fits; the smallest when none does.
    pub fn for_screen(width: usize, height: usize) -> Font {
        let mut fitting = Self::ALL.into_iter().filter(|font| font.fits(width, height));
        fitting
            .clone()
            .find(|font| width / font.width() <= MAX_COLUMNS)
            .or(fitting.next_back())
            .unwrap_or(Self::SMALLEST)
    }

    /// Cell height in pixels: the font's size.
    pub const fn height(self) -> usize {
        let (raster, scale) = SIZES[self.0];
        FONT_CELLS[raster].1 * scale
    }

    /// Cell width in pixels (the same in both weights).
    pub const fn width(self) -> usize {
        let (raster, scale) = SIZES[self.0];
        FONT_CELLS[raster].0 * scale
    }

    /// Columns and rows of text on a `width` x `height` screen.
    pub fn grid(self, width: usize, height: usize) -> (usize, usize) {
        (width / self.width(), height / self.height())
    }

    /// Whether at least one cell fits on a `width` x `height` screen.
    pub fn fits(self, width: usize, height: usize) -> bool {
        width >= self.width() && height >= self.height()
    }

    /// Bytes [`Font::glyphs`] needs: every glyph in both weights.
    pub const fn glyphs_bytes(self) -> usize {
        2 * FONT_CHARS.len() * self.width() * self.height()
    }

    /// Unpacks this size's regular glyphs into `memory` ([`Font::glyphs_bytes`]
    /// long; a longer one is used in part). The bold ones are unpacked when
    /// first asked for: most screens never show bold text.
    pub fn glyphs(self, memory: &mut [u8]) -> Glyphs<'_> {
        let mut glyphs = Glyphs { font: self, pixels: &mut memory[..self.glyphs_bytes()], bold: false };
        glyphs.unpack(false);
        glyphs
    }
}

/// One size of the font, unpacked: each weight's glyphs in a half of
/// `pixels`, regular first.
pub struct Glyphs<'a> {
    font: Font,
    pixels: &'a mut [u8],
    /// Whether the bold half has been unpacked.
    bold: bool,
}

impl Glyphs<'_> {
    pub fn font(&self) -> Font {
        self.font
    }

    /// Copies one weight's raster into its half of the glyphs, scaled up
    /// to the font's size.
    fn unpack(&mut self, bold: bool) {
        let font = self.font;
        let (raster, scale) = SIZES[font.0];
        let raster_width = FONT_CELLS[raster].0;
        let source = FONT_RASTERS[raster][usize::from(bold)];
        let half = self.pixels.len() / 2;
        let memory = &mut self.pixels[usize::from(bold) * half..][..half];
        if scale == 1 {
            let (pairs, last) = memory.as_chunks_mut::<2>();
            for (pair, &byte) in pairs.iter_mut().zip(source) {
                *pair = PAIRS[usize::from(byte)];
            }
            if let ([odd], Some(&byte)) = (last, source.last()) {
                *odd = intensity(byte);
            }
        } else {
            let (raster_cell, cell) = (raster_width * FONT_CELLS[raster].1, font.width() * font.height());
            for (glyph, scaled) in memory.chunks_exact_mut(cell).enumerate() {
                for (i, pixel) in scaled.iter_mut().enumerate() {
                    let (x, y) = (i % font.width() / scale, i / font.width() / scale);
                    let index = glyph * raster_cell + y * raster_width + x;
                    *pixel = intensity(source[index / 2] >> (index % 2 * 4));
                }
            }
        }
        self.bold |= bold;
    }

    pub fn glyph(&mut self, ch: char, bold: bool) -> &[u8] {
        if bold && !self.bold {
            self.unpack(true);
        }
        let index = FONT_CHARS
            .binary_search(&ch)
            .or_else(|_| FONT_CHARS.binary_search(&'\u{fffd}'))
            .expect("the font has U+FFFD");
        let cell = self.font.width() * self.font.height();
        let start = (usize::from(bold) * FONT_CHARS.len() + index) * cell;
        &self.pixels[start..start + cell]
    }

    pub fn ink(&mut self, ch: char, bold: bool) -> Ink {
        let font = self.font;
        let mut ink = Ink { alpha: [0; MAX_CELL_PIXELS], len: font.width() * font.height() };
        if !charset::draw(ch, font.width(), &mut ink.alpha[..ink.len]) {
            ink.alpha[..ink.len].copy_from_slice(self.glyph(ch, bold));
        }
        ink
    }
}

/// The intensity a stored level stands for: its low nibble's level
/// (0 to 15) spread over 0 to 255.
const fn intensity(level: u8) -> u8 {
    (level & 0xf) * 17
}

/// The two intensities each stored byte stands for, low nibble first: one
/// lookup a byte, where the boot pays for each instruction under emulation.
const PAIRS: [[u8; 2]; 256] = {
    let mut pairs = [[0; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [intensity(byte as u8), intensity((byte >> 4) as u8)];
        byte += 1;
    }
    pairs
};

impl fmt::Display for Font {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} px ({}x{} cells)", self.height(), self.width(), self.height())
    }
}

/// A cell's intensities, as [`Font::ink`] draws them.
pub struct Ink {
    alpha: [u8; MAX_CELL_PIXELS],
    len: usize,
}

impl Ink {
    pub fn pixels(&self) -> &[u8] {
        &self.alpha[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_nonsense_is_refused() {
        assert_eq!(Font::parse("20"), Ok(Font::ALL[1]));
        assert_eq!(Font::parse("32px"), Ok(Font::ALL[3]));
        assert_eq!(Font::parse("40"), Ok(Font::ALL[4]));
        assert_eq!(Font::parse("48px"), Ok(Font::ALL[5]));
        for bad in ["", "17", "0", "-16", "64", "big", "99999999999999999999999", "16.0"] {
            assert_eq!(Font::parse(bad), Err(UnknownSize(bad)), "{bad:?}");
        }
    }

    #[test]
    fn the_screen_gets_a_readable_grid() {
        let grid = |width, height| {
            let font = Font::for_screen(width, height);
            (font.height(), font.grid(width, height))
        };
        assert_eq!(grid(640, 480), (16, (91, 30)));
        assert_eq!(grid(1024, 768), (16, (146, 48)));
        assert_eq!(grid(1280, 800), (16, (182, 50)));
        assert_eq!(grid(1920, 1080), (20, (213, 54)));
        assert_eq!(grid(2560, 1440), (24, (232, 60)));
        assert_eq!(grid(3840, 2160), (40, (213, 54)));
        assert_eq!(grid(5120, 2880), (48, (232, 60)));
        // Wider than the largest size keeps within the limit: its largest.
        assert_eq!(grid(7680, 4320), (48, (349, 90)));
        // A short screen gets the largest size that fits in its height.
        assert_eq!(grid(3840, 30), (24, (349, 1)));
        // Tiny screens get the smallest, which may not even fit.
        assert_eq!(grid(0, 0), (16, (0, 0)));
    }

    #[test]
    fn the_option_wins_unless_it_is_nonsense_or_too_large() {
        let [f16, f20, _, f32, f40, f48] = Font::ALL;
        assert_eq!(choose(None, 640, 480), (f16, None));
        assert_eq!(choose(Some("20"), 640, 480), (f20, None));
        assert_eq!(choose(Some("48"), 640, 480), (f48, None));
        assert_eq!(choose(Some("32"), 3840, 2160), (f32, None));
        assert_eq!(choose(Some("16"), 3840, 2160), (f16, None));
        assert_eq!(choose(Some("huge"), 3840, 2160), (f40, Some(Refused::Unknown(UnknownSize("huge")))));
        let (font, refused) = choose(Some("32"), 20, 20);
        assert_eq!((font, &refused), (f16, &Some(Refused::TooLarge { font: f32, width: 20, height: 20 })));
        assert_eq!(refused.unwrap().to_string(), "font=32 does not fit on a 20x20 screen");
        assert_eq!(
            choose(Some("64"), 640, 480).1.unwrap().to_string(),
            "font=64 is not a size of the font (16, 20, 24, 32, 40 or 48 pixels)"
        );
    }

    #[test]
    fn bold_glyphs_are_unpacked_only_when_first_asked_for() {
        for font in Font::ALL {
            let mut memory = vec![0xa5; font.glyphs_bytes()];
            let mut glyphs = font.glyphs(&mut memory);
            let regular = glyphs.glyph('W', false).to_vec();
            assert!(glyphs.pixels[glyphs.pixels.len() / 2..].iter().all(|&byte| byte == 0xa5), "{font}");
            assert_ne!(glyphs.glyph('W', true), regular, "{font}");
            assert_eq!(glyphs.glyph('W', false), regular, "{font}: unpacking bold changed regular");
        }
    }

    #[test]
    fn the_glyphs_are_the_fonts_to_sixteen_levels() {
        use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster};
        let heights =
            [RasterHeight::Size16, RasterHeight::Size20, RasterHeight::Size24, RasterHeight::Size32];
        for font in Font::ALL {
            let (raster, scale) = SIZES[font.0];
            let height = heights[raster];
            let mut memory = vec![0; font.glyphs_bytes()];
            let mut glyphs = font.glyphs(&mut memory);
            for (bold, weight) in [(false, FontWeight::Regular), (true, FontWeight::Bold)] {
                // Every character the font has, and some it lacks.
                for ch in FONT_CHARS.into_iter().chain(['\0', '\u{7f}', '\u{4e2d}', '\u{1f600}']) {
                    let expected =
                        get_raster(ch, weight, height).or_else(|| get_raster('\u{fffd}', weight, height));
                    let expected = expected.expect("the font has U+FFFD");
                    assert_eq!(
                        (expected.width() * scale, expected.height() * scale),
                        (font.width(), font.height())
                    );
                    // Each raster pixel becomes a scale x scale square, its
                    // intensity the nearest of 16 levels.
                    let glyph = glyphs.glyph(ch, bold);
                    for (i, &alpha) in glyph.iter().enumerate() {
                        let (x, y) = (i % font.width(), i / font.width());
                        let raster_alpha = expected.pixel(x / scale, y / scale).expect("in the raster");
                        assert_eq!(alpha % 17, 0, "{font} {ch:?} bold {bold} ({x},{y}): {alpha} is no level");
                        assert!(alpha.abs_diff(raster_alpha) <= 8, "{font} {ch:?} bold {bold} ({x},{y})");
                    }
                }
                let ink = glyphs.ink('W', bold);
                assert_eq!(ink.pixels(), glyphs.glyph('W', bold));
                assert_eq!(glyphs.ink('─', bold).pixels().len(), font.width() * font.height());
            }
            let regular = glyphs.glyph('W', false).to_vec();
            assert_ne!(regular, glyphs.glyph('W', true));
        }
    }
}
