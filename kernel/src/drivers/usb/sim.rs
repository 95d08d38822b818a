//! A simulated xHCI controller, with USB devices on its root ports, behind
//! the driver's [`Platform`] seam, for the host tests: its register file
//! is memory the `xhci` crate's accessors read and write, its DMA pages are
//! host memory at made-up physical addresses, and its clock is fake. It
//! acts whenever the driver lets time pass (sleeps or waits for an
//! interrupt), one simulated millisecond at a time, as a controller would
//! in that time: halting, resetting, running commands from the command
//! ring, control and interrupt transfers on the transfer rings, port resets,
//! each answered on the event ring. Faults can be switched on: a controller
//! that does not halt, reset or run; a command that never completes; a
//! device that stalls a request, or never answers one. It may also come
//! with firmware that holds the controller through the USB Legacy Support
//! capability (its SMIs on) and lets go when asked, late, or never.
//!
//! What it does not see: register writes as they happen, only their result
//! at its next step. So write-1-to-clear bits (the ports' change bits) are
//! not modelled, and a port status change event is posted on each connect
//! and finished reset, as for a driver that clears the bits. The one
//! exception is USBLEGCTLSTS, whose SMI event bits the handoff must clear:
//! a write there is seen when it changes the register (the driver's write
//! switches the SMI enables off), and then an event bit written as 1 is
//! cleared and one written as 0 stays set, as on hardware. Doorbell
//! registers read as 0 on hardware, so a write of target 0 (the command
//! ring's) looks like none; here they hold 0xff (no target) between steps,
//! and any other value is a ring (so of two rings of one slot's doorbell
//! between steps, only the last is seen: the tests let time pass between).
//!
//! Everything the driver hands the controller is checked as hardware would
//! need it (live DMA pages, TRB and context layouts, endpoint states), and
//! a mistake panics with what was wrong.

use super::platform::{Dma, Platform};
use super::{Delivery, KeyboardEvent};
use core::future::{Future, ready};
use core::num::NonZeroUsize;
use core::time::Duration;
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use xhci::accessor::Mapper;
use xhci::ring::trb::Type;

/// Where the simulated BAR is, and its layout.
const BAR: u64 = 0xfebf_0000;
const REGISTER_BYTES: usize = 0x3000;
const CAPLENGTH: usize = 0x20;
const USBCMD: usize = CAPLENGTH;
const USBSTS: usize = CAPLENGTH + 0x04;
const CRCR: usize = CAPLENGTH + 0x18;
const DCBAAP: usize = CAPLENGTH + 0x30;
const CONFIG: usize = CAPLENGTH + 0x38;
const PORTSC: usize = CAPLENGTH + 0x400;
const EXTENDED_CAPABILITIES: usize = 0x800;
/// The USB Legacy Support capability, when there is firmware: first in the
/// list (as on PCs), its next pointer leading to the protocol ones.
const LEGACY_SUPPORT: usize = EXTENDED_CAPABILITIES - 0x10;
const USBLEGCTLSTS: usize = LEGACY_SUPPORT + 4;
const RUNTIME: usize = 0x1000;
const IMAN: usize = RUNTIME + 0x20;
const ERSTSZ: usize = RUNTIME + 0x28;
const ERSTBA: usize = RUNTIME + 0x30;
const ERDP: usize = RUNTIME + 0x38;
/// The doorbell array: the command ring's, then one per device slot.
const DOORBELLS: usize = 0x2000;
const MAX_SLOTS: u8 = 32;
/// What a doorbell register holds while nobody rang it.
const DOORBELL_IDLE: u32 = 0xff;

/// Register bits.
const RUN_STOP: u32 = 1;
const HC_RESET: u32 = 1 << 1;
const INTERRUPTER_ENABLE: u32 = 1 << 2;
const HC_HALTED: u32 = 1;
const EVENT_INTERRUPT: u32 = 1 << 3;
const NOT_READY: u32 = 1 << 11;
const COMMAND_ABORT: u64 = 1 << 2;
const COMMAND_RING_RUNNING: u64 = 1 << 3;
const IMAN_PENDING: u32 = 1;
const IMAN_ENABLE: u32 = 1 << 1;
const PORT_CONNECTED: u32 = 1;
const PORT_ENABLED: u32 = 1 << 1;
const PORT_RESET: u32 = 1 << 4;
const PORT_POWER: u32 = 1 << 9;
const BIOS_OWNED: u32 = 1 << 16;
const OS_OWNED: u32 = 1 << 24;
/// USBLEGCTLSTS: USB SMI, and SMI on host system error, OS ownership
/// change, PCI command and BAR writes; all read/write.
pub const SMI_ENABLES: u32 = 1 | 1 << 4 | 1 << 13 | 1 << 14 | 1 << 15;
/// USBLEGCTLSTS: SMI on OS ownership change, on PCI command and on BAR
/// writes happened; write-1-to-clear.
pub const SMI_EVENTS: u32 = 0b111 << 29;
const SMI_ON_OS_OWNERSHIP_CHANGE: u32 = 1 << 29;
const SMI_ON_PCI_COMMAND: u32 = 1 << 30;

/// Completion codes.
const SUCCESS: u8 = 1;
const TRANSACTION_ERROR: u8 = 4;
const TRB_ERROR: u8 = 5;
const STALL: u8 = 6;
const SLOT_NOT_ENABLED: u8 = 11;
const CONTEXT_STATE_ERROR: u8 = 19;
const RING_STOPPED: u8 = 24;
const COMMAND_ABORTED: u8 = 25;
const STOPPED: u8 = 26;

/// How long the simulated hardware takes.
const RESET_TAKES: Duration = Duration::from_millis(3);
const PORT_RESET_TAKES: Duration = Duration::from_millis(10);
const STEP: Duration = Duration::from_millis(1);
/// Longer than any test runs: a driver still busy by then is in a loop.
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// What can go wrong on the simulated controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Run/Stop cleared, HCHalted never comes.
    NeverHalts,
    /// Host Controller Reset never clears.
    StuckInReset,
    /// Controller Not Ready stays set after the reset.
    NeverReady,
    /// Run/Stop set, HCHalted never clears.
    NeverRuns,
    /// The `nth` command (from 1) of this type is never completed: the
    /// command ring sticks on it until it is aborted.
    CommandHangs(Type, usize),
    /// Command Abort is ignored: the command ring never stops.
    AbortIgnored,
}

