//! PCI configuration space through the PC's configuration mechanism #1 (the
//! 0xcf8 address and 0xcfc data ports): every function on every bus (found
//! by following the bridges), its base address registers (sized by the usual
//! all-ones probe), its capability list, and MSI / MSI-X set-up for the
//! drivers that want them.
//! The firmware's AML reaches the registers it names through here too.

use core::fmt;
use x86_64::instructions::port::Port;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;
/// Set in CONFIG_ADDRESS to make the next CONFIG_DATA access a config cycle.
const ENABLE: u32 = 1 << 31;

/// Configuration registers (byte offsets).
const COMMAND: u8 = 0x04;
const CLASS: u8 = 0x08;
const HEADER_TYPE: u8 = 0x0c;
/// A bridge's primary, secondary and subordinate bus numbers.
const BRIDGE_BUSES: u8 = 0x18;
const BAR0: u8 = 0x10;
const CAPABILITIES: u8 = 0x34;
const INTERRUPT_LINE: u8 = 0x3c;
/// Command register bits.
const COMMAND_IO: u32 = 1 << 0;
const COMMAND_MEMORY: u32 = 1 << 1;
const COMMAND_BUS_MASTER: u32 = 1 << 2;
const COMMAND_INTX_DISABLE: u32 = 1 << 10;
/// Status register (the upper half of COMMAND): a capability list exists.
const STATUS_CAPABILITIES: u32 = 1 << 20;
/// Capability IDs.
const CAP_MSI: u8 = 0x05;
const CAP_MSIX: u8 = 0x11;
/// Where the local APICs take message-signalled interrupts.
const MSI_ADDRESS: u32 = 0xfee0_0000;

/// A class and subclass, as in configuration register 0x0b..0x0a.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class(u16);

/// Bridge, host (class and subclass).
const HOST_BRIDGE: u32 = 0x0600;

/// Display controller, VGA compatible.
pub const DISPLAY_VGA: Class = Class(0x0300);

/// A PCI function's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    pub vendor: u16,
    pub device: u16,
}

/// Where a function sits: bus, device (slot) and function number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub bus: u8,
    pub slot: u8,
    pub function: u8,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.slot, self.function)
    }
}

/// One function found on the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    pub address: Address,
    pub id: Device,
    /// Class, subclass and programming interface (0x0c0330: an xHCI).
    pub class: u32,
    /// Header type 0 (a device) has six BARs, type 1 (a bridge) two.
    header_type: u8,
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
    // caller's purpose (the firmware's AML, or a driver that owns the device).
    unsafe {
        Port::<u32>::new(CONFIG_ADDRESS).write(config_address(bus, slot, function, offset));
        Port::<u32>::new(CONFIG_DATA).write(value);
    }
}

impl Function {
    pub fn read(&self, offset: u8) -> u32 {
        read_config(self.address.bus, self.address.slot, self.address.function, offset)
    }

    pub fn write(&self, offset: u8, value: u32) {
        write_config(self.address.bus, self.address.slot, self.address.function, offset, value)
    }

