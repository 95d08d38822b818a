//! The page attribute table (PAT): which memory type each combination of a
//! page's PAT, PCD and PWT bits selects.
//!
//! The power-on table offers write-back, write-through and two uncached
//! types, but no write-combining, which a framebuffer needs: stores to it
//! are then combined into bursts instead of crossing the bus one by one
//! (many times faster on real hardware; QEMU cannot show the difference).
//! The kernel sets the four entries a page selects with PCD and PWT alone:
//! 0 write-back for RAM, 1 write-combining (PWT alone; it was
//! write-through, which the kernel does not use), 2 UC-, 3 uncached for
//! device registers. Entries 4 to 7 (the PAT bit set) are kept as the
//! bootloader left them: only its mappings select them (Limine 8.2 has
//! write-protect in 4 and write-combining in 5), and their type must not
//! change under them.

use x86_64::registers::model_specific::Msr;

/// IA32_PAT.
const PAT_MSR: u32 = 0x277;

/// A memory type, with its PAT encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MemoryType {
    Uncacheable = 0,
    WriteCombining = 1,
    WriteThrough = 4,
    WriteProtected = 5,
    WriteBack = 6,
    /// UC-: uncached, but a write-combining MTRR can still combine writes.
    UncachedMinus = 7,
}

impl MemoryType {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0 => Self::Uncacheable,
            1 => Self::WriteCombining,
            4 => Self::WriteThrough,
            5 => Self::WriteProtected,
            6 => Self::WriteBack,
            7 => Self::UncachedMinus,
            _ => return None,
        })
    }
}

/// The kernel's entries 0 to 3 (entry = PAT << 2 | PCD << 1 | PWT).
pub const KERNEL_ENTRIES: [MemoryType; 4] =
    [MemoryType::WriteBack, MemoryType::WriteCombining, MemoryType::UncachedMinus, MemoryType::Uncacheable];

/// The entry a 4 KiB page selects with PWT alone: write-combining in the
/// kernel's table.
pub const WRITE_COMBINING_ENTRY: usize = 1;

/// The MSR value of the first `table.len()` entries.
pub fn encode(table: &[MemoryType]) -> u64 {
    table.iter().enumerate().fold(0, |value, (entry, kind)| value | (*kind as u64) << (entry * 8))
}

/// The table `found` with the kernel's entries 0 to 3.
pub fn with_kernel_entries(found: u64) -> u64 {
    found & !0xffff_ffff | encode(&KERNEL_ENTRIES)
}

/// The table in an MSR value; `None` for an entry holding a reserved
/// encoding.
pub fn decode(value: u64) -> [Option<MemoryType>; 8] {
    core::array::from_fn(|entry| MemoryType::from_bits((value >> (entry * 8)) as u8))
}

/// The entry a page-table entry's PAT, PCD and PWT bits select.
pub fn entry_of(pat: bool, cache_disable: bool, write_through: bool) -> usize {
    usize::from(pat) << 2 | usize::from(cache_disable) << 1 | usize::from(write_through)
}

/// The CPU has no PAT (CPUID.1:EDX[16] clear): pages get write-back,
/// write-through or uncached only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoPat;

/// Loads the kernel's table and returns the one it replaces. Call with
/// interrupts off, before any page selects entry 1.
pub fn init() -> Result<u64, NoPat> {
    if !super::cpu::features().pat {
        return Err(NoPat);
    }
    let before = read();
    // SAFETY: the CPU has a PAT (checked above). Entries 0, 2 and 3 keep the
    // power-on types Limine leaves there; only pages selecting entry 1 change
    // type, from write-through to write-combining, and none does yet;
    // caches are written back and TLBs flushed around the change, as the
    // SDM asks, so no stale line or translation keeps the old type.
    unsafe {
        core::arch::asm!("wbinvd", options(nostack, preserves_flags));
        Msr::new(PAT_MSR).write(with_kernel_entries(before));
        core::arch::asm!("wbinvd", options(nostack, preserves_flags));
    }
    x86_64::instructions::tlb::flush_all();
    Ok(before)
}

/// The table's MSR value now (0 on a CPU without a PAT).
pub fn read() -> u64 {
    if !super::cpu::features().pat {
        return 0;
    }
    // SAFETY: reading IA32_PAT has no effect, and the CPU has one.
    unsafe { Msr::new(PAT_MSR).read() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_power_on_table_decodes_and_encodes_back() {
        let power_on = 0x0007_0406_0007_0406;
        let table = decode(power_on).map(Option::unwrap);
        assert_eq!(table[0], MemoryType::WriteBack);
        assert_eq!(table[1], MemoryType::WriteThrough);
        assert_eq!(table[2], MemoryType::UncachedMinus);
        assert_eq!(table[3], MemoryType::Uncacheable);
        assert_eq!(encode(&table), power_on);
    }

    #[test]
    fn the_kernels_table_adds_write_combining_and_keeps_ram_devices_and_the_upper_half() {
        // As Limine 8.2.0 leaves it: write-protect in 4, write-combining in 5.
        let limine = 0x0000_0105_0007_0406;
        let value = with_kernel_entries(limine);
        assert_eq!(value, 0x0000_0105_0007_0106);
        let table = decode(value);
        assert_eq!(table[WRITE_COMBINING_ENTRY], Some(MemoryType::WriteCombining));
        assert_eq!(table[entry_of(false, false, false)], Some(MemoryType::WriteBack));
        assert_eq!(table[entry_of(false, true, true)], Some(MemoryType::Uncacheable));
        assert_eq!(entry_of(false, false, true), WRITE_COMBINING_ENTRY);
    }

    #[test]
    fn reserved_encodings_decode_to_nothing() {
        assert_eq!(decode(0x0203)[0..2], [None, None]);
    }
}
