//! USB keyboards: every xHCI controller on the PCI bus, the devices on its
//! ports and behind hubs, and the HID boot keyboards among them.
//!
//! All of it runs in one task ([`run`]), which the task layer spawns: the
//! controllers are brought up, the connected ports enumerated, and then the
//! task sleeps until the controller's interrupt (MSI-X, MSI, or its legacy
//! line) or a deadline wakes it, handling port changes (hot-plug, unplug),
//! hub status changes and keyboard reports as they come. Nothing here ever
//! blocks the boot or the shell: each wait is bounded on the clock, and a
//! failure costs a log line and that device (or controller) alone.
//!
//! Keyboards deliver their 8-byte boot reports through
//! [`next_keyboard_event`]; the keyboard task turns them into keys. It asks
//! for the lock LEDs through [`set_leds`].

pub mod descriptor;
mod platform;
pub mod ring;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
mod xhci;

use crate::arch::interrupts::{self, IrqLine, LocalVector};
use crate::drivers::{lapic, pci};
use crate::mem::paging;
use crate::time;
use alloc::{boxed::Box, collections::VecDeque, format, string::String, vec::Vec};
use core::fmt;
use core::future::poll_fn;
use core::pin::pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Poll, Waker};
use core::time::Duration;
use descriptor::{CLASS_HUB, Endpoint};
use futures_util::task::AtomicWaker;
use platform::{Machine, Platform};
use spin::{Mutex, Once};
use xhci::{Controller, Event, FULL_SPEED, HIGH_SPEED, LOW_SPEED, Route, Setup};

/// PCI class of an xHCI: serial bus, USB, programming interface 0x30.
const XHCI_CLASS: u32 = 0x0c0330;
/// How long the task sleeps when nothing happens: with interrupts it is
/// only a safety net; polling (the fallback) looks this often.
const IDLE_WITH_INTERRUPTS: Duration = Duration::from_millis(1000);
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Hub port reset: how long it may take.
const HUB_RESET_TIMEOUT: Duration = Duration::from_millis(500);

/// Standard and class requests.
const GET_STATUS: u8 = 0;
const CLEAR_FEATURE: u8 = 1;
const SET_FEATURE: u8 = 3;
const GET_DESCRIPTOR: u8 = 6;
const SET_CONFIGURATION: u8 = 9;
const HID_SET_REPORT: u8 = 0x09;
const HID_SET_IDLE: u8 = 0x0a;
const HID_SET_PROTOCOL: u8 = 0x0b;
/// Hub port features.
const PORT_RESET: u16 = 4;
const PORT_POWER: u16 = 8;
const C_PORT_CONNECTION: u16 = 16;
/// The first of the change features (C_PORT_CONNECTION); wPortChange bit n
/// is cleared with feature 16 + n.
const HUB_CHANGE_BITS: u16 = 5;
const C_PORT_RESET_BIT: u16 = 1 << 4;

/// Why something on the bus failed.
#[derive(Debug)]
pub enum Error {
    NoRegisters,
    Map(String),
    NoMemory,
    Controller(&'static str),
    /// A step of bringing the controller up that did not finish: what it
    /// did not do, in how long, and the register that says so.
    Stuck {
        what: &'static str,
        within: Duration,
        register: &'static str,
    },
    Timeout {
        what: &'static str,
        after: Duration,
    },
    /// A command not sent, as the controller's command ring is stuck.
    CommandsStuck(&'static str),
    Completion {
        what: &'static str,
        code: u8,
    },
    Stalled(&'static str),
    NoSlot(u8),
    Disconnected,
    Descriptor(descriptor::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::NoRegisters => f.write_str("BAR 0 is not a memory BAR"),
            Self::Map(error) => write!(f, "its registers could not be mapped: {error}"),
            Self::NoMemory => f.write_str("out of physical memory for its rings and contexts"),
            Self::Controller(what) => write!(f, "the controller {what}"),
            Self::Stuck { what, within, register } => {
                write!(f, "the controller {what} within {} ms ({register})", within.as_millis())
            }
            Self::Timeout { what, after } => write!(f, "{what} timed out after {} ms", after.as_millis()),
            Self::CommandsStuck(what) => write!(f, "{what} not sent: the controller's command ring is stuck"),
            Self::Completion { what, code } => write!(f, "{what} failed with completion code {code}"),
            Self::Stalled(what) => write!(f, "the device stalled {what}"),
            Self::NoSlot(slot) => write!(f, "slot {slot} is not in use"),
            Self::Disconnected => f.write_str("the device went away"),
            Self::Descriptor(error) => write!(f, "bad descriptor: {error}"),
        }
    }
}

impl From<descriptor::Error> for Error {
    fn from(error: descriptor::Error) -> Self {
        Self::Descriptor(error)
    }
}

/// What a USB keyboard did, by the number it was given when plugged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyboardEvent {
    Attached(u32),
    /// A boot protocol report: modifiers, reserved, six key usages.
    Report(u32, [u8; 8]),
    Detached(u32),
}

/// A queue between two tasks, with the waker of the one that waits.
struct Mailbox<T> {
    queue: Mutex<(VecDeque<T>, Option<Waker>)>,
}

impl<T> Mailbox<T> {
    const LIMIT: usize = 256;

