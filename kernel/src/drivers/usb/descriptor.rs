//! USB descriptors as a device returns them, parsed into what enumeration
//! needs: the device, its configuration's interfaces and endpoints, and a
//! hub's port count. Plain data in, plain data out.

use alloc::vec::Vec;
use core::fmt;

/// Descriptor types (the high byte of GET_DESCRIPTOR's wValue).
pub const DEVICE: u8 = 1;
pub const CONFIGURATION: u8 = 2;
const INTERFACE: u8 = 4;
const ENDPOINT: u8 = 5;
pub const HUB: u8 = 0x29;

/// Class codes.
pub const CLASS_HID: u8 = 3;
pub const CLASS_HUB: u8 = 9;
/// HID subclass 1 (boot interface), protocol 1 (keyboard).
const HID_BOOT: u8 = 1;
const HID_KEYBOARD: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    pub class: u8,
    pub max_packet_size0: u8,
    pub vendor: u16,
    pub product: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configuration {
    /// What SET_CONFIGURATION takes.
    pub value: u8,
    pub interfaces: Vec<Interface>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub number: u8,
    pub class: u8,
    pub subclass: u8,
    pub protocol: u8,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Number in bits 0..3, direction IN in bit 7.
    pub address: u8,
    /// Transfer type in bits 0..1 (3: interrupt).
    pub attributes: u8,
    pub max_packet_size: u16,
    pub interval: u8,
}

impl Endpoint {
    pub fn is_interrupt_in(&self) -> bool {
        self.attributes & 0b11 == 3 && self.address & 0x80 != 0
    }

    /// The xHCI device context index: 2 x number, plus 1 for IN.
    pub fn context_index(&self) -> u8 {
        (self.address & 0xf) * 2 + (self.address >> 7)
    }
}

impl Interface {
    /// A HID keyboard that speaks the boot protocol.
    pub fn is_boot_keyboard(&self) -> bool {
        (self.class, self.subclass, self.protocol) == (CLASS_HID, HID_BOOT, HID_KEYBOARD)
    }

    pub fn interrupt_in(&self) -> Option<Endpoint> {
        self.endpoints.iter().copied().find(Endpoint::is_interrupt_in)
    }
}

/// A hub's class descriptor: what the hub driver needs of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hub {
    pub ports: u8,
    /// How long after powering a port it is usable.
    pub power_on_ms: u32,
}

/// What was wrong with a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than the descriptor needs.
    Short { kind: u8, length: usize },
    /// Not the descriptor type asked for.
    WrongType { expected: u8, found: u8 },
    /// A descriptor inside a configuration says it is shorter than two bytes
    /// or runs past the end.
    BadLength { at: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Short { kind, length } => write!(f, "descriptor type {kind} cut short at {length} bytes"),
            Self::WrongType { expected, found } => {
                write!(f, "descriptor type {found} where type {expected} was asked for")
            }
            Self::BadLength { at } => write!(f, "configuration descriptor broken at byte {at}"),
        }
    }
}

fn check(bytes: &[u8], kind: u8, length: usize) -> Result<(), Error> {
    if bytes.len() < length || bytes.len() < 2 {
        return Err(Error::Short { kind, length: bytes.len() });
    }
    if bytes[1] != kind {
        return Err(Error::WrongType { expected: kind, found: bytes[1] });
    }
    Ok(())
}

