//! The unpacker Limine starts in place of the kernel (see the library's
//! documentation): it decodes the kernel into the segments Limine mapped for
//! it and jumps to the kernel's entry, on Limine's stack as it found it.

#![no_std]
#![no_main]
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

use core::{arch::asm, panic::PanicInfo, slice};
use unpack::{Error, Table};

/// Filled in by the packer in the packed file; the unpacker as built has
/// only [`Table::UNFILLED`].
#[unsafe(link_section = ".unpack_table")]
#[unsafe(no_mangle)]
static TABLE: Table = Table::UNFILLED;

/// CR0's write-protect bit: while set, not even the CPU's most privileged
/// level writes to a read-only page, such as the kernel's code.
const CR0_WP: u64 = 1 << 16;

#[cfg(target_os = "none")]
// Keep Limine's stack pointer (aligned as for a called function) for the
// kernel: align it for the call, restore it, and jump.
core::arch::global_asm!(
    ".global _start",
    "_start:",
    "sub rsp, 8",
    "call unpack_kernel",
    "add rsp, 8",
    "jmp rax",
);

/// Unpacks the kernel and returns its entry point.
#[unsafe(no_mangle)]
extern "C" fn unpack_kernel() -> u64 {
    // SAFETY: TABLE is a valid static; read through a volatile read because
    // the packer changed its bytes after the compiler saw them as UNFILLED.
    let table = unsafe { core::ptr::read_volatile(&TABLE) };
    // SAFETY: the packer put the payload's payload_len bytes at `payload`,
    // in the kernel's `.bss`, which Limine loaded and mapped; nothing else
    // uses that memory before the kernel starts.
    let payload = unsafe { slice::from_raw_parts_mut(table.payload as *mut u8, table.payload_len as usize) };
    // SAFETY: the image is the kernel's segments, mapped by Limine where
    // the kernel is linked and zeroed; nothing else uses them before the
    // kernel starts.
    let image = unsafe { slice::from_raw_parts_mut(table.image as *mut u8, table.image_len as usize) };
    // SAFETY: Limine mapped the code and constants read-only, as the kernel
    // asked; lifting write protection for the copy lets them be filled in,
    // and it is back before the kernel runs. Interrupts are off (Limine's
    // handover), so nothing runs in between.
    let result = unsafe {
        set_cr0(cr0() & !CR0_WP);
        let result = unpack::unpack(payload, table.checksum, image);
        set_cr0(cr0() | CR0_WP);
        result
    };
    match result {
        Ok(()) => table.entry,
        Err(error) => fail(error.message()),
    }
}

fn cr0() -> u64 {
    let value;
    // SAFETY: reading CR0 has no side effects; the unpacker runs at ring 0.
    unsafe { asm!("mov {}, cr0", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// # Safety
/// `value` must be a valid CR0 for the running system.
unsafe fn set_cr0(value: u64) {
    // SAFETY: the caller passes a valid CR0; the memory clobber keeps the
    // compiler from moving the unpacker's writes across it.
    unsafe { asm!("mov cr0, {}", in(reg) value, options(nostack, preserves_flags)) };
}

/// Says on COM1 (which Limine set up, as `serial: yes` asks) why the kernel
/// cannot start, and halts: there is no kernel to report to.
fn fail(reason: &str) -> ! {
    for part in ["\r\nunpack: ", reason, ": the boot medium may be damaged (write it again). Halting.\r\n"] {
        part.bytes().for_each(serial_write);
    }
    loop {
        // SAFETY: halting with interrupts off stops this CPU for good, which
        // is all that is left to do.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Writes one byte to COM1 once it can take it. Without a serial port the
/// status reads as all ones, "ready", so this never waits forever.
fn serial_write(byte: u8) {
    const COM1: u16 = 0x3f8;
    const LINE_STATUS: u16 = COM1 + 5;
    const TRANSMIT_EMPTY: u8 = 1 << 5;
    loop {
        let status: u8;
        // SAFETY: reading COM1's line status register has no side effects.
        unsafe { asm!("in al, dx", out("al") status, in("dx") LINE_STATUS, options(nomem, nostack)) };
        if status & TRANSMIT_EMPTY != 0 {
            break;
        }
    }
    // SAFETY: the transmitter is empty; writing the data register sends the byte.
    unsafe { asm!("out dx, al", in("dx") COM1, in("al") byte, options(nomem, nostack)) };
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    fail(Error::Corrupt.message())
}
