//! Builds the kernel image the boot media carry (see `kernel/unpack` for why
//! and how it starts): an ELF file with
//!
//! - the kernel's Limine requests, as they are: Limine finds and answers them
//!   in the loaded file;
//! - the unpacker, in the window the kernel's linker script leaves free for
//!   it, with its [`Table`] filled in and its entry as the file's entry;
//! - the kernel's own segments, empty (no bytes in the file), with the
//!   kernel's permissions: Limine maps and zeroes them;
//! - the payload, the kernel's image compressed, where the kernel's `.bss`
//!   will be (from the first page after its initialised data): that memory
//!   is the kernel's anyway, so the payload takes none of its own once the
//!   unpacker has decoded it and cleared it. A payload longer than the
//!   `.bss` runs on past the kernel's end.
//!
//! Only program headers matter to Limine; the packed file has no sections.
//! Debuggers read the kernel's own ELF file, whose addresses are the same.

use unpack::{MAGIC, Table};

const PAGE: u64 = 4096;
const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;
const HEADER_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
/// Limine's requests start marker (limine.h): it tells the kernel's requests
/// segment from the others.
const REQUESTS_START: [u64; 4] =
    [0xf6b8f4b39de7d1ae, 0xfab91a6940fcb9cf, 0x785c6ed015d3e316, 0x181e920a7852b9d9];
/// liblz4's default high-compression level. Its highest, 12, makes the
/// kernel's file about 1 KiB smaller (0.9 to 1.4 KiB as the kernel changed;
/// a block of Limine's reading only when it ends one sooner) but packs
/// several times slower, for each of the 25 images `make test` builds.
/// Unpacking is as fast either way.
const LEVEL: i32 = 9;

/// A loadable segment: `data` is what the file holds for it, zeroes follow
/// up to `memsz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    pub flags: u32,
    pub data: Vec<u8>,
}

impl Segment {
    fn end(&self) -> u64 {
        self.vaddr + self.memsz
    }

    /// The pages the segment touches, as a range of page addresses.
    fn pages(&self) -> (u64, u64) {
        (self.vaddr & !(PAGE - 1), self.end().next_multiple_of(PAGE))
    }

    fn contains(&self, bytes: &[u8]) -> bool {
        self.data.windows(bytes.len()).any(|window| window == bytes)
    }
}

/// An x86-64 ELF executable as Limine sees it: the entry point and the
/// loadable segments, sorted by address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elf {
    pub entry: u64,
    pub segments: Vec<Segment>,
}

