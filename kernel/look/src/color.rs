//! Colours: the 16-colour palette shared by every console, and the ANSI
//! 256-colour and truecolour forms reduced to it where a console (VGA text)
//! can show only 16.

/// A 24-bit colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rgb {
    pub r: u8,
    pub g: u8,
    pub b: u8,
}

impl Rgb {
    pub const fn new(r: u8, g: u8, b: u8) -> Self {
        Self { r, g, b }
    }
}

/// The 16 ANSI colours in ANSI order (black, red, green, yellow, blue,
/// magenta, cyan, white, then the bright eight), with the VGA's own values so
/// that the framebuffer and the VGA text console look alike.
pub const PALETTE: [Rgb; 16] = [
    Rgb::new(0x00, 0x00, 0x00),
    Rgb::new(0xaa, 0x00, 0x00),
    Rgb::new(0x00, 0xaa, 0x00),
    Rgb::new(0xaa, 0x55, 0x00),
    Rgb::new(0x00, 0x00, 0xaa),
    Rgb::new(0xaa, 0x00, 0xaa),
    Rgb::new(0x00, 0xaa, 0xaa),
    Rgb::new(0xaa, 0xaa, 0xaa),
    Rgb::new(0x55, 0x55, 0x55),
    Rgb::new(0xff, 0x55, 0x55),
    Rgb::new(0x55, 0xff, 0x55),
    Rgb::new(0xff, 0xff, 0x55),
    Rgb::new(0x55, 0x55, 0xff),
    Rgb::new(0xff, 0x55, 0xff),
    Rgb::new(0x55, 0xff, 0xff),
    Rgb::new(0xff, 0xff, 0xff),
];

pub const DEFAULT_FG: Rgb = PALETTE[7];
pub const DEFAULT_BG: Rgb = PALETTE[0];

/// Colour `index` of the xterm 256-colour table: the 16 above, a 6x6x6 cube,
/// then 24 greys.
pub fn xterm_256(index: u8) -> Rgb {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    match index {
        0..=15 => PALETTE[index as usize],
        16..=231 => {
            let i = index - 16;
            Rgb::new(LEVELS[(i / 36) as usize], LEVELS[(i / 6 % 6) as usize], LEVELS[(i % 6) as usize])
        }
        232..=255 => {
            let level = 8 + 10 * (index - 232);
            Rgb::new(level, level, level)
        }
    }
}

/// The palette entry closest to `color` (index in ANSI order).
pub fn nearest_ansi(color: Rgb) -> u8 {
    let distance = |p: &Rgb| {
        let d = |a: u8, b: u8| (a as i32 - b as i32).pow(2);
        d(p.r, color.r) + d(p.g, color.g) + d(p.b, color.b)
    };
    (0..16u8).min_by_key(|&i| distance(&PALETTE[i as usize])).unwrap_or(7)
}

/// `alpha` of the way from `bg` to `fg`, per channel: how an anti-aliased
/// glyph pixel of that intensity looks.
pub fn blend(fg: Rgb, bg: Rgb, alpha: u8) -> Rgb {
    let mix = |f: u8, b: u8| ((f as u32 * alpha as u32 + b as u32 * (255 - alpha as u32) + 127) / 255) as u8;
    Rgb::new(mix(fg.r, bg.r), mix(fg.g, bg.g), mix(fg.b, bg.b))
}

/// The bright variant of one of the eight base colours, which is how bold
/// text is shown; any other colour is returned as it is.
pub fn brighten(color: Rgb) -> Rgb {
    match PALETTE[..8].iter().position(|&p| p == color) {
        Some(i) => PALETTE[i + 8],
        None => color,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blending_spans_background_to_foreground() {
        let (fg, bg) = (Rgb::new(200, 100, 0), Rgb::new(0, 50, 100));
        assert_eq!(blend(fg, bg, 0), bg);
        assert_eq!(blend(fg, bg, 255), fg);
        assert_eq!(blend(fg, bg, 128), Rgb::new(100, 75, 50));
    }

    #[test]
    fn cube_and_grey_ramp_match_xterm() {
        assert_eq!(xterm_256(16), Rgb::new(0, 0, 0));
        assert_eq!(xterm_256(196), Rgb::new(255, 0, 0));
        assert_eq!(xterm_256(231), Rgb::new(255, 255, 255));
        assert_eq!(xterm_256(232), Rgb::new(8, 8, 8));
        assert_eq!(xterm_256(255), Rgb::new(238, 238, 238));
        assert_eq!(xterm_256(9), PALETTE[9]);
    }

    #[test]
    fn palette_colours_map_to_themselves() {
        for (i, &color) in PALETTE.iter().enumerate() {
            assert_eq!(nearest_ansi(color) as usize, i);
        }
        assert_eq!(nearest_ansi(Rgb::new(250, 80, 80)), 9);
        assert_eq!(nearest_ansi(Rgb::new(180, 10, 10)), 1);
    }

    #[test]
    fn bold_brightens_only_base_colours() {
        assert_eq!(brighten(PALETTE[1]), PALETTE[9]);
        assert_eq!(brighten(PALETTE[9]), PALETTE[9]);
        assert_eq!(brighten(Rgb::new(1, 2, 3)), Rgb::new(1, 2, 3));
    }
}