    const fn new() -> Self {
        Self { queue: Mutex::new((VecDeque::new(), None)) }
    }

    fn push(&self, item: T) {
        let mut queue = self.queue.lock();
        if queue.0.len() < Self::LIMIT {
            queue.0.push_back(item);
        } else {
            log::warn!(
                "usb: a queue between the USB tasks holds {} items; one more was dropped",
                Self::LIMIT
            );
        }
        if let Some(waker) = queue.1.take() {
            waker.wake();
        }
    }

    fn pop(&self) -> Option<T> {
        self.queue.lock().0.pop_front()
    }

    async fn next(&self) -> T {
        poll_fn(|cx| {
            let mut queue = self.queue.lock();
            match queue.0.pop_front() {
                Some(item) => Poll::Ready(item),
                None => {
                    queue.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

static KEYBOARD_EVENTS: Mailbox<KeyboardEvent> = Mailbox::new();
/// LED requests (keyboard, HID LED bits) from the keyboard task.
static LED_REQUESTS: Mailbox<(u32, u8)> = Mailbox::new();

/// The next thing a USB keyboard did.
pub async fn next_keyboard_event() -> KeyboardEvent {
    KEYBOARD_EVENTS.next().await
}

/// Asks for keyboard `keyboard`'s LEDs (bit 0 Num Lock, 1 Caps Lock, 2
/// Scroll Lock) to be set; the USB task sends the SET_REPORT.
pub fn set_leds(keyboard: u32, leds: u8) {
    LED_REQUESTS.push((keyboard, leds));
    WOKEN.store(true, Ordering::Release);
    WAKER.wake();
}

/// The USB task's waker, for the interrupt handler and [`set_leds`].
static WAKER: AtomicWaker = AtomicWaker::new();
/// An interrupt or an LED request came since the task last looked.
static WOKEN: AtomicBool = AtomicBool::new(false);
/// A controller on its legacy line: its interrupter management register
/// and USBSTS (virtual addresses), which the handler must clear to lower
/// the level-triggered line.
static LEGACY_REGISTERS: Once<(u64, u64)> = Once::new();
static LEGACY_LINE: Once<IrqLine> = Once::new();
/// Whether any interrupt ever came: a controller whose events arrive while
/// none does has an interrupt path that does not work.
static INTERRUPT_SEEN: AtomicBool = AtomicBool::new(false);
/// The local vector every controller's messages arrive on, claimed once.
static LOCAL_VECTOR: Once<(LocalVector, u8)> = Once::new();

fn on_interrupt() {
    if let Some(&(iman, usbsts)) = LEGACY_REGISTERS.get() {
        // SAFETY: both registers are in the controller's mapped BAR; IMAN's
        // interrupt pending (bit 0) and USBSTS's event interrupt (bit 3)
        // are write-1-to-clear, and interrupt enable (IMAN bit 1) stays on.
        unsafe {
            (iman as *mut u32).write_volatile(0b11);
            (usbsts as *mut u32).write_volatile(1 << 3);
        }
    }
    INTERRUPT_SEEN.store(true, Ordering::Relaxed);
    WOKEN.store(true, Ordering::Release);
    WAKER.wake();
}

/// Sleeps until an interrupt or [`set_leds`] (true), or for `timeout`
/// (false).
async fn wait_for_interrupt(timeout: Duration) -> bool {
    let interrupt = poll_fn(|cx| {
        if WOKEN.swap(false, Ordering::Acquire) {
            return Poll::Ready(());
        }
        WAKER.register(cx.waker());
        if WOKEN.swap(false, Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
    });
    matches!(
        futures_util::future::select(pin!(interrupt), pin!(time::sleep(timeout))).await,
        futures_util::future::Either::Left(_)
    )
}

/// How a controller's events reach the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Msix(u8),
    Msi(u8),
    Legacy(u8),
    Polling,
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Self::Msix(vector) => write!(f, "MSI-X on vector {vector:#x}"),
            Self::Msi(vector) => write!(f, "MSI on vector {vector:#x}"),
            Self::Legacy(line) => write!(f, "its legacy interrupt line {line}"),
            Self::Polling => f.write_str("polling every 10 ms"),
        }
    }
}

/// MSI-X when offered, else MSI (both on a local APIC vector), else the
/// legacy line; polling when none can be had, with the reasons logged.
fn set_up_interrupts(function: &pci::Function, name: &str, registers: (u64, u64)) -> Delivery {
    let mut why = Vec::new();
    if lapic::is_enabled() {
        match local_vector() {
            Ok(vector) => {
                let map = |physical, length| paging::map_mmio(physical, length).ok();
                match function.enable_msix(vector, lapic::id(), map) {
                    Ok(()) => return Delivery::Msix(vector),
                    Err(error) => why.push(format!("MSI-X: {error}")),
                }
                match function.enable_msi(vector, lapic::id()) {
                    Ok(()) => return Delivery::Msi(vector),
                    Err(error) => why.push(format!("MSI: {error}")),
                }
            }
            Err(error) => why.push(format!("no local vector: {error}")),
        }
    } else {
        why.push("MSI needs the local APIC, which is not in use".into());
    }
    let line = function.interrupt_line();
    if line < 16 && LEGACY_REGISTERS.get().is_none() {
        LEGACY_REGISTERS.call_once(|| registers);
        match interrupts::register(line, on_interrupt) {
            Ok(irq) => {
                LEGACY_LINE.call_once(|| irq);
                log::warn!("usb: {name}: legacy interrupt line {line} ({})", why.join("; "));
                return Delivery::Legacy(line);
            }
            Err(error) => why.push(format!("line {line}: {error}")),
        }
    } else {
        why.push(format!("no legacy line for it (line register {line})"));
    }
    log::warn!("usb: {name}: no interrupts, polling every 10 ms instead ({})", why.join("; "));
    Delivery::Polling
}

/// One local vector for every controller's messages (the handler looks at
/// all of them).
fn local_vector() -> Result<u8, interrupts::RegisterError> {
    if let Some(&(_, vector)) = LOCAL_VECTOR.get() {
        return Ok(vector);
    }
    let mut last = Err(interrupts::RegisterError::NotLocal(0));
    for vector in (interrupts::FIRST_LOCAL_VECTOR + 1..interrupts::SPURIOUS_VECTOR).rev() {
        match interrupts::register_local(vector, on_interrupt, lapic::end_of_interrupt) {
            Ok(claimed) => {
                LOCAL_VECTOR.call_once(|| (claimed, vector));
                return Ok(vector);
            }
            Err(error) => last = Err(error),
        }
    }
    last
}

/// What a device on the bus is to this driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Keyboard {
        id: u32,
        interface: u8,
        dci: u8,
    },
    Hub {
        ports: u8,
        dci: u8,
    },
    Other,
    /// A device whose setup failed: logged once, then left alone until it
    /// is unplugged (it has no slot), so that the port's change events do
    /// not set it up, and fail, over and over.
    Failed,
}

struct Device {
    controller: usize,
    slot: u8,
    route: Route,
    /// Where it is, for the log: "port 1", "port 1.3".
    place: String,
    /// The hub (slot) and port it hangs on; None on a root port.
    parent: Option<(u8, u8)>,
    kind: Kind,
}

/// A device just addressed: its controller, slot, route, place in the
/// log, and vendor:product.
#[derive(Clone, Copy)]
struct NewDevice<'a> {
    c: usize,
    slot: u8,
    route: Route,
    place: &'a str,
    ids: &'a str,
}

struct Usb<P: Platform> {
    controllers: Vec<Controller<P>>,
    polling: bool,
    devices: Vec<Device>,
    next_keyboard: u32,
}

/// The USB task: brings up every xHCI controller and serves its devices
/// for as long as the kernel runs. Returns when there is no controller.
pub async fn run() {
    let mut usb = Usb::new();
    let mut found = 0;
    for function in pci::functions().filter(|function| function.class == XHCI_CLASS) {
        found += 1;
        let name = format!("xHCI {}", function.address);
        let ids = format!("{:04x}:{:04x}", function.id.vendor, function.id.device);
        match Machine::new(function) {
            Ok(machine) => usb.start(machine, name, &ids).await,
            Err(error) => log::error!("usb: {name}: {error}; {NOT_USED}"),
        }
    }
    if usb.controllers.is_empty() {
        // A machine without xHCI is ordinary (QEMU's default PC); one whose
        // controllers all failed is worth a warning.
        let level = if found == 0 { log::Level::Info } else { log::Level::Warn };
        log::log!(
            level,
            "usb: no xHCI controller in use; USB keyboards are not read (a PS/2 keyboard and the serial line still are)"
        );
        return;
    }
    usb.scan().await;
    loop {
        usb.handle_events().await;
        while let Some((keyboard, leds)) = LED_REQUESTS.pop() {
            usb.set_keyboard_leds(keyboard, leds).await;
        }
        let interrupted =
            wait_for_interrupt(if usb.polling { POLL_INTERVAL } else { IDLE_WITH_INTERRUPTS }).await;
        if !interrupted
            && !usb.polling
            && !INTERRUPT_SEEN.load(Ordering::Relaxed)
            && usb.controllers.iter_mut().any(Controller::has_events)
        {
            log::warn!(
                "usb: events came but no interrupt did (a line the firmware routed elsewhere?); polling every 10 ms instead"
            );
            usb.polling = true;
        }
    }
}

/// What a controller that could not be brought up costs the user.
const NOT_USED: &str = "its ports are not used, and USB keyboards on them do not type";

fn get_descriptor(kind: u8) -> Setup {
    Setup { request_type: 0x80, request: GET_DESCRIPTOR, value: (kind as u16) << 8, index: 0 }
}

impl<P: Platform> Usb<P> {
    fn new() -> Self {
        Self { controllers: Vec::new(), polling: false, devices: Vec::new(), next_keyboard: 1 }
    }

