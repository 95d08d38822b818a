//! The driver's failure paths, the handoff from the firmware, and one
//! success path, on the simulated controller (`sim.rs`): what the user
//! reads in the log, and that the rest of the bus goes on.

use super::sim::{
    self, Device, Fault, Firmware, GET_DESCRIPTOR, SET_IDLE, SET_PROTOCOL, SMI_ENABLES, SMI_EVENTS, Sim,
};
use super::{KeyboardEvent, Usb};
use crate::testing::logs;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use xhci::ring::trb::Type;

const NAME: &str = "xHCI 00:04.0";

/// Runs the driver to completion: the simulation never makes it wait.
fn block_on<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the simulated platform never leaves the driver pending"),
    }
}

fn start(sim: &Sim) -> Usb<Sim> {
    let mut usb = Usb::new();
    block_on(usb.start(sim.clone(), NAME.into(), "1b36:000d"));
    usb
}

/// Serves events for `duration` of simulated time, as the USB task's loop
/// does.
fn serve(usb: &mut Usb<Sim>, sim: &Sim, duration: Duration) {
    let end = sim.now() + duration;
    while sim.now() < end {
        block_on(usb.handle_events());
        block_on(crate::drivers::usb::platform::Platform::sleep(sim, Duration::from_millis(10)));
    }
}

/// Scans the ports, which must take one 1 s time-out and not much more,
/// and returns the log.
fn scan_through_one_timeout(usb: &mut Usb<Sim>, sim: &Sim) -> Vec<String> {
    let before = sim.now();
    block_on(usb.scan());
    let took = sim.now() - before;
    assert!(took >= Duration::from_millis(1000) && took < Duration::from_millis(1500), "{took:?}");
    logs::take()
}

fn keyboards(ports: impl IntoIterator<Item = u8>, sim: &Sim) {
    for port in ports {
        sim.plug(port, Device::keyboard(0x0627, port as u16));
    }
}

fn warnings(lines: &[String]) -> Vec<String> {
    lines.iter().filter(|line| line.starts_with("WARN") || line.starts_with("ERROR")).cloned().collect()
}

const NOT_USED: &str = "its ports are not used, and USB keyboards on them do not type";

/// A controller that fails to come up: one error line naming the step, and
/// nothing left of it: no interrupt claimed, not running, memory freed, and
/// no way left to write to memory.
fn fails_to_start(fault: Fault, step: &str, within_ms: u64) {
    logs::capture();
    let sim = sim::controller(2, 2).with(fault);
    keyboards([1], &sim);
    let usb = start(&sim);
    assert!(usb.controllers.is_empty());
    assert_eq!(
        logs::take().last().unwrap(),
        &format!("ERROR usb: {NAME}: the controller {step}; {NOT_USED}")
    );
    assert_eq!(sim.interrupts_claimed(), 0, "no interrupt for a controller not in use");
    assert!(!sim.running_or_interrupting(), "the controller is left stopped, its interrupter off");
    assert_eq!(sim.live_pages(), 0, "its rings and contexts are freed");
    assert!(!sim.dma_enabled(), "its bus mastering is off");
    let waited = sim.now();
    assert!(waited >= Duration::from_millis(within_ms) && waited < Duration::from_millis(within_ms + 200));
}

#[test]
fn a_controller_stuck_in_reset_is_given_up() {
    let step = "did not come out of reset within 1000 ms (Host Controller Reset stayed set)";
    fails_to_start(Fault::StuckInReset, step, 1000);
}

#[test]
fn a_controller_never_ready_after_reset_is_given_up() {
    let step = "did not come out of reset within 1000 ms (Controller Not Ready stayed set)";
    fails_to_start(Fault::NeverReady, step, 1000);
}

#[test]
fn a_controller_that_does_not_run_is_given_up() {
    fails_to_start(Fault::NeverRuns, "did not start running within 100 ms (HCHalted stayed set)", 100);
}

#[test]
fn a_controller_that_does_not_halt_is_not_reset() {
    fails_to_start(Fault::NeverHalts, "did not halt within 100 ms (HCHalted stayed clear)", 100);
}

