//! Where the kernel's text goes: always the serial line (COM1), and one screen
//! console: the framebuffer, the VGA text buffer, or none.
//!
//! `print!`/`println!` write to both. `log` records always go to serial and
//! reach the screen from a level set with `loglevel=` on the command line
//! (default info). The screen's text passes through an ANSI terminal, so
//! colours and cursor movement work on every screen console alike.
//!
//! Locking: drawing a screen update can take long, so the screen's lock is
//! held with interrupts on. An interrupt handler therefore never waits for
//! it: what a handler prints reaches the screen only if the lock is free
//! (serial always gets it). Exceptions can strike inside a locked section:
//! fatal ones print through [`print_fatal`], which takes the locks over (the
//! interrupted code never resumes); a breakpoint, which returns, prints
//! through [`try_print`]. Both reach the CPU layer as its registered
//! reporter.

pub mod framebuffer;
pub mod grid;
pub mod logger;
#[cfg(test)]
mod render_tests;
pub mod terminal;
pub mod vga_text;

pub use look::{charset, color, font};

use crate::arch::interrupts;
use crate::arch::x86_64::fatal::{self, Reporter};
use crate::boot::{self, BootInfo, Firmware};
use crate::drivers::{uart, vga};
use crate::mem::{self, early};
use crate::time;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use font::Font;
use framebuffer::{Memory, Mode, Renderer, Unusable};
use grid::{Cell, Grid, Span};
use spin::Mutex;
use terminal::Terminal;
use vga_text::VgaText;

/// The screen console: a terminal and the device showing it.
struct Screen {
    terminal: Terminal<'static>,
    output: Output,
    coalescer: Coalescer,
    /// Serial output written after text not yet presented: it waits for
    /// that text to be on screen.
    held: Held,
}

/// Decides when text written to the grid is presented (drawn to the
/// screen). Presenting after every write costs a screen update per log
/// line; a scroll alone moves most of the picture. So once output is
/// coalesced, a write is presented at once only when a timer tick has passed
/// since the last presentation; otherwise it waits for the next tick's
/// write or for the executor's round to end ([`present`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coalescer {
    /// The tick of the last presentation.
    presented: u64,
    /// Whether something written is not presented yet.
    pending: bool,
}

impl Coalescer {
    pub const fn new() -> Self {
        Self { presented: 0, pending: false }
    }

    /// After a write at tick `now`: whether to present it now. `defer` says
    /// whether the write may wait at all.
    pub fn after_write(&mut self, now: u64, defer: bool) -> bool {
        self.pending = defer && now == self.presented;
        !self.pending
    }

    /// Records a presentation at tick `now`.
    pub fn presented(&mut self, now: u64) {
        self.presented = now;
        self.pending = false;
    }

    /// Whether something written waits to be presented.
    pub fn pending(&self) -> bool {
        self.pending
    }
}

impl Default for Coalescer {
    fn default() -> Self {
        Self::new()
    }
}

/// Serial bytes held back until the screen shows the text before them.
struct Held {
    bytes: [u8; HELD_BYTES],
    len: usize,
}

/// Serial output held at most; more presents the screen first. About 80
/// log lines, more than a screenful between two ticks.
const HELD_BYTES: usize = 8192;

impl Held {
    const EMPTY: Held = Held { bytes: [0; HELD_BYTES], len: 0 };

    /// Appends `args` whole, or nothing when they do not fit.
    fn append(&mut self, args: fmt::Arguments) -> bool {
        let before = self.len;
        if self.write_fmt(args).is_err() {
            self.len = before;
            return false;
        }
        true
    }

    /// The bytes held; whole formatted strings were appended, so whole
    /// characters.
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }

    /// Sends the bytes held to serial and forgets them. The screen's lock
    /// is held, which the logger takes: nothing may be logged.
    fn release(&mut self) {
        if self.len > 0 {
            uart::write_str_unlogged(self.as_str());
            self.len = 0;
        }
    }
}

