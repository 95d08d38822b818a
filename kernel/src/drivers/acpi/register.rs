//! Fixed hardware registers as the FADT locates them (generic address
//! structures): an I/O port, or memory mapped uncached, accessed at one
//! width.

use crate::mem::paging;
use ::acpi::address::{AddressSpace, GenericAddress};
use alloc::{format, string::String};
use core::fmt;
use x86_64::instructions::port::Port;

/// A fixed hardware register from a generic address structure: an I/O port
/// or memory-mapped, accessed `bits` wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Register {
    location: Location,
    bits: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    Port(u16),
    /// Physical address, and where it is mapped.
    Memory {
        physical: u64,
        mapped: u64,
    },
}

impl Register {
    pub(super) fn from_gas(gas: GenericAddress) -> Result<Self, String> {
        let bits = access_bits(gas.bit_width, gas.bit_offset, gas.access_size).ok_or_else(|| {
            format!("{}-bit at bit {} cannot be read in one access", gas.bit_width, gas.bit_offset)
        })?;
        let location = match gas.address_space {
            AddressSpace::SystemIo => {
                let port =
                    u16::try_from(gas.address).map_err(|_| format!("no I/O port {:#x}", gas.address))?;
                if bits > 32 {
                    return Err(format!("I/O port {port:#x} cannot be accessed {bits} bits wide"));
                }
                Location::Port(port)
            }
            AddressSpace::SystemMemory => {
                let mapped = paging::map_mmio(gas.address, u64::from(bits / 8))
                    .map_err(|error| format!("memory at {:#x} cannot be mapped ({error:?})", gas.address))?;
                Location::Memory { physical: gas.address, mapped }
            }
            other => return Err(format!("registers in {other:?} space are not supported")),
        };
        Ok(Self { location, bits })
    }

    pub fn read(&self) -> u64 {
        match self.location {
            Location::Port(port) => read_port(port, self.bits),
            Location::Memory { mapped, .. } => {
                // SAFETY: `mapped` maps this register uncached (from_gas), and
                // reading a fixed hardware register has no side effect the
                // ACPI specification does not define.
                unsafe {
                    match self.bits {
                        8 => (mapped as *const u8).read_volatile().into(),
                        16 => (mapped as *const u16).read_volatile().into(),
                        32 => (mapped as *const u32).read_volatile().into(),
                        _ => (mapped as *const u64).read_volatile(),
                    }
                }
            }
        }
    }

    pub fn write(&self, value: u64) {
        match self.location {
            Location::Port(port) => write_port(port, self.bits, value),
            Location::Memory { mapped, .. } => {
                // SAFETY: as for `read`; the caller writes what the
                // specification says this register takes.
                unsafe {
                    match self.bits {
                        8 => (mapped as *mut u8).write_volatile(value as u8),
                        16 => (mapped as *mut u16).write_volatile(value as u16),
                        32 => (mapped as *mut u32).write_volatile(value as u32),
                        _ => (mapped as *mut u64).write_volatile(value),
                    }
                }
            }
        }
    }
}

impl fmt::Display for Register {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.location {
            Location::Port(port) => write!(f, "I/O port {port:#x}, {} bits", self.bits),
            Location::Memory { physical, .. } => write!(f, "memory {physical:#x}, {} bits", self.bits),
        }
    }
}

/// How wide a register must be accessed: its own width when that is a
/// native one and it starts at bit 0, else the access size it declares
/// (1 = byte ... 4 = qword); `None` when neither says.
fn access_bits(bit_width: u8, bit_offset: u8, access_size: u8) -> Option<u8> {
    if bit_offset == 0 && matches!(bit_width, 8 | 16 | 32 | 64) {
        return Some(bit_width);
    }
    match access_size {
        1..=4 => Some(8 << (access_size - 1)),
        _ => None,
    }
}

pub(super) fn read_port(port: u16, bits: u8) -> u64 {
    // SAFETY: the port is one the firmware's tables name for this access
    // width; reading it is what the tables describe.
    unsafe {
        match bits {
            8 => Port::<u8>::new(port).read().into(),
            16 => Port::<u16>::new(port).read().into(),
            _ => Port::<u32>::new(port).read().into(),
        }
    }
}

pub(super) fn write_port(port: u16, bits: u8, value: u64) {
    // SAFETY: as for `read_port`; the value is what the tables (or the AML
    // they hold) say to write.
    unsafe {
        match bits {
            8 => Port::<u8>::new(port).write(value as u8),
            16 => Port::<u16>::new(port).write(value as u16),
            _ => Port::<u32>::new(port).write(value as u32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_are_accessed_at_their_width_or_declared_size() {
        assert_eq!(access_bits(16, 0, 0), Some(16));
        assert_eq!(access_bits(32, 0, 3), Some(32));
        assert_eq!(access_bits(24, 0, 3), Some(32));
        assert_eq!(access_bits(8, 4, 1), Some(8));
        assert_eq!(access_bits(24, 0, 0), None);
        assert_eq!(access_bits(8, 2, 0), None);
    }
}
