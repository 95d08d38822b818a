//! Keys from USB keyboards: each boot protocol report (modifier bits and up
//! to six key usages) is compared with the keyboard's previous one, and the
//! presses and releases go through `pc-keyboard`'s decoder with the same
//! layout (`keymap=`) and into the same [`input::KEYS`] as the PS/2 keys.
//!
//! The keyboards are told to report only on change (SET_IDLE 0), so the
//! kernel repeats a held key itself: the last key pressed, once it has been
//! held for [`REPEAT_DELAY`], then every [`REPEAT_INTERVAL`] until it is
//! released or another key is pressed, timed on the kernel's clock.
//! Modifiers and the lock keys do not repeat. Caps Lock and Num Lock light
//! their LEDs.

use super::input::{self, Key};
use super::keyboard;
use crate::drivers::usb::{self, KeyboardEvent};
use crate::time;
use alloc::{collections::BTreeMap, string::String, vec::Vec};
use core::pin::pin;
use core::time::Duration;
use futures_util::future::{Either, select};
use pc_keyboard::{
    EventDecoder, HandleControl, KeyCode, KeyEvent, KeyState, UsbBootKeyboardReport, UsbKeyboard,
    layouts::AnyLayout,
};

/// How long a key is held before it repeats.
pub const REPEAT_DELAY: Duration = Duration::from_millis(500);
/// Time between repeats: 25 keys a second.
pub const REPEAT_INTERVAL: Duration = Duration::from_millis(40);

/// The HID "ErrorRollOver" usage: more keys are down than the report can
/// name. Such a report says nothing about which keys are down.
const ERROR_ROLL_OVER: u8 = 0x01;
/// HID LED report bits.
const LED_NUM_LOCK: u8 = 1 << 0;
const LED_CAPS_LOCK: u8 = 1 << 1;
/// Modifier byte bits of the two Shift keys.
const SHIFT_BITS: u8 = 0x02 | 0x20;

/// One USB keyboard's state.
pub struct Keyboard {
    /// Turns reports into press and release events (its own decoder is
    /// not used: `decoder` below has the one state).
    reports: UsbKeyboard<AnyLayout>,
    decoder: EventDecoder<AnyLayout>,
    shifted: bool,
    caps_lock: bool,
    num_lock: bool,
    /// The key that repeats, and when it next does.
    repeat: Option<(KeyCode, Duration)>,
}

impl Keyboard {
    /// `layout` returns a fresh copy of the layout (the decoder and the
    /// report differ each keep one).
    pub fn new(layout: impl Fn() -> AnyLayout) -> Self {
        Self {
            reports: UsbKeyboard::new(layout(), HandleControl::MapLettersToUnicode),
            decoder: EventDecoder::new(layout(), HandleControl::MapLettersToUnicode),
            shifted: false,
            caps_lock: false,
            // pc-keyboard starts with Num Lock on.
            num_lock: true,
            repeat: None,
        }
    }

    /// The LED bits for the lock states.
    pub fn leds(&self) -> u8 {
        (if self.num_lock { LED_NUM_LOCK } else { 0 }) | if self.caps_lock { LED_CAPS_LOCK } else { 0 }
    }

    /// Takes a report received at `now`; the keys it makes go to `emit`.
    /// Returns the new LED bits when a lock key changed them.
    pub fn report(&mut self, report: [u8; 8], now: Duration, emit: &mut impl FnMut(Key)) -> Option<u8> {
        if report[2..].contains(&ERROR_ROLL_OVER) {
            return None;
        }
        let leds = self.leds();
        self.shifted = report[0] & SHIFT_BITS != 0;
        let report =
            UsbBootKeyboardReport { modifiers: report[0], keys: report[2..8].try_into().expect("6 keys") };
        let events: Vec<KeyEvent> = self.reports.handle_report_raw(&report).collect();
        for event in events {
            let code = event.code;
            match event.state {
                KeyState::Down => {
                    match code {
                        KeyCode::CapsLock => self.caps_lock = !self.caps_lock,
                        KeyCode::NumpadLock => self.num_lock = !self.num_lock,
                        _ => {}
                    }
                    if repeats(code) {
                        self.repeat = Some((code, now + REPEAT_DELAY));
                    }
                }
                KeyState::Up if self.repeat.is_some_and(|(held, _)| held == code) => self.repeat = None,
                _ => {}
            }
            if let Some(key) = keyboard::key_for(self.decoder.process_keyevent(event), self.shifted) {
                emit(key);
            }
        }
        (self.leds() != leds).then(|| self.leds())
    }

