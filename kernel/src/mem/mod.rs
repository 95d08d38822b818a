//! Memory management.

pub mod early;
