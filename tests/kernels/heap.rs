//! The kernel heap in use: boxes, vectors, reuse of freed memory, growth
//! past the first megabyte, and statistics that add up.

#![no_std]
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(harness::run)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::{boxed::Box, vec, vec::Vec};
use kernel::mem::heap::{self, INITIAL_SIZE};

harness::test_kernel!();

#[test_case]
fn a_box_holds_its_value() {
    let value = Box::new(41u64);
    assert_eq!(*value + 1, 42);
}

#[test_case]
fn a_vec_grows_and_keeps_its_elements() {
    let mut numbers = Vec::new();
    for i in 0..10_000u64 {
        numbers.push(i);
    }
    assert_eq!(numbers.iter().sum::<u64>(), 10_000 * 9_999 / 2);
}

#[test_case]
fn a_large_vec_grows_the_heap_past_its_first_mapping() {
    let before = heap::stats().mapped;
    let large = vec![0x5au8; 8 << 20];
    assert!(large.iter().step_by(4096).all(|&b| b == 0x5a));
    assert!(
        heap::stats().mapped >= 8 << 20 && heap::stats().mapped > INITIAL_SIZE,
        "mapped {before} then {}",
        heap::stats().mapped
    );
}

#[test_case]
fn freed_boxes_are_reused_not_leaked() {
    let churn = || {
        let boxes: Vec<Box<[u64; 4]>> = (0..20_000).map(|i| Box::new([i; 4])).collect();
        assert!(boxes.iter().enumerate().all(|(i, b)| b[3] == i as u64));
    };
    churn();
    let after_first = heap::stats();
    for _ in 0..10 {
        churn();
    }
    let after_many = heap::stats();
    assert_eq!(after_many.mapped, after_first.mapped, "the heap grew: freed memory was not reused");
    assert_eq!(after_many.allocator.classes, after_first.allocator.classes);
}

#[test_case]
fn a_long_lived_allocation_survives_heavy_churn() {
    let keeper: Vec<u32> = (0..50_000).collect();
    for round in 0..200u32 {
        let mut temporary: Vec<Box<u32>> = (0..500).map(|i| Box::new(i ^ round)).collect();
        temporary.retain(|b| **b % 3 != 0);
        let _strings: Vec<Vec<u8>> = (0..50).map(|i| vec![round as u8; 16 + i * 40]).collect();
    }
    assert!(keeper.iter().enumerate().all(|(i, &v)| v == i as u32));
}

#[test_case]
fn one_api_reports_frames_and_heap() {
    let stats = kernel::mem::stats();
    assert!(stats.frames.used > 0 && stats.frames.used <= stats.frames.total);
    assert_eq!(stats.heap.mapped % 4096, 0);
    let text = harness::Text::<2048>::format(format_args!("{stats}"));
    assert!(text.as_str().starts_with("frames: ") && text.as_str().contains("\nheap: "), "{}", text.as_str());
    assert_eq!(text.as_str().matches("slab ").count(), 7);
}

#[test_case]
fn statistics_count_what_is_live() {
    let before = heap::stats().allocator;
    let small: Vec<Box<u16>> = (0..100).map(Box::new).collect();
    let during = heap::stats().allocator;
    assert_eq!(
        during.classes[0].objects - before.classes[0].objects,
        100,
        "100 two-byte boxes in the 8-byte class"
    );
    assert!(during.in_use >= before.in_use + 200);
    assert!(during.peak >= during.in_use);
    drop(small);
    assert_eq!(heap::stats().allocator.classes[0].objects, before.classes[0].objects);
}