/// The firmware's part in the USB Legacy Support capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// Lets go (clears BIOS Owned) this long after the OS Owned semaphore
    /// is set; it leaves its SMI enables on, as many do.
    Releases(Duration),
    /// Never lets go.
    Holds,
}

/// The USB Legacy Support capability as the firmware and the driver left
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacySupport {
    pub bios_owned: bool,
    pub os_owned: bool,
    /// USBLEGCTLSTS.
    pub control: u32,
    /// When the OS asked (set OS Owned), and when the firmware let go by
    /// itself.
    pub asked_at: Option<Duration>,
    pub released_at: Option<Duration>,
}

#[derive(Debug)]
struct Legacy {
    firmware: Firmware,
    /// The BIOS Owned semaphore as the sim last wrote it.
    bios_owned: bool,
    asked_at: Option<Duration>,
    released_at: Option<Duration>,
    /// USBLEGCTLSTS as the sim last wrote it: a different value read is a
    /// write by the driver.
    control: u32,
}

/// A simulated USB device: what it answers, what it stalls, and what it
/// was asked.
#[derive(Debug, Clone)]
pub struct Device {
    descriptor: [u8; 18],
    configuration: Vec<u8>,
    /// (bRequest, wValue) pairs it stalls; wValue None: any.
    stalls: Vec<(u8, Option<u16>)>,
    /// Those it never answers (it NAKs them for ever).
    silences: Vec<(u8, Option<u16>)>,
    /// Every request it got: (bmRequestType, bRequest, wValue).
    pub requests: Vec<(u8, u8, u16)>,
    /// The data of each SET_REPORT.
    pub reports_set: Vec<Vec<u8>>,
    /// Reports waiting for an IN transfer on its interrupt endpoint.
    reports: VecDeque<[u8; 8]>,
}

/// Standard and HID requests (bRequest).
pub const GET_DESCRIPTOR: u8 = 6;
pub const SET_CONFIGURATION: u8 = 9;
pub const SET_REPORT: u8 = 0x09;
pub const SET_IDLE: u8 = 0x0a;
pub const SET_PROTOCOL: u8 = 0x0b;

impl Device {
    /// A full-speed boot keyboard: one HID interface (3/1/1), endpoint
    /// 0x81 of 8 bytes every 10 ms.
    pub fn keyboard(vendor: u16, product: u16) -> Self {
        let [v0, v1] = vendor.to_le_bytes();
        let [p0, p1] = product.to_le_bytes();
        Self {
            descriptor: [18, 1, 0x00, 0x02, 0, 0, 0, 8, v0, v1, p0, p1, 0, 1, 0, 0, 0, 1],
            configuration: vec![
                9, 2, 34, 0, 1, 1, 0, 0xa0, 50, // configuration 1
                9, 4, 0, 0, 1, 3, 1, 1, 0, // interface 0: HID, boot, keyboard
                9, 0x21, 0x11, 1, 0, 1, 0x22, 63, 0, // HID descriptor
                7, 5, 0x81, 3, 8, 0, 10, // endpoint 1 IN, interrupt
            ],
            stalls: Vec::new(),
            silences: Vec::new(),
            requests: Vec::new(),
            reports_set: Vec::new(),
            reports: VecDeque::new(),
        }
    }

    /// Stalls `request` (with `value`, or any).
    pub fn stalling(mut self, request: u8, value: Option<u16>) -> Self {
        self.stalls.push((request, value));
        self
    }

    /// Never answers `request` (with `value`, or any).
    pub fn silent_on(mut self, request: u8, value: Option<u16>) -> Self {
        self.silences.push((request, value));
        self
    }

    /// Answers a control request.
    fn request(&mut self, setup: [u8; 8], out: &[u8]) -> Answer {
        let (request_type, request) = (setup[0], setup[1]);
        let value = u16::from_le_bytes([setup[2], setup[3]]);
        self.requests.push((request_type, request, value));
        let listed = |list: &[(u8, Option<u16>)]| {
            list.iter().any(|&(r, v)| r == request && v.is_none_or(|v| v == value))
        };
        if listed(&self.silences) {
            return Answer::Nothing;
        }
        if listed(&self.stalls) {
            return Answer::Stall;
        }
        match (request_type, request) {
            (0x80, GET_DESCRIPTOR) => match value >> 8 {
                1 => Answer::Data(self.descriptor.to_vec()),
                2 => Answer::Data(self.configuration.clone()),
                _ => Answer::Stall,
            },
            (0x00, SET_CONFIGURATION) | (0x21, SET_IDLE | SET_PROTOCOL) => Answer::Data(Vec::new()),
            (0x21, SET_REPORT) => {
                self.reports_set.push(out.to_vec());
                Answer::Data(Vec::new())
            }
            _ => Answer::Stall,
        }
    }
}