impl Write for Held {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.bytes.get_mut(self.len..self.len + s.len()).ok_or(fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

#[expect(clippy::large_enum_variant, reason = "one instance, in a static: no heap to box it in")]
enum Output {
    Framebuffer(Renderer<'static>),
    VgaText(VgaText),
}

impl Screen {
    fn new(terminal: Terminal<'static>, output: Output) -> Self {
        Self { terminal, output, coalescer: Coalescer::new(), held: Held::EMPTY }
    }

    /// Draws what was written, then sends the serial output that waited
    /// for it.
    fn present(&mut self) {
        self.update();
        self.coalescer.presented(time::ticks());
        self.held.release();
    }

    /// After a write: presents it, unless it may wait (see [`Coalescer`]).
    fn written(&mut self) {
        let defer = COALESCING.load(Ordering::Relaxed)
            && !interrupts::in_handler()
            && x86_64::instructions::interrupts::are_enabled();
        if self.coalescer.after_write(time::ticks(), defer) {
            self.present();
        }
    }

    /// Holds serial output `args`, which follows what was written to the
    /// screen, while that is not presented. False when the caller is to
    /// send it, once the screen's lock is released: the screen shows all
    /// that was written (presented now if the hold was full).
    fn hold(&mut self, args: fmt::Arguments) -> bool {
        if !self.coalescer.pending() {
            return false;
        }
        if self.held.append(args) {
            return true;
        }
        self.present();
        false
    }

    fn update(&mut self) {
        let grid = self.terminal.grid_mut();
        match &mut self.output {
            Output::Framebuffer(renderer) => renderer.update(grid),
            Output::VgaText(vga) => vga.update(grid),
        }
    }
}

impl Write for Screen {
    /// New output brings a scrolled-back view to the bottom first: what is
    /// printed is seen.
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let grid = self.terminal.grid_mut();
        grid.scroll_view(-(grid.view() as isize));
        self.terminal.write(s.as_bytes());
        Ok(())
    }
}

/// The screen lives in boot memory: as a value here its `None` is no zero
/// bytes, which put all 11 KiB of it into the kernel image.
static SCREEN: Mutex<Option<&'static mut Screen>> = Mutex::new(None);
/// Whether screen output may wait for the next tick or the end of the
/// executor's round ([`coalesce_output`]).
static COALESCING: AtomicBool = AtomicBool::new(false);
/// Lines of scrollback asked for (`scrollback=`), read when the grid is made.
static SCROLLBACK_LINES: AtomicUsize = AtomicUsize::new(DEFAULT_SCROLLBACK);
/// Lines of scrollback when `scrollback=` does not say.
pub const DEFAULT_SCROLLBACK: usize = 1000;
/// The most `scrollback=` gets: its boot memory is never given back, so a
/// typing error must not take the machine's memory.
pub const MAX_SCROLLBACK: usize = 100_000;
/// Whether COM1 answered its probe at boot, or why not.
static SERIAL: spin::Once<Result<(), uart::ProbeError>> = spin::Once::new();

/// Brings up COM1, routes `log` records to it and becomes the CPU layer's
/// reporter. Call right after the CPU tables, so that every later message,
/// including a failed boot check or an early fault, is seen.
pub fn init() {
    SERIAL.call_once(uart::init);
    logger::init();
    fatal::set_reporter(Reporter { fatal: print_fatal, trap: try_print, last_words: uart::write_str_fatal });
}

/// The screen console chosen for a boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Framebuffer,
    /// VGA text; `switch` when the adapter is in a graphics mode and must be
    /// put back into text mode first.
    VgaText {
        switch: bool,
    },
    SerialOnly,
}

/// Picks the screen console: the framebuffer when there is one, VGA text on
/// BIOS machines without one or when `console=vga` asks for it. VGA text mode
/// does not exist under UEFI, so there `console=vga` is refused.
pub fn choose(firmware: Firmware, has_framebuffer: bool, wants_vga: bool) -> Choice {
    match (firmware, has_framebuffer, wants_vga) {
        (Firmware::Bios, has_framebuffer, true) => Choice::VgaText { switch: has_framebuffer },
        (_, true, _) => Choice::Framebuffer,
        (Firmware::Bios, false, false) => Choice::VgaText { switch: false },
        _ => Choice::SerialOnly,
    }
}

/// Sets up the screen console for this boot and logs the choice. Needs
/// boot memory ([`early`]) for the framebuffer's back buffer and the grid.
pub fn init_screen(info: &BootInfo) {
    logger::set_screen_level(info.option("loglevel"));
    let lines = match info.option("scrollback").map(str::parse::<usize>) {
        None => DEFAULT_SCROLLBACK,
        Some(Ok(lines)) => lines.min(MAX_SCROLLBACK),
        Some(Err(_)) => {
            log::warn!("scrollback= takes a number of lines; keeping {DEFAULT_SCROLLBACK}");
            DEFAULT_SCROLLBACK
        }
    };
    SCROLLBACK_LINES.store(lines, Ordering::Relaxed);
    install_screen(info);
    if let Some(Err(error)) = SERIAL.get() {
        log::warn!(
            "no serial port at COM1 ({error}): output goes to the screen only, and there is no serial input"
        );
    }
}

fn install_screen(info: &BootInfo) {
    let wants_vga = match info.option("console") {
        Some("vga") => true,
        None | Some("auto") => false,
        Some(other) => {
            log::warn!("unknown console={other} (expected vga or auto); choosing automatically");
            false
        }
    };
    if wants_vga && info.firmware != Firmware::Bios {
        log::warn!(
            "console=vga refused: {} firmware has no VGA text mode; keeping the framebuffer",
            info.firmware
        );
    }
    let mut choice = choose(info.firmware, info.framebuffer.is_some(), wants_vga);
    if choice == Choice::Framebuffer {
        let result = info.framebuffer.as_ref().map(|fb| framebuffer_screen(fb, info.option("font")));
        choice = instead_of_framebuffer(info.firmware);
        match result {
            Some(Ok(())) => return,
            Some(Err(reason)) => log::warn!(
                "framebuffer unusable: {reason}; {}",
                match choice {
                    Choice::VgaText { .. } => "using VGA text mode instead",
                    _ => "the console is on serial only",
                }
            ),
            None => {}
        }
    }
    match choice {
        Choice::VgaText { switch } => {
            if let Err(reason) = vga_screen(switch) {
                log::warn!("VGA text unusable: {reason}; console on serial only");
            }
        }
        _ => log::info!(
            "no screen (no usable framebuffer, and no VGA text mode on {}); serial only",
            info.firmware
        ),
    }
}

/// The console when the framebuffer cannot be used: VGA text on BIOS,
/// switched back from the graphics mode Limine set, else none.
pub fn instead_of_framebuffer(firmware: Firmware) -> Choice {
    match choose(firmware, false, false) {
        Choice::VgaText { .. } => Choice::VgaText { switch: true },
        other => other,
    }
}

fn install(screen: Screen) -> Result<(), &'static str> {
    let screen = early::alloc_value(screen).ok_or("out of boot memory for the console")?;
    screen.present();
    *SCREEN.lock() = Some(screen);
    Ok(())
}