    /// Brings a controller up: reset and rings, running, and only then its
    /// interrupt, so that a controller that fails on the way leaves nothing
    /// behind (no interrupt claimed, its memory freed, not running, and no
    /// bus mastering).
    async fn start(&mut self, platform: P, name: String, ids: &str) {
        let give_up = |error: Error| {
            platform.stop_dma();
            log::error!("usb: {name}: {error}; {NOT_USED}");
        };
        let mut controller = match Controller::start(platform.clone(), name.clone()).await {
            Ok(controller) => controller,
            Err(error) => return give_up(error),
        };
        // `give_up` cuts it off from memory before its rings are freed with it.
        if let Err(error) = controller.run().await {
            return give_up(error);
        }
        let delivery = controller.platform().claim_interrupts(&name, controller.interrupt_registers());
        controller.enable_interrupts();
        let ports = controller.ports();
        let usb2 = (1..=ports).filter(|&port| controller.protocol(port) == 2).count();
        let usb3 = (1..=ports).filter(|&port| controller.protocol(port) == 3).count();
        log::info!(
            "usb: {name} ({ids}) running: {ports} ports ({usb2} USB 2, {usb3} USB 3), interrupts through {delivery}"
        );
        self.polling |= delivery == Delivery::Polling;
        self.controllers.push(controller);
    }

