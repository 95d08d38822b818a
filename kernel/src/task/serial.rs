//! Input from the serial line: COM1's receive interrupt (IRQ 4) hands bytes
//! over through [`BYTES`]; the serial task decodes them into keys, so the
//! kernel can be used headless.

use super::input::{self, SerialDecoder};
use super::queue::Input;
use futures_util::StreamExt;

/// Bytes between the COM1 interrupt handler and the serial task.
pub static BYTES: Input<256> = Input::new();

/// Decodes serial bytes into keys for as long as the kernel runs.
pub async fn task() {
    let mut decoder = SerialDecoder::default();
    let mut bytes = BYTES.stream();
    while let Some(byte) = bytes.next().await {
        let dropped = BYTES.take_dropped();
        if dropped > 0 {
            log::warn!("serial: {dropped} received bytes dropped (the queue was full)");
        }
        if let Some(key) = decoder.feed(byte) {
            input::KEYS.push(key);
        }
    }
}
