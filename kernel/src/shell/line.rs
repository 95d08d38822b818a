//! The line editor: keys in, a line out, with the edits drawn through ANSI
//! escape sequences, which the screen consoles and serial terminals share.

use crate::task::input::Key;
use alloc::{collections::VecDeque, string::String, vec::Vec};
use core::fmt::{self, Write};

/// Lines kept for Up/Down.
const HISTORY: usize = 32;

/// What a key led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Keep editing.
    Editing,
    /// Enter: the finished line.
    Line(String),
    /// Ctrl-C: the line was dropped.
    Cancelled,
}

pub struct LineEditor {
    prompt: &'static str,
    line: Vec<char>,
    cursor: usize,
    /// The longest line accepted; keys past it are refused.
    max: usize,
    history: VecDeque<String>,
    /// Which history entry Up/Down shows (None: the line being typed).
    browsing: Option<usize>,
    draft: Vec<char>,
}

impl LineEditor {
    pub fn new(prompt: &'static str, max: usize) -> Self {
        Self {
            prompt,
            line: Vec::new(),
            cursor: 0,
            max: max.max(1),
            history: VecDeque::new(),
            browsing: None,
            draft: Vec::new(),
        }
    }

    /// Writes the prompt for a new line.
    pub fn start(&self, out: &mut impl Write) -> fmt::Result {
        out.write_str(self.prompt)
    }