    /// Looks at every root port of every controller once.
    async fn scan(&mut self) {
        for c in 0..self.controllers.len() {
            for port in 1..=self.controllers[c].ports() {
                self.root_port_changed(c, port).await;
            }
        }
    }

    /// Handles every event the controllers have reported.
    async fn handle_events(&mut self) {
        for c in 0..self.controllers.len() {
            while let Some(event) = self.controllers[c].next_event() {
                self.handle(c, event).await;
            }
        }
    }

    async fn handle(&mut self, c: usize, event: Event) {
        match event {
            Event::PortStatusChange { port } => self.root_port_changed(c, port).await,
            Event::Transfer { slot, endpoint, code, residue } => {
                self.transfer_done(c, slot, endpoint, code, residue).await
            }
            // A command's completion after its wait timed out.
            Event::Command { .. } => {}
        }
    }

    async fn root_port_changed(&mut self, c: usize, port: u8) {
        let controller = &mut self.controllers[c];
        controller.clear_port_changes(port);
        let connected = controller.port_connected(port).is_some();
        let attached = self.devices.iter().any(|d| d.controller == c && d.route.root_port == port);
        match (connected, attached) {
            (true, false) => {
                let route = Route { root_port: port, route_string: 0, translator: None, speed: 0 };
                match controller.reset_port(port).await {
                    Ok(speed) => {
                        self.enumerate(c, Route { speed, ..route }, format!("port {port}"), None).await
                    }
                    Err(Error::Disconnected) => {
                        log::info!(
                            "usb: {}: port {port}: the device went away during its reset",
                            controller.name
                        )
                    }
                    Err(error) => self.left_alone(c, route, format!("port {port}"), None, None, error),
                }
            }
            (false, true) => self.detach(c, |device| device.route.root_port == port).await,
            _ => {}
        }
    }

