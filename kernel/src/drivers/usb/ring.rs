//! The cycle-bit bookkeeping of xHCI rings, apart from the hardware: a
//! [`Producer`] fills a command or transfer ring whose last TRB links back
//! to its start, a [`Consumer`] takes what the controller wrote into an
//! event ring. A TRB belongs to its reader when its cycle bit equals the
//! reader's cycle state; the state flips each time the ring wraps.
//!
//! Ring memory is shared with the controller, so each TRB is read and
//! written with volatile accesses, and the word holding the cycle bit is
//! written last: the controller never sees a half-written TRB as its own.

use core::sync::atomic::{Ordering, fence};
use xhci::ring::trb::Link;

/// One Transfer Request Block: four little-endian words.
pub type Trb = [u32; 4];
/// Bytes in a TRB.
pub const TRB_BYTES: u64 = 16;
const CYCLE: u32 = 1;

/// Writes TRBs into a ring whose last entry is a Link TRB back to the
/// first, with Toggle Cycle set.
#[derive(Debug)]
pub struct Producer {
    enqueue: usize,
    cycle: bool,
}

impl Default for Producer {
    fn default() -> Self {
        Self::new()
    }
}

impl Producer {
    /// A ring the controller was given with its cycle state 1.
    pub const fn new() -> Self {
        Self { enqueue: 0, cycle: true }
    }

    /// Writes `trb` (its cycle bit replaced by the ring's) at the enqueue
    /// position of `ring`, which starts at physical `start`, and returns
    /// its index. On reaching the last entry, writes the Link TRB there and
    /// wraps. `ring` must have at least two entries.
    pub fn push(&mut self, ring: &mut [Trb], start: u64, trb: Trb) -> usize {
        let index = self.enqueue;
        write(&mut ring[index], trb, self.cycle);
        self.enqueue += 1;
        if self.enqueue == ring.len() - 1 {
            let mut link = Link::new();
            link.set_ring_segment_pointer(start).set_toggle_cycle();
            write(&mut ring[self.enqueue], link.into_raw(), self.cycle);
            self.enqueue = 0;
            self.cycle = !self.cycle;
        }
        index
    }

    /// Where the next TRB will go, and the cycle state it will carry: what
    /// the controller's dequeue pointer is set to when what is queued
    /// before it is to be skipped.
    pub fn position(&self) -> (usize, bool) {
        (self.enqueue, self.cycle)
    }
}

/// Takes the TRBs a controller wrote into a one-segment event ring.
#[derive(Debug)]
pub struct Consumer {
    dequeue: usize,
    cycle: bool,
}

impl Default for Consumer {
    fn default() -> Self {
        Self::new()
    }
}

impl Consumer {
    pub const fn new() -> Self {
        Self { dequeue: 0, cycle: true }
    }

    /// The next TRB the controller wrote, if it wrote one.
    pub fn pop(&mut self, ring: &[Trb]) -> Option<Trb> {
        // SAFETY: a reference to an element is valid to read; volatile
        // because the controller writes the ring behind the compiler's back.
        let trb = unsafe { core::ptr::read_volatile(&ring[self.dequeue]) };
        if (trb[3] & CYCLE == CYCLE) != self.cycle {
            return None;
        }
        self.dequeue += 1;
        if self.dequeue == ring.len() {
            self.dequeue = 0;
            self.cycle = !self.cycle;
        }
        Some(trb)
    }

    /// Where the next TRB will be: what the dequeue pointer register is
    /// told, as an index.
    pub fn dequeue(&self) -> usize {
        self.dequeue
    }
}

fn write(slot: &mut Trb, trb: Trb, cycle: bool) {
    let last = (trb[3] & !CYCLE) | if cycle { CYCLE } else { 0 };
    let words = slot.as_mut_ptr();
    // SAFETY: `words` points to the four words of `slot`, which this
    // function has exclusive use of; volatile because the controller reads
    // them.
    unsafe {
        for (i, word) in trb.iter().take(3).enumerate() {
            words.add(i).write_volatile(*word);
        }
        fence(Ordering::Release);
        words.add(3).write_volatile(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_producer_links_back_and_flips_its_cycle() {
        let mut ring = [[0u32; 4]; 4];
        let mut producer = Producer::new();
        let indices: Vec<usize> = (0..7).map(|n| producer.push(&mut ring, 0x1000, [n, 0, 0, 0])).collect();
        assert_eq!(indices, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(producer.position(), (1, true), "third lap, after entry 0");
        // The link TRB points at the start, toggles the cycle, and was
        // written with the cycle state of its lap (the second: 0).
        let link = Link::try_from(ring[3]).expect("a Link TRB");
        assert_eq!(link.ring_segment_pointer(), 0x1000);
        assert!(link.toggle_cycle());
        assert!(!link.cycle_bit());
        // Third lap: cycle 1 again on entry 0, entries 1 and 2 from lap two.
        assert_eq!(ring[0], [6, 0, 0, 1]);
        assert_eq!(ring[1], [4, 0, 0, 0]);
        assert_eq!(ring[2], [5, 0, 0, 0]);
    }

    #[test]
    fn the_consumer_takes_only_what_carries_its_cycle() {
        let mut ring = [[0u32; 4]; 3];
        let mut consumer = Consumer::new();
        assert_eq!(consumer.pop(&ring), None, "a zeroed ring is empty");
        ring[0] = [10, 0, 0, 1];
        ring[1] = [11, 0, 0, 1];
        assert_eq!(consumer.pop(&ring).map(|t| t[0]), Some(10));
        assert_eq!(consumer.pop(&ring).map(|t| t[0]), Some(11));
        assert_eq!(consumer.pop(&ring), None);
        ring[2] = [12, 0, 0, 1];
        assert_eq!(consumer.pop(&ring).map(|t| t[0]), Some(12));
        assert_eq!(consumer.dequeue(), 0, "wrapped");
        // Entry 0 still has cycle 1 from the first lap: stale now.
        assert_eq!(consumer.pop(&ring), None);
        ring[0] = [13, 0, 0, 0];
        assert_eq!(consumer.pop(&ring).map(|t| t[0]), Some(13));
    }

    #[test]
    fn the_cycle_bit_of_the_caller_is_replaced() {
        let mut ring = [[0u32; 4]; 4];
        let mut producer = Producer::new();
        producer.push(&mut ring, 0, [1, 2, 3, 0xff00]);
        assert_eq!(ring[0], [1, 2, 3, 0xff01]);
    }
}