fn grid(cols: usize, rows: usize) -> Result<Grid<'static>, &'static str> {
    let cells = early::alloc_slice(cols * rows, Cell::BLANK).ok_or("out of boot memory for the text grid")?;
    let spans = early::alloc_slice(rows, Span::EMPTY).ok_or("out of boot memory for the text grid")?;
    let alternate =
        early::alloc_slice(cols * rows, Cell::BLANK).ok_or("out of boot memory for the text grid")?;
    let grid = Grid::new(cols, rows, cells, spans).with_alternate(alternate);
    // Less scrollback when boot memory cannot hold what was asked for.
    let mut lines = SCROLLBACK_LINES.load(Ordering::Relaxed);
    while lines > 0 {
        if let Some(history) = lines.checked_mul(cols).and_then(early::alloc_uninit) {
            return Ok(grid.with_history(history));
        }
        lines /= 2;
    }
    log::warn!("no boot memory for a scrollback");
    Ok(grid)
}

/// Where to move the screen's view of the scrollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scroll {
    /// Lines back (negative: forward).
    Lines(isize),
    /// Screens back (negative: forward), each a line short of the screen's
    /// height so that one line stays in view.
    Pages(isize),
    /// Back to the live screen.
    Bottom,
}

/// Moves the screen's view through the scrollback; any output brings it
/// back to the bottom.
pub fn scroll_view(scroll: Scroll) {
    if let Some(screen) = SCREEN.lock().as_mut() {
        let grid = screen.terminal.grid_mut();
        let lines = match scroll {
            Scroll::Lines(lines) => lines,
            Scroll::Pages(pages) => pages.saturating_mul(grid.rows().saturating_sub(1).max(1) as isize),
            Scroll::Bottom => -(grid.view() as isize),
        };
        if lines != 0 {
            grid.scroll_view(lines);
            screen.present();
        }
    }
}

