//! Memory management.

pub mod early;
pub mod paging;

use crate::boot::BootInfo;

/// Boot memory and the page tables, from what Limine handed over.
pub fn init(info: &BootInfo) {
    early::init(info);
    paging::init(info.hhdm_offset);
}
