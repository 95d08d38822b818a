//! What a CPU exception's error code says, in words. Plain data in, text
//! out, so it is tested on the host.

use core::fmt;

/// A page-fault error code (Intel SDM vol. 3, 4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageFaultCode(pub u64);

impl fmt::Display for PageFaultCode {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let bit = |n: u32| self.0 & (1 << n) != 0;
        f.write_str(if bit(0) { "protection violation" } else { "page not present" })?;
        f.write_str(if bit(4) {
            ", instruction fetch"
        } else if bit(1) {
            ", write"
        } else {
            ", read"
        })?;
        f.write_str(if bit(2) { ", user mode" } else { ", kernel mode" })?;
        for (n, what) in
            [(3, "reserved bit set in a page table"), (5, "protection key"), (6, "shadow stack"), (15, "SGX")]
        {
            if bit(n) {
                write!(f, ", {what}")?;
            }
        }
        Ok(())
    }
}

/// A selector error code: which descriptor the fault was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectorCode(pub u64);

impl fmt::Display for SelectorCode {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("no selector (the fault is not about a segment)");
        }
        let table = match (self.0 >> 1) & 0b11 {
            0 => "GDT",
            2 => "LDT",
            _ => "IDT",
        };
        write!(f, "selector {:#x}: entry {} of the {table}", self.0 & 0xffff, (self.0 >> 3) & 0x1fff)?;
        if self.0 & 1 != 0 {
            f.write_str(", during delivery of an external event")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_fault_flags_are_spelled_out() {
        assert_eq!(PageFaultCode(0).to_string(), "page not present, read, kernel mode");
        assert_eq!(PageFaultCode(0b111).to_string(), "protection violation, write, user mode");
        assert_eq!(
            PageFaultCode(0b1_0001).to_string(),
            "protection violation, instruction fetch, kernel mode"
        );
        assert_eq!(
            PageFaultCode(0b1000).to_string(),
            "page not present, read, kernel mode, reserved bit set in a page table"
        );
    }

    #[test]
    fn selectors_name_table_and_index() {
        assert_eq!(SelectorCode(0x80).to_string(), "selector 0x80: entry 16 of the GDT");
        assert_eq!(SelectorCode(0x6a).to_string(), "selector 0x6a: entry 13 of the IDT");
        assert_eq!(
            SelectorCode(0x0d).to_string(),
            "selector 0xd: entry 1 of the LDT, during delivery of an external event"
        );
        assert!(SelectorCode(0).to_string().starts_with("no selector"));
    }
}
