//! CPU exceptions: what each one is called, how its error code reads, and
//! the report a fatal one leaves before the CPU halts.
//!
//! A fatal exception prints what happened (name, vector, decoded error code,
//! the faulting address for page faults, the interrupted context and the
//! stack the handler runs on) through the fatal sink, then halts the CPU. A
//! breakpoint is reported and execution continues.

use super::fault::{PageFaultCode, SelectorCode};
use super::{gdt, stack};
use core::fmt;
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame, PageFaultErrorCode};

/// An error code and how to read it.
enum Code {
    None,
    Plain(u64),
    Selector(u64),
    PageFault(u64),
    /// No error code, but the machine-check banks.
    MachineCheck,
}

/// Reports a fatal exception through the fatal sink and halts.
fn fatal(name: &str, vector: u8, code: Code, frame: &InterruptStackFrame) -> ! {
    let code = CodeText(code);
    let rsp: u64;
    // SAFETY: reads the stack pointer into a register; no memory access.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags)) };
    let on = if gdt::double_fault_stack().contains(rsp) {
        "the double-fault IST stack"
    } else if stack::kernel_stack().contains(rsp) {
        "the kernel stack"
    } else {
        "another stack"
    };
    let fault_address = match code.0 {
        Code::PageFault(_) => Cr2::read_raw(),
        _ => 0,
    };
    super::fatal::stop(format_args!(
        "\nEXCEPTION: {name} (vector {vector}){code}\n{}  RIP {:#x}  CS {:#x}  RFLAGS {:#x}  RSP {:#x}  SS {:#x}\n  handler running on {on} (RSP {rsp:#x})\nCPU halted.\n",
        FaultAddress(fault_address),
        frame.instruction_pointer.as_u64(),
        frame.code_segment.0,
        frame.cpu_flags.bits(),
        frame.stack_pointer.as_u64(),
        frame.stack_segment.0,
    ))
}

struct CodeText(Code);

impl fmt::Display for CodeText {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.0 {
            Code::None => Ok(()),
            Code::Plain(code) => write!(f, "\n  error code {code:#x}"),
            Code::Selector(code) => write!(f, "\n  error code {code:#x}: {}", SelectorCode(code)),
            Code::PageFault(code) => write!(f, "\n  error code {code:#x}: {}", PageFaultCode(code)),
            Code::MachineCheck => write!(f, "{}", super::machine_check::Banks),
        }
    }
}

struct FaultAddress(u64);

impl fmt::Display for FaultAddress {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            address => writeln!(f, "  faulting address (CR2) {address:#x}"),
        }
    }
}

macro_rules! fatal_handler {
    ($handler:ident, $name:literal, $vector:literal) => {
        extern "x86-interrupt" fn $handler(frame: InterruptStackFrame) {
            fatal($name, $vector, Code::None, &frame)
        }
    };
    ($handler:ident, $name:literal, $vector:literal, $code:ident) => {
        extern "x86-interrupt" fn $handler(frame: InterruptStackFrame, code: u64) {
            fatal($name, $vector, Code::$code(code), &frame)
        }
    };
}

fatal_handler!(divide_error, "divide error (#DE)", 0);
fatal_handler!(debug, "debug (#DB)", 1);
fatal_handler!(overflow, "overflow (#OF)", 4);
fatal_handler!(bound_range, "bound range exceeded (#BR)", 5);
fatal_handler!(invalid_opcode, "invalid opcode (#UD)", 6);
fatal_handler!(device_not_available, "device not available (#NM)", 7);
fatal_handler!(invalid_tss, "invalid TSS (#TS)", 10, Selector);
fatal_handler!(segment_not_present, "segment not present (#NP)", 11, Selector);
fatal_handler!(stack_segment, "stack-segment fault (#SS)", 12, Selector);
fatal_handler!(general_protection, "general protection fault (#GP)", 13, Selector);
fatal_handler!(x87_floating_point, "x87 floating-point exception (#MF)", 16);
fatal_handler!(alignment_check, "alignment check (#AC)", 17, Plain);
fatal_handler!(simd_floating_point, "SIMD floating-point exception (#XM)", 19);
fatal_handler!(virtualization, "virtualization exception (#VE)", 20);
fatal_handler!(control_protection, "control protection exception (#CP)", 21, Plain);
fatal_handler!(hypervisor_injection, "hypervisor injection exception (#HV)", 28);
fatal_handler!(vmm_communication, "VMM communication exception (#VC)", 29, Plain);
fatal_handler!(security, "security exception (#SX)", 30, Plain);