#[test]
fn a_keyboard_is_reset_addressed_configured_and_types() {
    logs::capture();
    let sim = sim::controller(2, 2);
    keyboards([2], &sim);
    let mut usb = start(&sim);
    assert_eq!(sim.interrupts_claimed(), 1);
    assert!(sim.dma_enabled(), "a controller in use keeps its bus mastering");
    block_on(usb.scan());
    let lines = logs::take();
    assert!(warnings(&lines).is_empty(), "{lines:#?}");
    assert!(lines.contains(&format!(
        "INFO usb: {NAME} (1b36:000d) running: 4 ports (2 USB 2, 2 USB 3), interrupts through MSI-X on vector 0xfe"
    )));
    assert!(lines.contains(
        &"INFO usb: port 2: keyboard 1 (0627:0002), boot protocol, endpoint 0x81 every 10 ms".into()
    ));
    // Both descriptors first in 8 and 9 bytes, then whole; configuration
    // 1; the boot protocol; reports only on change.
    assert_eq!(
        sim.device(2).requests,
        [(0x80, GET_DESCRIPTOR, 0x100), (0x80, GET_DESCRIPTOR, 0x100), (0x80, GET_DESCRIPTOR, 0x200)]
            .into_iter()
            .chain([(0x80, GET_DESCRIPTOR, 0x200), (0, 9, 1), (0x21, SET_PROTOCOL, 0), (0x21, SET_IDLE, 0)])
            .collect::<Vec<_>>()
    );
    // A key comes through the interrupt endpoint; the LEDs go out.
    let report = [0, 0, 0x04, 0, 0, 0, 0, 0];
    sim.press(2, report);
    serve(&mut usb, &sim, Duration::from_millis(50));
    assert_eq!(sim.keyboard_events(), [KeyboardEvent::Attached(1), KeyboardEvent::Report(1, report)]);
    block_on(usb.set_keyboard_leds(1, 0b10));
    assert_eq!(sim.device(2).reports_set, [vec![0b10]]);
    assert!(warnings(&logs::take()).is_empty());
}

/// Events the driver has no use for are not dropped unseen: a Host
/// Controller Event is a warning saying what it means, a flood of them
/// costs a few lines only, and the keyboard goes on typing.
#[test]
fn host_controller_events_are_logged_and_the_keyboard_types_on() {
    logs::capture();
    let sim = sim::controller(2, 2);
    keyboards([1], &sim);
    let mut usb = start(&sim);
    block_on(usb.scan());
    logs::take();
    sim.host_controller_event(21);
    for _ in 0..20 {
        sim.host_controller_event(5);
    }
    let report = [0, 0, 0x04, 0, 0, 0, 0, 0];
    sim.press(1, report);
    serve(&mut usb, &sim, Duration::from_millis(50));
    let lines = warnings(&logs::take());
    assert_eq!(lines.len(), 8, "{lines:#?}");
    assert_eq!(
        lines[0],
        format!(
            "WARN usb: {NAME}: the event ring overflowed: events were lost (TRB type 37, completion code 21)"
        )
    );
    assert_eq!(
        lines[1],
        format!("WARN usb: {NAME}: the controller reports an error (TRB type 37, completion code 5)")
    );
    assert!(lines[7].ends_with("; further ones are not logged"), "{}", lines[7]);
    assert_eq!(sim.keyboard_events().last(), Some(&KeyboardEvent::Report(1, report)));
}

/// Keyboards on ports 1 to 3, the command `kind` hanging the first time:
/// port 1's device is given up with a line naming the command, and the
/// others are set up.
fn a_hung_command_costs_its_device_only(kind: Type, what: &str) {
    logs::capture();
    let sim = sim::controller(3, 0).with(Fault::CommandHangs(kind, 1));
    keyboards(1..=3, &sim);
    let mut usb = start(&sim);
    let lines = scan_through_one_timeout(&mut usb, &sim);
    assert_eq!(
        warnings(&lines),
        [format!(
            "WARN usb: {NAME}: port 1: {what} timed out after 1000 ms; device left alone until it is unplugged"
        )]
    );
    assert!(lines.contains(
        &"INFO usb: port 2: keyboard 1 (0627:0002), boot protocol, endpoint 0x81 every 10 ms".into()
    ));
    assert!(lines.contains(
        &"INFO usb: port 3: keyboard 2 (0627:0003), boot protocol, endpoint 0x81 every 10 ms".into()
    ));
    assert_eq!(sim.slots(), 2, "port 1's slot, if it got one, was disabled");
    assert!(sim.device(1).requests.is_empty());
    // Its port's change events do not set it up again and again.
    serve(&mut usb, &sim, Duration::from_secs(3));
    assert!(logs::take().is_empty());
    // Plugged in again, it is found.
    sim.unplug(1);
    serve(&mut usb, &sim, Duration::from_millis(50));
    sim.plug(1, Device::keyboard(0x0627, 1));
    serve(&mut usb, &sim, Duration::from_millis(100));
    assert_eq!(
        logs::take(),
        [
            "INFO usb: port 1: device unplugged",
            "INFO usb: port 1: keyboard 3 (0627:0001), boot protocol, endpoint 0x81 every 10 ms"
        ]
    );
}