    /// What the class code says the function is, for listings.
    pub fn class_name(&self) -> &'static str {
        class_name(self.class)
    }

    /// The decoded base address registers, with their sizes. Sizing writes
    /// all ones to each BAR with the function's decoding switched off, then
    /// puts everything back.
    pub fn bars(&self) -> Bars {
        let count = match self.header_type & 0x7f {
            0 => 6,
            1 => 2,
            _ => 0,
        };
        let mut bars = Bars { bars: [None; 6] };
        let command = self.read(COMMAND);
        let command = command & 0xffff;
        self.write(COMMAND, command & !(COMMAND_IO | COMMAND_MEMORY));
        let mut index = 0;
        while index < count {
            let offset = BAR0 + 4 * index as u8;
            let low = self.read(offset);
            let size_low = self.size_mask(offset, low);
            let is_64 = low & 0b111 == 0b100;
            let (high, size_high) = if is_64 && index + 1 < count {
                let high = self.read(offset + 4);
                (high, self.size_mask(offset + 4, high))
            } else {
                (0, 0)
            };
            bars.bars[index] = decode_bar(low, high, size_low, size_high);
            index += if is_64 { 2 } else { 1 };
        }
        self.write(COMMAND, command);
        bars
    }

    fn size_mask(&self, offset: u8, original: u32) -> u32 {
        self.write(offset, u32::MAX);
        let mask = self.read(offset);
        self.write(offset, original);
        mask
    }

    /// Lets the function answer memory accesses and master the bus (DMA).
    pub fn enable_memory_and_dma(&self) {
        let command = self.read(COMMAND) & 0xffff;
        self.write(COMMAND, command | COMMAND_MEMORY | COMMAND_BUS_MASTER);
    }

    /// Takes bus mastering away: the function can no longer reach memory.
    pub fn disable_dma(&self) {
        let command = self.read(COMMAND) & 0xffff;
        self.write(COMMAND, command & !COMMAND_BUS_MASTER);
    }

    /// The legacy interrupt line the firmware assigned (0xff: none).
    pub fn interrupt_line(&self) -> u8 {
        self.read(INTERRUPT_LINE) as u8
    }

    /// The offsets of the capabilities with this ID.
    fn capability(&self, id: u8) -> Option<u8> {
        if self.read(COMMAND) & STATUS_CAPABILITIES == 0 {
            return None;
        }
        let mut offset = self.read(CAPABILITIES) as u8 & 0xfc;
        // A broken list could loop: 48 entries fill the 192 bytes there are.
        for _ in 0..48 {
            if offset < 0x40 {
                return None;
            }
            let header = self.read(offset);
            if header as u8 == id {
                return Some(offset);
            }
            offset = (header >> 8) as u8 & 0xfc;
        }
        None
    }

    /// Sends the function's first MSI-X vector as `vector` to the local APIC
    /// `apic_id`, with the table mapped through `map` (physical address,
    /// length -> virtual address). Legacy interrupts are switched off.
    pub fn enable_msix(
        &self,
        vector: u8,
        apic_id: u32,
        map: impl FnOnce(u64, u64) -> Option<u64>,
    ) -> Result<(), MsiError> {
        let cap = self.capability(CAP_MSIX).ok_or(MsiError::NotOffered)?;
        let table = self.read(cap + 4);
        let bir = (table & 0b111) as usize;
        let bar = self.bars().get(bir).ok_or(MsiError::NoTableBar(bir))?;
        let entry = map(bar.address + (table & !0b111) as u64, 16).ok_or(MsiError::Unmapped)?;
        let (address, data) = message(vector, apic_id)?;
        // SAFETY: `map` mapped the first 16-byte table entry uncached; its
        // words are the message address (low, high), data and vector control.
        unsafe {
            let entry = entry as *mut u32;
            entry.write_volatile(address);
            entry.add(1).write_volatile(0);
            entry.add(2).write_volatile(data);
            entry.add(3).write_volatile(0);
        }
        let control = self.read(cap);
        // Enable (bit 31), function mask (bit 30) off.
        self.write(cap, (control | 1 << 31) & !(1 << 30));
        self.disable_intx();
        Ok(())
    }

    /// Sends the function's MSI as `vector` to the local APIC `apic_id`.
    pub fn enable_msi(&self, vector: u8, apic_id: u32) -> Result<(), MsiError> {
        let cap = self.capability(CAP_MSI).ok_or(MsiError::NotOffered)?;
        let control = self.read(cap) >> 16;
        let (address, data) = message(vector, apic_id)?;
        self.write(cap + 4, address);
        let data_offset = if control & 1 << 7 != 0 {
            self.write(cap + 8, 0);
            cap + 12
        } else {
            cap + 8
        };
        let old = self.read(data_offset);
        self.write(data_offset, (old & 0xffff_0000) | data);
        // One message (multiple message enable 0), enabled.
        let control = (control & !(0b111 << 4)) | 1;
        self.write(cap, (self.read(cap) & 0xffff) | control << 16);
        self.disable_intx();
        Ok(())
    }

    fn disable_intx(&self) {
        let command = self.read(COMMAND) & 0xffff;
        self.write(COMMAND, command | COMMAND_INTX_DISABLE);
    }
}

/// The message address and data that deliver `vector` to `apic_id`, fixed
/// and edge-triggered.
fn message(vector: u8, apic_id: u32) -> Result<(u32, u32), MsiError> {
    if apic_id > 0xff {
        return Err(MsiError::ApicIdTooLarge(apic_id));
    }
    Ok((MSI_ADDRESS | apic_id << 12, vector as u32))
}

/// Why message-signalled interrupts could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsiError {
    NotOffered,
    NoTableBar(usize),
    Unmapped,
    ApicIdTooLarge(u32),
}