impl Elf {
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let u16_at = |at: usize| bytes.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        let u32_at = |at: usize| bytes.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
        let u64_at = |at: usize| bytes.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()));
        if bytes.get(..6) != Some(b"\x7fELF\x02\x01") || u16_at(18) != Some(0x3e) {
            return Err("not a little-endian x86-64 ELF file".into());
        }
        let too_short = || "the ELF file ends inside its headers".to_string();
        let entry = u64_at(24).ok_or_else(too_short)?;
        let phoff = usize::try_from(u64_at(32).ok_or_else(too_short)?).map_err(|_| too_short())?;
        let phentsize = usize::from(u16_at(54).ok_or_else(too_short)?);
        let phnum = usize::from(u16_at(56).ok_or_else(too_short)?);
        if phentsize < PHDR_SIZE {
            return Err(format!("program headers of {phentsize} bytes (ELF64's are {PHDR_SIZE})"));
        }
        let mut segments = Vec::new();
        for index in 0..phnum {
            let at = phoff + index * phentsize;
            let header = (|| {
                Some((
                    u32_at(at)?,
                    u32_at(at + 4)?,
                    u64_at(at + 8)?,
                    u64_at(at + 16)?,
                    u64_at(at + 32)?,
                    u64_at(at + 40)?,
                ))
            })();
            let (kind, flags, offset, vaddr, filesz, memsz) = header.ok_or_else(too_short)?;
            if kind != PT_LOAD || memsz == 0 {
                continue;
            }
            let data = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(filesz).ok())
                .and_then(|(offset, filesz)| bytes.get(offset..offset.checked_add(filesz)?))
                .ok_or_else(|| format!("segment {index} lies beyond the end of the file"))?;
            if filesz > memsz {
                return Err(format!("segment {index} has more bytes in the file than in memory"));
            }
            segments.push(Segment { vaddr, memsz, flags: flags & (PF_R | PF_W | PF_X), data: data.to_vec() });
        }
        segments.sort_by_key(|segment| segment.vaddr);
        Ok(Self { entry, segments })
    }

    /// The file: headers, then each segment's bytes, 8-byte aligned, in
    /// address order. Segments without bytes keep page alignment, which
    /// Limine also takes as the image's physical alignment.
    pub fn to_bytes(&self) -> Vec<u8> {
        let headers_end = HEADER_SIZE + PHDR_SIZE * self.segments.len();
        let mut offset = headers_end;
        let mut headers = Vec::new();
        let mut contents = Vec::new();
        for segment in &self.segments {
            let (file_offset, align) = if segment.data.is_empty() {
                (segment.vaddr % PAGE, PAGE)
            } else {
                let start = offset.next_multiple_of(8);
                contents.resize(start - headers_end, 0);
                contents.extend_from_slice(&segment.data);
                offset = start + segment.data.len();
                (start as u64, 8)
            };
            headers.extend_from_slice(&PT_LOAD.to_le_bytes());
            headers.extend_from_slice(&segment.flags.to_le_bytes());
            for field in
                [file_offset, segment.vaddr, segment.vaddr, segment.data.len() as u64, segment.memsz, align]
            {
                headers.extend_from_slice(&field.to_le_bytes());
            }
        }
        let mut file = Vec::with_capacity(offset);
        file.extend_from_slice(b"\x7fELF\x02\x01\x01");
        file.resize(16, 0);
        file.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        file.extend_from_slice(&0x3eu16.to_le_bytes()); // x86-64
        file.extend_from_slice(&1u32.to_le_bytes());
        file.extend_from_slice(&self.entry.to_le_bytes());
        file.extend_from_slice(&(HEADER_SIZE as u64).to_le_bytes()); // program headers
        file.extend_from_slice(&0u64.to_le_bytes()); // no section headers
        file.extend_from_slice(&0u32.to_le_bytes());
        for field in [HEADER_SIZE, PHDR_SIZE, self.segments.len(), 64, 0, 0] {
            file.extend_from_slice(&(field as u16).to_le_bytes());
        }
        file.extend_from_slice(&headers);
        file.extend_from_slice(&contents);
        file
    }
}