#[test]
fn an_address_device_that_never_completes_costs_its_device_only() {
    a_hung_command_costs_its_device_only(Type::AddressDevice, "Address Device");
}

#[test]
fn an_enable_slot_that_never_completes_costs_its_device_only() {
    a_hung_command_costs_its_device_only(Type::EnableSlot, "Enable Slot");
}

#[test]
fn a_command_ring_that_does_not_stop_ends_the_commands_at_once() {
    logs::capture();
    let sim = sim::controller(3, 0).with(Fault::CommandHangs(Type::EnableSlot, 1)).with(Fault::AbortIgnored);
    keyboards(1..=3, &sim);
    let mut usb = start(&sim);
    let before = sim.now();
    block_on(usb.scan());
    assert!(sim.now() - before < Duration::from_millis(2500), "each port does not wait in turn");
    let lines = logs::take();
    let left_alone = "device left alone until it is unplugged";
    assert_eq!(
        warnings(&lines),
        [
            format!(
                "ERROR usb: {NAME}: its command ring did not stop within 1000 ms of an abort; no more commands are sent to it"
            ),
            format!("WARN usb: {NAME}: port 1: Enable Slot timed out after 1000 ms; {left_alone}"),
            format!(
                "WARN usb: {NAME}: port 2: Enable Slot not sent: the controller's command ring is stuck; {left_alone}"
            ),
            format!(
                "WARN usb: {NAME}: port 3: Enable Slot not sent: the controller's command ring is stuck; {left_alone}"
            ),
        ]
    );
}

#[test]
fn a_stalled_request_costs_its_device_only() {
    logs::capture();
    let sim = sim::controller(3, 0);
    sim.plug(1, Device::keyboard(0x0627, 1).stalling(GET_DESCRIPTOR, Some(0x200)));
    sim.plug(2, Device::keyboard(0x0627, 2).stalling(SET_PROTOCOL, None));
    sim.plug(3, Device::keyboard(0x0627, 3));
    let mut usb = start(&sim);
    block_on(usb.scan());
    let lines = logs::take();
    let left_alone = "device left alone until it is unplugged";
    assert_eq!(
        warnings(&lines),
        [
            format!(
                "WARN usb: {NAME}: port 1 (device 0627:0001): the device stalled GET_DESCRIPTOR (configuration); {left_alone}"
            ),
            format!(
                "WARN usb: {NAME}: port 2 (device 0627:0002): the device stalled SET_PROTOCOL (boot); {left_alone}"
            ),
        ]
    );
    assert!(lines.contains(
        &"INFO usb: port 3: keyboard 1 (0627:0003), boot protocol, endpoint 0x81 every 10 ms".into()
    ));
    assert_eq!(sim.slots(), 1);
    // Nothing more is asked of the stalling devices, however long.
    let asked = [sim.device(1).requests.len(), sim.device(2).requests.len()];
    assert_eq!(sim.device(1).requests.last(), Some(&(0x80, GET_DESCRIPTOR, 0x200)));
    assert_eq!(sim.device(2).requests.last(), Some(&(0x21, SET_PROTOCOL, 0)));
    serve(&mut usb, &sim, Duration::from_secs(3));
    assert_eq!([sim.device(1).requests.len(), sim.device(2).requests.len()], asked);
    assert!(logs::take().is_empty());
    sim.press(3, [0, 0, 0x05, 0, 0, 0, 0, 0]);
    serve(&mut usb, &sim, Duration::from_millis(50));
    assert_eq!(sim.keyboard_events().last(), Some(&KeyboardEvent::Report(1, [0, 0, 0x05, 0, 0, 0, 0, 0])));
}