impl fmt::Display for MsiError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::NotOffered => f.write_str("the device does not offer it"),
            Self::NoTableBar(bar) => write!(f, "its table is in BAR {bar}, which is not a memory BAR"),
            Self::Unmapped => f.write_str("its table could not be mapped"),
            Self::ApicIdTooLarge(id) => write!(f, "local APIC id {id} does not fit a message address"),
        }
    }
}

/// A decoded base address register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    pub kind: BarKind,
    pub address: u64,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    Io,
    Memory32 { prefetchable: bool },
    Memory64 { prefetchable: bool },
}

/// A function's BARs by index (a 64-bit BAR takes its index and the next).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bars {
    bars: [Option<Bar>; 6],
}

impl Bars {
    /// The memory BAR at `index`.
    pub fn get(&self, index: usize) -> Option<Bar> {
        self.bars.get(index).copied().flatten().filter(|bar| bar.kind != BarKind::Io)
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, Bar)> + '_ {
        self.bars.iter().enumerate().filter_map(|(index, bar)| bar.map(|bar| (index, bar)))
    }
}

/// Decodes a BAR from its value (`low`, and `high` for a 64-bit one) and
/// what it read back after all ones were written (`size_low`, `size_high`).
/// None when it is unimplemented (reads back zero) or unassigned.
fn decode_bar(low: u32, high: u32, size_low: u32, size_high: u32) -> Option<Bar> {
    if low & 1 == 1 {
        let mask = size_low & !0b11 & 0xffff;
        if mask == 0 {
            return None;
        }
        let size = (!mask & 0xffff) as u64 + 1;
        return Some(Bar { kind: BarKind::Io, address: (low & !0b11) as u64, size });
    }
    let prefetchable = low & 0b1000 != 0;
    if (low >> 1) & 0b11 == 0b10 {
        let mask = (size_high as u64) << 32 | (size_low & !0xf) as u64;
        if mask == 0 {
            return None;
        }
        let address = (high as u64) << 32 | (low & !0xf) as u64;
        return Some(Bar {
            kind: BarKind::Memory64 { prefetchable },
            address,
            size: (!mask).wrapping_add(1),
        });
    }
    let mask = size_low & !0xf;
    if mask == 0 {
        return None;
    }
    let size = (!mask).wrapping_add(1) as u64;
    Some(Bar { kind: BarKind::Memory32 { prefetchable }, address: (low & !0xf) as u64, size })
}

/// Every function on every bus that exists: function 0 of each slot, and
/// functions 1 to 7 of the slots whose header says they are multi-function
/// devices. Needs no heap.
pub fn functions() -> impl Iterator<Item = Function> {
    Walk::new(|address, offset| read_config(address.bus, address.slot, address.function, offset))
}

/// The buses that exist, found as the firmware numbered them: bus 0, the
/// buses of further host bridges (the functions of a multi-function 00:00),
/// and the secondary bus of every bridge on a bus found. Probing all 256
/// buses instead costs some 8,000 slow port reads on every scan.
struct Walk<R> {
    read: R,
    /// Buses found and not yet scanned, and buses found at all.
    pending: [u64; 4],
    found: [u64; 4],
    bus: Option<u8>,
    slot: u8,
    function: u8,
    multi: bool,
}

impl<R: Fn(Address, u8) -> u32> Walk<R> {
    fn new(read: R) -> Self {
        let mut walk =
            Self { read, pending: [0; 4], found: [0; 4], bus: None, slot: 0, function: 0, multi: false };
        walk.find_bus(0);
        walk
    }

    fn find_bus(&mut self, bus: u8) {
        let (word, bit) = (bus as usize / 64, 1u64 << (bus % 64));
        if self.found[word] & bit == 0 {
            self.found[word] |= bit;
            self.pending[word] |= bit;
        }
    }

    /// Takes the lowest-numbered bus waiting to be scanned.
    fn next_bus(&mut self) -> Option<u8> {
        let word = self.pending.iter().position(|&word| word != 0)?;
        let bit = self.pending[word].trailing_zeros();
        self.pending[word] &= !(1 << bit);
        Some((word * 64) as u8 + bit as u8)
    }

    fn probe(&self, address: Address) -> Option<Function> {
        let read = |offset| (self.read)(address, offset);
        let id = read(0);
        if id & 0xffff == 0xffff {
            return None;
        }
        Some(Function {
            address,
            id: Device { vendor: id as u16, device: (id >> 16) as u16 },
            class: read(CLASS) >> 8,
            header_type: (read(HEADER_TYPE) >> 16) as u8,
        })
    }

