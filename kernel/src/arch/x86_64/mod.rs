//! The x86_64 CPU: its descriptor tables, exceptions, the dispatch of device
//! interrupts, and the kernel's stacks. Devices live in `crate::drivers`.

pub mod cpu;
pub mod exceptions;
pub mod fatal;
pub mod fault;
pub mod gdt;
pub mod idt;
pub mod interrupts;
pub mod machine_check;
pub mod pat;
pub mod stack;

use x86_64::VirtAddr;
use x86_64::instructions::{hlt, interrupts as flag};
use x86_64::structures::DescriptorTablePointer;

/// Loads the GDT (with the TSS and its interrupt stacks) and the IDT, and
/// turns machine-check reporting on. First
/// in the boot sequence, so that a fault anywhere later is caught and
/// reported instead of resetting the machine.
pub fn init() {
    gdt::init();
    idt::init();
    machine_check::enable();
}

/// The pages below the kernel's stacks, with the stacks' names. They must be
/// unmapped (the memory code does it once it has the page tables) so that
/// running off a stack faults instead of overwriting what lies below.
pub fn stack_guard_pages() -> [(&'static str, u64); 4] {
    let [a, b, c] = gdt::interrupt_stacks().map(|(_, bounds, name)| (name, bounds.guard));
    [("kernel", stack::kernel_stack().guard), a, b, c]
}

/// Lets interrupts in; drivers have registered their lines by then.
pub fn enable_interrupts() {
    flag::enable();
}

/// Resets the CPU with a triple fault: an empty IDT, then an exception. The
/// last resort when the platform's reset mechanisms did nothing.
pub fn triple_fault() -> ! {
    flag::disable();
    let empty = DescriptorTablePointer { limit: 0, base: VirtAddr::zero() };
    // SAFETY: an IDT with no entries, then an exception: it cannot be
    // delivered, nor can the double fault after it, so the CPU resets,
    // which is what is wanted.
    unsafe {
        x86_64::instructions::tables::lidt(&empty);
        core::arch::asm!("int3");
    }
    halt()
}

/// Stops this CPU for good: interrupts off, then `hlt` in a loop (an NMI can
/// still wake it, hence the loop).
pub fn halt() -> ! {
    flag::disable();
    loop {
        hlt();
    }
}
