//! The VGA adapter: its registers, for switching back to the 80x25 text
//! mode (mode 3) that BIOS set before Limine chose a graphics mode, loading a
//! font and palette and moving the hardware cursor; and the text buffer at
//! physical 0xb8000 that mode shows.
//!
//! Text mode comes back only if the adapter's own graphics extension is off,
//! and each family has its own: QEMU's std, qxl and virtio VGA use the Bochs
//! "DISPI" interface, Cirrus cards an extended sequencer register.

use super::pci::{self, Device};
use core::sync::atomic::{AtomicBool, Ordering};
use x86_64::instructions::port::Port;

/// Text mode's size in characters.
pub const COLS: usize = 80;
pub const ROWS: usize = 25;
/// Physical address of the character buffer.
pub const TEXT_BUFFER: u64 = 0xb8000;

const MISC_WRITE: u16 = 0x3c2;
const SEQ_INDEX: u16 = 0x3c4;
const GC_INDEX: u16 = 0x3ce;
const CRTC_INDEX: u16 = 0x3d4;
const AC_INDEX: u16 = 0x3c0;
const INPUT_STATUS_1: u16 = 0x3da;
const DAC_MASK: u16 = 0x3c6;
const DAC_WRITE_INDEX: u16 = 0x3c8;
const DAC_DATA: u16 = 0x3c9;
const BOCHS_DISPI_INDEX: u16 = 0x1ce;
const BOCHS_DISPI_DATA: u16 = 0x1cf;
const BOCHS_DISPI_ENABLE: u16 = 4;
const BOCHS_DISPI_BANK: u16 = 5;

/// Physical address of the font planes' window while loading the font.
const FONT_WINDOW: u64 = 0xa0000;

/// The standard mode 3 register values (80x25 characters of 9x16 pixels,
/// 720x400), except the attribute mode control: no blinking, so that the
/// top attribute bit gives 16 background colours, and no line-graphics
/// column duplication, which would smear the glyphs this kernel loads.
const MISC: u8 = 0x67;
const SEQ: [u8; 5] = [0x03, 0x00, 0x03, 0x00, 0x02];
const CRTC: [u8; 25] = [
    0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0e, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x9c,
    0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff,
];
const GC: [u8; 9] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x00, 0xff];
const AC: [u8; 21] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x00,
    0x00, 0x0f, 0x08, 0x00,
];

/// The VGA display adapter, if the machine has one.
pub fn adapter() -> Option<Device> {
    pci::find_class(pci::DISPLAY_VGA)
}

/// What a VGA adapter family needs to leave its graphics mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// QEMU std (1234:1111), virtio (1af4:1050), qxl (1b36:0100), Bochs.
    Bochs,
    /// Cirrus Logic (vendor 1013).
    Cirrus,
    /// Anything else: only the standard VGA registers are programmed.
    Other,
}

pub fn family(device: Device) -> Family {
    match (device.vendor, device.device) {
        (0x1234, 0x1111) | (0x1af4, 0x1050) | (0x1b36, 0x0100) | (0x80ee, 0xbeef) => Family::Bochs,
        (0x1013, _) => Family::Cirrus,
        _ => Family::Other,
    }
}

fn write8(port: u16, value: u8) {
    // SAFETY: callers only name VGA register ports, owned by this module.
    unsafe { Port::<u8>::new(port).write(value) }
}

fn read8(port: u16) -> u8 {
    // SAFETY: as for `write8`; reads of these ports only reset latches.
    unsafe { Port::<u8>::new(port).read() }
}

fn write_indexed(index_port: u16, index: u8, value: u8) {
    write8(index_port, index);
    write8(index_port + 1, value);
}

fn read_indexed(index_port: u16, index: u8) -> u8 {
    write8(index_port, index);
    read8(index_port + 1)
}

/// Turns off the family's graphics extension so the standard VGA registers
/// rule the display again.
fn leave_extended_mode(family: Family) {
    match family {
        Family::Bochs => {
            // SAFETY: the Bochs DISPI index/data ports of this adapter.
            unsafe {
                Port::<u16>::new(BOCHS_DISPI_INDEX).write(BOCHS_DISPI_ENABLE);
                Port::<u16>::new(BOCHS_DISPI_DATA).write(0);
                Port::<u16>::new(BOCHS_DISPI_INDEX).write(BOCHS_DISPI_BANK);
                Port::<u16>::new(BOCHS_DISPI_DATA).write(0);
            }
        }
        Family::Cirrus => {
            write_indexed(SEQ_INDEX, 0x06, 0x12); // unlock the extensions
            write_indexed(SEQ_INDEX, 0x07, 0x00); // extended (linear/high colour) modes off
            for register in [0x1a, 0x1b, 0x1d] {
                write_indexed(CRTC_INDEX, register, 0x00); // start address and pitch extensions
            }
            for register in [0x09, 0x0a, 0x0b] {
                write_indexed(GC_INDEX, register, 0x00); // bank offsets and banking mode
            }
            // Reading the DAC mask four times opens the hidden DAC register.
            for _ in 0..4 {
                read8(DAC_MASK);
            }
            write8(DAC_MASK, 0x00);
            read8(DAC_WRITE_INDEX);
            write8(DAC_MASK, 0xff);
        }
        Family::Other => {}
    }
}

