//! The framebuffer console rendering into an in-memory 1280x800x32
//! framebuffer, each figure also as a ratio to copying the whole framebuffer
//! with `copy_from_slice` (memcpy), measured in the same run; and a full
//! screen of text on a 3840x2160 one, in the larger font the kernel picks
//! there.

use kernel::boot::ColorMask;
use kernel::console::Coalescer;
use kernel::console::font::Font;
use kernel::console::framebuffer::{Memory, Mode, PixelFormat, Renderer};
use kernel::console::grid::{Cell, Grid, Span};
use kernel::console::terminal::Terminal;
use std::hint::black_box;
use std::time::{Duration, Instant};

pub fn run() {
    let (mut renderer, mut terminal, memcpy) = console(1280, 800);
    let (cols, rows) = (terminal.grid().cols(), terminal.grid().rows());
    let glyphs = cols * rows;
    let pages = plain_pages(cols, rows);
    let colored_pages: Vec<Vec<u8>> = (0..4)
        .map(|page| {
            let mut text = b"\x1b[H".to_vec();
            for row in 0..rows {
                for word in 0..cols / 7 {
                    let color = 31 + (word + row + page) % 7;
                    let ch = (b'a' + ((word + page * 5) % 26) as u8) as char;
                    text.extend(format!("\x1b[{color}m{}", ch.to_string().repeat(7)).bytes());
                }
                text.extend(b"\x1b[0m");
            }
            text
        })
        .collect();

    let mut page = 0;
    let plain = per_run(|| {
        page += 1;
        terminal.write(&pages[page % pages.len()]);
        renderer.update(terminal.grid_mut());
    });
    report("full screen of new plain text", plain, memcpy, glyphs, Some(4.0));

    let colored = per_run(|| {
        page += 1;
        terminal.write(&colored_pages[page % colored_pages.len()]);
        renderer.update(terminal.grid_mut());
    });
    report("full screen of text with colour escapes", colored, memcpy, glyphs, None);

    let log_lines = scroll_cost(&mut terminal, &mut renderer, |n| {
        format!("\x1b[32mINFO \x1b[0m kernel::console: line {n:06} of the log, scrolling")
    });
    report_scroll("scroll by one line (log-like lines)", log_lines, memcpy);
    let distinct = scroll_cost(&mut terminal, &mut renderer, |n| {
        (0..cols).map(|c| (b'!' + ((c * 7 + n * 13) % 90) as u8) as char).collect()
    });
    report_scroll("scroll by one line (every cell changes)", distinct, memcpy);

    // A screenful of 100-character log lines, each written and flushed as
    // the logger does: presented after every line, and coalesced (presented
    // once a 1 kHz tick has passed, and when the writer is done).
    let log: Vec<Vec<u8>> = (0..4096)
        .map(|n| {
            let text = format!("kernel::task: record {n:06} of the log, a line of a hundred characters");
            format!("\n\x1b[32mINFO \x1b[0m {text:<94}").into_bytes()
        })
        .collect();
    let mut n = 0;
    let every_line = per_run(|| {
        for _ in 0..rows {
            n += 1;
            terminal.write(&log[n % log.len()]);
            renderer.update(terminal.grid_mut());
        }
    });
    report_lines("log lines, each presented", every_line, memcpy, rows, None);
    let start = Instant::now();
    let tick = || start.elapsed().as_millis() as u64;
    let mut coalescer = Coalescer::new();
    let coalesced = per_run(|| {
        for _ in 0..rows {
            n += 1;
            terminal.write(&log[n % log.len()]);
            if coalescer.after_write(tick(), true) {
                renderer.update(terminal.grid_mut());
                coalescer.presented(tick());
            }
        }
        if coalescer.pending() {
            renderer.update(terminal.grid_mut());
            coalescer.presented(tick());
        }
    });
    report_lines("log lines, coalesced per tick", coalesced, memcpy, rows, Some(60.0));

    let (mut renderer, mut terminal, memcpy) = console(3840, 2160);
    let (cols, rows) = (terminal.grid().cols(), terminal.grid().rows());
    let pages = plain_pages(cols, rows);
    let plain = per_run(|| {
        page += 1;
        terminal.write(&pages[page % pages.len()]);
        renderer.update(terminal.grid_mut());
    });
    report("full screen of new plain text", plain, memcpy, cols * rows, None);
}

