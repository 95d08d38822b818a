//! One xHCI host controller: taken over from the firmware, reset, given its
//! device context array, command ring and event ring, and started; then
//! commands (Enable Slot, Address Device, Configure Endpoint, ...) and
//! transfers on its device slots, each waited for with a deadline on the
//! kernel's clock. The `xhci` crate gives the register, context and TRB
//! layouts; what is done with them is here.
//!
//! Everything runs in the USB task: the interrupt handler only wakes it.
//! Waits sleep on the clock, so a controller that never answers costs a
//! log line, never the boot.

use super::Error;
use super::platform::{Dma, Platform};
use super::ring::{Consumer, Producer, TRB_BYTES, Trb};
use alloc::{collections::VecDeque, string::String, vec::Vec};
use core::sync::atomic::{Ordering, fence};
use core::time::Duration;
use xhci::accessor::single;
use xhci::context::{EndpointType, Input32Byte, Input64Byte, InputHandler, SlotHandler};
use xhci::extended_capabilities::usb_legacy_support_capability::{LegSup, UsbLegacySupportControlStatus};
use xhci::registers::PortRegisterSet;
use xhci::ring::trb::{self, command, event, transfer};

/// Commands and control transfers get this long to complete.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(1000);
/// The firmware gets this long to give the controller up.
const HANDOFF_TIMEOUT: Duration = Duration::from_millis(1000);
/// The controller gets this long to halt, and to come out of reset.
const HALT_TIMEOUT: Duration = Duration::from_millis(100);
const RESET_TIMEOUT: Duration = Duration::from_millis(1000);
/// A port gets this long to finish its reset.
const PORT_RESET_TIMEOUT: Duration = Duration::from_millis(500);
/// Extended capability IDs.
const CAP_LEGACY: u32 = 1;
const CAP_PROTOCOL: u32 = 2;
/// TRBs in one ring page.
const RING_TRBS: usize = 256;
/// Where in a slot's data page control transfers put their data, and where
/// the interrupt endpoints' buffers start (32 bytes each, by context index).
const CONTROL_DATA: usize = 0;
const CONTROL_DATA_MAX: usize = 2048;
const INTERRUPT_DATA: usize = 2048;
const INTERRUPT_DATA_MAX: usize = 32;

/// What the controller reported, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Command { trb: u64, code: u8, slot: u8 },
    Transfer { code: u8, slot: u8, endpoint: u8, residue: u32 },
    PortStatusChange { port: u8 },
}

/// Unhandled events logged at most, per controller: a broken controller
/// could report them without end.
const UNHANDLED_LOGGED: usize = 8;
const HOST_CONTROLLER_EVENT: u32 = trb::Type::HostController as u32;
const EVENT_RING_FULL: u32 = event::CompletionCode::EventRingFullError as u32;

/// Completion codes that mean the work was done.
const SUCCESS: u8 = 1;
const SHORT_PACKET: u8 = 13;
const STALL: u8 = 6;
const RING_STOPPED: u8 = 24;

/// A DMA page the controller can reach: a controller without 64-bit
/// addressing (`wide`) only reaches the first 4 GiB.
fn dma_page<P: Platform>(platform: &P, wide: bool) -> Result<P::Page, Error> {
    let page = platform.dma_page().ok_or(Error::NoMemory)?;
    if !wide && page.physical() >= 1 << 32 {
        return Err(Error::Controller("reaches only the first 4 GiB, and the free memory is above"));
    }
    Ok(page)
}

/// A transfer ring: one page, with its producer state.
struct TransferRing<D> {
    page: D,
    producer: Producer,
}

impl<D: Dma> TransferRing<D> {
    fn new<P: Platform<Page = D>>(platform: &P, wide: bool) -> Result<Self, Error> {
        Ok(Self { page: dma_page(platform, wide)?, producer: Producer::new() })
    }

    /// Queues `trb` and returns its physical address.
    fn push(&mut self, trb: Trb) -> u64 {
        let start = self.page.physical();
        let index = self.producer.push(ring(&mut self.page), start, trb);
        start + index as u64 * TRB_BYTES
    }
}

fn ring(page: &mut impl Dma) -> &mut [Trb] {
    // SAFETY: the page is 4 KiB of DMA memory, 256 TRBs, owned by the one
    // ring it was allocated for; only the USB task touches it.
    unsafe { core::slice::from_raw_parts_mut(page.as_ptr() as *mut Trb, RING_TRBS) }
}

/// A device slot's memory: its output (device) context, the input context
/// commands read, a ring per endpoint in use and a page for data.
struct Slot<D> {
    id: u8,
    _output: D,
    input: D,
    rings: [Option<TransferRing<D>>; 32],
    data: D,
}

/// Where a device hangs: which root port, the route through hubs, and the
/// hub (slot and port) it is attached to, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub root_port: u8,
    pub route_string: u32,
    /// The high-speed hub's slot and port, for full and low speed devices
    /// behind it (the transaction translator).
    pub translator: Option<(u8, u8)>,
    pub speed: u8,
}

/// PORTSC speed values (the default protocol speed IDs).
pub const FULL_SPEED: u8 = 1;
pub const LOW_SPEED: u8 = 2;
pub const HIGH_SPEED: u8 = 3;

