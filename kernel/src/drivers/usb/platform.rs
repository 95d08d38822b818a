//! The seam between the USB driver's logic and the machine it runs on:
//! the controller's registers (through the `xhci` crate's accessors and a
//! [`Mapper`]), DMA memory, the clock, the controller's interrupt, and
//! where keyboard events go. The kernel's [`Machine`] is the real thing;
//! the host tests put a simulated controller behind the same trait
//! (`sim.rs`), so the failure paths that real hardware seldom takes run
//! under `cargo test`.

use super::{Delivery, Error, KEYBOARD_EVENTS, KeyboardEvent};
use crate::drivers::pci;
use crate::mem::{dma::DmaPage, paging};
use crate::time;
use alloc::format;
use core::future::Future;
use core::num::NonZeroUsize;
use core::time::Duration;
use xhci::accessor::Mapper;

/// A page of memory the controller reads and writes by itself.
pub trait Dma {
    /// The address the controller is given.
    fn physical(&self) -> u64;
    /// Where the driver reaches it; accesses must be volatile where the
    /// controller may write concurrently.
    fn as_ptr(&self) -> *mut u8;
}

/// Everything the driver needs from around one controller.
pub trait Platform: Clone {
    type Mapper: Mapper + Clone;
    type Page: Dma;

    /// The controller's registers: their physical address (what the
    /// crate's accessors map through [`Platform::mapper`]) and the virtual
    /// address they are mapped at (for the extended capabilities, which
    /// the driver walks itself).
    fn registers(&self) -> (u64, u64);
    fn mapper(&self) -> Self::Mapper;
    /// A zeroed page; None when memory is exhausted.
    fn dma_page(&self) -> Option<Self::Page>;
    /// Time since boot.
    fn now(&self) -> Duration;
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()>;
    /// Sleeps until the controller interrupts (true) or `timeout` passes
    /// (false).
    fn wait_for_interrupt(&self, timeout: Duration) -> impl Future<Output = bool>;
    /// Sets up the controller's interrupt, given where its interrupter
    /// management register and USBSTS are mapped; called only once the
    /// controller runs.
    fn claim_interrupts(&self, name: &str, registers: (u64, u64)) -> Delivery;
    /// Hands a keyboard's attachment, report or removal on.
    fn keyboard_event(&self, event: KeyboardEvent);
    /// Cuts the controller off from memory, for one given up: it may still
    /// run the firmware's schedule (it never halted), or hold the addresses
    /// of rings about to be freed.
    fn stop_dma(&self);
}

/// The real machine around an xHCI on the PCI bus: its BAR, mapped
/// uncached; frames from `mem::dma`; the kernel's clock; MSI-X, MSI or the
/// legacy line; the keyboard task's queue.
#[derive(Debug, Clone, Copy)]
pub struct Machine {
    function: pci::Function,
    physical: u64,
    virtual_address: u64,
}

impl Machine {
    /// Maps the function's registers (BAR 0) and lets it decode memory and
    /// master the bus.
    pub fn new(function: pci::Function) -> Result<Self, Error> {
        let bar = function.bars().get(0).ok_or(Error::NoRegisters)?;
        function.enable_memory_and_dma();
        let virtual_address =
            paging::map_mmio(bar.address, bar.size).map_err(|error| Error::Map(format!("{error:?}")))?;
        Ok(Self { function, physical: bar.address, virtual_address })
    }
}

impl Platform for Machine {
    type Mapper = Mmio;
    type Page = DmaPage;

    fn registers(&self) -> (u64, u64) {
        (self.physical, self.virtual_address)
    }

    fn mapper(&self) -> Mmio {
        Mmio
    }

    fn dma_page(&self) -> Option<DmaPage> {
        DmaPage::new()
    }

    fn now(&self) -> Duration {
        time::uptime()
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> {
        time::sleep(duration)
    }

    fn wait_for_interrupt(&self, timeout: Duration) -> impl Future<Output = bool> {
        super::wait_for_interrupt(timeout)
    }

    fn claim_interrupts(&self, name: &str, registers: (u64, u64)) -> Delivery {
        super::set_up_interrupts(&self.function, name, registers)
    }

    fn keyboard_event(&self, event: KeyboardEvent) {
        KEYBOARD_EVENTS.push(event);
    }

    fn stop_dma(&self) {
        self.function.disable_dma();
    }
}

impl Dma for DmaPage {
    fn physical(&self) -> u64 {
        DmaPage::physical(self)
    }

    fn as_ptr(&self) -> *mut u8 {
        DmaPage::as_ptr(self)
    }
}

/// Maps registers through the kernel's uncached MMIO window, where the
/// controller's BAR was mapped before use (mapping twice is harmless).
#[derive(Debug, Clone, Copy)]
pub struct Mmio;

impl Mapper for Mmio {
    unsafe fn map(&mut self, physical: usize, bytes: usize) -> NonZeroUsize {
        let virtual_address = paging::map_mmio(physical as u64, bytes as u64)
            .expect("the controller's registers were mapped when it was found");
        NonZeroUsize::new(virtual_address as usize).expect("the MMIO window is not at address 0")
    }

    fn unmap(&mut self, _virtual: usize, _bytes: usize) {}
}