/// The scrollback's size: lines it holds at most and holds now, and the
/// boot memory it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrollbackStats {
    pub capacity: usize,
    pub used: usize,
    pub bytes: usize,
}

/// The screen's scrollback, when there is a screen.
pub fn scrollback_stats() -> Option<ScrollbackStats> {
    SCREEN.lock().as_ref().map(|screen| {
        let grid = screen.terminal.grid();
        let (capacity, used) = grid.history_lines();
        ScrollbackStats { capacity, used, bytes: capacity * grid.cols() * size_of::<Cell>() }
    })
}

/// Why the framebuffer console could not be set up.
enum Refusal {
    Mode(Unusable),
    Resources(&'static str),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Refusal::Mode(unusable) => unusable.fmt(f),
            Refusal::Resources(reason) => f.write_str(reason),
        }
    }
}

/// Installs the framebuffer console in the font `font=` asks for or the
/// screen's size suggests, or says why it cannot be used. Boot memory
/// carved for a console that then fails is given back.
fn framebuffer_screen(fb: &boot::Framebuffer, font_option: Option<&str>) -> Result<(), Refusal> {
    let mode = Mode::new((fb.width, fb.height, fb.pitch), fb.bpp, (fb.red, fb.green, fb.blue))
        .map_err(Refusal::Mode)?;
    let (font, refused) = font::choose(font_option, mode.width, mode.height);
    if let Some(refused) = refused {
        log::warn!("{refused}; using the automatic choice, {font}");
    }
    let mark = early::mark();
    if let Err(reason) = build_framebuffer_screen(mode, font).and_then(install) {
        // SAFETY: what was carved since the mark went with the failed
        // attempt; nothing holds it.
        unsafe { early::release_to(mark) };
        return Err(Refusal::Resources(reason));
    }
    let (cols, rows) = font.grid(mode.width, mode.height);
    log::info!(
        "framebuffer {}x{}, {} bpp, pitch {}: font {font}, {cols}x{rows} characters, {} KiB of boot memory",
        fb.width,
        fb.height,
        fb.bpp,
        fb.pitch,
        early::used() / 1024
    );
    Ok(())
}

fn build_framebuffer_screen(mode: Mode, font: Font) -> Result<Screen, &'static str> {
    let (cols, rows) = font.grid(mode.width, mode.height);
    let needs = Renderer::needs(mode, font);
    let memory = (|| {
        Some(Memory {
            back: early::alloc_buffer(needs.back)?,
            shown: early::alloc_slice(needs.cells, Cell::BLANK)?,
            dirty: early::alloc_slice(needs.rows, Span::EMPTY)?,
            cached: early::alloc_slice(needs.cache_slots, Cell::BLANK)?,
            glyphs: early::alloc_bytes(needs.glyphs)?,
        })
    })()
    .ok_or("out of boot memory for the back buffer and glyph cache")?;
    let glyphs = early::alloc_bytes(font.glyphs_bytes()).ok_or("out of boot memory for the font")?;
    let terminal = Terminal::new(grid(cols, rows)?);
    let video = boot::take_framebuffer_memory().ok_or("the framebuffer is already in use")?;
    let screen = mem::map_framebuffer(video).map_err(|error| {
        log::warn!("mapping the framebuffer: {error:?}");
        "its memory cannot be mapped"
    })?;
    let mut renderer = Renderer::new(mode, font.glyphs(glyphs), memory, screen);
    renderer.clear(color::DEFAULT_BG);
    Ok(Screen::new(terminal, Output::Framebuffer(renderer)))
}

