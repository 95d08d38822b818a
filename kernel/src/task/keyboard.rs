//! Keys from the PS/2 keyboard: the keyboard task decodes the scancodes the
//! driver ([`ps2`](crate::drivers::ps2)) receives with `pc-keyboard` (US layout unless `keymap=`
//! on the command line says otherwise) into [`Key`]s.

use super::input::{self, Key};
use crate::drivers::ps2::SCANCODES;
use futures_util::StreamExt;
use pc_keyboard::{DecodedKey, HandleControl, KeyCode, PS2Keyboard, ScancodeSet1, layouts::AnyLayout};

/// Scancodes dropped (queue full) that the keyboard task has reported.
static REPORTED_DROPS: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// How many dropped scancodes the keyboard task has reported so far.
pub fn reported_drops() -> usize {
    REPORTED_DROPS.load(core::sync::atomic::Ordering::Relaxed)
}

/// The layout named by `keymap=` (us, uk, de, fr, no, fi, dvorak, colemak, jis).
pub fn layout(name: Option<&str>) -> Option<AnyLayout> {
    use pc_keyboard::layouts::*;
    Some(match name.unwrap_or("us") {
        "us" => AnyLayout::Us104Key(Us104Key),
        "uk" => AnyLayout::Uk105Key(Uk105Key),
        "de" => AnyLayout::De105Key(De105Key),
        "fr" => AnyLayout::Azerty(Azerty),
        "no" => AnyLayout::No105Key(No105Key),
        "fi" | "se" => AnyLayout::FiSe105Key(FiSe105Key),
        "dvorak" => AnyLayout::Dvorak104Key(Dvorak104Key),
        "colemak" => AnyLayout::Colemak(Colemak),
        "jis" => AnyLayout::Jis109Key(Jis109Key),
        _ => return None,
    })
}

/// Decodes scancodes into keys for as long as the kernel runs. Dropped
/// scancodes (the queue was full) are reported here, in task context.
pub async fn task(layout: AnyLayout) {
    let mut keyboard = PS2Keyboard::new(ScancodeSet1::new(), layout, HandleControl::MapLettersToUnicode);
    let mut scancodes = SCANCODES.stream();
    while let Some(scancode) = scancodes.next().await {
        let dropped = SCANCODES.take_dropped();
        if dropped > 0 {
            REPORTED_DROPS.fetch_add(dropped, core::sync::atomic::Ordering::Relaxed);
            log::warn!("keyboard: {dropped} scancodes dropped (the queue was full)");
        }
        let Ok(Some(event)) = keyboard.add_byte(scancode) else { continue };
        let key = key_for(keyboard.process_keyevent(event), keyboard.get_modifiers().is_shifted());
        if let Some(key) = key {
            input::KEYS.push(key);
        }
    }
}

/// The key a decoded key press stands for; Shift with Page Up/Down or
/// Up/Down scrolls the console back. Shared with the USB keyboards.
pub fn key_for(decoded: Option<DecodedKey>, shifted: bool) -> Option<Key> {
    match decoded? {
        DecodedKey::Unicode(ch) => Key::from_char(ch),
        DecodedKey::RawKey(code) if shifted => match code {
            KeyCode::PageUp => Some(Key::ShiftPageUp),
            KeyCode::PageDown => Some(Key::ShiftPageDown),
            KeyCode::ArrowUp => Some(Key::ShiftUp),
            KeyCode::ArrowDown => Some(Key::ShiftDown),
            _ => None,
        },
        DecodedKey::RawKey(code) => match code {
            KeyCode::ArrowUp => Some(Key::Up),
            KeyCode::ArrowDown => Some(Key::Down),
            KeyCode::ArrowLeft => Some(Key::Left),
            KeyCode::ArrowRight => Some(Key::Right),
            KeyCode::Home => Some(Key::Home),
            KeyCode::End => Some(Key::End),
            _ => None,
        },
    }
}