/// What a device does with a control request.
enum Answer {
    /// Its data (none for a request without a data stage).
    Data(Vec<u8>),
    Stall,
    /// Nothing, ever: the controller keeps trying, and no transfer event
    /// comes.
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndpointState {
    Running,
    Halted,
    Stopped,
}

#[derive(Debug)]
struct Endpoint {
    dequeue: u64,
    cycle: bool,
    state: EndpointState,
    /// Rung since it last found its ring empty.
    rung: bool,
}

impl Endpoint {
    fn from_context(context: &[u32; 8]) -> Self {
        let pointer = context[2] as u64 | (context[3] as u64) << 32;
        Self { dequeue: pointer & !0xf, cycle: pointer & 1 != 0, state: EndpointState::Running, rung: false }
    }
}

#[derive(Debug)]
struct Slot {
    /// The root port of its device, once addressed.
    port: Option<u8>,
    endpoints: BTreeMap<u8, Endpoint>,
}

#[derive(Debug)]
struct Port {
    usb3: bool,
    device: Option<Device>,
    powered: bool,
    enabled: bool,
    resetting_until: Option<Duration>,
    /// Plugged or unplugged since the last step.
    plugged: bool,
}

struct State {
    now: Duration,
    registers: *mut u8,
    /// Live DMA pages by physical address, and the next address to give.
    pages: BTreeMap<u64, *mut u8>,
    next_page: u64,
    faults: Vec<Fault>,
    /// PCI bus mastering, on as the kernel's platform leaves it.
    dma: bool,
    running: bool,
    reset_done_at: Option<Duration>,
    /// The command ring's dequeue pointer and cycle state, once running.
    command: Option<(u64, bool)>,
    command_ring_running: bool,
    /// Stuck on the command at the dequeue pointer (a hang fault).
    command_busy: bool,
    commands_run: BTreeMap<u8, usize>,
    /// The event ring: segment address and size, enqueue index and cycle.
    event_ring: Option<(u64, usize, usize, bool)>,
    interrupted: bool,
    ports: Vec<Port>,
    slots: BTreeMap<u8, Slot>,
    claims: usize,
    keyboard_events: Vec<KeyboardEvent>,
    legacy: Option<Legacy>,
}

/// A handle on the simulated controller: the driver's platform, and the
/// tests' window into it.
#[derive(Clone)]
pub struct Sim(Rc<RefCell<State>>);

/// Ports: USB 2 on 1..=usb2, USB 3 after them.
pub fn controller(usb2: u8, usb3: u8) -> Sim {
    let layout = Layout::from_size_align(REGISTER_BYTES, 4096).expect("a valid layout");
    // SAFETY: the layout has a non-zero size.
    let registers = unsafe { alloc_zeroed(layout) };
    assert!(!registers.is_null(), "out of host memory");
    let ports = (0..usb2 + usb3)
        .map(|n| Port {
            usb3: n >= usb2,
            device: None,
            powered: false,
            enabled: false,
            resetting_until: None,
            plugged: false,
        })
        .collect();
    let state = State {
        now: Duration::ZERO,
        registers,
        pages: BTreeMap::new(),
        next_page: 0x1_0000_0000,
        faults: Vec::new(),
        dma: true,
        // As the firmware left it: running.
        running: true,
        reset_done_at: None,
        command: None,
        command_ring_running: false,
        command_busy: false,
        commands_run: BTreeMap::new(),
        event_ring: None,
        interrupted: false,
        ports,
        slots: BTreeMap::new(),
        claims: 0,
        keyboard_events: Vec::new(),
        legacy: None,
    };
    state.write32(0, CAPLENGTH as u32 | 0x0100 << 16);
    let ports = (usb2 + usb3) as u32;
    state.write32(0x04, MAX_SLOTS as u32 | 1 << 8 | ports << 24);
    // 64-bit addressing, port power control, extended capabilities.
    state.write32(0x10, 1 | 1 << 3 | ((EXTENDED_CAPABILITIES / 4) as u32) << 16);
    state.write32(0x14, DOORBELLS as u32);
    state.write32(0x18, RUNTIME as u32);
    state.write32(USBCMD, RUN_STOP);
    // Supported Protocol capabilities: USB 2, then USB 3.
    let usb2_first = 1;
    let usb3_first = usb2 as u32 + 1;
    state.write32(EXTENDED_CAPABILITIES, 2 | 4 << 8 | 2 << 24);
    state.write32(EXTENDED_CAPABILITIES + 8, usb2_first | (usb2 as u32) << 8);
    state.write32(EXTENDED_CAPABILITIES + 16, 2 | 3 << 24);
    state.write32(EXTENDED_CAPABILITIES + 24, usb3_first | (usb3 as u32) << 8);
    for slot in 0..=MAX_SLOTS as usize {
        state.write32(DOORBELLS + 4 * slot, DOORBELL_IDLE);
    }
    Sim(Rc::new(RefCell::new(state)))
}

impl Sim {
    pub fn with(self, fault: Fault) -> Self {
        self.0.borrow_mut().faults.push(fault);
        self
    }

    /// Puts a USB Legacy Support capability first in the extended
    /// capability list, owned by `firmware`, with every SMI enabled and the
    /// SMI on the kernel's PCI command write (memory and bus master on)
    /// pending.
    pub fn with_firmware(self, firmware: Firmware) -> Self {
        let mut state = self.0.borrow_mut();
        let control = SMI_ENABLES | SMI_ON_PCI_COMMAND;
        let next = ((EXTENDED_CAPABILITIES - LEGACY_SUPPORT) / 4) as u32;
        state.write32(LEGACY_SUPPORT, 1 | next << 8 | BIOS_OWNED);
        state.write32(USBLEGCTLSTS, control);
        let hccparams1 = state.read32(0x10) & 0xffff;
        state.write32(0x10, hccparams1 | ((LEGACY_SUPPORT / 4) as u32) << 16);
        state.legacy =
            Some(Legacy { firmware, bios_owned: true, asked_at: None, released_at: None, control });
        drop(state);
        self
    }

    /// The USB Legacy Support capability, if the sim has firmware.
    pub fn legacy_support(&self) -> Option<LegacySupport> {
        let state = self.0.borrow();
        let legacy = state.legacy.as_ref()?;
        let legsup = state.read32(LEGACY_SUPPORT);
        Some(LegacySupport {
            bios_owned: legsup & BIOS_OWNED != 0,
            os_owned: legsup & OS_OWNED != 0,
            control: legacy.control,
            asked_at: legacy.asked_at,
            released_at: legacy.released_at,
        })
    }

    /// Plugs `device` into root port `port`.
    pub fn plug(&self, port: u8, device: Device) {
        let slot = &mut self.0.borrow_mut().ports[port as usize - 1];
        (slot.device, slot.plugged) = (Some(device), true);
    }

    /// Pulls the device out of root port `port`.
    pub fn unplug(&self, port: u8) {
        let slot = &mut self.0.borrow_mut().ports[port as usize - 1];
        (slot.device, slot.enabled, slot.plugged) = (None, false, true);
    }

