//! Tasks and what feeds them.

pub mod keyboard;
