//! Character sets a terminal can designate (SCS: `ESC ( 0`, `ESC ( B`, ...)
//! and shift in (SO/SI): ASCII and the DEC Special Graphics set, which
//! full-screen programs use to draw boxes. The console font has none of the
//! box-drawing characters, so they are drawn here, for both screen
//! consoles.

/// A 94-character set, as designated into G0-G3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Ascii,
    /// DEC Special Graphics: `_` to `~` become line drawing and symbols.
    DecGraphics,
}

/// DEC Special Graphics for `_` (0x5f) to `~` (0x7e), as xterm maps them to
/// Unicode.
const DEC_GRAPHICS: [char; 32] = [
    ' ', '◆', '▒', '␉', '␌', '␍', '␊', '°', '±', '␤', '␋', '┘', '┐', '┌', '└', '┼', '⎺', '⎻', '─', '⎼', '⎽',
    '├', '┤', '┴', '┬', '│', '≤', '≥', 'π', '≠', '£', '·',
];

impl Charset {
    /// The character `ch` stands for in this set.
    pub fn map(self, ch: char) -> char {
        match (self, ch) {
            (Charset::DecGraphics, '_'..='~') => DEC_GRAPHICS[ch as usize - '_' as usize],
            _ => ch,
        }
    }
}

/// The characters [`draw`] draws: DEC Special Graphics' lines and blocks.
/// The VGA text console gives them the font codes from 0x80 on, in this
/// order.
pub const DRAWN: [char; 17] =
    ['◆', '▒', '┘', '┐', '┌', '└', '┼', '⎺', '⎻', '─', '⎼', '⎽', '├', '┤', '┴', '┬', '│'];

/// Lines from the cell's centre to its edges: up, down, left, right.
fn arms(ch: char) -> Option<[bool; 4]> {
    Some(match ch {
        '─' => [false, false, true, true],
        '│' => [true, true, false, false],
        '┌' => [false, true, false, true],
        '┐' => [false, true, true, false],
        '└' => [true, false, false, true],
        '┘' => [true, false, true, false],
        '├' => [true, true, false, true],
        '┤' => [true, true, true, false],
        '┬' => [false, true, true, true],
        '┴' => [true, false, true, true],
        '┼' => [true, true, true, true],
        _ => return None,
    })
}

/// Draws `ch`, if it is one of [`DRAWN`], as intensities (255 for ink) into
/// `alpha`, a cell `width` pixels wide; returns whether it was. Lines meet
/// the cell's edges so that boxes join up.
pub fn draw(ch: char, width: usize, alpha: &mut [u8]) -> bool {
    if !DRAWN.contains(&ch) {
        return false;
    }
    let height = alpha.len() / width;
    let (cx, cy) = ((width - 1) / 2, height / 2);
    // The VT100's scan lines 1, 3, 7 and 9 of ten; `─` is the fifth.
    let scan = |n: usize| ((n - 1) * height / 8).min(height - 1);
    for (i, pixel) in alpha.iter_mut().enumerate() {
        let (x, y) = (i % width, i / width);
        let ink = match (ch, arms(ch)) {
            (_, Some([up, down, left, right])) => {
                (x == cx && ((up && y <= cy) || (down && y >= cy)))
                    || (y == cy && ((left && x <= cx) || (right && x >= cx)))
            }
            ('⎺', _) => y == scan(1),
            ('⎻', _) => y == scan(3),
            ('⎼', _) => y == scan(7),
            ('⎽', _) => y == scan(9),
            ('▒', _) => (x + y) % 2 == 0,
            // '◆': a diamond as wide as the cell, centred.
            _ => x.abs_diff(cx) + y.abs_diff(cy) <= cx,
        };
        *pixel = if ink { 255 } else { 0 };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dec_graphics_maps_only_its_range() {
        assert_eq!(Charset::DecGraphics.map('q'), '─');
        assert_eq!(Charset::DecGraphics.map('x'), '│');
        assert_eq!(Charset::DecGraphics.map('l'), '┌');
        assert_eq!(Charset::DecGraphics.map('~'), '·');
        assert_eq!(Charset::DecGraphics.map('_'), ' ');
        assert_eq!(Charset::DecGraphics.map('A'), 'A');
        assert_eq!(Charset::Ascii.map('q'), 'q');
    }

    fn drawn(ch: char) -> Vec<String> {
        let mut alpha = [0u8; 7 * 16];
        assert!(draw(ch, 7, &mut alpha));
        alpha.chunks(7).map(|row| row.iter().map(|&a| if a == 255 { '#' } else { '.' }).collect()).collect()
    }

    #[test]
    fn every_graphic_character_is_drawn_and_others_are_not() {
        for ch in DRAWN {
            assert!(drawn(ch).iter().any(|row| row.contains('#')), "{ch}");
            assert!(DEC_GRAPHICS.contains(&ch), "{ch} is DEC Special Graphics");
        }
        assert!(!draw('A', 7, &mut [0; 7 * 16]));
    }

    #[test]
    fn lines_reach_the_edges_they_join() {
        let corner = drawn('┌');
        assert_eq!(corner[8], "...####");
        assert_eq!(corner[15], "...#...");
        assert_eq!(corner[0], ".......");
        let cross = drawn('┼');
        assert_eq!(cross[0], "...#...");
        assert_eq!(cross[8], "#######");
        assert_eq!(drawn('─')[8], "#######");
        assert_eq!(drawn('⎽')[15], "#######");
    }
}