    /// The device on root port `port`.
    pub fn device(&self, port: u8) -> Device {
        self.0.borrow().ports[port as usize - 1].device.clone().expect("a device on the port")
    }

    /// Queues a boot report on the keyboard at `port`.
    pub fn press(&self, port: u8, report: [u8; 8]) {
        let mut state = self.0.borrow_mut();
        state.ports[port as usize - 1]
            .device
            .as_mut()
            .expect("a keyboard on the port")
            .reports
            .push_back(report);
    }

    pub fn now(&self) -> Duration {
        self.0.borrow().now
    }

    /// DMA pages not freed.
    pub fn live_pages(&self) -> usize {
        self.0.borrow().pages.len()
    }

    /// How often the driver set up the controller's interrupt.
    pub fn interrupts_claimed(&self) -> usize {
        self.0.borrow().claims
    }

    /// Whether USBCMD has Run/Stop or Interrupter Enable set.
    pub fn running_or_interrupting(&self) -> bool {
        self.0.borrow().read32(USBCMD) & (RUN_STOP | INTERRUPTER_ENABLE) != 0
    }

    /// Reports trouble outside any command or transfer: a Host Controller
    /// Event with completion `code`.
    pub fn host_controller_event(&self, code: u8) {
        self.0.borrow_mut().post([0; 4], code, Type::HostController);
    }

    /// Whether the controller may still reach memory (PCI bus mastering).
    pub fn dma_enabled(&self) -> bool {
        self.0.borrow().dma
    }

    /// How many commands of type `kind` the controller took.
    pub fn commands_run(&self, kind: Type) -> usize {
        self.0.borrow().commands_run.get(&(kind as u8)).copied().unwrap_or(0)
    }

    /// The slots enabled.
    pub fn slots(&self) -> usize {
        self.0.borrow().slots.len()
    }

    pub fn keyboard_events(&self) -> Vec<KeyboardEvent> {
        self.0.borrow().keyboard_events.clone()
    }

    /// Lets `duration` pass, a step at a time.
    fn advance(&self, duration: Duration) {
        let mut state = self.0.borrow_mut();
        let end = state.now + duration;
        loop {
            assert!(
                state.now < TIME_LIMIT,
                "the driver is still busy after {TIME_LIMIT:?} of simulated time"
            );
            state.now = (state.now + STEP).min(end);
            state.step();
            if state.now >= end {
                return;
            }
        }
    }

    fn wait(&self, timeout: Duration) -> bool {
        let end = self.now() + timeout;
        loop {
            if core::mem::take(&mut self.0.borrow_mut().interrupted) {
                return true;
            }
            if self.now() >= end {
                return false;
            }
            self.advance(STEP.min(end - self.now()));
        }
    }
}

impl Platform for Sim {
    type Mapper = SimMapper;
    type Page = SimPage;

    fn registers(&self) -> (u64, u64) {
        (BAR, self.0.borrow().registers as u64)
    }

    fn mapper(&self) -> SimMapper {
        SimMapper(self.0.borrow().registers as usize)
    }

    fn dma_page(&self) -> Option<SimPage> {
        let mut state = self.0.borrow_mut();
        let layout = Layout::from_size_align(4096, 4096).expect("a valid layout");
        // SAFETY: the layout has a non-zero size.
        let pointer = unsafe { alloc_zeroed(layout) };
        assert!(!pointer.is_null(), "out of host memory");
        let physical = state.next_page;
        state.next_page += 4096;
        state.pages.insert(physical, pointer);
        Some(SimPage { physical, pointer, sim: self.0.clone() })
    }

    fn now(&self) -> Duration {
        self.0.borrow().now
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> {
        self.advance(duration);
        ready(())
    }

    fn wait_for_interrupt(&self, timeout: Duration) -> impl Future<Output = bool> {
        ready(self.wait(timeout))
    }

    fn claim_interrupts(&self, _name: &str, _registers: (u64, u64)) -> Delivery {
        self.0.borrow_mut().claims += 1;
        Delivery::Msix(0xfe)
    }

    fn keyboard_event(&self, event: KeyboardEvent) {
        self.0.borrow_mut().keyboard_events.push(event);
    }

    fn stop_dma(&self) {
        self.0.borrow_mut().dma = false;
    }
}

/// Maps the simulated BAR onto the register file.
#[derive(Debug, Clone, Copy)]
pub struct SimMapper(usize);

impl Mapper for SimMapper {
    unsafe fn map(&mut self, physical: usize, bytes: usize) -> NonZeroUsize {
        let offset = (physical as u64).checked_sub(BAR).expect("a register below the BAR") as usize;
        assert!(offset + bytes <= REGISTER_BYTES, "a register past the BAR: {offset:#x}+{bytes}");
        NonZeroUsize::new(self.0 + offset).expect("the register file is not at 0")
    }

    fn unmap(&mut self, _virtual: usize, _bytes: usize) {}
}

/// A DMA page of the simulation, freed (and forgotten by the controller's
/// address space) when dropped.
pub struct SimPage {
    physical: u64,
    pointer: *mut u8,
    sim: Rc<RefCell<State>>,
}

impl Dma for SimPage {
    fn physical(&self) -> u64 {
        self.physical
    }

    fn as_ptr(&self) -> *mut u8 {
        self.pointer
    }
}

impl Drop for SimPage {
    fn drop(&mut self) {
        self.sim.borrow_mut().pages.remove(&self.physical);
        // SAFETY: allocated in `dma_page` with this layout, freed once.
        unsafe { dealloc(self.pointer, Layout::from_size_align(4096, 4096).expect("a valid layout")) };
    }
}

impl Drop for State {
    fn drop(&mut self) {
        // SAFETY: allocated in `controller` with this layout; the driver's
        // accessors are gone, as they held a `Sim`.
        unsafe { dealloc(self.registers, Layout::from_size_align(REGISTER_BYTES, 4096).expect("valid")) };
    }
}

impl State {
    fn read32(&self, offset: usize) -> u32 {
        assert!(offset + 4 <= REGISTER_BYTES);
        // SAFETY: inside the register file, aligned (offsets are multiples
        // of 4); volatile, as the driver's accessors write it too.
        unsafe { (self.registers.add(offset) as *const u32).read_volatile() }
    }