    /// Applies `key`, drawing the change on `out`.
    pub fn key(&mut self, key: Key, out: &mut impl Write) -> Result<Outcome, fmt::Error> {
        match key {
            Key::Char(ch) => {
                if self.line.len() >= self.max {
                    return Ok(Outcome::Editing);
                }
                self.line.insert(self.cursor, ch);
                self.cursor += 1;
                // Typing at the end, the common case, needs no redraw.
                if self.cursor == self.line.len() {
                    out.write_char(ch)?;
                    return Ok(Outcome::Editing);
                }
            }
            Key::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.line.remove(self.cursor);
                if self.cursor == self.line.len() {
                    out.write_str("\u{8} \u{8}")?;
                    return Ok(Outcome::Editing);
                }
            }
            Key::Delete if self.cursor < self.line.len() => {
                self.line.remove(self.cursor);
            }
            Key::Left => self.cursor = self.cursor.saturating_sub(1),
            Key::Right => self.cursor = (self.cursor + 1).min(self.line.len()),
            Key::Home | Key::Ctrl('a') => self.cursor = 0,
            Key::End | Key::Ctrl('e') => self.cursor = self.line.len(),
            Key::Up => self.browse_back(),
            Key::Down => self.browse_forward(),
            Key::Enter => {
                out.write_str("\n")?;
                let line: String = self.line.drain(..).collect();
                self.cursor = 0;
                self.browsing = None;
                if !line.trim().is_empty() && self.history.back() != Some(&line) {
                    if self.history.len() == HISTORY {
                        self.history.pop_front();
                    }
                    self.history.push_back(line.clone());
                }
                return Ok(Outcome::Line(line));
            }
            Key::Ctrl('c') => {
                out.write_str("^C\n")?;
                self.line.clear();
                self.cursor = 0;
                self.browsing = None;
                return Ok(Outcome::Cancelled);
            }
            _ => return Ok(Outcome::Editing),
        }
        self.redraw(out)?;
        Ok(Outcome::Editing)
    }

    /// The line as typed so far.
    pub fn line(&self) -> String {
        self.line.iter().collect()
    }

    fn browse_back(&mut self) {
        let index = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.draft = self.line.clone();
                self.history.len() - 1
            }
            Some(0) => 0,
            Some(i) => i - 1,
        };
        self.browsing = Some(index);
        self.line = self.history[index].chars().take(self.max).collect();
        self.cursor = self.line.len();
    }

    fn browse_forward(&mut self) {
        match self.browsing {
            None => {}
            Some(i) if i + 1 < self.history.len() => {
                self.browsing = Some(i + 1);
                self.line = self.history[i + 1].chars().take(self.max).collect();
            }
            Some(_) => {
                self.browsing = None;
                self.line = core::mem::take(&mut self.draft);
            }
        }
        self.cursor = self.line.len();
    }

    /// Rewrites the line: back to its start, prompt and text, clear the
    /// rest, then put the cursor where it belongs.
    fn redraw(&self, out: &mut impl Write) -> fmt::Result {
        out.write_str("\r")?;
        out.write_str(self.prompt)?;
        for ch in &self.line {
            out.write_char(*ch)?;
        }
        out.write_str("\x1b[K")?;
        let back = self.line.len() - self.cursor;
        if back > 0 {
            write!(out, "\x1b[{back}D")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::grid::tests::{grid, text};
    use crate::console::terminal::Terminal;

    fn type_keys(editor: &mut LineEditor, keys: &[Key]) -> (Vec<Outcome>, String) {
        let mut out = String::new();
        let outcomes = keys.iter().map(|&k| editor.key(k, &mut out).unwrap()).collect();
        (outcomes, out)
    }

    fn chars(s: &str) -> Vec<Key> {
        s.chars().map(Key::Char).collect()
    }

    #[test]
    fn typing_and_enter_give_the_line() {
        let mut editor = LineEditor::new("> ", 80);
        let mut keys = chars("echo hi");
        keys.push(Key::Enter);
        let (outcomes, _) = type_keys(&mut editor, &keys);
        assert_eq!(outcomes.last(), Some(&Outcome::Line("echo hi".into())));
        assert_eq!(editor.line(), "");
    }

    #[test]
    fn editing_in_the_middle() {
        let mut editor = LineEditor::new("> ", 80);
        let mut keys = chars("ecoh");
        keys.extend([Key::Left, Key::Left, Key::Backspace, Key::End, Key::Char('o'), Key::Home, Key::Delete]);
        keys.extend(chars("E"));
        type_keys(&mut editor, &keys);
        assert_eq!(editor.line(), "Eoho");
        type_keys(&mut editor, &[Key::End, Key::Left, Key::Char('!')]);
        assert_eq!(editor.line(), "Eoh!o");
    }

    #[test]
    fn history_walks_back_and_forth_and_keeps_the_draft() {
        let mut editor = LineEditor::new("> ", 80);
        for line in ["one", "two"] {
            let mut keys = chars(line);
            keys.push(Key::Enter);
            type_keys(&mut editor, &keys);
        }
        type_keys(&mut editor, &chars("dra"));
        type_keys(&mut editor, &[Key::Up]);
        assert_eq!(editor.line(), "two");
        type_keys(&mut editor, &[Key::Up, Key::Up]);
        assert_eq!(editor.line(), "one");
        type_keys(&mut editor, &[Key::Down]);
        assert_eq!(editor.line(), "two");
        type_keys(&mut editor, &[Key::Down]);
        assert_eq!(editor.line(), "dra");
    }

    #[test]
    fn overlong_lines_are_refused_without_corruption() {
        let mut editor = LineEditor::new("> ", 5);
        type_keys(&mut editor, &chars("abcdefgh"));
        assert_eq!(editor.line(), "abcde");
        type_keys(&mut editor, &[Key::Home, Key::Char('X')]);
        assert_eq!(editor.line(), "abcde");
    }

    #[test]
    fn the_drawing_shows_the_line_on_a_terminal() {
        let mut editor = LineEditor::new("> ", 40);
        let mut term = Terminal::new(grid(20, 3));
        let mut out = String::new();
        editor.start(&mut out).unwrap();
        for key in chars("helo").into_iter().chain([Key::Left, Key::Char('l'), Key::End, Key::Backspace]) {
            editor.key(key, &mut out).unwrap();
        }
        term.write(out.as_bytes());
        assert_eq!(text(term.grid(), 0), "> hell");
        assert_eq!(term.grid().cursor(), (0, 6));
    }

    #[test]
    fn ctrl_c_cancels_the_line() {
        let mut editor = LineEditor::new("> ", 40);
        let (outcomes, out) = type_keys(&mut editor, &[Key::Char('x'), Key::Ctrl('c')]);
        assert_eq!(outcomes.last(), Some(&Outcome::Cancelled));
        assert!(out.ends_with("^C\n"));
        assert_eq!(editor.line(), "");
    }
}