/// A control request's setup packet.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub request_type: u8,
    pub request: u8,
    pub value: u16,
    pub index: u16,
}

pub struct Controller<P: Platform> {
    pub name: String,
    platform: P,
    regs: xhci::Registers<P::Mapper>,
    /// Virtual address of the registers (for the extended capabilities).
    base: u64,
    context_64: bool,
    /// Whether it reaches memory above 4 GiB (64-bit addressing).
    wide: bool,
    dcbaa: P::Page,
    _scratchpads: Vec<P::Page>,
    commands: P::Page,
    command_ring: Producer,
    events: P::Page,
    _segment_table: P::Page,
    event_ring: Consumer,
    /// Events taken from the ring that no waiter wanted yet.
    pending: VecDeque<Event>,
    /// The USB major revision (2 or 3) of each port, by port number - 1.
    protocols: Vec<u8>,
    slots: Vec<Slot<P::Page>>,
    /// Set once a timed-out command could not be aborted: the command ring
    /// is stuck, so later commands fail at once instead of each waiting.
    commands_stuck: bool,
    /// Events the driver has no use for, seen so far (see
    /// [`Controller::unhandled`]).
    unhandled_seen: usize,
}

impl<P: Platform> Controller<P> {
    /// Takes the controller from the firmware, resets it and gives it its
    /// rings; it does not run yet, and raises no interrupt.
    pub async fn start(platform: P, name: String) -> Result<Self, Error> {
        let (physical, base) = platform.registers();
        // SAFETY: the platform mapped the controller's registers, and this
        // is the only accessor made for them.
        let mut regs = unsafe { xhci::Registers::new(physical as usize, platform.mapper()) };
        let xecp = regs.capability.hccparams1.read_volatile().xhci_extended_capabilities_pointer();
        let capabilities = extended_capabilities(base, xecp as u64 * 4);
        if let Some(&(_, legacy)) = capabilities.iter().find(|(id, _)| *id == CAP_LEGACY) {
            take_from_firmware(&platform, &name, physical + (legacy - base)).await;
        } else {
            log::info!("usb: {name}: no USB Legacy Support capability: the firmware cannot hold it");
        }
        reset(&platform, &mut regs).await?;
        let wide = regs.capability.hccparams1.read_volatile().addressing_capability();

        // One slot fewer than the controller has: the `xhci` crate's doorbell
        // array stops one short of the last slot's doorbell.
        let slots = regs.capability.hcsparams1.read_volatile().number_of_device_slots().saturating_sub(1);
        if slots == 0 {
            return Err(Error::Controller(
                "has fewer than two device slots (the last one's doorbell is out of reach)",
            ));
        }
        regs.operational.config.update_volatile(|config| {
            config.set_max_device_slots_enabled(slots);
        });
        let dcbaa = dma_page(&platform, wide)?;
        let scratchpads = scratchpads(&platform, &regs, &dcbaa, wide)?;
        regs.operational.dcbaap.update_volatile(|pointer| pointer.set(dcbaa.physical()));
        let commands = dma_page(&platform, wide)?;
        regs.operational.crcr.update_volatile(|crcr| {
            crcr.set_command_ring_pointer(commands.physical());
            crcr.set_ring_cycle_state();
        });
        let events = dma_page(&platform, wide)?;
        let segment_table = dma_page(&platform, wide)?;
        // SAFETY: the table's first entry is the 16 bytes at its start: the
        // segment's address and its size in TRBs.
        unsafe {
            let entry = segment_table.as_ptr() as *mut u64;
            entry.write_volatile(events.physical());
            entry.add(1).write_volatile(RING_TRBS as u64);
        }
        let mut interrupter = regs.interrupter_register_set.interrupter_mut(0);
        interrupter.erstsz.update_volatile(|size| size.set(1));
        interrupter.erdp.update_volatile(|erdp| erdp.set_event_ring_dequeue_pointer(events.physical()));
        interrupter.erstba.update_volatile(|erstba| erstba.set(segment_table.physical()));
        // At most one interrupt per 250 us: keys come far slower.
        interrupter.imod.update_volatile(|imod| {
            imod.set_interrupt_moderation_interval(1000);
        });
        interrupter.iman.update_volatile(|iman| {
            iman.set_interrupt_enable();
        });
        let ports = regs.capability.hcsparams1.read_volatile().number_of_ports();
        let context_64 = regs.capability.hccparams1.read_volatile().context_size();
        let mut protocols = alloc::vec![0u8; ports as usize];
        for &(_, at) in capabilities.iter().filter(|(id, _)| *id == CAP_PROTOCOL) {
            // SAFETY: a Supported Protocol capability has at least three
            // dwords, inside the mapped BAR.
            let (major, ports_word) = unsafe {
                ((at as *const u32).read_volatile() >> 24, ((at + 8) as *const u32).read_volatile())
            };
            let (first, count) = ((ports_word & 0xff) as usize, (ports_word >> 8 & 0xff) as usize);
            for port in first..first + count {
                if let Some(slot) = protocols.get_mut(port.wrapping_sub(1)) {
                    *slot = major as u8;
                }
            }
        }
        Ok(Controller {
            name,
            platform,
            regs,
            base,
            context_64,
            wide,
            dcbaa,
            _scratchpads: scratchpads,
            commands,
            command_ring: Producer::new(),
            events,
            _segment_table: segment_table,
            event_ring: Consumer::new(),
            pending: VecDeque::new(),
            protocols,
            slots: Vec::new(),
            commands_stuck: false,
            unhandled_seen: 0,
        })
    }

    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// Sets the controller running and powers its ports (where the
    /// controller switches port power, a reset leaves them off). Its
    /// interrupts stay off until [`Controller::enable_interrupts`]; a
    /// controller that does not start is stopped again.
    pub async fn run(&mut self) -> Result<(), Error> {
        self.regs.operational.usbcmd.update_volatile(|usbcmd| {
            usbcmd.set_run_stop();
        });
        let deadline = self.platform.now() + HALT_TIMEOUT;
        while self.regs.operational.usbsts.read_volatile().hc_halted() {
            if self.platform.now() > deadline {
                self.regs.operational.usbcmd.update_volatile(|usbcmd| {
                    usbcmd.clear_run_stop();
                });
                return Err(Error::Stuck {
                    what: "did not start running",
                    within: HALT_TIMEOUT,
                    register: "HCHalted stayed set",
                });
            }
            self.platform.sleep(Duration::from_millis(1)).await;
        }
        if self.regs.capability.hccparams1.read_volatile().port_power_control() {
            for port in 0..self.protocols.len() {
                self.regs.port_register_set.update_volatile_at(port, |set: &mut PortRegisterSet| {
                    zero_changes(&mut set.portsc);
                    set.portsc.set_port_power();
                });
            }
            // USB 2 gives a port 20 ms from power to a stable connection.
            self.platform.sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Lets the interrupter raise its interrupt, once one is set up.
    pub fn enable_interrupts(&mut self) {
        self.regs.operational.usbcmd.update_volatile(|usbcmd| {
            usbcmd.set_interrupter_enable();
        });
    }

    /// Where the interrupter's management register and USBSTS are mapped
    /// (for a legacy interrupt handler, which must clear them).
    pub fn interrupt_registers(&self) -> (u64, u64) {
        let caplength = self.regs.capability.caplength.read_volatile().get() as u64;
        let rtsoff = self.regs.capability.rtsoff.read_volatile().get() as u64;
        (self.base + rtsoff + 0x20, self.base + caplength + 4)
    }

    pub fn ports(&self) -> u8 {
        self.protocols.len() as u8
    }

    /// The port's USB major revision from the Supported Protocol
    /// capabilities (0 when none names it).
    pub fn protocol(&self, port: u8) -> u8 {
        self.protocols.get(port as usize - 1).copied().unwrap_or(0)
    }

    fn portsc(&self, port: u8) -> xhci::registers::operational::PortStatusAndControlRegister {
        self.regs.port_register_set.read_volatile_at(port as usize - 1).portsc
    }

    /// Connected, and with what speed (the PORTSC speed value).
    pub fn port_connected(&self, port: u8) -> Option<u8> {
        let portsc = self.portsc(port);
        portsc.current_connect_status().then(|| portsc.port_speed())
    }

    /// Acknowledges every change the port reports, touching nothing else.
    pub fn clear_port_changes(&mut self, port: u8) {
        self.regs.port_register_set.update_volatile_at(port as usize - 1, |set: &mut PortRegisterSet| {
            let portsc = &mut set.portsc;
            portsc.set_0_port_enabled_disabled();
            portsc.clear_connect_status_change();
            portsc.clear_port_enabled_disabled_change();
            portsc.clear_warm_port_reset_change();
            portsc.clear_over_current_change();
            portsc.clear_port_reset_change();
            portsc.clear_port_link_state_change();
            portsc.clear_port_config_error_change();
        });
    }

    /// Resets the port (a USB 3 port enables itself after link training
    /// and is reset only when it did not) and returns the device's speed.
    pub async fn reset_port(&mut self, port: u8) -> Result<u8, Error> {
        let portsc = self.portsc(port);
        if self.protocol(port) == 3 && portsc.port_enabled_disabled() {
            return Ok(portsc.port_speed());
        }
        self.regs.port_register_set.update_volatile_at(port as usize - 1, |set: &mut PortRegisterSet| {
            let portsc = &mut set.portsc;
            zero_changes(portsc);
            portsc.set_port_reset();
        });
        let deadline = self.platform.now() + PORT_RESET_TIMEOUT;
        loop {
            let portsc = self.portsc(port);
            if !portsc.port_reset() && portsc.port_enabled_disabled() {
                self.clear_port_changes(port);
                return Ok(portsc.port_speed());
            }
            if !portsc.current_connect_status() {
                return Err(Error::Disconnected);
            }
            if self.platform.now() > deadline {
                return Err(Error::Timeout { what: "port reset", after: PORT_RESET_TIMEOUT });
            }
            self.platform.sleep(Duration::from_millis(2)).await;
        }
    }

    /// Moves what the controller wrote into the event ring to the pending
    /// events, and tells it how far the ring was read.
    fn drain(&mut self) {
        let mut any = false;
        while let Some(raw) = self.event_ring.pop(ring(&mut self.events)) {
            any = true;
            match decode(raw) {
                Some(event) => self.pending.push_back(event),
                None => self.unhandled(raw),
            }
        }
        // The interrupter's pending flag (cleared by software only for a
        // legacy interrupt) and the event interrupt status.
        let mut interrupter = self.regs.interrupter_register_set.interrupter_mut(0);
        if any {
            let dequeue = self.events.physical() + self.event_ring.dequeue() as u64 * TRB_BYTES;
            interrupter.erdp.update_volatile(|erdp| {
                erdp.set_event_ring_dequeue_pointer(dequeue);
                erdp.clear_event_handler_busy();
            });
        }
    }

    /// Logs an event the driver has no use for, the first
    /// [`UNHANDLED_LOGGED`] of them: a Host Controller Event reports trouble
    /// (events lost to a full event ring, say), and the other kinds come only
    /// when enabled, which the driver does not.
    fn unhandled(&mut self, raw: Trb) {
        self.unhandled_seen += 1;
        if self.unhandled_seen > UNHANDLED_LOGGED {
            return;
        }
        let (kind, code) = (raw[3] >> 10 & 0x3f, raw[2] >> 24);
        let what = match (kind, code) {
            (HOST_CONTROLLER_EVENT, EVENT_RING_FULL) => "the event ring overflowed: events were lost",
            (HOST_CONTROLLER_EVENT, _) => "the controller reports an error",
            _ => "an event of a kind the driver does not handle, ignored",
        };
        let last = if self.unhandled_seen == UNHANDLED_LOGGED { "; further ones are not logged" } else { "" };
        log::warn!("usb: {}: {what} (TRB type {kind}, completion code {code}){last}", self.name);
    }

    /// Whether the controller has reported something not yet handled.
    pub fn has_events(&mut self) -> bool {
        self.drain();
        !self.pending.is_empty()
    }

    /// The oldest event not yet handled.
    pub fn next_event(&mut self) -> Option<Event> {
        self.drain();
        self.pending.pop_front()
    }

    /// Waits for the first event `wanted` accepts; other events stay
    /// pending for the caller's main loop.
    async fn wait_for(
        &mut self,
        what: &'static str,
        wanted: impl Fn(&Event) -> bool,
    ) -> Result<Event, Error> {
        let deadline = self.platform.now() + COMMAND_TIMEOUT;
        loop {
            self.drain();
            if let Some(at) = self.pending.iter().position(&wanted) {
                return Ok(self.pending.remove(at).expect("found"));
            }
            let now = self.platform.now();
            if now >= deadline {
                return Err(Error::Timeout { what, after: COMMAND_TIMEOUT });
            }
            self.platform.wait_for_interrupt((deadline - now).min(Duration::from_millis(10))).await;
        }
    }

    fn ring_doorbell(&mut self, slot: u8, target: u8) {
        // The TRBs and contexts must be in memory before the controller is
        // told to look.
        fence(Ordering::SeqCst);
        self.regs.doorbell.update_volatile_at(slot as usize, |doorbell| {
            doorbell.set_doorbell_target(target);
        });
    }

    /// Runs a command and returns the slot its completion names. A command
    /// that does not complete in time is aborted, so that the ones after it
    /// run.
    async fn command(&mut self, trb: command::Allowed, what: &'static str) -> Result<u8, Error> {
        if self.commands_stuck {
            return Err(Error::CommandsStuck(what));
        }
        let start = self.commands.physical();
        let index = self.command_ring.push(ring(&mut self.commands), start, trb.into_raw());
        let address = start + index as u64 * TRB_BYTES;
        self.ring_doorbell(0, 0);
        let completion =
            self.wait_for(what, |event| matches!(event, Event::Command { trb, .. } if *trb == address)).await;
        match completion {
            Ok(Event::Command { code: SUCCESS, slot, .. }) => Ok(slot),
            Ok(Event::Command { code, .. }) => Err(Error::Completion { what, code }),
            Ok(_) => unreachable!("wait_for returns what it waited for"),
            Err(error) => {
                self.abort_command(address).await;
                Err(error)
            }
        }
    }

    /// Aborts the command at `address`, which did not complete: the
    /// controller stops its command ring, reporting the abort and the stop,
    /// and runs the next command when the doorbell rings again. Both
    /// reports are taken here, so that neither is mistaken for the
    /// completion of a later command at the same place. A ring that does not
    /// stop leaves the controller without commands.
    async fn abort_command(&mut self, address: u64) {
        if !self.regs.operational.crcr.read_volatile().command_ring_running() {
            return;
        }
        self.regs.operational.crcr.update_volatile(|crcr| {
            crcr.set_command_abort();
        });
        let stopped = self
            .wait_for("Command Abort", |event| matches!(event, Event::Command { code: RING_STOPPED, .. }))
            .await;
        self.pending.retain(|event| !matches!(event, Event::Command { trb, .. } if *trb == address));
        if stopped.is_err() {
            log::error!(
                "usb: {}: its command ring did not stop within {} ms of an abort; no more commands are sent to it",
                self.name,
                COMMAND_TIMEOUT.as_millis()
            );
            self.commands_stuck = true;
        }
    }

    /// Makes endpoint 0 of slot `id` usable again after a transfer on it
    /// failed: a halted endpoint (an error or a stall halts it) is reset, a
    /// running one (its transfer never ended) stopped; then the
    /// controller's dequeue pointer is moved past what is left on the ring.
    async fn recover_endpoint0(&mut self, id: u8, halted: bool) -> Result<(), Error> {
        if halted {
            let mut trb = command::ResetEndpoint::new();
            trb.set_slot_id(id).set_endpoint_id(1);
            self.command(trb.into(), "Reset Endpoint").await?;
        } else {
            let mut trb = command::StopEndpoint::new();
            trb.set_slot_id(id).set_endpoint_id(1);
            self.command(trb.into(), "Stop Endpoint").await?;
            // The abandoned request's end (Stopped, or a completion that
            // came too late) is reported before the command's; left
            // pending, it would pass for the answer to the next request on
            // this slot, or on the next device given its number.
            self.pending
                .retain(|event| !matches!(event, Event::Transfer { slot, endpoint: 1, .. } if *slot == id));
        }
        let ring = self.slot(id)?.rings[1].as_ref().ok_or(Error::NoSlot(id))?;
        let (index, cycle) = ring.producer.position();
        let mut trb = command::SetTrDequeuePointer::new();
        trb.set_slot_id(id)
            .set_endpoint_id(1)
            .set_new_tr_dequeue_pointer(ring.page.physical() + index as u64 * TRB_BYTES);
        if cycle {
            trb.set_dequeue_cycle_state();
        }
        self.command(trb.into(), "Set TR Dequeue Pointer").await.map(|_| ())
    }

    fn slot(&mut self, id: u8) -> Result<&mut Slot<P::Page>, Error> {
        self.slots.iter_mut().find(|slot| slot.id == id).ok_or(Error::NoSlot(id))
    }

    /// The slot's input context, cleared, through the crate's accessors.
    fn input(&mut self, id: u8) -> Result<(&mut dyn InputHandler, u64), Error> {
        let context_64 = self.context_64;
        let slot = self.slot(id)?;
        // SAFETY: the page holds nothing but this slot's input context and
        // is the right size for either context size (33 x 64 bytes fits);
        // the controller reads it only during a command that this task
        // waits for.
        unsafe { core::ptr::write_bytes(slot.input.as_ptr(), 0, 33 * 64) };
        let input: &mut dyn InputHandler = if context_64 {
            // SAFETY: as above; Input64Byte is plain words.
            unsafe { &mut *(slot.input.as_ptr() as *mut Input64Byte) }
        } else {
            // SAFETY: likewise for Input32Byte.
            unsafe { &mut *(slot.input.as_ptr() as *mut Input32Byte) }
        };
        Ok((input, slot.input.physical()))
    }

    /// Enable Slot, then Address Device with endpoint 0 set up: the device
    /// answers at its own address afterwards. Returns the slot.
    pub async fn address_device(&mut self, route: Route) -> Result<u8, Error> {
        let output = dma_page(&self.platform, self.wide)?;
        let ep0 = TransferRing::new(&self.platform, self.wide)?;
        let (input, data) = (dma_page(&self.platform, self.wide)?, dma_page(&self.platform, self.wide)?);
        let id = self.command(command::EnableSlot::new().into(), "Enable Slot").await?;
        // SAFETY: the DCBAA page holds one u64 per slot (at most 255).
        unsafe { (self.dcbaa.as_ptr() as *mut u64).add(id as usize).write_volatile(output.physical()) };
        let ep0_start = ep0.page.physical();
        let mut rings: [Option<TransferRing<P::Page>>; 32] = Default::default();
        rings[1] = Some(ep0);
        self.slots.push(Slot { id, _output: output, input, rings, data });
        let max_packet = match route.speed {
            LOW_SPEED | FULL_SPEED => 8,
            HIGH_SPEED => 64,
            _ => 512,
        };
        let (input, address) = self.input(id)?;
        input.control_mut().set_add_context_flag(0);
        input.control_mut().set_add_context_flag(1);
        set_slot_route(input.device_mut().slot_mut(), route, 1);
        let ep = input.device_mut().endpoint_mut(1);
        ep.set_endpoint_type(EndpointType::Control);
        ep.set_max_packet_size(max_packet);
        ep.set_error_count(3);
        ep.set_average_trb_length(8);
        ep.set_tr_dequeue_pointer(ep0_start);
        ep.set_dequeue_cycle_state();
        let mut trb = command::AddressDevice::new();
        trb.set_input_context_pointer(address).set_slot_id(id);
        if let Err(error) = self.command(trb.into(), "Address Device").await {
            self.disable_slot(id).await;
            return Err(error);
        }
        Ok(id)
    }

    /// Tells the controller endpoint 0's real packet size (Evaluate Context).
    pub async fn set_max_packet_size0(&mut self, id: u8, size: u16) -> Result<(), Error> {
        let (input, address) = self.input(id)?;
        input.control_mut().set_add_context_flag(1);
        input.device_mut().endpoint_mut(1).set_max_packet_size(size);
        let mut trb = command::EvaluateContext::new();
        trb.set_input_context_pointer(address).set_slot_id(id);
        self.command(trb.into(), "Evaluate Context").await.map(|_| ())
    }

    /// Configure Endpoint: an interrupt IN endpoint with a fresh ring, and
    /// for a hub its port count in the slot context.
    pub async fn configure_interrupt_in(
        &mut self,
        id: u8,
        route: Route,
        endpoint: &super::descriptor::Endpoint,
        hub_ports: Option<u8>,
    ) -> Result<(), Error> {
        let dci = endpoint.context_index();
        let transfer_ring = TransferRing::new(&self.platform, self.wide)?;
        let ring_start = transfer_ring.page.physical();
        self.slot(id)?.rings[dci as usize] = Some(transfer_ring);
        let (input, address) = self.input(id)?;
        input.control_mut().set_add_context_flag(0);
        input.control_mut().set_add_context_flag(dci as usize);
        let slot = input.device_mut().slot_mut();
        set_slot_route(slot, route, dci);
        if let Some(ports) = hub_ports {
            slot.set_hub();
            slot.set_number_of_ports(ports);
        }
        let ep = input.device_mut().endpoint_mut(dci as usize);
        ep.set_endpoint_type(EndpointType::InterruptIn);
        ep.set_max_packet_size(endpoint.max_packet_size);
        ep.set_interval(interval(route.speed, endpoint.interval));
        ep.set_error_count(3);
        ep.set_average_trb_length(endpoint.max_packet_size);
        ep.set_max_endpoint_service_time_interval_payload_low(endpoint.max_packet_size);
        ep.set_tr_dequeue_pointer(ring_start);
        ep.set_dequeue_cycle_state();
        let mut trb = command::ConfigureEndpoint::new();
        trb.set_input_context_pointer(address).set_slot_id(id);
        self.command(trb.into(), "Configure Endpoint").await.map(|_| ())
    }

    /// A control transfer on endpoint 0: `length` bytes in (returned), or
    /// `out` bytes out.
    pub async fn control(
        &mut self,
        id: u8,
        setup: Setup,
        length: u16,
        out: &[u8],
        what: &'static str,
    ) -> Result<Vec<u8>, Error> {
        let inward = setup.request_type & 0x80 != 0;
        let length = if inward { length.min(CONTROL_DATA_MAX as u16) } else { out.len() as u16 };
        let slot = self.slot(id)?;
        let data = slot.data.physical() + CONTROL_DATA as u64;
        if !inward {
            // SAFETY: the data page's first 2 KiB are for control data; `out`
            // is at most that long (the hub and HID requests send a byte).
            unsafe {
                core::ptr::copy_nonoverlapping(
                    out.as_ptr(),
                    slot.data.as_ptr(),
                    out.len().min(CONTROL_DATA_MAX),
                )
            };
        }
        let ring = slot.rings[1].as_mut().ok_or(Error::NoSlot(id))?;
        let mut stage = transfer::SetupStage::new();
        stage
            .set_request_type(setup.request_type)
            .set_request(setup.request)
            .set_value(setup.value)
            .set_index(setup.index)
            .set_length(length)
            .set_transfer_type(match (length, inward) {
                (0, _) => transfer::TransferType::No,
                (_, true) => transfer::TransferType::In,
                (_, false) => transfer::TransferType::Out,
            });
        ring.push(stage.into_raw());
        if length > 0 {
            let mut stage = transfer::DataStage::new();
            stage
                .set_data_buffer_pointer(data)
                .set_trb_transfer_length(length as u32)
                .set_direction(if inward { transfer::Direction::In } else { transfer::Direction::Out });
            ring.push(stage.into_raw());
        }
        let mut status = transfer::StatusStage::new();
        if length == 0 || !inward {
            status.set_direction();
        }
        status.set_interrupt_on_completion();
        ring.push(status.into_raw());
        self.ring_doorbell(id, 1);
        let event = self
            .wait_for(what, |event| matches!(event, Event::Transfer { slot, endpoint: 1, .. } if *slot == id))
            .await;
        let error = match event {
            Ok(Event::Transfer { code: SUCCESS | SHORT_PACKET, .. }) => None,
            Ok(Event::Transfer { code: STALL, .. }) => Some(Error::Stalled(what)),
            Ok(Event::Transfer { code, .. }) => Some(Error::Completion { what, code }),
            Ok(_) => unreachable!("wait_for returns what it waited for"),
            Err(error) => Some(error),
        };
        if let Some(error) = error {
            let halted = !matches!(error, Error::Timeout { .. });
            if let Err(reset) = self.recover_endpoint0(id, halted).await {
                log::warn!(
                    "usb: {}: slot {id}: endpoint 0 not recovered after {what} failed: {reset}",
                    self.name
                );
            }
            return Err(error);
        }
        let slot = self.slot(id)?;
        let mut bytes = alloc::vec![0u8; if inward { length as usize } else { 0 }];
        // SAFETY: the controller finished writing the data stage (its
        // status stage completed); the bytes are in the page's first 2 KiB.
        unsafe { core::ptr::copy_nonoverlapping(slot.data.as_ptr(), bytes.as_mut_ptr(), bytes.len()) };
        Ok(bytes)
    }

    /// Queues one IN transfer of `length` bytes (at most 32) on the
    /// interrupt endpoint `dci`; its completion comes as a transfer event.
    pub fn queue_interrupt_in(&mut self, id: u8, dci: u8, length: u16) -> Result<(), Error> {
        let slot = self.slot(id)?;
        let buffer = slot.data.physical() + (INTERRUPT_DATA + dci as usize * INTERRUPT_DATA_MAX) as u64;
        let ring = slot.rings[dci as usize].as_mut().ok_or(Error::NoSlot(id))?;
        let mut normal = transfer::Normal::new();
        normal
            .set_data_buffer_pointer(buffer)
            .set_trb_transfer_length(length.min(INTERRUPT_DATA_MAX as u16) as u32)
            .set_interrupt_on_short_packet()
            .set_interrupt_on_completion();
        ring.push(normal.into_raw());
        self.ring_doorbell(id, dci);
        Ok(())
    }

    /// What the last IN transfer on `dci` brought (`length` bytes).
    pub fn interrupt_data(
        &mut self,
        id: u8,
        dci: u8,
        length: usize,
    ) -> Result<[u8; INTERRUPT_DATA_MAX], Error> {
        let slot = self.slot(id)?;
        let mut bytes = [0u8; INTERRUPT_DATA_MAX];
        // SAFETY: the endpoint's 32-byte buffer in the data page, which the
        // controller finished writing (its transfer event came).
        unsafe {
            core::ptr::copy_nonoverlapping(
                slot.data.as_ptr().add(INTERRUPT_DATA + dci as usize * INTERRUPT_DATA_MAX),
                bytes.as_mut_ptr(),
                length.min(INTERRUPT_DATA_MAX),
            )
        };
        Ok(bytes)
    }

    /// Disable Slot, then frees the slot's memory (also when the command
    /// failed: a gone device's slot is of no use).
    pub async fn disable_slot(&mut self, id: u8) {
        let mut trb = command::DisableSlot::new();
        trb.set_slot_id(id);
        if let Err(error) = self.command(trb.into(), "Disable Slot").await {
            log::warn!("usb: {}: slot {id}: {error}", self.name);
        }
        // SAFETY: the DCBAA entry of this slot, which no longer exists.
        unsafe { (self.dcbaa.as_ptr() as *mut u64).add(id as usize).write_volatile(0) };
        self.slots.retain(|slot| slot.id != id);
    }
}

/// Leaves a PORTSC value with no write-1-to-clear bit set, so writing it
/// back changes only what the caller sets (and does not disable the port).
fn zero_changes(portsc: &mut xhci::registers::operational::PortStatusAndControlRegister) {
    portsc.set_0_port_enabled_disabled();
    portsc.set_0_connect_status_change();
    portsc.set_0_port_enabled_disabled_change();
    portsc.set_0_warm_port_reset_change();
    portsc.set_0_over_current_change();
    portsc.set_0_port_reset_change();
    portsc.set_0_port_link_state_change();
    portsc.set_0_port_config_error_change();
}

/// Fills a slot context with where the device sits (`route`: speed, root
/// port, route string, the high-speed hub translating for it) and how many
/// endpoint contexts it uses; Address Device and Configure Endpoint both
/// give the whole slot context.
fn set_slot_route(slot: &mut dyn SlotHandler, route: Route, context_entries: u8) {
    slot.set_route_string(route.route_string);
    slot.set_speed(route.speed);
    slot.set_context_entries(context_entries);
    slot.set_root_hub_port_number(route.root_port);
    if let Some((hub_slot, hub_port)) = route.translator {
        slot.set_parent_hub_slot_id(hub_slot);
        slot.set_parent_port_number(hub_port);
    }
}

/// The xHCI endpoint interval (2^n x 125 us) for bInterval: frames (ms)
/// at full and low speed, 2^(n-1) microframes at high and super speed.
pub fn interval(speed: u8, b_interval: u8) -> u8 {
    match speed {
        LOW_SPEED | FULL_SPEED => {
            let microframes = (b_interval.max(1) as u32) * 8;
            (31 - microframes.leading_zeros()).clamp(3, 10) as u8
        }
        _ => b_interval.clamp(1, 16) - 1,
    }
}

fn decode(raw: Trb) -> Option<Event> {
    Some(match event::Allowed::try_from(raw).ok()? {
        event::Allowed::CommandCompletion(c) => Event::Command {
            trb: c.command_trb_pointer(),
            code: c.completion_code().map_or_else(|code| code, |code| code as u8),
            slot: c.slot_id(),
        },
        event::Allowed::TransferEvent(t) => Event::Transfer {
            code: t.completion_code().map_or_else(|code| code, |code| code as u8),
            slot: t.slot_id(),
            endpoint: t.endpoint_id(),
            residue: t.trb_transfer_length(),
        },
        event::Allowed::PortStatusChange(p) => Event::PortStatusChange { port: p.port_id() },
        _ => return None,
    })
}

/// The extended capabilities: (ID, virtual address) for each.
fn extended_capabilities(base: u64, offset: u64) -> Vec<(u32, u64)> {
    let mut found = Vec::new();
    let mut at = base + offset;
    if offset == 0 {
        return found;
    }
    // A broken list could loop; real ones have a handful of entries.
    for _ in 0..64 {
        // SAFETY: the list lies within the controller's mapped registers.
        let header = unsafe { (at as *const u32).read_volatile() };
        found.push((header & 0xff, at));
        let next = (header >> 8 & 0xff) as u64;
        if next == 0 {
            break;
        }
        at += next * 4;
    }
    found
}

/// The BIOS-to-OS handoff of the USB Legacy Support capability at physical
/// `legacy`: ask for the controller, wait (bounded) for the firmware to let
/// go, then switch its SMIs off. A firmware that holds on is logged and
/// overridden.
async fn take_from_firmware(platform: &impl Platform, name: &str, legacy: u64) {
    // SAFETY: the capability's two registers, in the mapped BAR; the
    // crate's own accessor puts both at the same address, so they are made
    // here, four bytes apart.
    let (mut legsup, mut control) = unsafe {
        (
            single::ReadWrite::<LegSup, _>::new(legacy as usize, platform.mapper()),
            single::ReadWrite::<UsbLegacySupportControlStatus, _>::new(
                legacy as usize + 4,
                platform.mapper(),
            ),
        )
    };
    let firmware_owned = legsup.read_volatile().hc_bios_owned_semaphore();
    legsup.update_volatile(|legsup| {
        legsup.set_hc_os_owned_semaphore();
    });
    let deadline = platform.now() + HANDOFF_TIMEOUT;
    while legsup.read_volatile().hc_bios_owned_semaphore() {
        if platform.now() > deadline {
            log::warn!(
                "usb: {name}: the firmware did not give the controller up within {} ms; taking it anyway",
                HANDOFF_TIMEOUT.as_millis()
            );
            legsup.update_volatile(|legsup| {
                legsup.clear_hc_bios_owned_semaphore();
            });
            break;
        }
        platform.sleep(Duration::from_millis(1)).await;
    }
    control.update_volatile(|control| {
        control
            .clear_usb_smi_enable()
            .clear_smi_on_host_system_error_enable()
            .clear_smi_on_os_ownership_enable()
            .clear_smi_on_pci_command_enable()
            .clear_smi_on_bar_enable()
            .clear_smi_on_os_ownership_change()
            .clear_smi_on_pci_command()
            .clear_smi_on_bar();
    });
    let from =
        if firmware_owned { "the firmware, which had it" } else { "the firmware (it had not claimed it)" };
    log::info!("usb: {name}: taken over from {from}; legacy SMIs off");
}

/// Stops the controller and resets it, each step bounded.
async fn reset<P: Platform>(platform: &P, regs: &mut xhci::Registers<P::Mapper>) -> Result<(), Error> {
    regs.operational.usbcmd.update_volatile(|usbcmd| {
        usbcmd.clear_run_stop();
    });
    let deadline = platform.now() + HALT_TIMEOUT;
    while !regs.operational.usbsts.read_volatile().hc_halted() {
        if platform.now() > deadline {
            return Err(Error::Stuck {
                what: "did not halt",
                within: HALT_TIMEOUT,
                register: "HCHalted stayed clear",
            });
        }
        platform.sleep(Duration::from_millis(1)).await;
    }
    regs.operational.usbcmd.update_volatile(|usbcmd| {
        usbcmd.set_host_controller_reset();
    });
    let deadline = platform.now() + RESET_TIMEOUT;
    loop {
        let resetting = regs.operational.usbcmd.read_volatile().host_controller_reset();
        let not_ready = regs.operational.usbsts.read_volatile().controller_not_ready();
        if !resetting && !not_ready {
            return Ok(());
        }
        if platform.now() > deadline {
            return Err(Error::Stuck {
                what: "did not come out of reset",
                within: RESET_TIMEOUT,
                register: if resetting {
                    "Host Controller Reset stayed set"
                } else {
                    "Controller Not Ready stayed set"
                },
            });
        }
        platform.sleep(Duration::from_millis(1)).await;
    }
}

/// The scratchpad buffers the controller asks for, listed in the array
/// that DCBAA entry 0 points to.
fn scratchpads<P: Platform>(
    platform: &P,
    regs: &xhci::Registers<P::Mapper>,
    dcbaa: &P::Page,
    wide: bool,
) -> Result<Vec<P::Page>, Error> {
    let count = regs.capability.hcsparams2.read_volatile().max_scratchpad_buffers() as usize;
    let mut pages = Vec::new();
    if count == 0 {
        return Ok(pages);
    }
    let array = dma_page(platform, wide)?;
    for i in 0..count.min(512) {
        let page = dma_page(platform, wide)?;
        // SAFETY: the array page holds 512 u64 entries.
        unsafe { (array.as_ptr() as *mut u64).add(i).write_volatile(page.physical()) };
        pages.push(page);
    }
    // SAFETY: DCBAA entry 0 is the scratchpad array's address.
    unsafe { (dcbaa.as_ptr() as *mut u64).write_volatile(array.physical()) };
    pages.push(array);
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_follow_the_speed() {
        // A full-speed keyboard asking for every 10 ms: 2^6 x 125 us = 8 ms.
        assert_eq!(interval(FULL_SPEED, 10), 6);
        assert_eq!(interval(FULL_SPEED, 1), 3);
        assert_eq!(interval(LOW_SPEED, 255), 10);
        // High speed: 2^(bInterval - 1) microframes.
        assert_eq!(interval(HIGH_SPEED, 4), 3);
        assert_eq!(interval(4, 1), 0);
    }
}
