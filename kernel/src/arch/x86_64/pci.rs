//! PCI configuration space through the legacy 0xcf8/0xcfc ports: just enough
//! to find the display adapter.

use x86_64::instructions::port::Port;

/// A PCI function's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    pub vendor: u16,
    pub device: u16,
}

fn read_config(bus: u8, slot: u8, function: u8, offset: u8) -> u32 {
    let address = 0x8000_0000
        | (bus as u32) << 16
        | (slot as u32) << 11
        | (function as u32) << 8
        | (offset as u32 & 0xfc);
    // SAFETY: 0xcf8/0xcfc are the PC's PCI configuration mechanism #1; a read
    // of configuration space has no side effects.
    unsafe {
        Port::<u32>::new(0xcf8).write(address);
        Port::<u32>::new(0xcfc).read()
    }
}

/// The first VGA-compatible display controller (class 03, subclass 00).
pub fn find_vga() -> Option<Device> {
    for bus in 0..=255u8 {
        for slot in 0..32u8 {
            let id = read_config(bus, slot, 0, 0);
            if id & 0xffff == 0xffff {
                continue;
            }
            let class = read_config(bus, slot, 0, 8) >> 16;
            if class == 0x0300 {
                return Some(Device { vendor: id as u16, device: (id >> 16) as u16 });
            }
        }
    }
    None
}