/// Installs the VGA text console, or says why it cannot be used.
fn vga_screen(switch: bool) -> Result<(), &'static str> {
    let adapter = vga::adapter();
    if adapter.is_none() && switch {
        return Err("no VGA-compatible display adapter on PCI");
    }
    if let Some(device) = adapter {
        let mark = early::mark();
        let glyphs =
            early::alloc_bytes(Font::SMALLEST.glyphs_bytes()).ok_or("out of boot memory for the font")?;
        vga::set_text_mode(device, &vga_text::font(&mut Font::SMALLEST.glyphs(glyphs)), &vga_text::palette());
        // SAFETY: the glyphs carved since the mark were only read to make
        // the text mode's font, which the adapter now holds.
        unsafe { early::release_to(mark) };
    }
    let buffer = vga::TextBuffer::take(adapter.is_some()).ok_or("the text buffer is already in use")?;
    install(Screen::new(Terminal::new(grid(vga::COLS, vga::ROWS)?), Output::VgaText(VgaText::new(buffer))))?;
    match adapter {
        Some(device) => {
            let family = vga::family(device);
            log::info!(
                "VGA text 80x25 on {:04x}:{:04x} ({family:?}){}",
                device.vendor,
                device.device,
                if switch { ", switched back from the graphics mode Limine set" } else { "" }
            );
            if family == vga::Family::Other && switch {
                log::warn!(
                    "this adapter is not known to leave graphics mode through the VGA registers alone"
                );
            }
        }
        None => log::info!("VGA text 80x25 (no display adapter found: the buffer is not shown)"),
    }
    Ok(())
}

/// Formats to every console; the backend of [`print!`](crate::print). The
/// screen comes first: once a line is on serial, it is also on screen, which
/// is what the test runner relies on before reading the screen back. When
/// the screen's presentation waits (see [`Coalescer`]), so does serial.
pub fn print(args: fmt::Arguments) {
    let held = lock_screen().as_mut().and_then(|screen| screen.as_mut()).is_some_and(|screen| {
        let _ = screen.write_fmt(args);
        screen.written();
        screen.hold(args)
    });
    if !held {
        uart::write_fmt(args);
    }
}

/// Formats to the serial console only: test progress and other output the
/// screen should not show. It still waits for screen output written before
/// it to be presented.
pub fn print_serial(args: fmt::Arguments) {
    let held =
        lock_screen().as_mut().and_then(|screen| screen.as_mut()).is_some_and(|screen| screen.hold(args));
    if !held {
        uart::write_fmt(args);
    }
}

/// Formats to the screen console only: for bulk output that would flood the
/// serial log.
pub fn print_screen(args: fmt::Arguments) {
    if let Some(screen) = lock_screen().as_mut().and_then(|screen| screen.as_mut()) {
        let _ = screen.write_fmt(args);
        screen.written();
    }
}

/// The screen's lock: waited for in task context, only tried in an
/// interrupt handler (see the module's notes).
fn lock_screen() -> Option<spin::MutexGuard<'static, Option<&'static mut Screen>>> {
    if interrupts::in_handler() { SCREEN.try_lock() } else { Some(SCREEN.lock()) }
}

/// Output from now on may wait to be presented until a timer tick has
/// passed or the executor's round ends; the executor calls [`present`] at
/// the end of each round.
pub fn coalesce_output() {
    COALESCING.store(true, Ordering::Relaxed);
}

/// Every write is presented at once again, and what waits is presented
/// now: for paths that end the machine (a reboot) without the executor.
pub fn stop_coalescing() {
    COALESCING.store(false, Ordering::Relaxed);
    present();
}

/// Presents what was written to the screen and not presented yet, and
/// sends the serial output that waited for it.
pub fn present() {
    if let Some(screen) = lock_screen().as_mut().and_then(|screen| screen.as_mut())
        && screen.coalescer.pending()
    {
        screen.present();
    }
}

/// Prints to each console whose lock is free. For traps that return (a
/// breakpoint), which can strike inside code holding a console lock: waiting
/// for that lock would never end.
///
/// The screen is drawn, but serial output held for it stays held: the
/// serial port's lock may be taken too. It goes at the next presentation.
pub fn try_print(args: fmt::Arguments) {
    if let Some(mut screen) = SCREEN.try_lock()
        && let Some(screen) = screen.as_mut()
    {
        let _ = screen.write_fmt(args);
        screen.update();
    }
    uart::try_write_fmt(args);
}

/// The framebuffer console's font, when the screen is a framebuffer (tests
/// compare its pixels with the font).
pub fn framebuffer_font() -> Option<Font> {
    SCREEN.lock().as_ref().and_then(|screen| match &screen.output {
        Output::Framebuffer(renderer) => Some(renderer.font()),
        Output::VgaText(_) => None,
    })
}