/// A controller whose firmware holds it through the USB Legacy Support
/// capability, with a keyboard on port 3: the driver asks for it at once
/// (OS Owned), waits until the firmware lets go or its limit passes,
/// switches every legacy SMI off and clears the SMI events (write 1 to
/// clear), and only then halts and resets it (the sim checks that order);
/// the keyboard types. Returns the capability as left, how long bringing
/// the controller up took, and the log.
fn handed_over(firmware: Firmware) -> (sim::LegacySupport, Duration, Vec<String>) {
    logs::capture();
    let sim = sim::controller(2, 2).with_firmware(firmware);
    keyboards([3], &sim);
    let mut usb = start(&sim);
    let took = sim.now();
    let legacy = sim.legacy_support().expect("the capability");
    assert_eq!(legacy.asked_at, Some(Duration::from_millis(1)), "asked for at once");
    assert!(legacy.os_owned && !legacy.bios_owned, "the controller is the kernel's");
    assert_eq!(legacy.control & SMI_ENABLES, 0, "legacy SMIs off: {:#010x}", legacy.control);
    assert_eq!(legacy.control & SMI_EVENTS, 0, "SMI events cleared: {:#010x}", legacy.control);
    block_on(usb.scan());
    let report = [0, 0, 0x0b, 0, 0, 0, 0, 0];
    sim.press(3, report);
    serve(&mut usb, &sim, Duration::from_millis(50));
    assert_eq!(sim.keyboard_events(), [KeyboardEvent::Attached(1), KeyboardEvent::Report(1, report)]);
    let lines = logs::take();
    assert!(lines.contains(&format!(
        "INFO usb: {NAME} (1b36:000d) running: 4 ports (2 USB 2, 2 USB 3), interrupts through MSI-X on vector 0xfe"
    )));
    (legacy, took, lines)
}

const TAKEN_OVER: &str = "taken over from the firmware, which had it; legacy SMIs off";

#[test]
fn firmware_that_lets_go_hands_the_controller_over_with_its_smis_off() {
    let (legacy, took, lines) = handed_over(Firmware::Releases(Duration::from_millis(30)));
    assert_eq!(legacy.released_at, Some(Duration::from_millis(31)), "let go 30 ms after it was asked");
    assert!(took < Duration::from_millis(100), "the driver went on once it was let go: {took:?}");
    assert!(warnings(&lines).is_empty(), "{lines:#?}");
    assert_eq!(lines[0], format!("INFO usb: {NAME}: {TAKEN_OVER}"));
}

#[test]
fn firmware_that_never_lets_go_is_overridden_after_a_second() {
    let (legacy, took, lines) = handed_over(Firmware::Holds);
    assert_eq!(legacy.released_at, None, "the firmware never let go: the driver cleared BIOS Owned");
    assert!(took >= Duration::from_millis(1000) && took < Duration::from_millis(1100), "{took:?}");
    assert_eq!(
        warnings(&lines),
        [format!(
            "WARN usb: {NAME}: the firmware did not give the controller up within 1000 ms; taking it anyway"
        )]
    );
    assert_eq!(lines[1], format!("INFO usb: {NAME}: {TAKEN_OVER}"));
}

#[test]
fn a_controller_without_legacy_support_needs_no_handoff() {
    logs::capture();
    let sim = sim::controller(1, 0);
    start(&sim);
    assert_eq!(
        logs::take()[0],
        format!("INFO usb: {NAME}: no USB Legacy Support capability: the firmware cannot hold it")
    );
}

