//! The firmware's memory map made into one the kernel can trust: sorted,
//! without overlaps and without empty entries, of any length.
//!
//! Firmware maps come unsorted, with zero-length entries, and with ranges
//! that two entries both describe. Where entries overlap, the most
//! restrictive kind wins ([`RegionKind`] is ordered so): memory that any
//! entry says is in use is never handed out, and every byte is counted once.
//!
//! The kernel's copy is sized from the map itself (twice its entry count
//! bounds the result) and stored at the top of a usable range, before any
//! allocator exists; the copy marks its own storage as kernel memory.

use super::{MemoryRegion, RegionKind};

/// One end of a map entry, for the sweep over the address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    at: u64,
    kind: RegionKind,
    opens: bool,
    /// From the firmware's map (not the kernel's own claim).
    firmware: bool,
}

impl Edge {
    pub const EMPTY: Edge = Edge { at: 0, kind: RegionKind::Reserved, opens: false, firmware: false };
}

/// Regions the normalised map of `entries` firmware entries may need, and
/// edges for the sweep: each entry adds at most two boundaries, and
/// regions lie between boundaries.
pub fn capacity(entries: usize) -> usize {
    entries * 2
}

/// What [`normalize`] met and fixed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repairs {
    /// Regions in the result.
    pub regions: usize,
    /// Entries of length zero, left out.
    pub empty: usize,
    /// Bytes more than one entry described, counted once.
    pub overlapping_bytes: u64,
    /// Whether the entries were out of address order.
    pub unsorted: bool,
}

/// Writes the map of `entries` into `out`, sorted by address, each byte in
/// one region of the most restrictive kind any entry gives it, neighbours of
/// one kind merged. `claim` is a range the kernel itself took, laid over
/// the firmware's entries like one of them but not counted in the
/// [`Repairs`]. `edges` is scratch space; both must hold
/// [`capacity`]`(entries.len() + 1)` items. An entry reaching past the top
/// of the address space is cut there.
pub fn normalize(
    entries: impl Iterator<Item = MemoryRegion>,
    claim: Option<MemoryRegion>,
    edges: &mut [Edge],
    out: &mut [MemoryRegion],
) -> Repairs {
    let mut repairs = Repairs::default();
    let mut count = 0;
    let mut last_base = 0;
    let firmware = entries.map(|entry| (entry, true));
    for (entry, firmware) in firmware.chain(claim.map(|claim| (claim, false))) {
        if firmware {
            repairs.unsorted |= entry.base < last_base;
            last_base = entry.base;
        }
        let end = entry.base.saturating_add(entry.length);
        if end == entry.base {
            repairs.empty += usize::from(firmware);
            continue;
        }
        edges[count] = Edge { at: entry.base, kind: entry.kind, opens: true, firmware };
        edges[count + 1] = Edge { at: end, kind: entry.kind, opens: false, firmware };
        count += 2;
    }
    let edges = &mut edges[..count];
    edges.sort_unstable_by_key(|edge| edge.at);
    // Entries of each kind covering the sweep's position, and how many of
    // them are the firmware's.
    let mut open = [0usize; KINDS.len()];
    let mut firmware_open = 0usize;
    let mut at = 0;
    let mut len = 0;
    for edge in edges.iter() {
        if edge.at != at {
            if firmware_open > 1 {
                repairs.overlapping_bytes += edge.at - at;
            }
            let kind = KINDS.iter().zip(&open).rev().find(|(_, open)| **open > 0).map(|(kind, _)| *kind);
            if let Some(kind) = kind {
                match out[..len].last_mut() {
                    Some(last) if last.kind == kind && last.end() == at => last.length += edge.at - at,
                    _ => {
                        out[len] = MemoryRegion { base: at, length: edge.at - at, kind };
                        len += 1;
                    }
                }
            }
            at = edge.at;
        }
        let slot = &mut open[edge.kind as usize];
        if edge.opens {
            *slot += 1;
            firmware_open += usize::from(edge.firmware);
        } else {
            *slot -= 1;
            firmware_open -= usize::from(edge.firmware);
        }
    }
    repairs.regions = len;
    repairs
}

/// Every kind, least restrictive first: the order of `RegionKind`.
const KINDS: [RegionKind; 5] = [
    RegionKind::Usable,
    RegionKind::BootloaderReclaimable,
    RegionKind::Kernel,
    RegionKind::Acpi,
    RegionKind::Reserved,
];

/// Bytes the kernel's copy of a map of `entries` entries takes: the regions
/// (kept), then the sweep's edges (needed only while the copy is made).
pub fn storage_bytes(entries: usize) -> (u64, u64) {
    let slots = capacity(entries) as u64;
    let regions = (slots * size_of::<MemoryRegion>() as u64).next_multiple_of(PAGE);
    (regions, slots * size_of::<Edge>() as u64)
}

