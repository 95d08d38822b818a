//! Lays out the console font: each size and weight as one block of its
//! glyphs' intensities, in the order of `FONT_CHARS`, which the console
//! unpacks for the size it uses. Each intensity is rounded to one of 16
//! levels and stored in 4 bits (see `look::font`). They are linked
//! raw: the image on the boot medium is compressed as a whole (kernel/pack),
//! and 186 KiB of glyphs take about 48 KiB there.

use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster, get_raster_width};
use std::fmt::Write;
use std::path::Path;

const SIZES: [RasterHeight; 4] =
    [RasterHeight::Size16, RasterHeight::Size20, RasterHeight::Size24, RasterHeight::Size32];
const WEIGHTS: [(FontWeight, &str); 2] = [(FontWeight::Regular, "regular"), (FontWeight::Bold, "bold")];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let chars: Vec<char> = (0..=0xffff)
        .filter_map(char::from_u32)
        .filter(|&ch| get_raster(ch, FontWeight::Regular, SIZES[0]).is_some())
        .collect();
    let mut source = String::new();
    writeln!(source, "/// Every character the font draws, ascending: a glyph's index in a weight.").unwrap();
    writeln!(source, "pub const FONT_CHARS: [char; {}] = {chars:?};", chars.len()).unwrap();
    let mut cells = Vec::new();
    let mut rasters = Vec::new();
    for size in SIZES {
        let width = get_raster_width(FontWeight::Regular, size);
        let mut weights = Vec::new();
        for (weight, name) in WEIGHTS {
            assert_eq!(get_raster_width(weight, size), width, "both weights share the cell");
            let mut pixels = Vec::with_capacity(chars.len() * width * size.val());
            for &ch in &chars {
                let glyph =
                    get_raster(ch, weight, size).expect("every size and weight has the same characters");
                pixels.extend_from_slice(glyph.pixels());
            }
            // Two pixels a byte, the first in the low nibble; an odd count
            // leaves the last high nibble zero.
            let levels: Vec<u8> = pixels.iter().map(|&alpha| level(alpha)).collect();
            let pixels: Vec<u8> =
                levels.chunks(2).map(|pair| pair[0] | pair.get(1).copied().unwrap_or(0) << 4).collect();
            let file = format!("font-{}-{name}.bin", size.val());
            std::fs::write(Path::new(&out).join(&file), &pixels).expect("writing the font");
            weights.push(format!("include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{file}\"))"));
        }
        cells.push(format!("({width}, {})", size.val()));
        rasters.push(format!("[{}]", weights.join(", ")));
    }
    writeln!(source, "/// Each size's cell width and height.").unwrap();
    writeln!(source, "pub const FONT_CELLS: [(usize, usize); {}] = [{}];", SIZES.len(), cells.join(", "))
        .unwrap();
    // A static, not a const: each use of a const would link its own copy.
    writeln!(source, "/// Each size's weights (regular, bold).").unwrap();
    writeln!(source, "pub static FONT_RASTERS: [[&[u8]; 2]; {}] = [{}];", SIZES.len(), rasters.join(", "))
        .unwrap();
    std::fs::write(Path::new(&out).join("font.rs"), source).expect("writing the font table");
}

/// The nearest of the 16 stored levels to an intensity (0 and 255 exact);
/// `look::font` turns level `n` back into `n * 17`.
fn level(alpha: u8) -> u8 {
    ((u16::from(alpha) * 15 + 127) / 255) as u8
}