/// Keyboards on ports 1 to 3, port 1's never answering its configuration
/// descriptor request: after 1000 ms its endpoint 0 is stopped and the
/// request taken off its ring, it is given up with a line naming the
/// request, and the other two are set up and type.
#[test]
fn a_device_that_never_answers_costs_itself_only() {
    logs::capture();
    let sim = sim::controller(3, 0);
    sim.plug(1, Device::keyboard(0x0627, 1).silent_on(GET_DESCRIPTOR, Some(0x200)));
    keyboards(2..=3, &sim);
    let mut usb = start(&sim);
    let lines = scan_through_one_timeout(&mut usb, &sim);
    assert_eq!(
        warnings(&lines),
        [format!(
            "WARN usb: {NAME}: port 1 (device 0627:0001): GET_DESCRIPTOR (configuration) timed out after 1000 ms; device left alone until it is unplugged"
        )]
    );
    assert_eq!(sim.commands_run(Type::StopEndpoint), 1, "its endpoint 0 was stopped");
    assert_eq!(sim.commands_run(Type::SetTrDequeuePointer), 1, "and the request taken off its ring");
    for port in 2..=3 {
        assert!(lines.contains(&format!(
            "INFO usb: port {port}: keyboard {} (0627:000{port}), boot protocol, endpoint 0x81 every 10 ms",
            port - 1
        )));
    }
    assert_eq!(sim.slots(), 2, "the silent device's slot was disabled");
    let asked = sim.device(1).requests.len();
    assert_eq!(sim.device(1).requests.last(), Some(&(0x80, GET_DESCRIPTOR, 0x200)));
    sim.press(2, [0, 0, 0x06, 0, 0, 0, 0, 0]);
    sim.press(3, [0, 0, 0x07, 0, 0, 0, 0, 0]);
    serve(&mut usb, &sim, Duration::from_secs(3));
    assert_eq!(sim.device(1).requests.len(), asked, "nothing more is asked of it");
    assert!(logs::take().is_empty());
    // In either order: the controller serves the two slots as it likes.
    let reports: Vec<_> =
        sim.keyboard_events().into_iter().filter(|e| matches!(e, KeyboardEvent::Report(..))).collect();
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert!(reports.contains(&KeyboardEvent::Report(1, [0, 0, 0x06, 0, 0, 0, 0, 0])), "{reports:?}");
    assert!(reports.contains(&KeyboardEvent::Report(2, [0, 0, 0x07, 0, 0, 0, 0, 0])), "{reports:?}");
}

/// A keyboard whose SET_IDLE fails (`keyboard`) is still used, with the
/// one warning `warning`: it types, and its LEDs are set. After a stall its
/// control endpoint was halted and is reset; after a timeout the stopped
/// transfer is not taken for the answer to a later request.
fn failing_set_idle_still_types_and_gets_its_leds(keyboard: Device, warning: &str) {
    logs::capture();
    let sim = sim::controller(1, 0);
    sim.plug(1, keyboard);
    let mut usb = start(&sim);
    block_on(usb.scan());
    let lines = logs::take();
    assert_eq!(warnings(&lines), [warning]);
    assert!(lines.contains(
        &"INFO usb: port 1: keyboard 1 (0627:0001), boot protocol, endpoint 0x81 every 10 ms".into()
    ));
    let report = [0x02, 0, 0x04, 0, 0, 0, 0, 0];
    sim.press(1, report);
    serve(&mut usb, &sim, Duration::from_millis(50));
    assert_eq!(sim.keyboard_events().last(), Some(&KeyboardEvent::Report(1, report)));
    block_on(usb.set_keyboard_leds(1, 0b10));
    assert_eq!(sim.device(1).reports_set, [vec![0b10]]);
    block_on(usb.set_keyboard_leds(1, 0b11));
    assert_eq!(sim.device(1).reports_set, [vec![0b10], vec![0b11]]);
    assert!(warnings(&logs::take()).is_empty());
}

#[test]
fn a_keyboard_that_stalls_set_idle_types_and_gets_its_leds() {
    failing_set_idle_still_types_and_gets_its_leds(
        Device::keyboard(0x0627, 1).stalling(SET_IDLE, None),
        "WARN usb: port 1: keyboard 0627:0001: the device stalled SET_IDLE; it may repeat reports by itself",
    );
}

#[test]
fn a_keyboard_silent_on_set_idle_types_and_gets_its_leds() {
    failing_set_idle_still_types_and_gets_its_leds(
        Device::keyboard(0x0627, 1).silent_on(SET_IDLE, None),
        "WARN usb: port 1: keyboard 0627:0001: SET_IDLE timed out after 1000 ms; it may repeat reports by itself",
    );
}