    fn write32(&self, offset: usize, value: u32) {
        assert!(offset + 4 <= REGISTER_BYTES);
        // SAFETY: as in read32.
        unsafe { (self.registers.add(offset) as *mut u32).write_volatile(value) }
    }

    fn read64(&self, offset: usize) -> u64 {
        self.read32(offset) as u64 | (self.read32(offset + 4) as u64) << 32
    }

    fn write64(&self, offset: usize, value: u64) {
        self.write32(offset, value as u32);
        self.write32(offset + 4, (value >> 32) as u32);
    }

    /// The host address of `bytes` bytes at DMA address `physical`, which
    /// must lie in one live page.
    fn dma(&self, physical: u64, bytes: usize) -> *mut u8 {
        let page = physical & !0xfff;
        let offset = (physical & 0xfff) as usize;
        let Some(&pointer) = self.pages.get(&page) else {
            panic!("the controller was given DMA address {physical:#x}, in no live page");
        };
        assert!(offset + bytes <= 4096, "{bytes} bytes at {physical:#x} cross a page");
        // SAFETY: inside the live page.
        unsafe { pointer.add(offset) }
    }

    fn read_dma<const N: usize>(&self, physical: u64) -> [u32; N] {
        let pointer = self.dma(physical, N * 4) as *const u32;
        // SAFETY: N words inside a live page, aligned as the xHCI structures are.
        core::array::from_fn(|i| unsafe { pointer.add(i).read_volatile() })
    }

    fn write_dma(&self, physical: u64, bytes: &[u8]) {
        let pointer = self.dma(physical, bytes.len());
        // SAFETY: inside a live page.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), pointer, bytes.len()) };
    }

    fn has(&self, fault: Fault) -> bool {
        self.faults.contains(&fault)
    }

    /// One step of the controller: what it does with what the driver wrote.
    fn step(&mut self) {
        self.firmware();
        let command = self.read32(USBCMD);
        if command & HC_RESET != 0 {
            let done = *self.reset_done_at.get_or_insert(self.now + RESET_TAKES);
            if self.now >= done && !self.has(Fault::StuckInReset) {
                self.reset();
            }
        } else if command & RUN_STOP != 0 && !self.running && !self.has(Fault::NeverRuns) {
            self.start();
        } else if command & RUN_STOP == 0 && self.running && !self.has(Fault::NeverHalts) {
            self.running = false;
            self.command_ring_running = false;
        }
        let resetting = self.read32(USBCMD) & HC_RESET != 0;
        let not_ready = resetting || (self.has(Fault::NeverReady) && self.reset_done_at.is_some());
        let status = self.read32(USBSTS) & EVENT_INTERRUPT;
        self.write32(
            USBSTS,
            status | if self.running { 0 } else { HC_HALTED } | if not_ready { NOT_READY } else { 0 },
        );
        if !self.running || self.event_ring.is_none() {
            return;
        }
        self.doorbells();
        self.abort();
        self.commands();
        for id in self.slots.keys().copied().collect::<Vec<_>>() {
            self.transfers(id);
        }
        self.ports();
        let crcr = if self.command_ring_running { COMMAND_RING_RUNNING } else { 0 };
        self.write64(CRCR, crcr | (self.read64(CRCR) & COMMAND_ABORT));
    }

    /// The firmware's side of the handoff: it sees OS Owned set (an SMI
    /// event), lets go when its time comes, and takes what the driver wrote
    /// to USBLEGCTLSTS. A driver that stops or resets the controller while
    /// the firmware still owns it would fight the firmware's SMI handler.
    fn firmware(&mut self) {
        let Some(mut legacy) = self.legacy.take() else { return };
        let now = self.now;
        let (legsup, written) = (self.read32(LEGACY_SUPPORT), self.read32(USBLEGCTLSTS));
        if written != legacy.control {
            let events = legacy.control & SMI_EVENTS & !written;
            legacy.control = written & !SMI_EVENTS | events;
        }
        if legsup & OS_OWNED != 0 && legacy.asked_at.is_none() {
            legacy.asked_at = Some(now);
            legacy.control |= SMI_ON_OS_OWNERSHIP_CHANGE;
        }
        if legacy.bios_owned && legsup & BIOS_OWNED == 0 {
            // The driver cleared it: taken without the firmware's consent.
            legacy.bios_owned = false;
        }
        if let (true, Firmware::Releases(after), Some(asked)) =
            (legacy.bios_owned, legacy.firmware, legacy.asked_at)
            && now >= asked + after
        {
            legacy.bios_owned = false;
            legacy.released_at = Some(now);
        }
        let (bios_owned, control) = (legacy.bios_owned, legacy.control);
        self.legacy = Some(legacy);
        self.write32(LEGACY_SUPPORT, legsup & !BIOS_OWNED | if bios_owned { BIOS_OWNED } else { 0 });
        self.write32(USBLEGCTLSTS, control);
        assert!(
            !bios_owned || self.read32(USBCMD) & (RUN_STOP | HC_RESET) == RUN_STOP,
            "the driver stopped or reset the controller while the firmware still owned it"
        );
    }

    /// Host Controller Reset: the operational and runtime registers, ports
    /// and slots back to their power-on state.
    fn reset(&mut self) {
        self.write32(USBCMD, 0);
        for offset in [CRCR, DCBAAP, IMAN, ERSTBA, ERDP] {
            self.write64(offset, 0);
        }
        self.write32(ERSTSZ, 0);
        for port in &mut self.ports {
            (port.powered, port.enabled, port.resetting_until) = (false, false, None);
        }
        for n in 0..self.ports.len() {
            self.write32(PORTSC + 0x10 * n, 0);
        }
        self.slots.clear();
        (self.running, self.command, self.command_ring_running, self.event_ring) = (false, None, false, None);
    }