/// Packs `kernel` behind `unpacker`, or says why the two do not fit together.
pub fn pack(kernel: &Elf, unpacker: &Elf) -> Result<Elf, String> {
    let (requests, rest) = kernel.segments.split_first().ok_or("the kernel has no loadable segments")?;
    let marker: Vec<u8> = REQUESTS_START.iter().flat_map(|word| word.to_le_bytes()).collect();
    if !requests.contains(&marker) {
        return Err("the kernel's first segment does not hold Limine's requests start marker \
                    (linker.ld puts .limine_requests first)"
            .into());
    }
    let (first, last) = match rest {
        [first, .., last] => (first, last),
        [only] => (only, only),
        [] => return Err("the kernel has nothing but its Limine requests".into()),
    };
    let window = (requests.end().next_multiple_of(PAGE), first.vaddr);
    let (unpacker_start, unpacker_end) = match &unpacker.segments[..] {
        [first, .., last] => (first.vaddr, last.end()),
        [only] => (only.vaddr, only.end()),
        [] => return Err("the unpacker has no loadable segments".into()),
    };
    if unpacker_start < window.0 || unpacker_end > window.1 {
        return Err(format!(
            "the unpacker ({unpacker_start:#x}..{unpacker_end:#x}) does not fit the window the kernel leaves \
             for it ({:#x}..{:#x}, linker.ld)",
            window.0, window.1
        ));
    }
    if !(unpacker_start..unpacker_end).contains(&unpacker.entry) {
        return Err("the unpacker's entry point is outside it".into());
    }
    if unpacker.segments[0].data.get(..MAGIC.len()) != Some(&MAGIC[..]) {
        return Err(
            "the unpacker does not start with its table (kernel/unpack/unpack.ld puts it first)".into()
        );
    }

    // The unpacker writes the whole image, gaps included: a gap must lie in
    // pages Limine maps for the segment before it.
    for pair in rest.windows(2) {
        if pair[1].vaddr > pair[0].end().next_multiple_of(PAGE) {
            return Err(format!(
                "the kernel's segments at {:#x} and {:#x} have unmapped pages between them",
                pair[0].vaddr, pair[1].vaddr
            ));
        }
    }
    let image_start = first.vaddr;
    let image_end = last.vaddr + last.data.len() as u64;
    let mut image =
        vec![0u8; usize::try_from(image_end - image_start).map_err(|_| "the kernel is too large")?];
    for segment in rest {
        let at = (segment.vaddr - image_start) as usize;
        image[at..at + segment.data.len()].copy_from_slice(&segment.data);
    }
    let compressed =
        lz4::block::compress(&image, Some(lz4::block::CompressionMode::HIGHCOMPRESSION(LEVEL)), false)
            .map_err(|error| format!("compressing the kernel: {error}"))?;
    // The last segment holds the end of the image and then `.bss`; its pages
    // from the payload on come from the payload's bytes in the file.
    let payload_at = image_end.next_multiple_of(PAGE);
    let bss_head = Segment { memsz: payload_at - last.vaddr, data: Vec::new(), ..last.clone() };
    let payload = Segment {
        vaddr: payload_at,
        memsz: last.end().max(payload_at + compressed.len() as u64) - payload_at,
        flags: last.flags,
        data: compressed,
    };
    let table = Table {
        magic: MAGIC,
        entry: kernel.entry,
        payload: payload.vaddr,
        payload_len: payload.data.len() as u64,
        checksum: unpack::checksum(&payload.data),
        image: image_start,
        image_len: image.len() as u64,
    };

    let mut segments = vec![requests.clone()];
    for (index, segment) in unpacker.segments.iter().enumerate() {
        let mut segment = segment.clone();
        if index == 0 {
            segment
                .data
                .get_mut(..Table::SIZE)
                .ok_or("the unpacker's first segment is shorter than its table")?
                .copy_from_slice(&table.to_bytes());
        }
        segments.push(segment);
    }
    // Every segment but the last, which `bss_head` and `payload` replace.
    let before_last = &rest[..rest.len() - 1];
    segments.extend(before_last.iter().map(|segment| Segment { data: Vec::new(), ..segment.clone() }));
    segments.extend([bss_head, payload].into_iter().filter(|segment| segment.memsz > 0));
    let packed = Elf { entry: unpacker.entry, segments };
    check_pages(&packed)?;
    Ok(packed)
}

/// Limine refuses segments that overlap, or that share a page with different
/// permissions.
fn check_pages(elf: &Elf) -> Result<(), String> {
    for (index, segment) in elf.segments.iter().enumerate() {
        for other in &elf.segments[index + 1..] {
            let (a, b) = (segment.pages(), other.pages());
            let shared = a.0 < b.1 && b.0 < a.1;
            if segment.vaddr < other.end() && other.vaddr < segment.end() {
                return Err(format!("segments at {:#x} and {:#x} overlap", segment.vaddr, other.vaddr));
            }
            if shared && segment.flags != other.flags {
                return Err(format!(
                    "segments at {:#x} and {:#x} share a page with different permissions",
                    segment.vaddr, other.vaddr
                ));
            }
        }
    }
    Ok(())
}