    /// Addresses the device at `route` and sets it up by what it is; a
    /// failure is logged and the device left alone.
    async fn enumerate(&mut self, c: usize, route: Route, place: String, parent: Option<(u8, u8)>) {
        let slot = match self.controllers[c].address_device(route).await {
            Ok(slot) => slot,
            Err(error) => return self.left_alone(c, route, place, parent, None, error),
        };
        let device = match self.device_descriptor(c, slot, route).await {
            Ok(device) => device,
            Err(error) => {
                self.controllers[c].disable_slot(slot).await;
                return self.left_alone(c, route, place, parent, None, error);
            }
        };
        let ids = format!("{:04x}:{:04x}", device.vendor, device.product);
        match self.identify(c, slot, route, &place, device, &ids).await {
            Ok(kind) => {
                self.devices.push(Device { controller: c, slot, route, place: place.clone(), parent, kind });
                if let Kind::Hub { ports, .. } = kind {
                    for port in 1..=ports {
                        self.hub_port_changed(c, slot, port).await;
                    }
                }
            }
            Err(error) => {
                self.controllers[c].disable_slot(slot).await;
                self.left_alone(c, route, place, parent, Some(&ids), error);
            }
        }
    }

    /// Logs why the device at `place` (vendor:product `ids`, once known)
    /// is not used, and remembers it as failed until it is unplugged.
    fn left_alone(
        &mut self,
        c: usize,
        route: Route,
        place: String,
        parent: Option<(u8, u8)>,
        ids: Option<&str>,
        error: Error,
    ) {
        let device = ids.map(|ids| format!(" (device {ids})")).unwrap_or_default();
        log::warn!(
            "usb: {}: {place}{device}: {error}; device left alone until it is unplugged",
            self.controllers[c].name
        );
        self.devices.push(Device { controller: c, slot: 0, route, place, parent, kind: Kind::Failed });
    }

    /// The device descriptor of the device just addressed in `slot`, with
    /// endpoint 0's packet size corrected first where it was guessed wrong.
    async fn device_descriptor(
        &mut self,
        c: usize,
        slot: u8,
        route: Route,
    ) -> Result<descriptor::Device, Error> {
        let controller = &mut self.controllers[c];
        let head = controller
            .control(slot, get_descriptor(descriptor::DEVICE), 8, &[], "GET_DESCRIPTOR (device)")
            .await?;
        let device = descriptor::device(&head)?;
        if matches!(route.speed, FULL_SPEED | LOW_SPEED) && device.max_packet_size0 != 8 {
            controller.set_max_packet_size0(slot, device.max_packet_size0 as u16).await?;
        }
        let whole = controller
            .control(slot, get_descriptor(descriptor::DEVICE), 18, &[], "GET_DESCRIPTOR (device)")
            .await?;
        Ok(descriptor::device(&whole)?)
    }

