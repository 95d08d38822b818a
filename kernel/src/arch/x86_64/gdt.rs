//! The GDT and TSS. Long mode ignores most of segmentation, but the CPU
//! still needs a code and a data segment, and the TSS is where the separate
//! interrupt stacks (IST) for faults that must not use the current stack are
//! found.

use super::stack::{GuardedStack, StackBounds};
use spin::Once;
use x86_64::{
    VirtAddr,
    instructions::{
        segmentation::{CS, DS, ES, SS, Segment},
        tables::load_tss,
    },
    registers::segmentation::SegmentSelector,
    structures::{
        gdt::{Descriptor, GlobalDescriptorTable},
        tss::TaskStateSegment,
    },
};

/// IST slots: a double fault may come from a kernel stack overflow, where the
/// current stack is unusable; NMI and machine check can strike anywhere.
pub const DOUBLE_FAULT_IST: u16 = 0;
pub const NMI_IST: u16 = 1;
pub const MACHINE_CHECK_IST: u16 = 2;

const IST_STACK_SIZE: usize = 16 * 1024;

static DOUBLE_FAULT_STACK: GuardedStack<IST_STACK_SIZE> = GuardedStack::new();
static NMI_STACK: GuardedStack<IST_STACK_SIZE> = GuardedStack::new();
static MACHINE_CHECK_STACK: GuardedStack<IST_STACK_SIZE> = GuardedStack::new();

struct Tables {
    gdt: GlobalDescriptorTable,
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

static TSS: Once<TaskStateSegment> = Once::new();
static TABLES: Once<Tables> = Once::new();

/// The double-fault handler's stack, to tell whether it runs on it.
pub fn double_fault_stack() -> StackBounds {
    StackBounds::of(&DOUBLE_FAULT_STACK)
}

/// The interrupt stacks, by IST slot, with their names.
pub fn interrupt_stacks() -> [(u16, StackBounds, &'static str); 3] {
    [
        (DOUBLE_FAULT_IST, StackBounds::of(&DOUBLE_FAULT_STACK), "double-fault"),
        (NMI_IST, StackBounds::of(&NMI_STACK), "NMI"),
        (MACHINE_CHECK_IST, StackBounds::of(&MACHINE_CHECK_STACK), "machine-check"),
    ]
}

/// Loads the GDT and TSS and reloads the segment registers. Needs nothing
/// else: the tables and stacks are the kernel's own statics.
pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        for (slot, bounds, _) in interrupt_stacks() {
            tss.interrupt_stack_table[slot as usize] = VirtAddr::new(bounds.top);
        }
        tss
    });

    let tables = TABLES.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss = gdt.append(Descriptor::tss_segment(tss));
        Tables { gdt, code, data, tss }
    });
    tables.gdt.load();
    // SAFETY: the selectors index the GDT just loaded, whose descriptors are
    // the 64-bit kernel code and data segments and this TSS.
    unsafe {
        CS::set_reg(tables.code);
        SS::set_reg(tables.data);
        DS::set_reg(tables.data);
        ES::set_reg(tables.data);
        load_tss(tables.tss);
    }
}
