//! The in-kernel test framework shared by every test kernel.
//!
//! A test kernel is a `#[test_case]` list run by [`run`] (through the nightly
//! `custom_test_frameworks` feature), or a hand-written `kmain` for a test
//! whose end is a fault. Results go to serial; the verdict leaves through
//! QEMU's `isa-debug-exit` device, which `tests/runner` attaches and reads.

#![no_std]

extern crate alloc;

pub use kernel;

use core::{
    any::type_name,
    panic::PanicInfo,
    sync::atomic::{AtomicBool, Ordering},
};
use kernel::boot;
use x86_64::instructions::port::Port;

/// What a test kernel reports to QEMU. QEMU exits with `(code << 1) | 1`, so
/// success is 33 and failure 35: neither can be mistaken for QEMU's own exit
/// codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Exit {
    Success = 0x10,
    Failure = 0x11,
}

const ISA_DEBUG_EXIT_PORT: u16 = 0xf4;

/// Ends the run with `exit`. Without the isa-debug-exit device (a test kernel
/// booted by hand) the CPU halts instead.
pub fn exit_qemu(exit: Exit) -> ! {
    kernel::drivers::uart::flush();
    // SAFETY: the runner attaches isa-debug-exit at this port; elsewhere the
    // write goes to an unused ISA port and has no effect.
    unsafe { Port::new(ISA_DEBUG_EXIT_PORT).write(exit as u32) };
    kernel::arch::halt()
}

/// Brings the machine up with the kernel's own boot sequence, so that a
/// test runs on exactly the bring-up the real kernel does.
pub fn start() -> &'static boot::BootInfo {
    kernel::init()
}

/// Raises `VECTOR` in software, as if the line behind it had fired.
///
/// # Safety
/// The vector must be one whose handler expects no error code.
pub unsafe fn raise<const VECTOR: u8>() {
    // SAFETY: per the contract, the handler returns normally.
    unsafe { core::arch::asm!("int {vector}", vector = const VECTOR) };
}

/// A test: anything callable, reported under its path.
pub trait Testable {
    fn run(&self);
}

impl<T: Fn()> Testable for T {
    fn run(&self) {
        report!("{} ... ", type_name::<T>());
        self();
        report!("ok\n");
    }
}

/// Progress for the runner, on serial only, so that the screen holds only
/// what the tests themselves print.
#[macro_export]
macro_rules! report {
    ($($arg:tt)*) => ($crate::kernel::console::print_serial(format_args!($($arg)*)));
}

/// The `test_runner`: runs every `#[test_case]` in order, then reports
/// success. The first failing test panics, which ends the run in [`fail`].
pub fn run(tests: &[&dyn Testable]) {
    report!("running {} tests\n", tests.len());
    for test in tests {
        test.run();
    }
    report!("all {} tests passed\n", tests.len());
}

/// Panic handler body for test kernels: report and end the run as failed.
/// A panic inside this (a broken console) ends the run at once.
pub fn fail(info: &PanicInfo) -> ! {
    static FAILING: AtomicBool = AtomicBool::new(false);
    if FAILING.swap(true, Ordering::Relaxed) {
        exit_qemu(Exit::Failure);
    }
    report!("FAILED\n");
    kernel::panic::report(info);
    exit_qemu(Exit::Failure)
}

/// Defines `kmain` and the panic handler of a `#[test_case]` test kernel.
#[macro_export]
macro_rules! test_kernel {
    () => {
        #[unsafe(no_mangle)]
        extern "C" fn kmain() -> ! {
            $crate::start();
            test_main();
            $crate::exit_qemu($crate::Exit::Success)
        }

        #[panic_handler]
        fn panic(info: &core::panic::PanicInfo) -> ! {
            $crate::fail(info)
        }
    };
}

/// Checks the screen console's text grid and the real framebuffer.
pub mod screen {
    use alloc::string::String;
    use alloc::vec;
    use kernel::boot;
    use kernel::console::{
        self,
        color::{Rgb, blend},
        framebuffer::PixelFormat,
    };

    /// The grid row the cursor is on.
    pub fn cursor_row() -> usize {
        console::with_grid(|grid| grid.cursor().0).expect("a screen console")
    }

    /// The text of grid row `row`, without trailing blanks.
    pub fn row_text(row: usize) -> String {
        console::with_grid(|grid| {
            let text: String = grid.row_cells(row).iter().map(|c| c.ch).collect();
            String::from(text.trim_end())
        })
        .expect("a screen console")
    }

    /// Whether grid row `row` reads `text` followed only by blanks.
    pub fn row_is(row: usize, text: &str) -> bool {
        console::with_grid(|grid| {
            let cells = grid.row_cells(row);
            let count = text.chars().count();
            cells.iter().map(|c| c.ch).take(count).eq(text.chars())
                && cells[count..].iter().all(|c| c.ch == ' ')
        })
        .expect("a screen console")
    }

