//! Keys, whatever their source: the keyboard task and the serial task both
//! turn their bytes into [`Key`]s and queue them for the shell.

use alloc::collections::VecDeque;
use core::future::poll_fn;
use core::task::{Poll, Waker};
use spin::Mutex;

/// A key as the line editor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    Up,
    Down,
    /// Ctrl with a letter (Ctrl-C is `Ctrl('c')`).
    Ctrl(char),
    /// Shift with Page Up, Page Down, Up or Down: moving through the
    /// console's scrollback.
    ShiftPageUp,
    ShiftPageDown,
    ShiftUp,
    ShiftDown,
}

impl Key {
    /// The key a character from a keyboard or terminal stands for.
    pub fn from_char(ch: char) -> Option<Key> {
        Some(match ch {
            '\n' | '\r' => Key::Enter,
            '\u{8}' | '\u{7f}' => Key::Backspace,
            '\u{1}'..='\u{1a}' => Key::Ctrl((b'a' + ch as u8 - 1) as char),
            c if c.is_control() => return None,
            c => Key::Char(c),
        })
    }
}

/// Keys waiting for the shell (task context only: no interrupt handler
/// pushes here).
pub struct Keys {
    queue: Mutex<(VecDeque<Key>, Option<Waker>)>,
}

impl Keys {
    const LIMIT: usize = 256;

    pub fn push(&self, key: Key) {
        let mut queue = self.queue.lock();
        if queue.0.len() < Self::LIMIT {
            queue.0.push_back(key);
        }
        if let Some(waker) = queue.1.take() {
            waker.wake();
        }
    }