/// Runs `f` on the screen's text grid (tests check what is on screen).
pub fn with_grid<R>(f: impl FnOnce(&Grid) -> R) -> Option<R> {
    SCREEN.lock().as_ref().map(|screen| f(screen.terminal.grid()))
}

/// Writes a panic or fatal exception report in red on the screen and plainly on serial, even if
/// the panic struck while either console's lock was held. Serial output held
/// back for the screen goes out first.
///
/// # Safety
/// Only for fatal paths: the interrupted code never runs again and no
/// other CPU is running.
pub unsafe fn print_fatal(args: fmt::Arguments) {
    x86_64::instructions::interrupts::disable();
    if SCREEN.is_locked() {
        // SAFETY: per this function's contract the holder never runs again.
        unsafe { SCREEN.force_unlock() };
    }
    let mut screen = SCREEN.lock();
    if let Some(screen) = screen.as_mut() {
        // SAFETY: per this function's contract.
        unsafe { uart::write_fmt_fatal(format_args!("{}", screen.held.as_str())) };
        screen.held.len = 0;
    }
    // SAFETY: per this function's contract.
    unsafe { uart::write_fmt_fatal(args) };
    if let Some(screen) = screen.as_mut() {
        screen.terminal.reset_state();
        let _ = write!(screen, "\x1b[91m{args}\x1b[0m");
        screen.update();
        screen.coalescer.presented(time::ticks());
    }
}

/// Prints to the kernel's consoles.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::console::print(format_args!($($arg)*)));
}

/// Prints a line to the kernel's consoles.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::console::print(format_args!("{}\n", format_args!($($arg)*))));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_wait_for_the_next_tick_only_when_they_may() {
        let mut coalescer = Coalescer::new();
        assert!(coalescer.after_write(0, false), "not coalescing: presented at once");
        coalescer.presented(0);
        assert!(!coalescer.after_write(0, true), "the same tick: it waits");
        assert!(coalescer.pending());
        assert!(!coalescer.after_write(0, true));
        assert!(coalescer.after_write(1, true), "a tick later: presented");
        coalescer.presented(1);
        assert!(!coalescer.pending());
        assert!(!coalescer.after_write(1, true));
        assert!(coalescer.after_write(1, false), "a write that may not wait presents what waited too");
    }

    #[test]
    fn held_output_is_appended_whole_or_not_at_all() {
        let mut held = Held::EMPTY;
        assert!(held.append(format_args!("{}", "a".repeat(HELD_BYTES - 1))));
        assert!(!held.append(format_args!("{}{}", "b", "c")));
        assert_eq!(held.len, HELD_BYTES - 1);
        assert!(held.append(format_args!("d")));
    }

    #[test]
    fn framebuffer_is_preferred_unless_vga_is_asked_for_on_bios() {
        assert_eq!(choose(Firmware::Bios, true, false), Choice::Framebuffer);
        assert_eq!(choose(Firmware::Uefi64, true, false), Choice::Framebuffer);
        assert_eq!(choose(Firmware::Bios, true, true), Choice::VgaText { switch: true });
    }

    #[test]
    fn bios_without_framebuffer_uses_vga_text_as_is() {
        assert_eq!(choose(Firmware::Bios, false, false), Choice::VgaText { switch: false });
        assert_eq!(choose(Firmware::Bios, false, true), Choice::VgaText { switch: false });
    }

    #[test]
    fn an_unusable_framebuffer_gives_way_to_vga_text_or_serial() {
        assert_eq!(instead_of_framebuffer(Firmware::Bios), Choice::VgaText { switch: true });
        assert_eq!(instead_of_framebuffer(Firmware::Uefi64), Choice::SerialOnly);
    }

    #[test]
    fn uefi_refuses_vga_and_has_only_serial_without_framebuffer() {
        assert_eq!(choose(Firmware::Uefi64, true, true), Choice::Framebuffer);
        assert_eq!(choose(Firmware::Uefi64, false, true), Choice::SerialOnly);
        assert_eq!(choose(Firmware::Uefi64, false, false), Choice::SerialOnly);
    }
}