    /// When the held key next repeats.
    pub fn next_repeat(&self) -> Option<Duration> {
        self.repeat.map(|(_, at)| at)
    }

    /// Repeats the held key as often as was due by `now`.
    pub fn repeat(&mut self, now: Duration, emit: &mut impl FnMut(Key)) {
        while let Some((code, at)) = self.repeat
            && at <= now
        {
            self.repeat = Some((code, at + REPEAT_INTERVAL));
            let decoded = self.decoder.process_keyevent(KeyEvent::new(code, KeyState::Down));
            if let Some(key) = keyboard::key_for(decoded, self.shifted) {
                emit(key);
            }
        }
    }
}

fn repeats(code: KeyCode) -> bool {
    !matches!(
        code,
        KeyCode::LShift
            | KeyCode::RShift
            | KeyCode::LControl
            | KeyCode::RControl
            | KeyCode::LAlt
            | KeyCode::RAltGr
            | KeyCode::LWin
            | KeyCode::RWin
            | KeyCode::CapsLock
            | KeyCode::NumpadLock
            | KeyCode::ScrollLock
    )
}

/// Reads every USB keyboard for as long as the kernel runs, with the
/// layout `keymap=` names.
pub async fn task(keymap: Option<String>) {
    let layout = || {
        keyboard::layout(keymap.as_deref()).unwrap_or_else(|| keyboard::layout(None).expect("the US layout"))
    };
    let mut keyboards: BTreeMap<u32, Keyboard> = BTreeMap::new();
    let mut push = |key| input::KEYS.push(key);
    loop {
        let next_repeat = keyboards.values().filter_map(Keyboard::next_repeat).min();
        let event = match next_repeat {
            None => Some(usb::next_keyboard_event().await),
            Some(at) => {
                let wait = at.saturating_sub(time::uptime());
                match select(pin!(usb::next_keyboard_event()), pin!(time::sleep(wait))).await {
                    Either::Left((event, _)) => Some(event),
                    Either::Right(_) => None,
                }
            }
        };
        let now = time::uptime();
        match event {
            Some(KeyboardEvent::Attached(id)) => {
                let keyboard = Keyboard::new(layout);
                usb::set_leds(id, keyboard.leds());
                keyboards.insert(id, keyboard);
            }
            Some(KeyboardEvent::Report(id, report)) => {
                if let Some(keyboard) = keyboards.get_mut(&id)
                    && let Some(leds) = keyboard.report(report, now, &mut push)
                {
                    usb::set_leds(id, leds);
                }
            }
            Some(KeyboardEvent::Detached(id)) => {
                keyboards.remove(&id);
            }
            None => {}
        }
        for keyboard in keyboards.values_mut() {
            keyboard.repeat(now, &mut push);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> AnyLayout {
        keyboard::layout(None).unwrap()
    }

    /// HID usages.
    const A: u8 = 0x04;
    const B: u8 = 0x05;
    const C: u8 = 0x06;
    const ENTER: u8 = 0x28;
    const CAPS_LOCK: u8 = 0x39;
    const PAGE_UP: u8 = 0x4b;
    const UP: u8 = 0x52;
    const LEFT_CTRL: u8 = 0x01;
    const LEFT_SHIFT: u8 = 0x02;

    fn report(modifiers: u8, keys: &[u8]) -> [u8; 8] {
        let mut report = [0u8; 8];
        report[0] = modifiers;
        report[2..2 + keys.len()].copy_from_slice(keys);
        report
    }

    fn feed(keyboard: &mut Keyboard, reports: &[[u8; 8]]) -> Vec<Key> {
        let mut keys = Vec::new();
        for &r in reports {
            keyboard.report(r, Duration::ZERO, &mut |key| keys.push(key));
        }
        keys
    }

    #[test]
    fn presses_become_keys_once_and_releases_make_none() {
        let mut keyboard = Keyboard::new(us);
        let keys =
            feed(&mut keyboard, &[report(0, &[A]), report(0, &[A]), report(0, &[]), report(0, &[ENTER])]);
        assert_eq!(keys, [Key::Char('a'), Key::Enter]);
    }

    #[test]
    fn rollover_reports_each_new_key_in_turn() {
        let mut keyboard = Keyboard::new(us);
        // a, then a+b, then b+c (a released), then all six slots full.
        let keys = feed(
            &mut keyboard,
            &[
                report(0, &[A]),
                report(0, &[A, B]),
                report(0, &[B, C]),
                report(0, &[C, B, 0x07, 0x08, 0x09, 0x0a]),
            ],
        );
        let typed: Vec<Key> = "abcdefg".chars().map(Key::Char).collect();
        assert_eq!(keys, typed);
        // More than six keys: the report is ErrorRollOver, and says nothing
        // new; releasing everything afterwards types nothing.
        let keys = feed(&mut keyboard, &[report(0, &[1, 1, 1, 1, 1, 1]), report(0, &[])]);
        assert_eq!(keys, []);
    }

    #[test]
    fn modifiers_shift_and_control_the_keys() {
        let mut keyboard = Keyboard::new(us);
        let keys = feed(
            &mut keyboard,
            &[
                report(LEFT_SHIFT, &[]),
                report(LEFT_SHIFT, &[A]),
                report(0, &[]),
                report(0, &[A]),
                report(0, &[]),
            ],
        );
        assert_eq!(keys, [Key::Char('A'), Key::Char('a')]);
        let keys = feed(&mut keyboard, &[report(LEFT_CTRL, &[C]), report(0, &[])]);
        assert_eq!(keys, [Key::Ctrl('c')], "Ctrl-C, as on PS/2");
    }

    #[test]
    fn shift_with_page_up_and_up_scrolls_back() {
        let mut keyboard = Keyboard::new(us);
        let keys = feed(
            &mut keyboard,
            &[
                report(LEFT_SHIFT, &[PAGE_UP]),
                report(LEFT_SHIFT, &[]),
                report(LEFT_SHIFT, &[UP]),
                report(0, &[UP]),
            ],
        );
        assert_eq!(keys, [Key::ShiftPageUp, Key::ShiftUp]);
        assert_eq!(feed(&mut keyboard, &[report(0, &[]), report(0, &[UP])]), [Key::Up]);
    }

    #[test]
    fn caps_lock_toggles_its_led_and_the_letters() {
        let mut keyboard = Keyboard::new(us);
        assert_eq!(keyboard.leds(), LED_NUM_LOCK);
        let mut keys = Vec::new();
        let leds = keyboard.report(report(0, &[CAPS_LOCK]), Duration::ZERO, &mut |key| keys.push(key));
        assert_eq!(leds, Some(LED_NUM_LOCK | LED_CAPS_LOCK));
        assert_eq!(keyboard.report(report(0, &[]), Duration::ZERO, &mut |_| {}), None, "release: no change");
        keyboard.report(report(0, &[A]), Duration::ZERO, &mut |key| keys.push(key));
        assert_eq!(keys, [Key::Char('A')]);
    }

    #[test]
    fn a_held_key_repeats_after_the_delay_at_the_rate() {
        let mut keyboard = Keyboard::new(us);
        let mut keys = Vec::new();
        let start = Duration::from_secs(10);
        keyboard.report(report(0, &[A]), start, &mut |key| keys.push(key));
        keyboard.repeat(start + REPEAT_DELAY - Duration::from_millis(1), &mut |key| keys.push(key));
        assert_eq!(keys, [Key::Char('a')], "nothing before the delay");
        assert_eq!(keyboard.next_repeat(), Some(start + REPEAT_DELAY));
        // At the delay, and then 3 intervals later: 4 repeats in all.
        keyboard.repeat(start + REPEAT_DELAY + 3 * REPEAT_INTERVAL, &mut |key| keys.push(key));
        assert_eq!(keys.len(), 5);
        // A second key takes the repeat over; releasing it stops repeating.
        keyboard.report(report(0, &[A, B]), start + Duration::from_secs(1), &mut |key| keys.push(key));
        assert_eq!(keys.last(), Some(&Key::Char('b')));
        keyboard.report(report(0, &[A]), start + Duration::from_secs(1), &mut |key| keys.push(key));
        assert_eq!(keyboard.next_repeat(), None);
        keyboard.repeat(start + Duration::from_secs(5), &mut |key| keys.push(key));
        assert_eq!(keys.len(), 6);
    }

    #[test]
    fn modifiers_and_locks_do_not_repeat() {
        let mut keyboard = Keyboard::new(us);
        feed(&mut keyboard, &[report(LEFT_SHIFT, &[]), report(LEFT_SHIFT, &[CAPS_LOCK])]);
        assert_eq!(keyboard.next_repeat(), None);
    }
}