    /// Asserts, pixel by pixel, that the framebuffer shows `text` from cell
    /// (row, column) on, in `fg` on `bg`, as the font draws it. Reads video
    /// memory, which the console itself never does.
    pub fn assert_framebuffer_text((row, start): (usize, usize), text: &str, fg: Rgb, bg: Rgb) {
        let fb = boot::info().framebuffer.expect("a framebuffer");
        let format = PixelFormat::new(fb.bpp, fb.red, fb.green, fb.blue).expect("a supported format");
        let bpp = format.bytes_per_pixel();
        let font = console::framebuffer_font().expect("a framebuffer console");
        let (width, height) = (font.width(), font.height());
        let mut memory = vec![0; font.glyphs_bytes()];
        let mut glyphs = font.glyphs(&mut memory);
        for (col, ch) in (start..).zip(text.chars()) {
            let glyph = glyphs.glyph(ch, false);
            for y in 0..height {
                for x in 0..width {
                    let expected = format.encode(blend(fg, bg, glyph[y * width + x]));
                    let offset = (row * height + y) * fb.pitch as usize + (col * width + x) * bpp;
                    let mut actual = [0u8; 4];
                    for (i, byte) in actual.iter_mut().take(bpp).enumerate() {
                        // SAFETY: the offset lies inside the framebuffer, which
                        // Limine maps (height x pitch bytes).
                        *byte = unsafe { ((fb.address + offset + i) as *const u8).read_volatile() };
                    }
                    assert_eq!(
                        u32::from_le_bytes(actual),
                        expected,
                        "row {row} column {col} ('{ch}') pixel ({x},{y})"
                    );
                }
            }
        }
    }
}

/// Defines `kmain` and the panic handler of a test kernel whose end is a
/// fatal CPU exception: it runs `$trigger`, which must not return; the
/// runner checks the exception report (`// runner: expect-serial=` lines).
#[macro_export]
macro_rules! fault_kernel {
    ($name:literal, $trigger:expr) => {
        #[unsafe(no_mangle)]
        extern "C" fn kmain() -> ! {
            $crate::start();
            $crate::report!("{} ... ", $name);
            $trigger();
            $crate::report!("FAILED: no exception\n");
            $crate::exit_qemu($crate::Exit::Failure)
        }

        #[panic_handler]
        fn panic(info: &core::panic::PanicInfo) -> ! {
            $crate::fail(info)
        }
    };
}

/// A string formatted into a fixed buffer, for test kernels, which have no
/// heap. Text past the capacity is cut off.
pub struct Text<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Text<N> {
    pub fn format(args: core::fmt::Arguments) -> Self {
        let mut text = Self { bytes: [0; N], len: 0 };
        let _ = core::fmt::write(&mut text, args);
        text
    }

    pub fn as_str(&self) -> &str {
        // Cutting can split a character: keep the valid prefix.
        match core::str::from_utf8(&self.bytes[..self.len]) {
            Ok(text) => text,
            Err(error) => core::str::from_utf8(&self.bytes[..error.valid_up_to()]).unwrap_or(""),
        }
    }
}

impl<const N: usize> core::fmt::Write for Text<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = (self.len + s.len()).min(N);
        self.bytes[self.len..end].copy_from_slice(&s.as_bytes()[..end - self.len]);
        self.len = end;
        Ok(())
    }
}

/// What QEMU gave the machine, to check the memory map against.
pub mod memory {
    use kernel::boot::{self, RegionKind};
    use kernel::mem::{early, frames};
    use x86_64::instructions::port::Port;

    /// QEMU tells the firmware its RAM through the CMOS: registers
    /// 0x34-0x35 count 64 KiB blocks between 16 MiB and 4 GiB, 0x5b-0x5d
    /// those above 4 GiB.
    fn cmos(register: u8) -> u64 {
        // SAFETY: selecting a CMOS register and reading it changes nothing;
        // NMIs stay masked meanwhile, and nothing else in a test kernel
        // reads the CMOS while a test runs.
        unsafe {
            Port::<u8>::new(0x70).write(0x80 | register);
            Port::<u8>::new(0x71).read() as u64
        }
    }

    /// Bytes of RAM QEMU was started with (`-m`).
    pub fn qemu_ram() -> u64 {
        const BLOCK: u64 = 64 * 1024;
        let below_4g = (16 << 20) + (cmos(0x34) | cmos(0x35) << 8) * BLOCK;
        let above_4g = (cmos(0x5b) | cmos(0x5c) << 8 | cmos(0x5d) << 16) * BLOCK;
        below_4g + above_4g
    }

    /// Bytes the memory map lists as RAM: free, the bootloader's, the
    /// kernel's and ACPI's.
    pub fn listed_ram() -> u64 {
        boot::info()
            .memory_map()
            .iter()
            .filter(|region| region.kind != RegionKind::Reserved)
            .map(|region| region.length)
            .sum()
    }

