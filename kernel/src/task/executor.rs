//! A cooperative executor for the kernel's async tasks.
//!
//! Tasks are boxed futures with an id and a name. A task's waker pushes its
//! id onto a bounded lock-free queue (`crossbeam_queue::ArrayQueue`), which
//! is safe from interrupt handlers: no lock, no allocation. The executor
//! works in rounds: each polls the tasks that were ready when it began, so
//! a task that wakes itself waits for the others, then takes in spawned
//! tasks and wakes due sleepers ([`crate::time`]). When nothing is ready the
//! CPU sleeps until the next interrupt, with no window in which a wake-up
//! could be missed.
//!
//! An interrupt handler never frees memory: if it holds the last reference
//! to a task's waker (the task finished meanwhile), the waker is parked in
//! a fixed table and dropped by the executor's next round.

use crate::arch::interrupts;
use crate::console;
use crate::time;
use alloc::{boxed::Box, collections::BTreeMap, sync::Arc, task::Wake};
use core::future::Future;
use core::pin::Pin;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use core::task::{Context, Waker};
use crossbeam_queue::ArrayQueue;
use spin::Mutex;

/// Ready ids the queue holds; a wake-up that finds it full marks every task
/// ready instead of being lost.
const QUEUE_CAPACITY: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaskId(u64);

