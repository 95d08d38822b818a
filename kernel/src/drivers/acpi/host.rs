//! What the `acpi` crate asks of the kernel: mappings of tables and
//! registers, port and PCI configuration access, time, and (for AML)
//! mutexes.
//!
//! Tables are RAM that the memory map describes as ACPI memory (or the BIOS
//! area below 1 MiB, where the RSDP lives), read through the HHDM; anything
//! else the crate maps is a device's registers and is mapped uncached.

use super::register::{read_port, write_port};
use crate::boot::{MemoryRegion, RegionKind};
use crate::drivers::pci;
use crate::mem::paging;
use crate::time;
use ::acpi::{Handle, Handler, PciAddress, PhysicalMapping, aml::AmlError};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

/// Below this the BIOS keeps its data and ROM, the RSDP among them: RAM or
/// ROM, never device registers.
const BIOS_AREA_END: u64 = 0x10_0000;

/// Whether `[physical, physical + length)` is memory the tables may be read
/// from through the HHDM: the BIOS area, or a region the memory map calls
/// ACPI memory.
fn is_table_memory(map: &[MemoryRegion], physical: u64, length: u64) -> bool {
    let end = physical.saturating_add(length);
    end <= BIOS_AREA_END
        || map
            .iter()
            .any(|region| region.kind == RegionKind::Acpi && region.base <= physical && end <= region.end())
}

/// What the `acpi` crate asks of the kernel: mappings, port and PCI access,
/// time, and (for AML) mutexes. One CPU runs AML, from one task at a time, so
/// its mutexes never contend.
#[derive(Debug, Clone, Copy)]
pub(super) struct Host;

impl Handler for Host {
    unsafe fn map_physical_region<T>(
        &self,
        physical_address: usize,
        size: usize,
    ) -> PhysicalMapping<Self, T> {
        let info = crate::boot::info();
        let (physical, length) = (physical_address as u64, size as u64);
        let virtual_address = if is_table_memory(info.memory_map(), physical, length) {
            info.hhdm_offset + physical
        } else {
            paging::map_mmio(physical, length).unwrap_or_else(|error| {
                panic!("ACPI: cannot map {length:#x} bytes at {physical:#x}: {error:?}")
            })
        };
        PhysicalMapping {
            physical_start: physical_address,
            virtual_start: NonNull::new(virtual_address as *mut T).expect("mapped addresses are not null"),
            region_length: size,
            mapped_length: size,
            handler: *self,
        }
    }

