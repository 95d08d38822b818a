//! Lays out the console font: each size and weight as one block of its
//! glyphs' intensities, in the order of `FONT_CHARS`, which the console
//! copies for the size it uses. They are linked raw: the image on the boot
//! medium is compressed as a whole (kernel/pack), and 372 KiB of glyphs
//! take about 83 KiB there.

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