    /// Reads the configuration and sets up a keyboard or a hub.
    async fn identify(
        &mut self,
        c: usize,
        slot: u8,
        route: Route,
        place: &str,
        device: descriptor::Device,
        ids: &str,
    ) -> Result<Kind, Error> {
        let controller = &mut self.controllers[c];
        let head = controller
            .control(
                slot,
                get_descriptor(descriptor::CONFIGURATION),
                9,
                &[],
                "GET_DESCRIPTOR (configuration)",
            )
            .await?;
        let length = descriptor::configuration_length(&head)?;
        let bytes = controller
            .control(
                slot,
                get_descriptor(descriptor::CONFIGURATION),
                length,
                &[],
                "GET_DESCRIPTOR (configuration)",
            )
            .await?;
        let config = descriptor::configuration(&bytes)?;
        let hub = config.interfaces.iter().find(|i| i.class == CLASS_HUB).and_then(|i| i.interrupt_in());
        if let (Some(endpoint), true) = (hub, device.class == CLASS_HUB || hub.is_some()) {
            self.set_configuration(c, slot, config.value).await?;
            return self.set_up_hub(NewDevice { c, slot, route, place, ids }, endpoint).await;
        }
        let keyboard = config.interfaces.iter().find(|i| i.is_boot_keyboard());
        if let Some((interface, endpoint)) = keyboard.and_then(|i| Some((i.number, i.interrupt_in()?))) {
            self.set_configuration(c, slot, config.value).await?;
            let new = NewDevice { c, slot, route, place, ids };
            return self.set_up_keyboard(new, interface, endpoint).await;
        }
        let classes: Vec<String> = config
            .interfaces
            .iter()
            .map(|i| format!("{:02x}/{:02x}/{:02x}", i.class, i.subclass, i.protocol))
            .collect();
        log::info!(
            "usb: {place}: device {ids} (class {:02x}, interfaces {}) is neither a keyboard nor a hub; left alone",
            device.class,
            classes.join(", ")
        );
        Ok(Kind::Other)
    }

    async fn set_configuration(&mut self, c: usize, slot: u8, value: u8) -> Result<(), Error> {
        let setup = Setup { request_type: 0, request: SET_CONFIGURATION, value: value as u16, index: 0 };
        self.controllers[c].control(slot, setup, 0, &[], "SET_CONFIGURATION").await.map(|_| ())
    }

    async fn set_up_keyboard(
        &mut self,
        new: NewDevice<'_>,
        interface: u8,
        endpoint: Endpoint,
    ) -> Result<Kind, Error> {
        let NewDevice { c, slot, route, place, ids } = new;
        let controller = &mut self.controllers[c];
        let class = |request, value| Setup { request_type: 0x21, request, value, index: interface as u16 };
        controller.control(slot, class(HID_SET_PROTOCOL, 0), 0, &[], "SET_PROTOCOL (boot)").await?;
        // Reports only on change: key repeat is the kernel's. A keyboard that
        // stalls this still works.
        if let Err(error) = controller.control(slot, class(HID_SET_IDLE, 0), 0, &[], "SET_IDLE").await {
            log::warn!("usb: {place}: keyboard {ids}: {error}; it may repeat reports by itself");
        }
        controller.configure_interrupt_in(slot, route, &endpoint, None).await?;
        let dci = endpoint.context_index();
        controller.queue_interrupt_in(slot, dci, 8)?;
        let id = self.next_keyboard;
        self.next_keyboard += 1;
        controller.platform().keyboard_event(KeyboardEvent::Attached(id));
        log::info!(
            "usb: {place}: keyboard {id} ({ids}), boot protocol, endpoint {:#04x} every {} ms",
            endpoint.address,
            endpoint.interval
        );
        Ok(Kind::Keyboard { id, interface, dci })
    }

    async fn set_up_hub(&mut self, new: NewDevice<'_>, endpoint: Endpoint) -> Result<Kind, Error> {
        let NewDevice { c, slot, route, place, ids } = new;
        let controller = &mut self.controllers[c];
        let setup = Setup {
            request_type: 0xa0,
            request: GET_DESCRIPTOR,
            value: (descriptor::HUB as u16) << 8,
            index: 0,
        };
        let hub = descriptor::hub(&controller.control(slot, setup, 9, &[], "GET_DESCRIPTOR (hub)").await?)?;
        controller.configure_interrupt_in(slot, route, &endpoint, Some(hub.ports)).await?;
        for port in 1..=hub.ports {
            let setup =
                Setup { request_type: 0x23, request: SET_FEATURE, value: PORT_POWER, index: port as u16 };
            controller.control(slot, setup, 0, &[], "SET_FEATURE (port power)").await?;
        }
        controller.platform().sleep(Duration::from_millis(hub.power_on_ms as u64)).await;
        let dci = endpoint.context_index();
        controller.queue_interrupt_in(slot, dci, (hub.ports as u16 + 8) / 8)?;
        log::info!("usb: {place}: hub ({ids}) with {} ports", hub.ports);
        Ok(Kind::Hub { ports: hub.ports, dci })
    }