    /// The next key, when there is one.
    pub async fn next(&self) -> Key {
        poll_fn(|cx| {
            let mut queue = self.queue.lock();
            match queue.0.pop_front() {
                Some(key) => Poll::Ready(key),
                None => {
                    queue.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

pub static KEYS: Keys = Keys { queue: Mutex::new((VecDeque::new(), None)) };

/// Turns what a terminal sends over serial into keys: UTF-8 text, CR or LF
/// for Enter, DEL or BS for Backspace, and the VT100/xterm sequences for the
/// arrows, Home, End and Delete. Nothing that follows a broken sequence is
/// lost: a byte that cannot continue the sequence before it (a lone ESC, a
/// cut-short UTF-8 character) is decoded afresh.
#[derive(Debug, Default)]
pub struct SerialDecoder {
    pending: [u8; 16],
    len: usize,
    /// The previous byte was CR (a following LF is the same Enter).
    after_cr: bool,
}

impl SerialDecoder {
    /// Decodes one byte; the keys it completes go to `emit`.
    pub fn feed(&mut self, byte: u8, emit: &mut impl FnMut(Key)) {
        let after_cr = core::mem::take(&mut self.after_cr);
        match self.pending[..self.len] {
            [] => {}
            [0x1b, ..] => {
                if self.escape(byte, emit) {
                    return;
                }
            }
            _ => {
                if byte & 0xc0 == 0x80 {
                    self.utf8_continue(byte, emit);
                    return;
                }
                // The character was cut short.
                self.len = 0;
                emit(Key::Char(char::REPLACEMENT_CHARACTER));
            }
        }
        match byte {
            0x1b => self.start(byte),
            b'\n' if after_cr => {}
            b'\r' => {
                self.after_cr = true;
                emit(Key::Enter);
            }
            0xc2..=0xf4 => self.start(byte),
            0x80.. => emit(Key::Char(char::REPLACEMENT_CHARACTER)),
            _ => {
                if let Some(key) = Key::from_char(byte as char) {
                    emit(key);
                }
            }
        }
    }

    fn start(&mut self, byte: u8) {
        self.pending[0] = byte;
        self.len = 1;
    }

    /// Continues an escape sequence. False when `byte` is no part of it: the
    /// sequence is dropped and the byte must be decoded on its own.
    fn escape(&mut self, byte: u8, emit: &mut impl FnMut(Key)) -> bool {
        let introducer = self.pending.get(1).copied().filter(|_| self.len > 1);
        match (introducer, byte) {
            (None, b'[' | b'O') => {
                self.pending[1] = byte;
                self.len = 2;
                true
            }
            // Parameters and intermediates of a CSI sequence.
            (Some(b'['), 0x20..=0x3f) => {
                if self.len < self.pending.len() {
                    self.pending[self.len] = byte;
                    self.len += 1;
                }
                true
            }
            // The final byte.
            (Some(b'[' | b'O'), 0x40..=0x7e) => {
                let key = match (&self.pending[1..self.len], byte) {
                    (b"[" | b"O", b'A') => Some(Key::Up),
                    (b"[" | b"O", b'B') => Some(Key::Down),
                    (b"[" | b"O", b'C') => Some(Key::Right),
                    (b"[" | b"O", b'D') => Some(Key::Left),
                    (b"[" | b"O", b'H') | (b"[1", b'~') => Some(Key::Home),
                    (b"[" | b"O", b'F') | (b"[4", b'~') => Some(Key::End),
                    (b"[3", b'~') => Some(Key::Delete),
                    (b"[5;2", b'~') => Some(Key::ShiftPageUp),
                    (b"[6;2", b'~') => Some(Key::ShiftPageDown),
                    (b"[1;2", b'A') => Some(Key::ShiftUp),
                    (b"[1;2", b'B') => Some(Key::ShiftDown),
                    _ => None,
                };
                self.len = 0;
                if let Some(key) = key {
                    emit(key);
                }
                true
            }
            _ => {
                self.len = 0;
                false
            }
        }
    }

    /// Adds a continuation byte to a multi-byte UTF-8 character.
    fn utf8_continue(&mut self, byte: u8, emit: &mut impl FnMut(Key)) {
        self.pending[self.len] = byte;
        self.len += 1;
        let expected = match self.pending[0] {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            _ => 4,
        };
        if self.len < expected {
            return;
        }
        let ch = core::str::from_utf8(&self.pending[..self.len]).ok().and_then(|text| text.chars().next());
        self.len = 0;
        if let Some(key) = Key::from_char(ch.unwrap_or(char::REPLACEMENT_CHARACTER)) {
            emit(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(bytes: &[u8]) -> Vec<Key> {
        let mut decoder = SerialDecoder::default();
        let mut keys = Vec::new();
        for &byte in bytes {
            decoder.feed(byte, &mut |key| keys.push(key));
        }
        keys
    }

    fn chars(text: &str) -> Vec<Key> {
        text.chars().map(Key::Char).collect()
    }

    #[test]
    fn shift_with_page_and_arrow_keys_scrolls() {
        assert_eq!(
            keys(b"\x1b[5;2~\x1b[6;2~\x1b[1;2A\x1b[1;2B"),
            [Key::ShiftPageUp, Key::ShiftPageDown, Key::ShiftUp, Key::ShiftDown]
        );
    }

    #[test]
    fn nothing_after_a_broken_sequence_is_lost() {
        assert_eq!(keys(b"\x1ba"), chars("a"), "a lone ESC");
        assert_eq!(keys(b"\x1b\x1b[A"), [Key::Up], "ESC, then a whole sequence");
        assert_eq!(keys(b"\xc3a"), chars("\u{fffd}a"), "a cut-short character");
        assert_eq!(keys(b"\xe2\x9c\x1b[D"), [Key::Char('\u{fffd}'), Key::Left]);
        assert_eq!(keys(b"\xff\xfeb"), chars("\u{fffd}\u{fffd}b"), "bytes that never start a character");
        assert_eq!(keys(b"\x80x"), chars("\u{fffd}x"), "a stray continuation byte");
        assert_eq!(keys(b"\xed\xa0\x80z"), chars("\u{fffd}z"), "an encoded surrogate");
        assert_eq!(keys(b"\x1b[\rz"), [Key::Enter, Key::Char('z')], "a CSI cut short by Enter");
    }

    #[test]
    fn garbage_then_a_command_reaches_the_shell_whole() {
        let mut decoder = SerialDecoder::default();
        let mut typed = Vec::new();
        // Fed in pieces, as a terminal's bytes arrive: sequences split
        // across the pieces.
        for piece in [&b"\xff\x1b"[..], b"[", b"5", b"~\xc3", b"\x1b", b"echo ok\x1b[", b"D\x1b[C\r"] {
            for &byte in piece {
                decoder.feed(byte, &mut |key| typed.push(key));
            }
        }
        let mut expected = chars("\u{fffd}\u{fffd}echo ok");
        expected.extend([Key::Left, Key::Right, Key::Enter]);
        assert_eq!(typed, expected);
    }

    #[test]
    fn text_and_line_endings() {
        assert_eq!(keys(b"hi\r"), [Key::Char('h'), Key::Char('i'), Key::Enter]);
        assert_eq!(keys(b"a\r\nb\n"), [Key::Char('a'), Key::Enter, Key::Char('b'), Key::Enter]);
        assert_eq!(keys(b"\x7f\x08"), [Key::Backspace, Key::Backspace]);
        assert_eq!(keys(b"\x03"), [Key::Ctrl('c')]);
    }

    #[test]
    fn arrows_home_end_delete() {
        assert_eq!(keys(b"\x1b[A\x1b[B\x1b[C\x1b[D"), [Key::Up, Key::Down, Key::Right, Key::Left]);
        assert_eq!(
            keys(b"\x1b[H\x1b[F\x1bOH\x1b[4~\x1b[3~"),
            [Key::Home, Key::End, Key::Home, Key::End, Key::Delete]
        );
        assert_eq!(keys(b"\x1b[1;5Cx"), [Key::Char('x')], "unknown sequences are swallowed");
    }

    #[test]
    fn utf8_characters_arrive_whole() {
        assert_eq!(keys("é✓".as_bytes()), [Key::Char('é'), Key::Char('✓')]);
        assert_eq!(keys(b"\xff"), [Key::Char('\u{fffd}')]);
    }
}
