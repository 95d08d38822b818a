//! The kernel image as it is booted: compressed, with a small unpacker in
//! front.
//!
//! Limine reads the whole kernel file from the boot medium at every boot, and
//! on a BIOS PC's IDE drive every KiB costs about 0.1 ms. So the image on the
//! boot medium (built by `kernel/pack`) holds the kernel's code and data
//! compressed with LZ4, which halves it, and this unpacker, which Limine
//! starts instead of the kernel. Decoding LZ4 is little more than copying,
//! much cheaper than reading the bytes it saves.
//!
//! Limine maps the kernel's segments, empty, where the kernel is linked; the
//! unpacker fills them from the compressed payload and jumps to the kernel's
//! entry, which then finds memory exactly as if Limine had loaded it.
//!
//! This library is what the packer and the unpacker share: the [`Table`]
//! the packer fills in, and [`unpack`], which host tests run too.

#![cfg_attr(not(test), no_std)]

/// Identifies the table in the unpacker's image, so that the packer fills in
/// the right bytes.
pub const MAGIC: [u8; 8] = *b"EmberLZ4";

/// Where the unpacker finds the payload and where it puts the kernel.
/// `kernel/unpack/unpack.ld` places it first in the unpacker's image; the
/// packer writes it there in the packed file. Addresses are virtual.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    pub magic: [u8; 8],
    /// The kernel's entry point, jumped to once it is unpacked.
    pub entry: u64,
    /// The LZ4 block holding the kernel's image, in what will be the
    /// kernel's `.bss`: [`unpack`] clears it once decoded.
    pub payload: u64,
    pub payload_len: u64,
    /// The payload's [`checksum`]: LZ4 itself would decode many a damaged
    /// byte into a wrong kernel without noticing.
    pub checksum: u64,
    /// The kernel's image: from its first segment after Limine's requests to
    /// the end of its initialised data (Limine zeroes `.bss`, and the
    /// unpacker the payload's part of it).
    pub image: u64,
    pub image_len: u64,
}

impl Table {
    pub const SIZE: usize = size_of::<Self>();

    /// What the unpacker is built with; only the packed file has the values.
    pub const UNFILLED: Self =
        Self { magic: MAGIC, entry: 0, payload: 0, payload_len: 0, checksum: 0, image: 0, image_len: 0 };

    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut bytes = [0; Self::SIZE];
        bytes[..8].copy_from_slice(&self.magic);
        let fields = [self.entry, self.payload, self.payload_len, self.checksum, self.image, self.image_len];
        for (chunk, field) in bytes[8..].chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&field.to_le_bytes());
        }
        bytes
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes = bytes.get(..Self::SIZE)?;
        let field = |index: usize| {
            let at = 8 + index * 8;
            u64::from_le_bytes(bytes[at..at + 8].try_into().expect("an 8-byte field"))
        };
        Some(Self {
            magic: bytes[..8].try_into().ok()?,
            entry: field(0),
            payload: field(1),
            payload_len: field(2),
            checksum: field(3),
            image: field(4),
            image_len: field(5),
        })
    }
}

/// Why the kernel could not be unpacked: the packed file on the boot medium
/// is damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The payload is not what the packer wrote.
    Checksum,
    /// The payload is not a valid LZ4 block, or holds more than the image.
    Corrupt,
    /// The payload decoded to fewer bytes than the image has.
    Short,
}

impl Error {
    /// A message without formatting: the unpacker has no room for `core::fmt`.
    pub fn message(self) -> &'static str {
        match self {
            Self::Checksum => "the compressed kernel's checksum does not match",
            Self::Corrupt => "the compressed kernel does not decode",
            Self::Short => "the compressed kernel decodes to less than the kernel",
        }
    }
}

/// Checks `payload` against `checksum` and decodes it into `image`, which it
/// must fill exactly; then zeroes the payload, which lies in the kernel's
/// `.bss`.
pub fn unpack(payload: &mut [u8], checksum: u64, image: &mut [u8]) -> Result<(), Error> {
    if self::checksum(payload) != checksum {
        return Err(Error::Checksum);
    }
    match lz4_flex::block::decompress_into(payload, image) {
        Ok(len) if len == image.len() => {
            payload.fill(0);
            Ok(())
        }
        Ok(_) => Err(Error::Short),
        Err(_) => Err(Error::Corrupt),
    }
}

/// FNV-1a over 64-bit words, in four lanes of every fourth word (the last
/// word padded with zeroes), the lanes and the length then hashed in turn.
/// Four words a step because under emulation the unpacker pays for every
/// loop turn: one lane took 1.5 ms for the kernel's payload. Each step is a
/// bijection of its lane's value, so any change confined to one word
/// always changes the result.
pub fn checksum(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let step = |hash: u64, word: u64| (hash ^ word).wrapping_mul(PRIME);
    let word = |bytes: &[u8]| {
        let mut word = [0; 8];
        word[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(word)
    };
    let mut lanes = [OFFSET, OFFSET ^ 1, OFFSET ^ 2, OFFSET ^ 3];
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        for (lane, bytes) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            *lane = step(*lane, word(bytes));
        }
    }
    for (index, bytes) in blocks.remainder().chunks(8).enumerate() {
        lanes[index] = step(lanes[index], word(bytes));
    }
    lanes.into_iter().chain([bytes.len() as u64]).fold(OFFSET, step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_anywhere_changes_the_checksum() {
        let bytes: Vec<u8> = (0..100u32).map(|i| (i * 37 % 256) as u8).collect();
        for len in [0, 1, 8, 31, 32, 33, 99] {
            let whole = checksum(&bytes[..len]);
            for at in 0..len {
                let mut changed = bytes[..len].to_vec();
                changed[at] ^= 0x01;
                assert_ne!(checksum(&changed), whole, "a change at {at} of {len} bytes");
            }
            assert_ne!(checksum(&bytes[..len + 1]), whole, "a byte more than {len}");
        }
        assert_ne!(checksum(&[0; 8]), checksum(&[0; 16]), "zeroes of different lengths");
    }
}