/// A console on a `width` x `height` x 32 framebuffer in RAM, in the font
/// the kernel picks for it, and the time of a memcpy of that framebuffer;
/// prints what it measures.
fn console(width: usize, height: usize) -> (Renderer<'static>, Terminal<'static>, Duration) {
    let format = PixelFormat::new(
        32,
        ColorMask { size: 8, shift: 16 },
        ColorMask { size: 8, shift: 8 },
        ColorMask { size: 8, shift: 0 },
    )
    .expect("XRGB8888");
    let mode = Mode { width, height, pitch: width * 4, format };
    let font = Font::for_screen(width, height);
    let (cols, rows) = font.grid(width, height);
    let leak = |n: usize| -> &'static mut [u8] { Box::leak(vec![0u8; n].into_boxed_slice()) };
    let cells = |n: usize| -> &'static mut [Cell] { Box::leak(vec![Cell::BLANK; n].into_boxed_slice()) };
    let spans = |n: usize| -> &'static mut [Span] { Box::leak(vec![Span::EMPTY; n].into_boxed_slice()) };

    let source = leak(mode.bytes());
    source.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    let target = leak(mode.bytes());
    let memcpy = per_run(|| {
        target.copy_from_slice(black_box(&source[..]));
        black_box(&target[..]);
    });

    let needs = Renderer::needs(mode, font);
    let memory = Memory {
        back: leak(needs.back),
        shown: cells(needs.cells),
        dirty: spans(needs.rows),
        cached: cells(needs.cache_slots),
        glyphs: leak(needs.glyphs),
    };
    let renderer = Renderer::new(mode, font.glyphs(leak(font.glyphs_bytes())), memory, leak(mode.bytes()));
    let terminal = Terminal::new(Grid::new(cols, rows, cells(cols * rows), spans(rows)));
    println!(
        "console benchmark: {width}x{height}x32, font {font}, {cols}x{rows} characters ({} per screen)",
        cols * rows
    );
    println!("  memcpy of the framebuffer ({} KiB)       {:>9.3} ms", mode.bytes() / 1024, ms(memcpy));
    (renderer, terminal, memcpy)
}

/// Four screenfuls of text that fill the screen from the top left, each
/// differing from the last in every cell; prepared beforehand so that only
/// the console is timed.
fn plain_pages(cols: usize, rows: usize) -> Vec<Vec<u8>> {
    (0..4)
        .map(|page| {
            let mut text = b"\x1b[H".to_vec();
            for row in 0..rows {
                text.extend((0..cols).map(|c| b'!' + ((c + row + page * 23) % 90) as u8));
            }
            text
        })
        .collect()
}

/// A screenful of `lines` lines: glyphs per second and the ratio to memcpy,
/// against `goal` when there is one.
fn report_lines(what: &str, time: Duration, memcpy: Duration, lines: usize, goal: Option<f64>) {
    let rate = (lines * 100) as f64 / time.as_secs_f64() / 1e6;
    let ratio = time.as_secs_f64() / memcpy.as_secs_f64();
    println!(
        "  {what:<40} {:>9.3} ms  {rate:>7.1} M glyphs/s  {ratio:>5.1}x memcpy per screenful{}",
        ms(time),
        goal_text(goal)
    );
}

/// Fills the screen with `line(n)` lines, then times printing one more
/// (lines prepared beforehand).
fn scroll_cost(terminal: &mut Terminal, renderer: &mut Renderer, line: impl Fn(usize) -> String) -> Duration {
    let lines: Vec<Vec<u8>> = (0..4096).map(|n| format!("\n{}", line(n)).into_bytes()).collect();
    let mut n = 0;
    for _ in 0..terminal.grid().rows() {
        n += 1;
        terminal.write(&lines[n % lines.len()]);
    }
    renderer.update(terminal.grid_mut());
    per_run(|| {
        n += 1;
        terminal.write(&lines[n % lines.len()]);
        renderer.update(terminal.grid_mut());
    })
}

/// Mean time of `f` over at least 0.5 s of runs, after a warm-up run.
fn per_run(mut f: impl FnMut()) -> Duration {
    f();
    let start = Instant::now();
    let mut runs = 0u32;
    while start.elapsed() < Duration::from_millis(500) || runs < 5 {
        f();
        runs += 1;
    }
    start.elapsed() / runs
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(what: &str, time: Duration, memcpy: Duration, glyphs: usize, goal: Option<f64>) {
    let rate = glyphs as f64 / time.as_secs_f64() / 1e6;
    let ratio = time.as_secs_f64() / memcpy.as_secs_f64();
    println!(
        "  {what:<40} {:>9.3} ms  {rate:>7.1} M glyphs/s  {ratio:>5.2}x memcpy{}",
        ms(time),
        goal_text(goal)
    );
}

/// The goal for a ratio to memcpy, as the figures print it.
fn goal_text(goal: Option<f64>) -> String {
    goal.map_or(String::new(), |goal| format!("  (goal <= {goal}x)"))
}

fn report_scroll(what: &str, time: Duration, memcpy: Duration) {
    let ratio = time.as_secs_f64() / memcpy.as_secs_f64();
    println!("  {what:<40} {:>9.3} ms  {:>22} {ratio:>5.2}x memcpy", ms(time), "");
}