    /// Run/Stop set: takes the command ring and event ring as the driver
    /// gave them.
    fn start(&mut self) {
        self.running = true;
        let crcr = self.read64(CRCR);
        self.command = Some((crcr & !0x3f, crcr & 1 != 0));
        self.write64(CRCR, 0);
        assert_eq!(self.read32(ERSTSZ), 1, "the sim has one event ring segment");
        let [low, high, size, _] = self.read_dma::<4>(self.read64(ERSTBA));
        let segment = low as u64 | (high as u64) << 32;
        self.event_ring = Some((segment, size as usize, 0, true));
    }

    fn doorbells(&mut self) {
        for slot in 0..=MAX_SLOTS {
            let value = self.read32(DOORBELLS + 4 * slot as usize);
            if value == DOORBELL_IDLE {
                continue;
            }
            self.write32(DOORBELLS + 4 * slot as usize, DOORBELL_IDLE);
            let target = (value & 0xff) as u8;
            if slot == 0 {
                self.command_ring_running = true;
                continue;
            }
            let endpoint = self.slots.get_mut(&slot).and_then(|s| s.endpoints.get_mut(&target));
            let endpoint =
                endpoint.unwrap_or_else(|| panic!("doorbell for slot {slot} endpoint {target}: not set up"));
            if endpoint.state == EndpointState::Stopped {
                endpoint.state = EndpointState::Running;
            }
            endpoint.rung = endpoint.state == EndpointState::Running;
        }
    }

    /// Command Abort: the command being run is aborted, the ring stops.
    fn abort(&mut self) {
        if self.read64(CRCR) & COMMAND_ABORT == 0 || self.has(Fault::AbortIgnored) {
            return;
        }
        if self.command_ring_running {
            let (dequeue, cycle) = self.command.expect("a command ring");
            if core::mem::take(&mut self.command_busy) {
                self.post_command(dequeue, COMMAND_ABORTED, 0);
                self.command = Some((dequeue + 16, cycle));
            }
            let (next, _) = self.command.expect("a command ring");
            self.post_command(next, RING_STOPPED, 0);
            self.command_ring_running = false;
        }
        self.write64(CRCR, 0);
    }

    fn commands(&mut self) {
        while self.command_ring_running && !self.command_busy {
            let (dequeue, cycle) = self.command.expect("a command ring");
            let trb = self.read_dma::<4>(dequeue);
            if (trb[3] & 1 != 0) != cycle {
                return;
            }
            let kind = (trb[3] >> 10 & 0x3f) as u8;
            if kind == Type::Link as u8 {
                let target = (trb[0] as u64 | (trb[1] as u64) << 32) & !0xf;
                self.command = Some((target, cycle ^ (trb[3] & 2 != 0)));
                continue;
            }
            let count = {
                let count = self.commands_run.entry(kind).or_insert(0);
                *count += 1;
                *count
            };
            if self
                .faults
                .iter()
                .any(|&f| matches!(f, Fault::CommandHangs(t, n) if t as u8 == kind && n == count))
            {
                self.command_busy = true;
                return;
            }
            let (code, slot) = self.command(kind, trb);
            self.post_command(dequeue, code, slot);
            self.command = Some((dequeue + 16, cycle));
        }
    }

    /// Runs one command: its completion code and the slot it names.
    fn command(&mut self, kind: u8, trb: [u32; 4]) -> (u8, u8) {
        let slot = (trb[3] >> 24) as u8;
        let endpoint = (trb[3] >> 16 & 0x1f) as u8;
        let pointer = trb[0] as u64 | (trb[1] as u64) << 32;
        let Some(kind) = type_of(kind) else { return (TRB_ERROR, slot) };
        match kind {
            // The controller picks the ID; this one gives the highest free
            // one the driver enabled, as real ones may.
            Type::EnableSlot => {
                match (1..=self.read32(CONFIG) as u8).rev().find(|id| !self.slots.contains_key(id)) {
                    Some(id) => {
                        self.slots.insert(id, Slot { port: None, endpoints: BTreeMap::new() });
                        (SUCCESS, id)
                    }
                    None => (9, 0),
                }
            }
            Type::DisableSlot => match self.slots.remove(&slot) {
                Some(_) => (SUCCESS, slot),
                None => (SLOT_NOT_ENABLED, slot),
            },
            Type::AddressDevice => self.address_device(slot, pointer & !0xf),
            Type::ConfigureEndpoint => {
                let input = self.read_dma::<{ 8 * 33 }>(pointer & !0xf);
                let Some(state) = self.slots.get_mut(&slot) else { return (SLOT_NOT_ENABLED, slot) };
                for dci in 2..32u8 {
                    if input[1] & 1 << dci != 0 {
                        let context: [u32; 8] = core::array::from_fn(|i| input[8 * (dci as usize + 1) + i]);
                        assert_eq!(
                            context[1] >> 3 & 7,
                            7,
                            "the sim's devices have interrupt IN endpoints only"
                        );
                        state.endpoints.insert(dci, Endpoint::from_context(&context));
                    }
                }
                (SUCCESS, slot)
            }
            Type::EvaluateContext => (SUCCESS, slot),
            Type::ResetEndpoint => self.endpoint_command(slot, endpoint, EndpointState::Halted, |endpoint| {
                endpoint.state = EndpointState::Stopped;
            }),
            Type::StopEndpoint => {
                // The transfer it was working on (if any) ends, reported
                // before the command's completion.
                let running = self.slots.get(&slot).and_then(|s| s.endpoints.get(&endpoint));
                if running.is_some_and(|e| e.state == EndpointState::Running)
                    && let Some((at, _)) = self.next_trb(slot, endpoint, 0)
                {
                    self.post_transfer(at, STOPPED, 0, slot, endpoint);
                }
                self.endpoint_command(slot, endpoint, EndpointState::Running, |endpoint| {
                    endpoint.state = EndpointState::Stopped;
                })
            }
            Type::SetTrDequeuePointer => {
                self.endpoint_command(slot, endpoint, EndpointState::Stopped, |endpoint| {
                    endpoint.dequeue = pointer & !0xf;
                    endpoint.cycle = pointer & 1 != 0;
                })
            }
            _ => (TRB_ERROR, slot),
        }
    }