    /// Both the HHDM and the MMIO window stay mapped.
    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}

    fn read_u8(&self, address: usize) -> u8 {
        // SAFETY: the AML names this memory (an operation region); the
        // uncached mapping covers the byte.
        unsafe { (mmio(address, 1) as *const u8).read_volatile() }
    }
    fn read_u16(&self, address: usize) -> u16 {
        // SAFETY: as for `read_u8`.
        unsafe { (mmio(address, 2) as *const u16).read_volatile() }
    }
    fn read_u32(&self, address: usize) -> u32 {
        // SAFETY: as for `read_u8`.
        unsafe { (mmio(address, 4) as *const u32).read_volatile() }
    }
    fn read_u64(&self, address: usize) -> u64 {
        // SAFETY: as for `read_u8`.
        unsafe { (mmio(address, 8) as *const u64).read_volatile() }
    }
    fn write_u8(&self, address: usize, value: u8) {
        // SAFETY: as for `read_u8`; the AML chose the value.
        unsafe { (mmio(address, 1) as *mut u8).write_volatile(value) }
    }
    fn write_u16(&self, address: usize, value: u16) {
        // SAFETY: as for `write_u8`.
        unsafe { (mmio(address, 2) as *mut u16).write_volatile(value) }
    }
    fn write_u32(&self, address: usize, value: u32) {
        // SAFETY: as for `write_u8`.
        unsafe { (mmio(address, 4) as *mut u32).write_volatile(value) }
    }
    fn write_u64(&self, address: usize, value: u64) {
        // SAFETY: as for `write_u8`.
        unsafe { (mmio(address, 8) as *mut u64).write_volatile(value) }
    }

    fn read_io_u8(&self, port: u16) -> u8 {
        read_port(port, 8) as u8
    }
    fn read_io_u16(&self, port: u16) -> u16 {
        read_port(port, 16) as u16
    }
    fn read_io_u32(&self, port: u16) -> u32 {
        read_port(port, 32) as u32
    }
    fn write_io_u8(&self, port: u16, value: u8) {
        write_port(port, 8, value.into());
    }
    fn write_io_u16(&self, port: u16, value: u16) {
        write_port(port, 16, value.into());
    }
    fn write_io_u32(&self, port: u16, value: u32) {
        write_port(port, 32, value.into());
    }

    fn read_pci_u8(&self, address: PciAddress, offset: u16) -> u8 {
        (read_pci(address, offset) >> ((offset & 3) * 8)) as u8
    }
    fn read_pci_u16(&self, address: PciAddress, offset: u16) -> u16 {
        (read_pci(address, offset) >> ((offset & 2) * 8)) as u16
    }
    fn read_pci_u32(&self, address: PciAddress, offset: u16) -> u32 {
        read_pci(address, offset)
    }
    fn write_pci_u8(&self, address: PciAddress, offset: u16, value: u8) {
        let shift = (offset & 3) * 8;
        let old = read_pci(address, offset) & !(0xff << shift);
        write_pci(address, offset, old | u32::from(value) << shift);
    }
    fn write_pci_u16(&self, address: PciAddress, offset: u16, value: u16) {
        let shift = (offset & 2) * 8;
        let old = read_pci(address, offset) & !(0xffff << shift);
        write_pci(address, offset, old | u32::from(value) << shift);
    }
    fn write_pci_u32(&self, address: PciAddress, offset: u16, value: u32) {
        write_pci(address, offset, value);
    }

    fn nanos_since_boot(&self) -> u64 {
        time::uptime().as_nanos() as u64
    }
    fn stall(&self, microseconds: u64) {
        time::busy_wait(Duration::from_micros(microseconds));
    }
    fn sleep(&self, milliseconds: u64) {
        time::busy_wait(Duration::from_millis(milliseconds));
    }

    fn create_mutex(&self) -> Handle {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        Handle(NEXT.fetch_add(1, Ordering::Relaxed))
    }
    fn acquire(&self, _mutex: Handle, _timeout: u16) -> Result<(), AmlError> {
        Ok(())
    }
    fn release(&self, _mutex: Handle) {}
}

/// Maps AML's memory access of `bytes` at `address`, or panics: the AML names
/// an address the MMIO window cannot reach.
fn mmio(address: usize, bytes: u64) -> u64 {
    paging::map_mmio(address as u64, bytes)
        .unwrap_or_else(|error| panic!("ACPI: AML accesses {address:#x}, which cannot be mapped: {error:?}"))
}

/// PCI configuration access for AML; mechanism #1 reaches segment 0 and the
/// first 256 bytes of each function. Outside, reads see all ones and writes
/// are dropped, as for an absent device, with a log line.
fn read_pci(address: PciAddress, offset: u16) -> u32 {
    match pci_target(address, offset) {
        Some((bus, slot, function, offset)) => pci::read_config(bus, slot, function, offset),
        None => u32::MAX,
    }
}

fn write_pci(address: PciAddress, offset: u16, value: u32) {
    if let Some((bus, slot, function, offset)) = pci_target(address, offset) {
        pci::write_config(bus, slot, function, offset, value);
    }
}

fn pci_target(address: PciAddress, offset: u16) -> Option<(u8, u8, u8, u8)> {
    match u8::try_from(offset) {
        Ok(offset) if address.segment() == 0 => {
            Some((address.bus(), address.device(), address.function(), offset))
        }
        _ => {
            log::warn!(
                "ACPI: AML reaches PCI {address:?} offset {offset:#x}, beyond configuration mechanism #1"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_read_through_the_hhdm_only_from_acpi_memory() {
        let map = [
            MemoryRegion { base: 0x10_0000, length: 0x7ee0_0000, kind: RegionKind::Usable },
            MemoryRegion { base: 0x7fee_0000, length: 0x2_0000, kind: RegionKind::Acpi },
            MemoryRegion { base: 0xfec0_0000, length: 0x1000, kind: RegionKind::Reserved },
        ];
        assert!(is_table_memory(&map, 0xf_52a0, 36), "the RSDP in the BIOS area");
        assert!(is_table_memory(&map, 0x7fee_1000, 0x100));
        assert!(!is_table_memory(&map, 0x7fef_ff00, 0x200), "runs past the ACPI region");
        assert!(!is_table_memory(&map, 0xfec0_0000, 0x20), "device registers");
        assert!(!is_table_memory(&map, 0x20_0000, 0x100), "ordinary RAM is not where tables live");
    }
}
