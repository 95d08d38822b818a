//! Bytes from interrupt handlers to tasks: a bounded lock-free queue and an
//! async stream over it. The handler never allocates, never takes a lock the
//! rest of the kernel may hold, and never waits.

use core::pin::Pin;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use core::task::{Context, Poll};
use futures_util::{Stream, task::AtomicWaker};

/// A single-producer (the interrupt handler), single-consumer (the task)
/// ring of bytes. When full, new bytes are dropped and counted: the consumer
/// reports drops from task context, never the handler.
struct ByteQueue<const N: usize> {
    slots: [AtomicU8; N],
    /// Next slot to read; only the consumer moves it.
    head: AtomicUsize,
    /// Next slot to write; only the producer moves it.
    tail: AtomicUsize,
    dropped: AtomicUsize,
}

impl<const N: usize> ByteQueue<N> {
    const fn new() -> Self {
        Self {
            slots: [const { AtomicU8::new(0) }; N],
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        }
    }

    /// Adds a byte; false (and counted) when the queue is full.
    fn push(&self, byte: u8) -> bool {
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
    fn pop(&self) -> Option<u8> {
        let head = self.head.load(Ordering::Relaxed);
        if head == self.tail.load(Ordering::Acquire) {
            return None;
        }
        let byte = self.slots[head % N].load(Ordering::Relaxed);
        self.head.store(head.wrapping_add(1), Ordering::Release);
        Some(byte)
    }

    /// Bytes dropped because the queue was full, since the last call.
    fn take_dropped(&self) -> usize {
        self.dropped.swap(0, Ordering::Relaxed)
    }
}

/// A queue and the task waiting on it: the interrupt side calls
/// [`IrqQueue::push`], the task awaits [`IrqQueue::stream`].
pub struct IrqQueue<const N: usize> {
    queue: ByteQueue<N>,
    waker: AtomicWaker,
}

impl<const N: usize> IrqQueue<N> {
    pub const fn new() -> Self {
        Self { queue: ByteQueue::new(), waker: AtomicWaker::new() }
    }

    /// From an interrupt handler: queue a byte and wake the task.
    pub fn push(&self, byte: u8) {
        self.queue.push(byte);
        self.waker.wake();
    }

    /// Takes a byte without waiting.
    pub fn pop(&self) -> Option<u8> {
        self.queue.pop()
    }

    /// Bytes dropped (queue full) since the last call.
    pub fn take_dropped(&self) -> usize {
        self.queue.take_dropped()
    }

    /// The bytes as they arrive.
    pub fn stream(&'static self) -> ByteStream<N> {
        ByteStream { input: self }
    }
}

impl<const N: usize> Default for IrqQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

pub struct ByteStream<const N: usize> {
    input: &'static IrqQueue<N>,
}

impl<const N: usize> Stream for ByteStream<N> {
    type Item = u8;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context) -> Poll<Option<u8>> {
        if let Some(byte) = self.input.queue.pop() {
            return Poll::Ready(Some(byte));
        }
        self.input.waker.register(cx.waker());
        // A byte may have come between the first look and the registration.
        match self.input.queue.pop() {
            Some(byte) => {
                self.input.waker.take();
                Poll::Ready(Some(byte))
            }
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn bytes_come_out_in_order_and_overflow_is_counted() {
        let queue = ByteQueue::<4>::new();
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
        let queue = Arc::new(ByteQueue::<16>::new());
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