/// Reports and returns. A breakpoint may come from code holding a console
/// lock, so this prints only to consoles that are free.
extern "x86-interrupt" fn breakpoint(frame: InterruptStackFrame) {
    super::fatal::report_trap(format_args!(
        "breakpoint (#BP, vector 3) at RIP {:#x}; continuing\n",
        frame.instruction_pointer.as_u64()
    ));
}

extern "x86-interrupt" fn double_fault(frame: InterruptStackFrame, code: u64) -> ! {
    fatal("double fault (#DF)", 8, Code::Plain(code), &frame)
}

extern "x86-interrupt" fn page_fault(frame: InterruptStackFrame, code: PageFaultErrorCode) {
    fatal("page fault (#PF)", 14, Code::PageFault(code.bits()), &frame)
}

/// Reports and returns: an NMI that no one claims is a watchdog, the NMI
/// button, or a hardware error the machine-check report would name; the
/// kernel keeps running.
extern "x86-interrupt" fn nmi(frame: InterruptStackFrame) {
    super::fatal::report_trap(format_args!(
        "non-maskable interrupt (NMI, vector 2) at RIP {:#x}; nothing claims it, continuing\n",
        frame.instruction_pointer.as_u64()
    ));
}

extern "x86-interrupt" fn machine_check(frame: InterruptStackFrame) -> ! {
    fatal("machine check (#MC)", 18, Code::MachineCheck, &frame)
}

/// Points every exception vector of `idt` at its handler.
pub(super) fn install(idt: &mut InterruptDescriptorTable) {
    idt.divide_error.set_handler_fn(divide_error);
    idt.debug.set_handler_fn(debug);
    idt.breakpoint.set_handler_fn(breakpoint);
    idt.overflow.set_handler_fn(overflow);
    idt.bound_range_exceeded.set_handler_fn(bound_range);
    idt.invalid_opcode.set_handler_fn(invalid_opcode);
    idt.device_not_available.set_handler_fn(device_not_available);
    idt.invalid_tss.set_handler_fn(invalid_tss);
    idt.segment_not_present.set_handler_fn(segment_not_present);
    idt.stack_segment_fault.set_handler_fn(stack_segment);
    idt.general_protection_fault.set_handler_fn(general_protection);
    idt.page_fault.set_handler_fn(page_fault);
    idt.x87_floating_point.set_handler_fn(x87_floating_point);
    idt.alignment_check.set_handler_fn(alignment_check);
    idt.simd_floating_point.set_handler_fn(simd_floating_point);
    idt.virtualization.set_handler_fn(virtualization);
    idt.cp_protection_exception.set_handler_fn(control_protection);
    idt.hv_injection_exception.set_handler_fn(hypervisor_injection);
    idt.vmm_communication_exception.set_handler_fn(vmm_communication);
    idt.security_exception.set_handler_fn(security);
    // SAFETY: the IST indices name stacks that gdt::init put in the TSS.
    unsafe {
        idt.double_fault.set_handler_fn(double_fault).set_stack_index(gdt::DOUBLE_FAULT_IST);
        idt.non_maskable_interrupt.set_handler_fn(nmi).set_stack_index(gdt::NMI_IST);
        idt.machine_check.set_handler_fn(machine_check).set_stack_index(gdt::MACHINE_CHECK_IST);
    }
}
