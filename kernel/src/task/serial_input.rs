//! Keys from the serial line: the serial input task decodes the bytes COM1
//! receives ([`RECEIVED`]) into keys, so the kernel can be used
//! headless.

use super::input::{self, SerialDecoder};
use crate::drivers::uart::RECEIVED;
use futures_util::StreamExt;

/// Decodes serial bytes into keys for as long as the kernel runs.
pub async fn task() {
    let mut decoder = SerialDecoder::default();
    let mut bytes = RECEIVED.stream();
    while let Some(byte) = bytes.next().await {
        let dropped = RECEIVED.take_dropped();
        if dropped > 0 {
            log::warn!("serial: {dropped} received bytes dropped (the queue was full)");
        }
        decoder.feed(byte, &mut |key| input::KEYS.push(key));
    }
}