    /// GET_STATUS of a hub port: (wPortStatus, wPortChange).
    async fn hub_port_status(&mut self, c: usize, hub: u8, port: u8) -> Result<(u16, u16), Error> {
        let setup = Setup { request_type: 0xa3, request: GET_STATUS, value: 0, index: port as u16 };
        let status = self.controllers[c].control(hub, setup, 4, &[], "GET_STATUS (hub port)").await?;
        Ok((u16::from_le_bytes([status[0], status[1]]), u16::from_le_bytes([status[2], status[3]])))
    }

    async fn clear_hub_changes(&mut self, c: usize, hub: u8, port: u8, changes: u16) -> Result<(), Error> {
        for bit in (0..HUB_CHANGE_BITS).filter(|bit| changes & 1 << bit != 0) {
            let setup = Setup {
                request_type: 0x23,
                request: CLEAR_FEATURE,
                value: C_PORT_CONNECTION + bit,
                index: port as u16,
            };
            self.controllers[c].control(hub, setup, 0, &[], "CLEAR_FEATURE (hub port change)").await?;
        }
        Ok(())
    }

    /// Looks at a hub's port: a new device is reset and enumerated, a gone
    /// one detached.
    async fn hub_port_changed(&mut self, c: usize, hub: u8, port: u8) {
        let Some(parent) = self.devices.iter().find(|d| d.controller == c && d.slot == hub) else { return };
        let (hub_route, hub_place) = (parent.route, parent.place.clone());
        let place = format!("{hub_place}.{port}");
        let result: Result<(), Error> = async {
            let (status, changes) = self.hub_port_status(c, hub, port).await?;
            self.clear_hub_changes(c, hub, port, changes).await?;
            let attached = self.devices.iter().any(|d| d.controller == c && d.parent == Some((hub, port)));
            match (status & 1 != 0, attached) {
                (true, false) => {
                    let speed = self.reset_hub_port(c, hub, port).await?;
                    let depth = (0..5).take_while(|n| hub_route.route_string >> (4 * n) & 0xf != 0).count();
                    let translator = match (hub_route.speed, speed) {
                        (HIGH_SPEED, FULL_SPEED | LOW_SPEED) => Some((hub, port)),
                        _ => hub_route.translator,
                    };
                    let route = Route {
                        root_port: hub_route.root_port,
                        route_string: hub_route.route_string | (port.min(15) as u32) << (4 * depth),
                        translator,
                        speed,
                    };
                    // Boxed: a hub behind this port enumerates its own ports.
                    Box::pin(self.enumerate(c, route, place.clone(), Some((hub, port)))).await;
                }
                (false, true) => self.detach(c, |d| d.parent == Some((hub, port))).await,
                _ => {}
            }
            Ok(())
        }
        .await;
        if let Err(error) = result {
            log::warn!("usb: {}: {place}: {error}", self.controllers[c].name);
        }
    }

    /// Resets a hub port and returns the speed of the device on it.
    async fn reset_hub_port(&mut self, c: usize, hub: u8, port: u8) -> Result<u8, Error> {
        let setup = Setup { request_type: 0x23, request: SET_FEATURE, value: PORT_RESET, index: port as u16 };
        self.controllers[c].control(hub, setup, 0, &[], "SET_FEATURE (port reset)").await?;
        let deadline = self.controllers[c].platform().now() + HUB_RESET_TIMEOUT;
        loop {
            self.controllers[c].platform().sleep(Duration::from_millis(10)).await;
            let (status, changes) = self.hub_port_status(c, hub, port).await?;
            if changes & C_PORT_RESET_BIT != 0 {
                self.clear_hub_changes(c, hub, port, changes).await?;
                // Low speed (bit 9), high speed (bit 10), else full speed.
                return Ok(match status {
                    s if s & 1 << 9 != 0 => LOW_SPEED,
                    s if s & 1 << 10 != 0 => HIGH_SPEED,
                    _ => FULL_SPEED,
                });
            }
            if self.controllers[c].platform().now() > deadline {
                return Err(Error::Timeout { what: "hub port reset", after: HUB_RESET_TIMEOUT });
            }
        }
    }

