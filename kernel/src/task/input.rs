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
/// arrows, Home, End and Delete.
#[derive(Debug, Default)]
pub struct SerialDecoder {
    pending: [u8; 8],
    len: usize,
    /// The previous byte was CR (a following LF is the same Enter).
    after_cr: bool,
}

impl SerialDecoder {
    pub fn feed(&mut self, byte: u8) -> Option<Key> {
        let after_cr = core::mem::take(&mut self.after_cr);
        if self.len == 0 {
            return match byte {
                0x1b => {
                    self.pending[0] = byte;
                    self.len = 1;
                    None
                }
                b'\n' if after_cr => None,
                b'\r' => {
                    self.after_cr = true;
                    Some(Key::Enter)
                }
                0x80.. => self.utf8(byte),
                _ => Key::from_char(byte as char),
            };
        }
        if self.pending[0] != 0x1b {
            return self.utf8(byte);
        }
        self.pending[self.len] = byte;
        self.len += 1;
        let key = match &self.pending[..self.len] {
            [0x1b] | [0x1b, b'[' | b'O'] => return None,
            [0x1b, b'[' | b'O', b'A'] => Some(Key::Up),
            [0x1b, b'[' | b'O', b'B'] => Some(Key::Down),
            [0x1b, b'[' | b'O', b'C'] => Some(Key::Right),
            [0x1b, b'[' | b'O', b'D'] => Some(Key::Left),
            [0x1b, b'[' | b'O', b'H'] | [0x1b, b'[', b'1', b'~'] => Some(Key::Home),
            [0x1b, b'[' | b'O', b'F'] | [0x1b, b'[', b'4', b'~'] => Some(Key::End),
            [0x1b, b'[', b'3', b'~'] => Some(Key::Delete),
            [0x1b, b'[', rest @ ..]
                if rest.iter().all(|b| b.is_ascii_digit() || *b == b';') && self.len < 8 =>
            {
                return None;
            }
            _ => None,
        };
        self.len = 0;
        key
    }

    /// Collects a multi-byte UTF-8 character.
    fn utf8(&mut self, byte: u8) -> Option<Key> {
        self.pending[self.len] = byte;
        self.len += 1;
        match core::str::from_utf8(&self.pending[..self.len]) {
            Ok(text) => {
                let ch = text.chars().next();
                self.len = 0;
                ch.and_then(Key::from_char)
            }
            Err(error) if error.error_len().is_none() && self.len < 4 => None,
            Err(_) => {
                self.len = 0;
                Some(Key::Char('\u{fffd}'))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(bytes: &[u8]) -> Vec<Key> {
        let mut decoder = SerialDecoder::default();
        bytes.iter().filter_map(|&b| decoder.feed(b)).collect()
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
