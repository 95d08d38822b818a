//! PCI configuration space through the PC's configuration mechanism #1 (the
//! 0xcf8 address and 0xcfc data ports): enough to find a device by its class
//! and for the firmware's AML to reach the registers it names.

use x86_64::instructions::port::Port;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;
/// Set in CONFIG_ADDRESS to make the next CONFIG_DATA access a config cycle.
const ENABLE: u32 = 1 << 31;

/// A class and subclass, as in configuration register 0x0b..0x0a.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class(u16);

/// Display controller, VGA compatible.
pub const DISPLAY_VGA: Class = Class(0x0300);

/// A PCI function's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    pub vendor: u16,
    pub device: u16,
}

fn config_address(bus: u8, slot: u8, function: u8, offset: u8) -> u32 {
    ENABLE | (bus as u32) << 16 | (slot as u32) << 11 | (function as u32) << 8 | (offset as u32 & 0xfc)
}

/// Reads the 32-bit configuration register holding byte `offset` (rounded
/// down to a multiple of 4) of function `function` of `slot` on `bus`.
pub fn read_config(bus: u8, slot: u8, function: u8, offset: u8) -> u32 {
    // SAFETY: the configuration ports belong to this module; a read of
    // configuration space has no side effects.
    unsafe {
        Port::<u32>::new(CONFIG_ADDRESS).write(config_address(bus, slot, function, offset));
        Port::<u32>::new(CONFIG_DATA).read()
    }
}

/// Writes the 32-bit configuration register holding byte `offset`.
pub fn write_config(bus: u8, slot: u8, function: u8, offset: u8, value: u32) {
    // SAFETY: as for `read_config`; what the write does to the device is the
    // caller's purpose (the firmware's AML, which describes the device).
    unsafe {
        Port::<u32>::new(CONFIG_ADDRESS).write(config_address(bus, slot, function, offset));
        Port::<u32>::new(CONFIG_DATA).write(value);
    }
}

/// The first device (function 0 of each slot) of `class`.
pub fn find_class(class: Class) -> Option<Device> {
    for bus in 0..=255u8 {
        for slot in 0..32u8 {
            let id = read_config(bus, slot, 0, 0);
            if id & 0xffff == 0xffff {
                continue;
            }
            if (read_config(bus, slot, 0, 8) >> 16) as u16 == class.0 {
                return Some(Device { vendor: id as u16, device: (id >> 16) as u16 });
            }
        }
    }
    None
}