fn word(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

/// The first 8 bytes are enough for the class and bMaxPacketSize0.
pub fn device(bytes: &[u8]) -> Result<Device, Error> {
    check(bytes, DEVICE, 8)?;
    let (vendor, product) = if bytes.len() >= 12 { (word(bytes, 8), word(bytes, 10)) } else { (0, 0) };
    Ok(Device { class: bytes[4], max_packet_size0: bytes[7], vendor, product })
}

/// wTotalLength from the first 9 bytes of a configuration descriptor.
pub fn configuration_length(bytes: &[u8]) -> Result<u16, Error> {
    check(bytes, CONFIGURATION, 9)?;
    Ok(word(bytes, 2))
}

/// A whole configuration: its interfaces (alternate setting 0) and their
/// endpoints. Descriptors of other types (HID, vendor) are skipped.
pub fn configuration(bytes: &[u8]) -> Result<Configuration, Error> {
    check(bytes, CONFIGURATION, 9)?;
    let mut config = Configuration { value: bytes[5], interfaces: Vec::new() };
    let mut at = bytes[0] as usize;
    // Endpoints of an alternate setting other than 0 are not collected.
    let mut in_alternate = false;
    while at < bytes.len() {
        let length = bytes[at] as usize;
        if length < 2 || at + length > bytes.len() {
            return Err(Error::BadLength { at });
        }
        let descriptor = &bytes[at..at + length];
        match descriptor[1] {
            INTERFACE if length >= 9 => {
                in_alternate = descriptor[3] != 0;
                if !in_alternate {
                    config.interfaces.push(Interface {
                        number: descriptor[2],
                        class: descriptor[5],
                        subclass: descriptor[6],
                        protocol: descriptor[7],
                        endpoints: Vec::new(),
                    });
                }
            }
            ENDPOINT if length >= 7 && !in_alternate => {
                if let Some(interface) = config.interfaces.last_mut() {
                    interface.endpoints.push(Endpoint {
                        address: descriptor[2],
                        attributes: descriptor[3],
                        max_packet_size: word(descriptor, 4) & 0x7ff,
                        interval: descriptor[6],
                    });
                }
            }
            _ => {}
        }
        at += length;
    }
    Ok(config)
}

/// A USB 2 hub descriptor.
pub fn hub(bytes: &[u8]) -> Result<Hub, Error> {
    check(bytes, HUB, 7)?;
    Ok(Hub { ports: bytes[2], power_on_ms: bytes[5] as u32 * 2 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU's usb-kbd: one interface, HID boot keyboard, interrupt IN
    /// endpoint 1 of 8 bytes every 7 ms; a HID descriptor in between.
    const KEYBOARD: [u8; 34] = [
        9, 2, 34, 0, 1, 1, 0, 0xa0, 50, // configuration 1
        9, 4, 0, 0, 1, 3, 1, 1, 0, // interface 0: HID, boot, keyboard
        9, 0x21, 0x11, 1, 0, 1, 0x22, 63, 0, // HID descriptor
        7, 5, 0x81, 3, 8, 0, 7, // endpoint 1 IN, interrupt
    ];

    #[test]
    fn a_boot_keyboard_is_found_with_its_endpoint() {
        assert_eq!(configuration_length(&KEYBOARD[..9]), Ok(34));
        let config = configuration(&KEYBOARD).unwrap();
        assert_eq!(config.value, 1);
        assert_eq!(config.interfaces.len(), 1);
        let interface = &config.interfaces[0];
        assert!(interface.is_boot_keyboard());
        let endpoint = interface.interrupt_in().unwrap();
        assert_eq!(endpoint, Endpoint { address: 0x81, attributes: 3, max_packet_size: 8, interval: 7 });
        assert_eq!(endpoint.context_index(), 3);
    }

    #[test]
    fn a_mouse_is_not_a_keyboard() {
        let mut mouse = KEYBOARD;
        mouse[16] = 2;
        let config = configuration(&mouse).unwrap();
        assert!(!config.interfaces[0].is_boot_keyboard());
    }

    #[test]
    fn alternate_settings_do_not_add_endpoints() {
        let mut bytes = KEYBOARD.to_vec();
        bytes.extend([9, 4, 0, 1, 1, 3, 1, 1, 0, 7, 5, 0x82, 3, 8, 0, 7]);
        bytes[2] = bytes.len() as u8;
        let config = configuration(&bytes).unwrap();
        assert_eq!(config.interfaces.len(), 1);
        assert_eq!(config.interfaces[0].endpoints.len(), 1);
    }

    #[test]
    fn broken_descriptors_are_refused() {
        assert_eq!(configuration(&KEYBOARD[..5]), Err(Error::Short { kind: CONFIGURATION, length: 5 }));
        let mut broken = KEYBOARD;
        broken[9] = 0;
        assert_eq!(configuration(&broken), Err(Error::BadLength { at: 9 }));
        let mut overlong = KEYBOARD;
        overlong[27] = 9;
        assert_eq!(configuration(&overlong), Err(Error::BadLength { at: 27 }));
        assert_eq!(device(&KEYBOARD), Err(Error::WrongType { expected: DEVICE, found: CONFIGURATION }));
    }

    #[test]
    fn device_and_hub_descriptors() {
        let bytes = [18, 1, 0, 2, 9, 0, 0, 64, 0x27, 0x06, 0x01, 0x00, 0, 0, 1, 2, 3, 1];
        assert_eq!(device(&bytes), Ok(Device { class: 9, max_packet_size0: 64, vendor: 0x0627, product: 1 }));
        assert_eq!(device(&bytes[..8]).map(|d| d.max_packet_size0), Ok(64));
        assert_eq!(hub(&[9, 0x29, 8, 0, 0, 50, 0, 0, 0xff]), Ok(Hub { ports: 8, power_on_ms: 100 }));
    }
}