    async fn transfer_done(&mut self, c: usize, slot: u8, endpoint: u8, code: u8, residue: u32) {
        let Some(device) = self.devices.iter().find(|d| d.controller == c && d.slot == slot) else { return };
        let (kind, place) = (device.kind, device.place.clone());
        // Success (1) or short packet (13).
        let done = matches!(code, 1 | 13);
        match kind {
            Kind::Keyboard { id, dci, .. } if dci == endpoint => {
                if !done {
                    log::warn!(
                        "usb: {place}: keyboard {id}: its report transfer failed (completion code {code}); no more keys from it"
                    );
                    return;
                }
                let controller = &mut self.controllers[c];
                if let Ok(data) = controller.interrupt_data(slot, dci, 8 - residue.min(8) as usize) {
                    let mut report = [0u8; 8];
                    report.copy_from_slice(&data[..8]);
                    controller.platform().keyboard_event(KeyboardEvent::Report(id, report));
                }
                if let Err(error) = controller.queue_interrupt_in(slot, dci, 8) {
                    log::warn!("usb: {place}: keyboard {id}: {error}");
                }
            }
            Kind::Hub { ports, dci } if dci == endpoint => {
                if !done {
                    log::warn!(
                        "usb: {place}: hub status transfer failed (completion code {code}); its ports are no longer watched"
                    );
                    return;
                }
                let length = (ports as usize + 8) / 8;
                let Ok(bitmap) = self.controllers[c].interrupt_data(slot, dci, length) else { return };
                for port in 1..=ports {
                    if bitmap[port as usize / 8] & 1 << (port % 8) != 0 {
                        self.hub_port_changed(c, slot, port).await;
                    }
                }
                if let Err(error) = self.controllers[c].queue_interrupt_in(slot, dci, length as u16) {
                    log::warn!("usb: {place}: hub: {error}");
                }
            }
            _ => {}
        }
    }

    /// Forgets the devices `gone` picks, and everything behind them if they
    /// are hubs; each is logged and its slot (if it has one) disabled.
    async fn detach(&mut self, c: usize, gone: impl Fn(&Device) -> bool) {
        let mut leaving: Vec<bool> = self.devices.iter().map(|d| d.controller == c && gone(d)).collect();
        // A hub is listed before what hangs on it, so one pass finds it all.
        for i in 0..self.devices.len() {
            let device = &self.devices[i];
            let behind_a_leaving_hub = device.controller == c
                && device.parent.is_some_and(|(hub, _)| {
                    self.devices.iter().zip(&leaving).any(|(d, &leaves)| {
                        leaves && d.controller == c && d.kind != Kind::Failed && d.slot == hub
                    })
                });
            leaving[i] |= behind_a_leaving_hub;
        }
        let mut gone = Vec::new();
        for (device, leaves) in core::mem::take(&mut self.devices).into_iter().zip(leaving) {
            if leaves { gone.push(device) } else { self.devices.push(device) }
        }
        for device in gone {
            match device.kind {
                Kind::Keyboard { id, .. } => {
                    self.controllers[c].platform().keyboard_event(KeyboardEvent::Detached(id));
                    log::info!("usb: {}: keyboard {id} unplugged", device.place);
                }
                Kind::Hub { .. } => log::info!("usb: {}: hub unplugged", device.place),
                Kind::Other | Kind::Failed => log::info!("usb: {}: device unplugged", device.place),
            }
            if device.kind != Kind::Failed {
                self.controllers[c].disable_slot(device.slot).await;
            }
        }
    }

    async fn set_keyboard_leds(&mut self, keyboard: u32, leds: u8) {
        let found = self.devices.iter().find_map(|d| match d.kind {
            Kind::Keyboard { id, interface, .. } if id == keyboard => Some((d.controller, d.slot, interface)),
            _ => None,
        });
        let Some((c, slot, interface)) = found else { return };
        let setup =
            Setup { request_type: 0x21, request: HID_SET_REPORT, value: 0x0200, index: interface as u16 };
        if let Err(error) = self.controllers[c].control(slot, setup, 1, &[leds], "SET_REPORT (LEDs)").await {
            log::warn!("usb: keyboard {keyboard}: {error}");
        }
    }
}
