//! A task that panics is reported by name, through the kernel's own panic
//! path (which halts the CPU).

// runner: expect-serial=KERNEL PANIC in task
// runner: expect-serial=(doomed) at tests/kernels/task_panic.rs
// runner: expect-serial=deliberate panic inside a task

#![no_std]
#![no_main]

use kernel::task::executor::{Executor, Task};

#[unsafe(no_mangle)]
extern "C" fn kmain() -> ! {
    harness::start();
    harness::report!("task_panic ... ");
    let mut executor = Executor::new();
    executor.spawn(Task::new("doomed", async {
        panic!("deliberate panic inside a task");
    }));
    executor.run_ready();
    harness::report!("FAILED: the task did not panic\n");
    harness::exit_qemu(harness::Exit::Failure)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kernel::panic::handle(info)
}
