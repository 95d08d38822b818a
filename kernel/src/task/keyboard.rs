//! Keyboard input: the keyboard interrupt hands each scancode over through a
//! bounded lock-free queue, so the handler never allocates, never takes a
//! lock the rest of the kernel may hold, and never waits.

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// Scancodes between the interrupt handler and the keyboard task.
pub static SCANCODES: ScancodeQueue<128> = ScancodeQueue::new();

/// A single-producer (the interrupt handler), single-consumer (the task)
/// ring of bytes. When full, new bytes are dropped and counted: the consumer
/// reports drops from task context, never the handler.
pub struct ScancodeQueue<const N: usize> {
    slots: [AtomicU8; N],
    /// Next slot to read; only the consumer moves it.
    head: AtomicUsize,
    /// Next slot to write; only the producer moves it.
    tail: AtomicUsize,
    dropped: AtomicUsize,
}

impl<const N: usize> ScancodeQueue<N> {
    pub const fn new() -> Self {
        Self {
            slots: [const { AtomicU8::new(0) }; N],
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        }
    }

    /// Adds a byte; false (and counted) when the queue is full.
    pub fn push(&self, byte: u8) -> bool {
        let tail = self.tail.load(Ordering::Relaxed);
        if tail.wrapping_sub(self.head.load(Ordering::Acquire)) == N {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.slots[tail % N].store(byte, Ordering::Relaxed);
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
        true
    }

    /// Takes the oldest byte.
    pub fn pop(&self) -> Option<u8> {
        let head = self.head.load(Ordering::Relaxed);
        if head == self.tail.load(Ordering::Acquire) {
            return None;
        }
        let byte = self.slots[head % N].load(Ordering::Relaxed);
        self.head.store(head.wrapping_add(1), Ordering::Release);
        Some(byte)
    }

    /// Bytes dropped because the queue was full, since the last call.
    pub fn take_dropped(&self) -> usize {
        self.dropped.swap(0, Ordering::Relaxed)
    }
}

impl<const N: usize> Default for ScancodeQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn bytes_come_out_in_order_and_overflow_is_counted() {
        let queue = ScancodeQueue::<4>::new();
        for byte in 1..=6 {
            queue.push(byte);
        }
        assert_eq!((1..=4).map(|_| queue.pop().unwrap()).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(queue.pop(), None);
        assert_eq!(queue.take_dropped(), 2);
        assert_eq!(queue.take_dropped(), 0);
        assert!(queue.push(9));
        assert_eq!(queue.pop(), Some(9));
    }

    #[test]
    fn a_producer_and_a_consumer_thread_lose_nothing_that_fit() {
        let queue = Arc::new(ScancodeQueue::<16>::new());
        let producer = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || {
                for i in 0..100_000u32 {
                    while !queue.push(i as u8) {
                        queue.take_dropped();
                        std::hint::spin_loop();
                    }
                }
            })
        };
        let mut expected = 0u32;
        while expected < 100_000 {
            if let Some(byte) = queue.pop() {
                assert_eq!(byte, expected as u8);
                expected += 1;
            }
        }
        producer.join().unwrap();
    }
}