/// What a packed file holds: its table and its payload, for checking it.
pub fn table_and_payload(packed: &Elf) -> Option<(Table, &[u8])> {
    let table = packed.segments.iter().find_map(|segment| {
        let table = Table::from_bytes(&segment.data)?;
        (table.magic == MAGIC).then_some(table)
    })?;
    let payload = packed.segments.iter().find(|segment| segment.vaddr == table.payload)?;
    Some((table, &payload.data))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0xffff_ffff_8000_0000;
    const WINDOW: u64 = BASE + PAGE;

    fn segment(vaddr: u64, flags: u32, data: Vec<u8>, memsz: u64) -> Segment {
        Segment { vaddr, memsz, flags, data }
    }

    /// A kernel laid out as linker.ld lays it out, with three pages for the
    /// unpacker and code that compresses (it repeats).
    fn kernel() -> Elf {
        let mut requests: Vec<u8> = REQUESTS_START.iter().flat_map(|word| word.to_le_bytes()).collect();
        requests.extend([7; 40]);
        let code: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8 ^ (i / 1000) as u8).collect();
        let text = BASE + 4 * PAGE;
        let rodata = (text + code.len() as u64).next_multiple_of(PAGE);
        let data = rodata + PAGE;
        Elf {
            entry: text + 16,
            segments: vec![
                segment(BASE, PF_R | PF_W, requests.clone(), requests.len() as u64),
                segment(text, PF_R | PF_X, code.clone(), code.len() as u64),
                segment(rodata, PF_R, b"constants".repeat(50), 450),
                segment(data, PF_R | PF_W, vec![1, 2, 3], 64 * 1024),
            ],
        }
    }

    fn unpacker(pages: u64) -> Elf {
        let mut code = MAGIC.to_vec();
        code.resize(Table::SIZE, 0);
        code.extend([0x90; 100]);
        code.resize((pages * PAGE) as usize - 10, 0xcc);
        Elf {
            entry: WINDOW + Table::SIZE as u64,
            segments: vec![segment(WINDOW, PF_R | PF_X, code.clone(), code.len() as u64)],
        }
    }

    #[test]
    fn the_packed_kernel_unpacks_to_the_kernel_as_limine_would_load_it() {
        let kernel = kernel();
        let packed = pack(&kernel, &unpacker(2)).unwrap();
        let file = packed.to_bytes();
        let packed = Elf::parse(&file).expect("the packed file parses back");
        assert_eq!(packed.entry, WINDOW + Table::SIZE as u64, "Limine starts the unpacker");

        let (table, payload) = table_and_payload(&packed).expect("the packed file has a table and a payload");
        assert_eq!(table.entry, kernel.entry, "the unpacker jumps to the kernel's entry");
        let mut image = vec![0xaa; table.image_len as usize];
        let mut bss = payload.to_vec();
        unpack::unpack(&mut bss, table.checksum, &mut image).unwrap();
        assert!(bss.iter().all(|&byte| byte == 0), "the payload's part of .bss is cleared");
        for original in &kernel.segments[1..] {
            let at = (original.vaddr - table.image) as usize;
            assert_eq!(
                &image[at..at + original.data.len()],
                &original.data[..],
                "segment {:#x}",
                original.vaddr
            );
            for address in (original.vaddr..original.end()).step_by(PAGE as usize).chain([original.end() - 1])
            {
                let mapped = packed
                    .segments
                    .iter()
                    .find(|s| (s.vaddr..s.end()).contains(&address))
                    .expect("each page of the kernel is mapped");
                assert_eq!(mapped.flags, original.flags, "permissions kept at {address:#x}");
                assert!(
                    mapped.data.is_empty() || mapped.vaddr == table.payload,
                    "the kernel's bytes are only in the payload"
                );
            }
        }
        assert!(table.payload >= table.image + table.image_len, "the payload lies past the image");
        let end = |elf: &Elf| elf.segments.iter().map(Segment::end).max();
        assert_eq!(end(&packed), end(&kernel), "the payload takes no memory past the kernel's .bss");
        assert_eq!(packed.segments[0], kernel.segments[0], "Limine's requests stay as they are");
        assert!(payload.len() < image.len() / 2, "{} bytes packed into {}", image.len(), payload.len());
        assert!(file.len() < Elf { entry: 0, segments: kernel.segments.clone() }.to_bytes().len());
    }

    #[test]
    fn a_payload_longer_than_the_bss_runs_past_the_kernels_end() {
        let mut kernel = kernel();
        kernel.segments[3].memsz = 3;
        let packed = pack(&kernel, &unpacker(1)).unwrap();
        let (table, payload) = table_and_payload(&packed).unwrap();
        let mapped = packed.segments.iter().find(|s| s.vaddr == table.payload).unwrap();
        assert_eq!(mapped.end(), table.payload + payload.len() as u64);
        let mut image = vec![0; table.image_len as usize];
        unpack::unpack(&mut payload.to_vec(), table.checksum, &mut image).unwrap();
        assert_eq!(&image[image.len() - 3..], &[1, 2, 3]);
    }

    #[test]
    fn a_damaged_payload_is_reported_not_unpacked() {
        let packed = pack(&kernel(), &unpacker(1)).unwrap();
        let (table, payload) = table_and_payload(&packed).unwrap();
        let mut image = vec![0; table.image_len as usize];
        let mut damaged = payload.to_vec();
        damaged[payload.len() / 2] ^= 0x10;
        assert_eq!(unpack::unpack(&mut damaged, table.checksum, &mut image), Err(unpack::Error::Checksum));
        let mut half = payload[..payload.len() / 2].to_vec();
        let half_checksum = unpack::checksum(&half);
        assert_eq!(unpack::unpack(&mut half, half_checksum, &mut image), Err(unpack::Error::Corrupt));
        let mut whole = payload.to_vec();
        assert_eq!(
            unpack::unpack(&mut whole, table.checksum, &mut image[..100]),
            Err(unpack::Error::Corrupt)
        );
        image.push(0);
        assert_eq!(unpack::unpack(&mut whole, table.checksum, &mut image), Err(unpack::Error::Short));
        assert_eq!(whole, payload, "a payload that did not decode is left as it was");
    }

    #[test]
    fn a_kernel_with_unmapped_pages_between_its_segments_is_refused() {
        let mut kernel = kernel();
        kernel.segments[3].vaddr += 2 * PAGE;
        let error = pack(&kernel, &unpacker(1)).unwrap_err();
        assert!(error.contains("unmapped pages"), "{error}");
    }

    #[test]
    fn an_unpacker_larger_than_the_window_is_refused() {
        let error = pack(&kernel(), &unpacker(4)).unwrap_err();
        assert!(error.contains("does not fit the window"), "{error}");
    }

    #[test]
    fn a_kernel_without_its_requests_first_is_refused() {
        let mut kernel = kernel();
        kernel.segments[0].data = vec![0; 64];
        let error = pack(&kernel, &unpacker(1)).unwrap_err();
        assert!(error.contains("requests start marker"), "{error}");
    }

    #[test]
    fn an_unpacker_without_its_table_first_is_refused() {
        let mut unpacker = unpacker(1);
        unpacker.segments[0].data[0] ^= 1;
        let error = pack(&kernel(), &unpacker).unwrap_err();
        assert!(error.contains("table"), "{error}");
    }

    #[test]
    fn segments_sharing_a_page_with_different_permissions_are_refused() {
        let mut unpacker = unpacker(1);
        unpacker.segments.push(segment(WINDOW + PAGE - 8, PF_R | PF_W, vec![0; 4], 4));
        let error = pack(&kernel(), &unpacker).unwrap_err();
        assert!(error.contains("different permissions"), "{error}");
    }

    #[test]
    fn files_that_are_not_x86_64_elf_are_refused() {
        assert!(Elf::parse(b"MZ\x90\x00").is_err());
        let mut file = kernel().to_bytes();
        file.truncate(100);
        assert!(Elf::parse(&file).unwrap_err().contains("ends inside"));
    }
}