    /// A command on an endpoint, which must be in `state`.
    fn endpoint_command(
        &mut self,
        slot: u8,
        dci: u8,
        state: EndpointState,
        change: impl FnOnce(&mut Endpoint),
    ) -> (u8, u8) {
        match self.slots.get_mut(&slot).and_then(|s| s.endpoints.get_mut(&dci)) {
            Some(endpoint) if endpoint.state == state => {
                change(endpoint);
                (SUCCESS, slot)
            }
            Some(_) => (CONTEXT_STATE_ERROR, slot),
            None => (SLOT_NOT_ENABLED, slot),
        }
    }

    fn address_device(&mut self, slot: u8, input: u64) -> (u8, u8) {
        let dcbaa = self.read64(DCBAAP);
        let output = self.read_dma::<2>(dcbaa + 8 * slot as u64);
        self.dma(output[0] as u64 | (output[1] as u64) << 32, 1024);
        let input = self.read_dma::<{ 8 * 3 }>(input);
        assert_eq!(input[1] & 3, 3, "Address Device adds the slot and endpoint 0 contexts");
        assert_eq!(input[8] & 0xf_ffff, 0, "the sim has no hubs: route string 0");
        let port = (input[9] >> 16 & 0xff) as u8;
        let ep0: [u32; 8] = core::array::from_fn(|i| input[16 + i]);
        assert_eq!(ep0[1] >> 3 & 7, 4, "endpoint 0 is a control endpoint");
        let present = self.ports.get(port as usize - 1).is_some_and(|p| p.enabled && p.device.is_some());
        let Some(state) = self.slots.get_mut(&slot) else { return (SLOT_NOT_ENABLED, slot) };
        if !present {
            return (TRANSACTION_ERROR, slot);
        }
        state.port = Some(port);
        state.endpoints.insert(1, Endpoint::from_context(&ep0));
        (SUCCESS, slot)
    }

    /// Runs what is on the slot's rung endpoints.
    fn transfers(&mut self, id: u8) {
        let dcis: Vec<u8> = self.slots[&id].endpoints.keys().copied().collect();
        for dci in dcis {
            while self.slots.get(&id).is_some_and(|s| {
                s.endpoints.get(&dci).is_some_and(|e| e.rung && e.state == EndpointState::Running)
            }) {
                let done =
                    if dci == 1 { self.control_transfer(id) } else { self.interrupt_transfer(id, dci) };
                if !done {
                    break;
                }
            }
        }
    }

    /// The TRB at the endpoint's dequeue pointer, if it belongs to the
    /// controller (links followed).
    fn next_trb(&mut self, id: u8, dci: u8, skip: usize) -> Option<(u64, [u32; 4])> {
        let endpoint = &self.slots[&id].endpoints[&dci];
        let (mut at, mut cycle) = (endpoint.dequeue, endpoint.cycle);
        let mut skipped = 0;
        loop {
            let trb = self.read_dma::<4>(at);
            if (trb[3] & 1 != 0) != cycle {
                return None;
            }
            if (trb[3] >> 10 & 0x3f) as u8 == Type::Link as u8 {
                at = (trb[0] as u64 | (trb[1] as u64) << 32) & !0xf;
                cycle ^= trb[3] & 2 != 0;
                if skipped == 0 {
                    let endpoint =
                        self.slots.get_mut(&id).expect("slot").endpoints.get_mut(&dci).expect("ep");
                    (endpoint.dequeue, endpoint.cycle) = (at, cycle);
                }
                continue;
            }
            if skipped == skip {
                return Some((at, trb));
            }
            skipped += 1;
            at += 16;
        }
    }

    /// Moves the endpoint's dequeue pointer past `count` TRBs.
    fn consume(&mut self, id: u8, dci: u8, count: usize) {
        for _ in 0..count {
            self.next_trb(id, dci, 0).expect("a TRB to consume");
            let endpoint = self.slots.get_mut(&id).expect("slot").endpoints.get_mut(&dci).expect("ep");
            endpoint.dequeue += 16;
        }
    }

    /// One control transfer (setup, data, status) on endpoint 0, answered
    /// by the device; false when none is complete on the ring.
    fn control_transfer(&mut self, id: u8) -> bool {
        let Some((_, setup)) = self.next_trb(id, 1, 0) else {
            self.slots.get_mut(&id).expect("slot").endpoints.get_mut(&1).expect("ep").rung = false;
            return false;
        };
        assert_eq!(
            (setup[3] >> 10 & 0x3f) as u8,
            Type::SetupStage as u8,
            "a control transfer starts with a setup TRB"
        );
        assert!(setup[3] & 1 << 6 != 0, "a setup stage carries its packet as immediate data");
        let has_data = setup[3] >> 16 & 3 != 0;
        let data = if has_data {
            let Some((_, data)) = self.next_trb(id, 1, 1) else { return false };
            assert_eq!((data[3] >> 10 & 0x3f) as u8, Type::DataStage as u8);
            Some(data)
        } else {
            None
        };
        let Some((status_at, status)) = self.next_trb(id, 1, 1 + has_data as usize) else { return false };
        assert_eq!((status[3] >> 10 & 0x3f) as u8, Type::StatusStage as u8);
        let packet: [u8; 8] = core::array::from_fn(|i| (setup[i / 4] >> (8 * (i % 4))) as u8);
        let length = u16::from_le_bytes([packet[6], packet[7]]) as usize;
        let inward = packet[0] & 0x80 != 0;
        let buffer = data.map(|d| (d[0] as u64 | (d[1] as u64) << 32, (d[2] & 0x1ffff) as usize));
        let out = match (buffer, inward) {
            (Some((at, bytes)), false) => {
                let pointer = self.dma(at, bytes);
                // SAFETY: `bytes` bytes inside a live page.
                unsafe { std::slice::from_raw_parts(pointer, bytes) }.to_vec()
            }
            _ => Vec::new(),
        };
        let port = self.slots[&id].port.expect("an addressed slot");
        let answer = match self.ports[port as usize - 1].device.as_mut() {
            Some(device) => match device.request(packet, &out) {
                Answer::Data(reply) => Ok(reply),
                Answer::Stall => Err(STALL),
                Answer::Nothing => {
                    // The transfer stays where it is; the endpoint is not
                    // looked at again until it is rung.
                    self.slots.get_mut(&id).expect("slot").endpoints.get_mut(&1).expect("ep").rung = false;
                    return false;
                }
            },
            None => Err(TRANSACTION_ERROR),
        };
        match answer {
            Ok(reply) => {
                if let (Some((at, bytes)), true) = (buffer, inward) {
                    let reply = &reply[..reply.len().min(length).min(bytes)];
                    self.write_dma(at, reply);
                }
                self.consume(id, 1, 2 + has_data as usize);
                self.post_transfer(status_at, SUCCESS, 0, id, 1);
            }
            Err(code) => {
                // The endpoint halts on the stage that failed; its dequeue
                // pointer stays on the transfer.
                self.slots.get_mut(&id).expect("slot").endpoints.get_mut(&1).expect("ep").state =
                    EndpointState::Halted;
                self.post_transfer(status_at, code, 0, id, 1);
            }
        }
        true
    }

