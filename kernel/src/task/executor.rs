//! A cooperative executor for the kernel's async tasks.
//!
//! Tasks are boxed futures with an id and a name. A task's waker pushes its
//! id onto a bounded lock-free queue (`crossbeam_queue::ArrayQueue`), which
//! is safe from interrupt handlers: no lock, no allocation. The executor
//! polls the tasks whose ids it pops; tasks spawned by tasks are picked up
//! on the next round. When nothing is ready the CPU sleeps until the next
//! interrupt, with no window in which a wake-up could be missed.

use alloc::{boxed::Box, collections::BTreeMap, sync::Arc, task::Wake};
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.queue.push(self.id);
    }
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

    /// Polls every ready task once, and takes in spawned ones. Returns
    /// whether anything was polled.
    pub fn run_ready(&mut self) -> bool {
        let spawned = core::mem::take(&mut *SPAWNED.lock());
        for task in spawned {
            self.spawn(task);
        }
        if self.queue.overflowed.swap(false, Ordering::Acquire) {
            for &id in self.tasks.keys() {
                self.queue.push(id);
            }
        }
        let mut polled = false;
        while let Some(id) = self.queue.ids.pop() {
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
        polled
    }

    /// Whether any task is ready or waiting to be spawned.
    pub fn has_work(&self) -> bool {
        !self.queue.ids.is_empty()
            || self.queue.overflowed.load(Ordering::Relaxed)
            || !SPAWNED.lock().is_empty()
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
        use x86_64::instructions::interrupts;
        interrupts::disable();
        if self.has_work() {
            interrupts::enable();
        } else {
            interrupts::enable_and_hlt();
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
