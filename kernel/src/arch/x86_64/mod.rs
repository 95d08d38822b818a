//! x86_64 and the PC platform: CPU tables, interrupt controllers, the timer,
//! and the few devices the kernel drives directly.

pub mod fault;
pub mod gdt;
pub mod idt;
pub mod pci;
pub mod pic;
pub mod pit;
pub mod stack;
pub mod vga;

use x86_64::instructions::{hlt, interrupts};

/// Sets up the CPU's tables and the interrupt sources, then enables
/// interrupts. Needs the page tables (for the stacks' guard pages).
pub fn init() {
    gdt::init();
    idt::init();
    pic::init();
    pit::init();
    pic::unmask(pic::KEYBOARD);
    if crate::console::serial::enable_receive_interrupt() {
        pic::unmask(pic::COM1);
    }
    interrupts::enable();
    log::info!(
        "CPU: GDT and TSS (IST stacks for #DF, NMI, #MC), IDT with every exception, PICs at vectors {}..{}, timer at {} Hz",
        pic::PRIMARY_OFFSET,
        pic::SECONDARY_OFFSET + 7,
        pit::HZ
    );
}

/// Restarts the machine: the keyboard controller's reset line, and if that
/// does nothing, a triple fault (an empty IDT, then an exception).
pub fn reboot() -> ! {
    interrupts::disable();
    // SAFETY: 0xfe to the i8042's command port pulses the CPU reset line.
    unsafe { x86_64::instructions::port::Port::<u8>::new(0x64).write(0xfe) };
    for _ in 0..1_000_000 {
        core::hint::spin_loop();
    }
    static EMPTY: x86_64::structures::idt::InterruptDescriptorTable =
        x86_64::structures::idt::InterruptDescriptorTable::new();
    EMPTY.load();
    // SAFETY: with no handlers, the exception becomes a triple fault, which
    // resets the CPU: what is wanted.
    unsafe { core::arch::asm!("int3") };
    halt()
}

/// Stops this CPU for good: interrupts off, then `hlt` in a loop (an NMI can
/// still wake it, hence the loop).
pub fn halt() -> ! {
    interrupts::disable();
    loop {
        hlt();
    }
}
