//! The interrupt descriptor table: every CPU exception goes to its handler
//! in [`super::exceptions`], every other vector to [`super::interrupts`],
//! which knows which driver claimed it. The table itself names no device.

use super::{exceptions, interrupts};
use spin::Once;
use x86_64::structures::idt::{HandlerFunc, InterruptDescriptorTable, InterruptStackFrame};

static IDT: Once<InterruptDescriptorTable> = Once::new();

/// One entry point per device vector, so the dispatcher learns which vector
/// fired without asking the interrupt controller.
extern "x86-interrupt" fn device_vector<const VECTOR: u8>(_frame: InterruptStackFrame) {
    interrupts::dispatch(VECTOR);
}

/// The entry points of device vectors `$high * 16 + $low`, for each `$high`
/// and every `$low` in the list, in order: a table that one loop installs
/// (installing each in a statement of its own made 18 KiB of code).
macro_rules! device_vectors {
    ([$($high:literal)*], $lows:tt) => {
        [$( device_vectors!(@row $high, $lows), )*].as_flattened()
    };
    (@row $high:literal, [$($low:literal)*]) => {
        [$( device_vector::<{ $high * 16 + $low }> as HandlerFunc, )*]
    };
}

/// The first device vector: 0 to 31 are the CPU's exceptions.
const FIRST_DEVICE_VECTOR: u8 = 32;

/// Builds the table once and loads it. Safe to call before anything else is
/// up: exceptions report through the fatal sink, or silently halt while there
/// is none.
pub fn init() {
    let idt = IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        exceptions::install(&mut idt);
        let handlers: &[HandlerFunc] =
            device_vectors!([2 3 4 5 6 7 8 9 10 11 12 13 14 15], [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15]);
        for (vector, &handler) in (FIRST_DEVICE_VECTOR..=u8::MAX).zip(handlers) {
            idt[vector].set_handler_fn(handler);
        }
        idt
    });
    idt.load();
}
