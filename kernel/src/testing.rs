//! Helpers shared by the host tests.

/// A deterministic xorshift generator: the same sequence on every machine,
/// so a failing random test repeats.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len())]
    }
}

/// What the code under test logged on this thread, for tests that check the
/// lines a user reads. Each test runs on its own thread, so each sees only
/// its own records.
pub mod logs {
    use std::cell::RefCell;
    use std::sync::Once;

    std::thread_local! {
        static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    struct Capture;

    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata) -> bool {
            true
        }

        fn log(&self, record: &log::Record) {
            let line = format!("{} {}", record.level(), record.args());
            LINES.with(|lines| lines.borrow_mut().push(line));
        }

        fn flush(&self) {}
    }

    /// Starts capturing (the logger is installed once per process).
    pub fn capture() {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            log::set_logger(&Capture).expect("no other logger in the host tests");
            log::set_max_level(log::LevelFilter::Trace);
        });
        LINES.with(|lines| lines.borrow_mut().clear());
    }

    /// The lines logged since [`capture`] or the last call, as
    /// "LEVEL message".
    pub fn take() -> Vec<String> {
        LINES.with(|lines| core::mem::take(&mut *lines.borrow_mut()))
    }
}