    /// The next address to probe on the current bus, or none when the bus is done.
    fn advance(&mut self) -> Option<Address> {
        let bus = self.bus?;
        if self.function < 7 && self.multi {
            self.function += 1;
        } else if self.slot < 31 {
            self.slot += 1;
            self.function = 0;
        } else {
            self.bus = None;
            return None;
        }
        Some(Address { bus, slot: self.slot, function: self.function })
    }
}

impl<R: Fn(Address, u8) -> u32> Iterator for Walk<R> {
    type Item = Function;

    fn next(&mut self) -> Option<Function> {
        loop {
            let address = match self.advance() {
                Some(address) => address,
                None => {
                    let bus = self.next_bus()?;
                    (self.bus, self.slot, self.function, self.multi) = (Some(bus), 0, 0, false);
                    Address { bus, slot: 0, function: 0 }
                }
            };
            let Some(found) = self.probe(address) else {
                continue;
            };
            if address.function == 0 {
                self.multi = found.header_type & 0x80 != 0;
            }
            match (found.header_type & 0x7f, address) {
                // PCI-to-PCI and CardBus bridges: the secondary bus number.
                (1 | 2, _) => self.find_bus(((self.read)(address, BRIDGE_BUSES) >> 8) as u8),
                (_, Address { bus: 0, slot: 0, function })
                    if function > 0 && found.class >> 8 == HOST_BRIDGE =>
                {
                    self.find_bus(function)
                }
                _ => {}
            }
            return Some(found);
        }
    }
}

/// The first function of `class`.
pub fn find_class(class: Class) -> Option<Device> {
    functions().find(|f| (f.class >> 8) as u16 == class.0).map(|f| f.id)
}

fn class_name(class: u32) -> &'static str {
    match class >> 8 {
        0x0100 => "SCSI controller",
        0x0101 => "IDE controller",
        0x0106 => "SATA controller",
        0x0108 => "NVMe controller",
        0x0200 => "Ethernet controller",
        0x0300 => "VGA controller",
        0x0380 => "display controller",
        0x0403 => "audio device",
        0x0600 => "host bridge",
        0x0601 => "ISA bridge",
        0x0604 => "PCI bridge",
        0x0c03 => match class & 0xff {
            0x00 => "USB UHCI controller",
            0x10 => "USB OHCI controller",
            0x20 => "USB EHCI controller",
            0x30 => "USB xHCI controller",
            _ => "USB controller",
        },
        0x0c05 => "SMBus controller",
        _ => match class >> 16 {
            0x01 => "storage controller",
            0x02 => "network controller",
            0x03 => "display controller",
            0x04 => "multimedia device",
            0x06 => "bridge",
            0x07 => "communication controller",
            0x08 => "system peripheral",
            0x0c => "serial bus controller",
            _ => "device",
        },
    }
}