    /// One IN transfer on an interrupt endpoint, if the device has a report.
    fn interrupt_transfer(&mut self, id: u8, dci: u8) -> bool {
        let Some((at, trb)) = self.next_trb(id, dci, 0) else {
            self.slots.get_mut(&id).expect("slot").endpoints.get_mut(&dci).expect("ep").rung = false;
            return false;
        };
        assert_eq!((trb[3] >> 10 & 0x3f) as u8, Type::Normal as u8);
        let port = self.slots[&id].port.expect("an addressed slot");
        let Some(report) = self.ports[port as usize - 1].device.as_mut().and_then(|d| d.reports.pop_front())
        else {
            return false;
        };
        let buffer = trb[0] as u64 | (trb[1] as u64) << 32;
        let length = (trb[2] & 0x1ffff) as usize;
        self.write_dma(buffer, &report[..length.min(8)]);
        self.consume(id, dci, 1);
        self.post_transfer(at, SUCCESS, length.saturating_sub(8) as u32, id, dci);
        true
    }

    /// Port power and resets; connections and finished resets are reported.
    fn ports(&mut self) {
        for n in 0..self.ports.len() {
            let written = self.read32(PORTSC + 0x10 * n);
            let port = &mut self.ports[n];
            let mut changed = core::mem::take(&mut port.plugged) && port.powered;
            if written & PORT_POWER != 0 && !port.powered {
                port.powered = true;
                port.enabled = port.usb3 && port.device.is_some();
                changed = port.device.is_some();
            }
            if written & PORT_RESET != 0 && port.resetting_until.is_none() && port.device.is_some() {
                port.resetting_until = Some(self.now + PORT_RESET_TAKES);
                port.enabled = false;
            }
            if port.resetting_until.is_some_and(|until| self.now >= until) {
                port.resetting_until = None;
                port.enabled = true;
                changed = true;
            }
            if port.device.is_none() {
                port.enabled = false;
            }
            let connected = port.powered && port.device.is_some();
            let speed: u32 = if port.usb3 { 4 } else { 1 };
            let value = if connected { PORT_CONNECTED | speed << 10 } else { 0 }
                | if port.enabled { PORT_ENABLED } else { 0 }
                | if port.resetting_until.is_some() { PORT_RESET } else { 0 }
                | if port.powered { PORT_POWER } else { 0 };
            self.write32(PORTSC + 0x10 * n, value);
            if changed {
                self.port_changed(n as u8 + 1);
            }
        }
    }

    fn port_changed(&mut self, port: u8) {
        self.post([(port as u32) << 24, 0, 0, 0], SUCCESS, Type::PortStatusChange);
    }

    fn post_command(&mut self, trb: u64, code: u8, slot: u8) {
        self.post([trb as u32, (trb >> 32) as u32, 0, (slot as u32) << 24], code, Type::CommandCompletion);
    }

    fn post_transfer(&mut self, trb: u64, code: u8, residue: u32, slot: u8, dci: u8) {
        let words = [trb as u32, (trb >> 32) as u32, residue, (slot as u32) << 24 | (dci as u32) << 16];
        self.post(words, code, Type::TransferEvent);
    }

    /// Writes an event, with its completion code, type and cycle bit, and
    /// interrupts if the driver enabled that.
    fn post(&mut self, mut words: [u32; 4], code: u8, kind: Type) {
        let Some((segment, size, index, cycle)) = self.event_ring else { return };
        let dequeue = ((self.read64(ERDP) & !0xf) - segment) / 16;
        assert_ne!(
            (index + 1) % size,
            dequeue as usize,
            "event ring full: the driver does not take its events"
        );
        words[2] |= (code as u32) << 24;
        words[3] |= (kind as u32) << 10 | cycle as u32;
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.write_dma(segment + 16 * index as u64, &bytes);
        self.event_ring = Some((segment, size, (index + 1) % size, cycle ^ (index + 1 == size)));
        let iman = self.read32(IMAN);
        self.write32(IMAN, iman | IMAN_PENDING);
        self.write32(USBSTS, self.read32(USBSTS) | EVENT_INTERRUPT);
        if iman & IMAN_ENABLE != 0 && self.read32(USBCMD) & INTERRUPTER_ENABLE != 0 {
            self.interrupted = true;
        }
    }
}

/// The TRB type numbered `kind`, of those the sim deals in.
fn type_of(kind: u8) -> Option<Type> {
    [
        Type::Normal,
        Type::SetupStage,
        Type::DataStage,
        Type::StatusStage,
        Type::Link,
        Type::EnableSlot,
        Type::DisableSlot,
        Type::AddressDevice,
        Type::ConfigureEndpoint,
        Type::EvaluateContext,
        Type::ResetEndpoint,
        Type::StopEndpoint,
        Type::SetTrDequeuePointer,
    ]
    .into_iter()
    .find(|&t| t as u8 == kind)
}