    /// The memory map lists the RAM QEMU was given: not more, and at most
    /// what the firmware keeps for itself less (SeaBIOS about 0.5 MiB, OVMF
    /// about 4.5 MiB with 256 MiB), and at least 90% of it is usable.
    pub fn assert_map_lists_qemu_ram() {
        let firmware_share = match boot::info().firmware {
            boot::Firmware::Bios => 2 << 20,
            _ => 8 << 20,
        };
        let (given, listed) = (qemu_ram(), listed_ram());
        let usable = boot::info().usable_bytes();
        assert!(
            listed <= given && listed + firmware_share >= given,
            "the map lists {listed:#x} bytes of RAM, QEMU gave {given:#x}"
        );
        assert!(usable >= given / 10 * 9, "{usable:#x} of {given:#x} bytes usable");
    }

    /// The usable (or reclaimed) region holding `address`.
    fn usable_region(address: u64) -> Option<core::ops::Range<u64>> {
        boot::info()
            .memory_map()
            .iter()
            .filter(|e| matches!(e.kind, RegionKind::Usable | RegionKind::BootloaderReclaimable))
            .map(|e| e.base..e.end())
            .find(|range| range.contains(&address))
    }

    /// The frame allocator has every usable and reclaimed frame but those
    /// boot memory took.
    pub fn assert_allocator_covers_usable_memory() {
        let reclaimable: u64 = boot::info()
            .memory_map()
            .iter()
            .filter(|e| e.kind == RegionKind::BootloaderReclaimable)
            .map(|e| e.length / frames::FRAME_SIZE)
            .sum();
        let usable_frames = boot::info().usable_bytes() / frames::FRAME_SIZE + reclaimable;
        let boot_frames = early::used().div_ceil(frames::FRAME_SIZE);
        assert!(early::used() < 8 << 20, "{} KiB of boot memory", early::used() / 1024);
        let total = frames::stats().total;
        assert!(
            total + boot_frames <= usable_frames && total + boot_frames + 16 >= usable_frames,
            // Boot memory is the consoles' few MiB and the frame bitmap.
            "{total} frames + {boot_frames} of boot memory, but {usable_frames} usable"
        );
    }

    /// Every free frame is handed out exactly once, each from a usable (or
    /// reclaimed) region, and frames given back come out again.
    pub fn assert_every_frame_is_handed_out_once() {
        // One bit per frame up to the end of usable memory, on the heap: the
        // frames used for it come from the allocator before the sweep begins.
        let end = boot::info()
            .memory_map()
            .iter()
            .filter(|e| matches!(e.kind, RegionKind::Usable | RegionKind::BootloaderReclaimable))
            .map(|e| e.end())
            .max()
            .expect("usable memory");
        let mut seen = alloc::vec![0u64; (end / 4096).div_ceil(64) as usize];
        // The frames given back below are listed here: room for them now, as
        // the heap cannot grow while the sweep holds every frame.
        let mut returned = alloc::vec::Vec::with_capacity(64 * 64);
        let before = frames::stats();
        let mut taken = 0u64;
        let mut region = 0..0;
        while let Some(address) = frames::allocate() {
            if !region.contains(&address) {
                region = usable_region(address)
                    .unwrap_or_else(|| panic!("frame {address:#x} is not in a usable region"));
            }
            let (word, bit) = ((address / 4096 / 64) as usize, 1u64 << (address / 4096 % 64));
            assert_eq!(seen[word] & bit, 0, "frame {address:#x} handed out twice");
            seen[word] |= bit;
            taken += 1;
        }
        assert_eq!(taken, before.free(), "every free frame was handed out");
        let above_4g: u64 =
            seen.iter().skip((4usize << 30) / 4096 / 64).map(|bits| bits.count_ones() as u64).sum();
        let usable_above_4g: u64 = boot::info()
            .memory_map()
            .iter()
            .filter(|e| e.kind == RegionKind::Usable)
            .map(|e| e.end().saturating_sub(e.base.max(4 << 30)) / 4096)
            .sum();
        // Boot memory may lie above 4 GiB too.
        let boot_frames = early::used().div_ceil(frames::FRAME_SIZE);
        assert!(
            above_4g + boot_frames + 16 >= usable_above_4g,
            "{above_4g} of {usable_above_4g} frames above 4 GiB were handed out"
        );
        assert_eq!(frames::stats().free(), 0);
        // Give frames back at 64 places spread over all of memory, up to 64
        // neighbours at each (a freed frame is written to, and QEMU backs each
        // 2 MiB of RAM that is written to on the host: writing to every frame
        // of gigabytes would take it most of a minute); they come out again,
        // last freed first, and no other.
        for (word, &bits) in seen.iter().enumerate().step_by(seen.len().div_ceil(64)) {
            let mut bits = bits;
            while bits != 0 {
                let address = (word as u64 * 64 + bits.trailing_zeros() as u64) * 4096;
                frames::free(address).expect("a frame this test took");
                returned.push(address);
                bits &= bits - 1;
            }
        }
        assert!(frames::free(returned[0]).is_err(), "a double free was accepted");
        assert_eq!(frames::stats().free(), returned.len() as u64);
        for &address in returned.iter().rev() {
            assert_eq!(frames::allocate(), Some(address));
        }
        assert_eq!(frames::allocate(), None);
        assert!(returned.len() >= 32 * 64, "only {} frames returned", returned.len());
    }
}
