//! Character sets a terminal can designate (SCS: `ESC ( 0`, `ESC ( B`, ...)
//! and shift in (SO/SI): ASCII and the DEC Special Graphics set, which
//! full-screen programs use to draw boxes.

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
}