impl fmt::Display for Bar {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let kind = match self.kind {
            BarKind::Io => "io",
            BarKind::Memory32 { prefetchable: false } => "mem32",
            BarKind::Memory32 { prefetchable: true } => "mem32 prefetchable",
            BarKind::Memory64 { prefetchable: false } => "mem64",
            BarKind::Memory64 { prefetchable: true } => "mem64 prefetchable",
        };
        write!(f, "{kind} {:#x}, ", self.address)?;
        match self.size {
            size if size >= 1 << 20 && size % (1 << 20) == 0 => write!(f, "{} MiB", size >> 20),
            size if size >= 1 << 10 && size % (1 << 10) == 0 => write!(f, "{} KiB", size >> 10),
            size => write!(f, "{size} bytes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_bars_decode_with_their_sizes() {
        // A 16 KiB 64-bit BAR at 0x1_febf_0000.
        let bar = decode_bar(0xfebf_0004, 0x1, 0xffff_c004, 0xffff_ffff).unwrap();
        assert_eq!(
            bar,
            Bar { kind: BarKind::Memory64 { prefetchable: false }, address: 0x1_febf_0000, size: 16 << 10 }
        );
        // A 16 MiB prefetchable 32-bit BAR.
        let bar = decode_bar(0xfd00_0008, 0, 0xff00_0008, 0).unwrap();
        assert_eq!(
            bar,
            Bar { kind: BarKind::Memory32 { prefetchable: true }, address: 0xfd00_0000, size: 16 << 20 }
        );
        // An 8 GiB 64-bit BAR.
        let bar = decode_bar(0x0000_000c, 0x8, 0x0000_000c, 0xffff_fffe).unwrap();
        assert_eq!((bar.address, bar.size), (0x8_0000_0000, 8 << 30));
    }

    #[test]
    fn io_and_unimplemented_bars() {
        let bar = decode_bar(0xc041, 0, 0xffff_ffe1, 0).unwrap();
        assert_eq!(bar, Bar { kind: BarKind::Io, address: 0xc040, size: 32 });
        assert_eq!(decode_bar(0, 0, 0, 0), None);
        assert_eq!(decode_bar(0x4, 0, 0x4, 0), None, "a 64-bit BAR that sizes to nothing");
    }

    #[test]
    fn bars_print_kind_address_and_size() {
        let bar =
            Bar { kind: BarKind::Memory64 { prefetchable: false }, address: 0xfebf_0000, size: 16 << 10 };
        assert_eq!(bar.to_string(), "mem64 0xfebf0000, 16 KiB");
    }

    /// A configuration space of `(bus, slot, function, class, header type,
    /// secondary bus)` functions; everything else reads as absent.
    fn space(functions: &[(u8, u8, u8, u32, u8, u8)]) -> impl Fn(Address, u8) -> u32 + '_ {
        move |address, offset| {
            let Some(&(.., class, header, secondary)) =
                functions.iter().find(|f| (f.0, f.1, f.2) == (address.bus, address.slot, address.function))
            else {
                return u32::MAX;
            };
            match offset {
                0 => 0x1234_8086,
                CLASS => class << 8,
                HEADER_TYPE => (header as u32) << 16,
                BRIDGE_BUSES => (secondary as u32) << 8 | address.bus as u32,
                _ => 0,
            }
        }
    }

    fn walk(functions: &[(u8, u8, u8, u32, u8, u8)]) -> Vec<String> {
        Walk::new(space(functions)).map(|f| f.address.to_string()).collect()
    }

    #[test]
    fn the_walk_follows_bridges_to_their_buses() {
        let functions = [
            (0, 0, 0, 0x060000, 0, 0),
            (0, 0x1c, 0, 0x060400, 0x81, 2), // a multi-function root port to bus 2
            (0, 0x1c, 1, 0x060400, 1, 1),    // and another, to bus 1
            (0, 0x1f, 0, 0x060100, 0, 0),
            (1, 0, 0, 0x0c0330, 0, 0),
            (2, 0, 0, 0x060400, 1, 3), // a switch below bus 2
            (3, 5, 0, 0x010802, 0, 0),
            (7, 0, 0, 0x0c0330, 0, 0), // no bridge leads here
        ];
        assert_eq!(
            walk(&functions),
            ["00:00.0", "00:1c.0", "00:1c.1", "00:1f.0", "01:00.0", "02:00.0", "03:05.0"]
        );
    }

    #[test]
    fn functions_of_a_single_function_device_are_not_probed() {
        // Function 3 answers, but function 0 does not say multi-function.
        let functions = [(0, 0, 0, 0x060000, 0, 0), (0, 2, 0, 0x030000, 0, 0), (0, 2, 3, 0x040300, 0, 0)];
        assert_eq!(walk(&functions), ["00:00.0", "00:02.0"]);
    }

    #[test]
    fn a_multi_function_host_bridge_names_further_root_buses() {
        let functions = [
            (0, 0, 0, 0x060000, 0x80, 0),
            (0, 0, 1, 0x060000, 0x80, 0),
            (1, 4, 0, 0x020000, 0, 0),
            (0, 3, 0, 0x0c0330, 0, 0),
        ];
        assert_eq!(walk(&functions), ["00:00.0", "00:00.1", "00:03.0", "01:04.0"]);
    }

    #[test]
    fn a_bridge_back_to_a_scanned_bus_is_not_followed_twice() {
        let functions = [(0, 0, 0, 0x060000, 0, 0), (0, 1, 0, 0x060400, 1, 0)];
        assert_eq!(walk(&functions), ["00:00.0", "00:01.0"]);
    }

    #[test]
    fn messages_go_to_the_local_apic() {
        assert_eq!(message(0xf1, 3), Ok((0xfee0_3000, 0xf1)));
        assert_eq!(message(0xf1, 256), Err(MsiError::ApicIdTooLarge(256)));
    }
}