const PAGE: u64 = 4096;

/// Where to store `bytes`: the page-aligned top of the largest usable entry
/// that no other kind of entry overlaps there. `None` if no entry has room.
pub fn place(entries: impl Iterator<Item = MemoryRegion> + Clone, bytes: u64) -> Option<u64> {
    entries
        .clone()
        .filter(|entry| entry.kind == RegionKind::Usable)
        .filter_map(|entry| {
            let end = entry.base.checked_add(entry.length)? / PAGE * PAGE;
            let start = end.checked_sub(bytes)? / PAGE * PAGE;
            let free = start >= entry.base
                && !entries.clone().any(|other| {
                    other.kind != RegionKind::Usable
                        && other.base < end
                        && start < other.base.saturating_add(other.length)
                });
            free.then_some((entry.length, start))
        })
        .max_by_key(|&(length, _)| length)
        .map(|(_, start)| start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(base: u64, length: u64, kind: RegionKind) -> MemoryRegion {
        MemoryRegion { base, length, kind }
    }

    fn normalized(entries: &[MemoryRegion]) -> (Vec<MemoryRegion>, Repairs) {
        let mut edges = vec![Edge::EMPTY; capacity(entries.len())];
        let mut out = vec![region(0, 0, RegionKind::Reserved); capacity(entries.len())];
        let repairs = normalize(entries.iter().copied(), None, &mut edges, &mut out);
        out.truncate(repairs.regions);
        (out, repairs)
    }

    /// The kind each byte should have, checked at every boundary: the most
    /// restrictive of the entries covering it.
    fn kind_at(entries: &[MemoryRegion], at: u64) -> Option<RegionKind> {
        entries.iter().filter(|e| e.base <= at && at < e.base.saturating_add(e.length)).map(|e| e.kind).max()
    }

    fn assert_well_formed(entries: &[MemoryRegion], map: &[MemoryRegion]) {
        for pair in map.windows(2) {
            assert!(pair[0].end() <= pair[1].base, "{pair:x?} overlap or are out of order");
            assert!(pair[0].end() < pair[1].base || pair[0].kind != pair[1].kind, "{pair:x?} not merged");
        }
        assert!(map.iter().all(|r| r.length > 0));
        let mut points: Vec<u64> =
            entries.iter().flat_map(|e| [e.base, e.base.saturating_add(e.length)]).collect();
        points.sort_unstable();
        for at in points {
            let found = map.iter().find(|r| r.base <= at && at < r.end()).map(|r| r.kind);
            assert_eq!(found, kind_at(entries, at), "at {at:#x}");
        }
    }

    #[test]
    fn a_sorted_clean_map_comes_out_as_it_went_in() {
        let entries = [
            region(0, 0x9f000, RegionKind::Usable),
            region(0x9f000, 0x1000, RegionKind::Reserved),
            region(0x10_0000, 0x3ff0_0000, RegionKind::Usable),
            region(0x4000_0000, 0x10_0000, RegionKind::BootloaderReclaimable),
        ];
        let (map, repairs) = normalized(&entries);
        assert_eq!(map, entries);
        assert_eq!(repairs, Repairs { regions: 4, ..Repairs::default() });
    }

    #[test]
    fn overlaps_count_once_as_the_most_restrictive_kind() {
        let entries = [
            region(0x10_0000, 0x100_0000, RegionKind::Usable),
            region(0x20_0000, 0x1000, RegionKind::Reserved),
            region(0x80_0000, 0x100_0000, RegionKind::Usable),
            region(0x50_0000, 0x4000, RegionKind::Acpi),
            region(0x50_2000, 0x4000, RegionKind::BootloaderReclaimable),
        ];
        let (map, repairs) = normalized(&entries);
        assert_eq!(
            map,
            [
                region(0x10_0000, 0x10_0000, RegionKind::Usable),
                region(0x20_0000, 0x1000, RegionKind::Reserved),
                region(0x20_1000, 0x2f_f000, RegionKind::Usable),
                region(0x50_0000, 0x4000, RegionKind::Acpi),
                region(0x50_4000, 0x2000, RegionKind::BootloaderReclaimable),
                region(0x50_6000, 0x12f_a000, RegionKind::Usable),
            ]
        );
        let usable: u64 = map.iter().filter(|r| r.kind == RegionKind::Usable).map(|r| r.length).sum();
        assert_eq!(usable, 0x170_0000 - 0x1000 - 0x6000, "the usable overlap is counted once");
        // The reserved page, the two usable entries' common 9 MiB, the ACPI and
        // reclaimable pages over usable memory.
        assert_eq!(repairs.overlapping_bytes, 0x1000 + 0x90_0000 + 0x6000);
    }

    #[test]
    fn the_kernels_claim_is_laid_over_but_not_reported() {
        let entries =
            [region(0x10_0000, 0x10_0000, RegionKind::Usable), region(0x20_0000, 0x1000, RegionKind::Kernel)];
        let claim = region(0x1f_e000, 0x2000, RegionKind::Kernel);
        let mut edges = vec![Edge::EMPTY; capacity(3)];
        let mut out = vec![region(0, 0, RegionKind::Reserved); capacity(3)];
        let repairs = normalize(entries.iter().copied(), Some(claim), &mut edges, &mut out);
        assert_eq!(repairs, Repairs { regions: 2, ..Repairs::default() });
        assert_eq!(
            out[..2],
            [region(0x10_0000, 0xf_e000, RegionKind::Usable), region(0x1f_e000, 0x3000, RegionKind::Kernel)]
        );
    }

    #[test]
    fn empty_entries_are_left_out_and_unsorted_maps_sorted() {
        let entries = [
            region(0x30_0000, 0x1000, RegionKind::Usable),
            region(0x10_0000, 0, RegionKind::Reserved),
            region(0x10_0000, 0x1000, RegionKind::Usable),
            region(u64::MAX - 0xfff, 0x2000, RegionKind::Reserved),
        ];
        let (map, repairs) = normalized(&entries);
        assert_eq!(
            map,
            [
                region(0x10_0000, 0x1000, RegionKind::Usable),
                region(0x30_0000, 0x1000, RegionKind::Usable),
                region(u64::MAX - 0xfff, 0xfff, RegionKind::Reserved),
            ]
        );
        assert!(repairs.unsorted);
        assert_eq!(repairs.empty, 1);
    }

    /// A small deterministic generator: no dependency for a few numbers.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, below: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) % below
        }
    }

    fn random_map(seed: u64, entries: usize) -> Vec<MemoryRegion> {
        let mut rng = Lcg(seed);
        (0..entries)
            .map(|_| {
                let base = rng.next(1 << 24) * PAGE;
                let length = if rng.next(20) == 0 { 0 } else { (1 + rng.next(1 << 12)) * PAGE };
                region(base, length, KINDS[rng.next(5) as usize])
            })
            .collect()
    }

    #[test]
    fn thousands_of_random_overlapping_entries_become_a_clean_map() {
        for seed in 0..4 {
            let entries = random_map(seed, 1500);
            let (map, repairs) = normalized(&entries);
            assert_well_formed(&entries, &map);
            assert!(repairs.regions <= capacity(entries.len()));
            assert!(repairs.empty > 0 && repairs.overlapping_bytes > 0 && repairs.unsorted);
        }
    }

    #[test]
    fn a_long_map_with_holes_keeps_every_usable_byte() {
        // 2000 usable entries of 1..4 pages, each followed by a hole, listed
        // backwards: nothing is lost and nothing is merged across a hole.
        let mut rng = Lcg(7);
        let mut entries = Vec::new();
        let mut at = 0x10_0000;
        for _ in 0..2000 {
            let length = (1 + rng.next(4)) * PAGE;
            entries.push(region(at, length, RegionKind::Usable));
            at += length + PAGE;
        }
        let total: u64 = entries.iter().map(|e| e.length).sum();
        entries.reverse();
        let (map, repairs) = normalized(&entries);
        assert_eq!(map.len(), 2000);
        assert_eq!(map.iter().map(|r| r.length).sum::<u64>(), total);
        assert_eq!(repairs.overlapping_bytes, 0);
        assert_well_formed(&entries, &map);
    }

    #[test]
    fn storage_goes_where_only_usable_entries_lie() {
        let entries = [
            region(0x10_0000, 0x10_0000, RegionKind::Usable),
            region(0x100_0000, 0x400_0000, RegionKind::Usable),
            // Reserved over the top of the largest usable entry.
            region(0x4ff_f000, 0x1000, RegionKind::Reserved),
            region(0x800_0000, 0x80_0000, RegionKind::Usable),
        ];
        assert_eq!(place(entries.iter().copied(), 0x3000), Some(0x87f_d000));
        assert_eq!(place(entries[..2].iter().copied(), 0x3000), Some(0x4ff_d000));
        assert_eq!(place(entries.iter().copied(), 0x1000_0000), None);
        assert_eq!(place(core::iter::empty(), 0x1000), None);
    }
}