impl TaskId {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TaskId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

pub struct Task {
    id: TaskId,
    name: &'static str,
    future: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Task {
    pub fn new(name: &'static str, future: impl Future<Output = ()> + Send + 'static) -> Self {
        Self { id: TaskId::new(), name, future: Box::pin(future) }
    }
}

/// Where ready task ids wait; shared by the executor and every waker.
struct ReadyQueue {
    ids: ArrayQueue<TaskId>,
    overflowed: AtomicBool,
}

impl ReadyQueue {
    fn push(&self, id: TaskId) {
        if self.ids.push(id).is_err() {
            self.overflowed.store(true, Ordering::Release);
        }
    }
}

struct TaskWaker {
    id: TaskId,
    queue: Arc<ReadyQueue>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.queue.push(self.id);
        if interrupts::in_handler() {
            park(self);
        }
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.queue.push(self.id);
    }
}

/// Wakers an interrupt handler let go of, waiting to be dropped in task
/// context (by [`drop_parked`]).
static PARKED: [AtomicPtr<TaskWaker>; 32] = [const { AtomicPtr::new(ptr::null_mut()) }; 32];
/// Wakers that found PARKED full and were leaked rather than freed in a
/// handler, and how many of those were already reported.
static LEAKED: AtomicU64 = AtomicU64::new(0);
static LEAKS_REPORTED: AtomicU64 = AtomicU64::new(0);

/// Keeps `waker` from being dropped (and maybe freed) in a handler.
fn park(waker: Arc<TaskWaker>) {
    let raw = Arc::into_raw(waker).cast_mut();
    let parked = PARKED
        .iter()
        .any(|slot| slot.compare_exchange(ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Relaxed).is_ok());
    if !parked {
        LEAKED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Drops the wakers handlers parked; task context only.
fn drop_parked() {
    for slot in &PARKED {
        let raw = slot.swap(ptr::null_mut(), Ordering::AcqRel);
        if !raw.is_null() {
            // SAFETY: `park` stored a pointer from `Arc::into_raw`, and the
            // swap took it out, so it is turned back into an Arc once.
            drop(unsafe { Arc::from_raw(raw) });
        }
    }
    let leaked = LEAKED.load(Ordering::Relaxed);
    if leaked > LEAKS_REPORTED.swap(leaked, Ordering::Relaxed) {
        log::warn!(
            "executor: {leaked} task wakers leaked (woken by interrupts while the parking table was full)"
        );
    }
}

/// Times the idle loop halted the CPU, for `uptime` and the tests that check
/// that idle means halted, not spinning.
static IDLE_HALTS: AtomicU64 = AtomicU64::new(0);

pub fn idle_halts() -> u64 {
    IDLE_HALTS.load(Ordering::Relaxed)
}

/// Tasks spawned from other tasks (or before the executor runs), waiting to
/// be taken over by the executor.
static SPAWNED: Mutex<alloc::vec::Vec<Task>> = Mutex::new(alloc::vec::Vec::new());

/// Queues a task; the executor starts polling it on its next round. For
/// task context only (interrupt handlers never spawn), so the lock is an
/// ordinary one.
pub fn spawn(task: Task) {
    SPAWNED.lock().push(task);
}

/// The task being polled, for panic reports: its id (0: none) and name.
static CURRENT_ID: AtomicU64 = AtomicU64::new(0);
static CURRENT_NAME: Mutex<&str> = Mutex::new("");

/// The task being polled, if any: `(id, name)`. Safe to call while
/// panicking (it never waits for a lock).
pub fn current() -> Option<(u64, &'static str)> {
    let id = CURRENT_ID.load(Ordering::Relaxed);
    let name = CURRENT_NAME.try_lock().map_or("?", |name| *name);
    (id != 0).then_some((id, name))
}

pub struct Executor {
    tasks: BTreeMap<TaskId, (Task, Waker)>,
    queue: Arc<ReadyQueue>,
}

impl Executor {
    pub fn new() -> Self {
        let queue =
            Arc::new(ReadyQueue { ids: ArrayQueue::new(QUEUE_CAPACITY), overflowed: AtomicBool::new(false) });
        Self { tasks: BTreeMap::new(), queue }
    }

    /// Adds a task, ready to be polled.
    pub fn spawn(&mut self, task: Task) {
        let waker = Waker::from(Arc::new(TaskWaker { id: task.id, queue: Arc::clone(&self.queue) }));
        self.queue.push(task.id);
        self.tasks.insert(task.id, (task, waker));
    }

    /// One round: takes in spawned tasks, wakes due sleepers, then polls
    /// the tasks that are ready now, each once. Returns whether anything was
    /// polled.
    pub fn run_ready(&mut self) -> bool {
        drop_parked();
        let spawned = core::mem::take(&mut *SPAWNED.lock());
        for task in spawned {
            self.spawn(task);
        }
        time::wake_due();
        if self.queue.overflowed.swap(false, Ordering::Acquire) {
            for &id in self.tasks.keys() {
                self.queue.push(id);
            }
        }
        let mut polled = false;
        for _ in 0..self.queue.ids.len() {
            let Some(id) = self.queue.ids.pop() else { break };
            let Some((task, waker)) = self.tasks.get_mut(&id) else { continue };
            polled = true;
            CURRENT_ID.store(id.0, Ordering::Relaxed);
            *CURRENT_NAME.lock() = task.name;
            let result = task.future.as_mut().poll(&mut Context::from_waker(waker));
            CURRENT_ID.store(0, Ordering::Relaxed);
            if result.is_ready() {
                self.tasks.remove(&id);
            }
        }
        // The round's writers are done: what they wrote is shown.
        console::present();
        polled
    }

    /// Whether any task is ready, waiting to be spawned, or asleep past its
    /// deadline.
    pub fn has_work(&self) -> bool {
        !self.queue.ids.is_empty()
            || self.queue.overflowed.load(Ordering::Relaxed)
            || !SPAWNED.lock().is_empty()
            || time::sleeper_due()
    }

    /// Whether every task has run to completion.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Runs tasks forever, sleeping the CPU while none is ready.
    pub fn run(&mut self) -> ! {
        loop {
            self.run_ready();
            self.sleep_if_idle();
        }
    }

    /// Runs until `done` says so, sleeping while idle (for tests).
    pub fn run_until(&mut self, mut done: impl FnMut() -> bool) {
        while !done() {
            self.run_ready();
            if !done() {
                self.sleep_if_idle();
            }
        }
    }

    /// Halts until an interrupt when nothing is ready. Interrupts are off
    /// while the queue is checked and `sti; hlt` enables them and sleeps as
    /// one step, so a wake-up from an interrupt cannot slip in between.
    fn sleep_if_idle(&self) {
        use x86_64::instructions::interrupts as flag;
        flag::disable();
        if self.has_work() {
            flag::enable();
        } else {
            IDLE_HALTS.fetch_add(1, Ordering::Relaxed);
            flag::enable_and_hlt();
        }
    }
}

impl Default for Executor {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use core::task::Poll;
    use core::time::Duration;

    /// The spawn list, the sleepers and the clock are global: tests that
    /// run executors take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// Pending until polled `times` times, waking itself each time.
    struct Busy {
        times: usize,
        log: Arc<Mutex<Vec<&'static str>>>,
    }

    impl Future for Busy {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context) -> Poll<()> {
            if self.times == 0 {
                self.log.lock().push("busy done");
                return Poll::Ready(());
            }
            self.times -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[test]
    fn a_task_that_wakes_itself_does_not_starve_a_spawned_one() {
        let _serial = SERIAL.lock();
        let mut executor = Executor::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (parent_log, child_log) = (Arc::clone(&log), Arc::clone(&log));
        executor.spawn(Task::new("parent", async move {
            spawn(Task::new("child", async move { child_log.lock().push("child ran") }));
            Busy { times: 1000, log: parent_log }.await;
        }));
        while !executor.is_empty() {
            executor.run_ready();
        }
        assert_eq!(*log.lock(), ["child ran", "busy done"]);
    }

    #[test]
    fn hundreds_of_sleepers_all_wake_on_time() {
        let _serial = SERIAL.lock();
        time::start(1_000_000_000_000); // 1 ms ticks
        let mut executor = Executor::new();
        let woken = Arc::new(Mutex::new(Vec::new()));
        let start = time::ticks();
        for i in 0..200u64 {
            let woken = Arc::clone(&woken);
            executor.spawn(Task::new("sleeper", async move {
                time::sleep(Duration::from_millis(1 + i % 50)).await;
                woken.lock().push((i, time::ticks() - start));
            }));
        }
        executor.run_ready();
        for _ in 0..60 {
            time::tick();
            executor.run_ready();
        }
        let woken = woken.lock();
        assert_eq!(woken.len(), 200, "every sleeper woke");
        for &(i, at) in woken.iter() {
            assert_eq!(at, 1 + i % 50, "sleeper {i} woke at tick {at}");
        }
        assert!(executor.is_empty());
    }

    /// A future that is pending until its flag is set, then records `id`.
    struct WaitFor {
        flag: Arc<AtomicBool>,
        waker: Arc<Mutex<Option<Waker>>>,
    }

    impl Future for WaitFor {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context) -> Poll<()> {
            if self.flag.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *self.waker.lock() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[test]
    fn tasks_run_to_completion_in_spawn_order() {
        let _serial = SERIAL.lock();
        let mut executor = Executor::new();
        let order = Arc::new(Mutex::new(Vec::new()));
        for i in 0..5 {
            let order = Arc::clone(&order);
            executor.spawn(Task::new("t", async move { order.lock().push(i) }));
        }
        executor.run_ready();
        assert_eq!(*order.lock(), [0, 1, 2, 3, 4]);
        assert!(executor.tasks.is_empty());
    }

    #[test]
    fn a_woken_task_is_polled_again_and_only_then() {
        let _serial = SERIAL.lock();
        let mut executor = Executor::new();
        let flag = Arc::new(AtomicBool::new(false));
        let waker = Arc::new(Mutex::new(None));
        executor.spawn(Task::new("waiter", WaitFor { flag: Arc::clone(&flag), waker: Arc::clone(&waker) }));
        assert!(executor.run_ready());
        assert!(!executor.run_ready(), "polled without a wake-up");
        assert_eq!(executor.tasks.len(), 1);
        flag.store(true, Ordering::SeqCst);
        waker.lock().take().unwrap().wake();
        assert!(executor.has_work());
        executor.run_ready();
        assert!(executor.tasks.is_empty());
    }

    #[test]
    fn an_overflowing_ready_queue_loses_no_task() {
        let _serial = SERIAL.lock();
        let mut executor = Executor::new();
        let queue = Arc::clone(&executor.queue);
        executor.spawn(Task::new("t", async {}));
        for _ in 0..QUEUE_CAPACITY + 10 {
            queue.push(TaskId(999));
        }
        assert!(queue.overflowed.load(Ordering::SeqCst));
        executor.run_ready();
        assert!(executor.tasks.is_empty());
    }
}
