//! The interrupt descriptor table: every CPU exception goes to its handler
//! in [`super::exceptions`], every other vector to [`super::interrupts`],
//! which knows which driver claimed it. The table itself names no device.

use super::{exceptions, interrupts};
use spin::Once;
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame};

static IDT: Once<InterruptDescriptorTable> = Once::new();

/// One entry point per device vector, so the dispatcher learns which vector
/// fired without asking the interrupt controller.
extern "x86-interrupt" fn device_vector<const VECTOR: u8>(_frame: InterruptStackFrame) {
    interrupts::dispatch(VECTOR);
}

/// Sets the handlers of device vectors `$high * 16 + $low`, for each `$high`
/// and every `$low` in the list.
macro_rules! device_vectors {
    ($idt:ident, [$($high:literal)*], $lows:tt) => {
        $( device_vectors!(@row $idt, $high, $lows); )*
    };
    (@row $idt:ident, $high:literal, [$($low:literal)*]) => {
        $( $idt[$high * 16 + $low].set_handler_fn(device_vector::<{ $high * 16 + $low }>); )*
    };
}

/// Builds the table once and loads it. Safe to call before anything else is
/// up: exceptions report through the fatal sink, or silently halt while there
/// is none.
pub fn init() {
    let idt = IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        exceptions::install(&mut idt);
        device_vectors!(idt, [2 3 4 5 6 7 8 9 10 11 12 13 14 15], [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]);
        idt
    });
    idt.load();
}