/// Programs mode 3 and loads `font` (one 8x16 bitmap per code, top row
/// first, most significant bit leftmost) and the 16 attribute colours
/// (`palette`, 8 bits per channel, in VGA attribute order).
pub fn set_text_mode(device: Device, font: &[[u8; 16]; 256], palette: &[[u8; 3]; 16]) {
    leave_extended_mode(family(device));

    write_indexed(SEQ_INDEX, 0x00, 0x01); // synchronous reset while the clock changes
    write8(MISC_WRITE, MISC);
    for (index, &value) in SEQ.iter().enumerate().skip(1) {
        write_indexed(SEQ_INDEX, index as u8, value);
    }
    write_indexed(SEQ_INDEX, 0x00, 0x03);

    // Unlock CRTC registers 0-7 before writing them.
    let protect = read_indexed(CRTC_INDEX, 0x11);
    write_indexed(CRTC_INDEX, 0x11, protect & 0x7f);
    for (index, &value) in CRTC.iter().enumerate() {
        let value = if index == 0x11 { value & 0x7f } else { value };
        write_indexed(CRTC_INDEX, index as u8, value);
    }
    for (index, &value) in GC.iter().enumerate() {
        write_indexed(GC_INDEX, index as u8, value);
    }
    read8(INPUT_STATUS_1); // the attribute controller's flip-flop now expects an index
    for (index, &value) in AC.iter().enumerate() {
        write8(AC_INDEX, index as u8);
        write8(AC_INDEX, value);
    }
    write8(AC_INDEX, 0x20); // palette access done: display on

    load_font(font);
    for (vga_index, color) in palette.iter().enumerate() {
        write8(DAC_WRITE_INDEX, AC[vga_index]);
        for &channel in color {
            write8(DAC_DATA, channel >> 2);
        }
    }
}

/// Writes the glyphs into plane 2, where text mode reads them.
fn load_font(font: &[[u8; 16]; 256]) {
    // Plane 2 alone, flat addressing at 0xa0000.
    write_indexed(SEQ_INDEX, 0x02, 0x04);
    write_indexed(SEQ_INDEX, 0x04, 0x06);
    write_indexed(GC_INDEX, 0x04, 0x02);
    write_indexed(GC_INDEX, 0x05, 0x00);
    write_indexed(GC_INDEX, 0x06, 0x04);
    let window = (crate::boot::info().hhdm_offset + FONT_WINDOW) as *mut u8;
    for (code, glyph) in font.iter().enumerate() {
        for (row, &bits) in glyph.iter().enumerate() {
            // SAFETY: the 64 KiB window at 0xa0000 is VGA memory, mapped by the
            // HHDM; glyphs are 32 bytes apart, so this stays in 8 KiB of it.
            unsafe { window.add(code * 32 + row).write_volatile(bits) };
        }
    }
    // Back to text mode's interleaved planes 0 and 1 at 0xb8000.
    write_indexed(SEQ_INDEX, 0x02, SEQ[2]);
    write_indexed(SEQ_INDEX, 0x04, SEQ[4]);
    write_indexed(GC_INDEX, 0x04, GC[4]);
    write_indexed(GC_INDEX, 0x05, GC[5]);
    write_indexed(GC_INDEX, 0x06, GC[6]);
}

/// The 80x25 character buffer: 16-bit entries, the character code in the
/// low byte and its attribute (background, foreground) in the high byte.
/// There is one; [`TextBuffer::take`] hands it out once.
pub struct TextBuffer {
    entries: *mut u16,
    /// Whether an adapter shows the buffer (without one, the cursor
    /// registers are absent too).
    has_adapter: bool,
}

// SAFETY: the buffer is only reached through its one owner.
unsafe impl Send for TextBuffer {}

impl TextBuffer {
    /// The text buffer, the first time it is asked for.
    pub fn take(has_adapter: bool) -> Option<TextBuffer> {
        static TAKEN: AtomicBool = AtomicBool::new(false);
        if TAKEN.swap(true, Ordering::Relaxed) {
            return None;
        }
        let entries = (crate::boot::info().hhdm_offset + TEXT_BUFFER) as *mut u16;
        Some(TextBuffer { entries, has_adapter })
    }

    /// Writes the entry of cell (`row`, `col`); cells outside the screen are
    /// ignored.
    pub fn write(&mut self, row: usize, col: usize, entry: u16) {
        if row < ROWS && col < COLS {
            // SAFETY: the HHDM maps physical 0xb8000 (base revision 2 maps the
            // first 4 GiB), the index is inside the 80x25 buffer, and this
            // owner is the buffer's only user.
            unsafe { self.entries.add(row * COLS + col).write_volatile(entry) };
        }
    }

    /// Moves the blinking hardware cursor to cell (`row`, `col`).
    pub fn set_cursor(&mut self, row: usize, col: usize) {
        if self.has_adapter {
            let position = (row * COLS + col) as u16;
            write_indexed(CRTC_INDEX, 0x0f, position as u8);
            write_indexed(CRTC_INDEX, 0x0e, (position >> 8) as u8);
        }
    }
}
