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
    interrupts::enable();
    log::info!(
        "CPU: GDT and TSS (IST stacks for #DF, NMI, #MC), IDT with every exception, PICs at vectors {}..{}, timer at {} Hz",
        pic::PRIMARY_OFFSET,
        pic::SECONDARY_OFFSET + 7,
        pit::HZ
    );
}

/// The kernel's idle loop: sleep until an interrupt arrives, forever.
pub fn idle() -> ! {
    log::info!("boot complete, entering the idle loop");
    loop {
        hlt();
    }
}

/// Stops this CPU for good: interrupts off, then `hlt` in a loop (an NMI can
/// still wake it, hence the loop).
pub fn halt() -> ! {
    interrupts::disable();
    loop {
        hlt();
    }
}
